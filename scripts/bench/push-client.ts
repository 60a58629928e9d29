// Opens N Server-Sent Events streams (one per pharmacy) and reports when each receives the broadcast.
// Protocol with the parent (scripts/bench.ts): argv = url, after, first FINESS number, count[, local address];
// prints "ready <n>" once every stream is open, then "done <json of receive times>" when all have the event.
import net from 'node:net'
import { loadConfig } from '../../src/platform/config.ts'
import { signDevToken } from '../../src/platform/tokens.ts'

const [url, afterArg, firstArg, countArg, localAddress] = process.argv.slice(2)
const { hostname, port } = new URL(url!)
const after = Number(afterArg)
const first = Number(firstArg)
const count = Number(countArg)
const config = loadConfig({ ...process.env, DATABASE_URL: undefined })

const received: number[] = []
let open = 0
let reported = false

function connect(i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const org = String(first + i)
    const token = signDevToken(config, { role: 'pharmacy', org })
    // Several loopback source addresses (one per client process) so that ephemeral ports do not run short.
    const socket = net.connect({ host: hostname, port: Number(port), ...(localAddress ? { localAddress } : {}) })
    let buffer = ''
    let established = false
    let got = false
    socket.setEncoding('utf8')
    socket.on('connect', () => {
      socket.write(`GET /v1/feed/stream?after=${after} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`)
    })
    socket.on('data', (chunk: string) => {
      if (got) return
      buffer += chunk
      if (!established && buffer.includes('retry:')) {
        established = true
        open++
        resolve()
      }
      if (buffer.includes('event: bench.broadcast')) {
        got = true
        received.push(Date.now())
        buffer = ''
        if (received.length === count && !reported) {
          reported = true
          process.stdout.write(`done ${JSON.stringify(received)}\n`)
        }
      }
      if (buffer.length > 65536) buffer = buffer.slice(-4096)
    })
    socket.on('error', (err) => (established ? undefined : reject(err)))
  })
}

for (let i = 0; i < count; i += 250) {
  await Promise.all(Array.from({ length: Math.min(250, count - i) }, (_, k) => connect(i + k)))
}
process.stdout.write(`ready ${open}\n`)
setTimeout(() => {
  if (!reported) process.stdout.write(`done ${JSON.stringify(received)}\n`)
  process.exit(0)
}, 60_000).unref()
process.stdin.resume() // stay until the parent ends us

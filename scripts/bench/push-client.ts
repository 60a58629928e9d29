// Opens N Server-Sent Events streams (one per pharmacy) and reports when each receives the broadcast.
// Protocol with the parent (scripts/bench.ts): argv = url, after, first FINESS number, count, local address, streams
// per connection (1: an HTTP/1.1 connection each; more: HTTP/2 connections carrying that many streams each);
// prints "ready <n>" once every stream is open, then "done <json of receive times>" when all have the event.
import http2 from 'node:http2'
import net from 'node:net'
import { loadConfig } from '../../src/platform/config.ts'
import { signDevToken } from '../../src/platform/tokens.ts'

const [url, afterArg, firstArg, countArg, localAddress, perConnectionArg] = process.argv.slice(2)
const { hostname, port } = new URL(url!)
const after = Number(afterArg)
const first = Number(firstArg)
const count = Number(countArg)
const perConnection = Number(perConnectionArg ?? 1)
const config = loadConfig({ ...process.env, DATABASE_URL: undefined })

const received: number[] = []
let open = 0
let reported = false

/** What a stream received so far: counts it open at the retry hint, and records when the broadcast arrives. */
function reader(resolve: () => void) {
  let buffer = ''
  let established = false
  let got = false
  return {
    get established() {
      return established
    },
    data(chunk: string) {
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
    },
  }
}

/** Streams i… on one HTTP/2 connection. */
async function connectHttp2(i: number, n: number): Promise<void> {
  const session = http2.connect(url!, { createConnection: () => net.connect({ host: hostname, port: Number(port), ...(localAddress ? { localAddress } : {}) }) })
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve())
    session.once('error', reject)
  })
  session.on('error', () => undefined) // after the streams are open, a lost connection shows as streams not reached
  await Promise.all(
    Array.from(
      { length: n },
      (_, k) =>
        new Promise<void>((resolve, reject) => {
          const token = signDevToken(config, { role: 'pharmacy', org: String(first + i + k) })
          const stream = session.request({ ':path': `/v1/feed/stream?after=${after}`, authorization: `Bearer ${token}`, accept: 'text/event-stream' })
          const r = reader(resolve)
          stream.setEncoding('utf8')
          stream.on('data', (chunk: string) => r.data(chunk))
          stream.on('error', (err) => (r.established ? undefined : reject(err)))
        }),
    ),
  )
}

function connect(i: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const org = String(first + i)
    const token = signDevToken(config, { role: 'pharmacy', org })
    // Several loopback source addresses (one per client process) so that ephemeral ports do not run short.
    const socket = net.connect({ host: hostname, port: Number(port), ...(localAddress ? { localAddress } : {}) })
    const r = reader(resolve)
    socket.setEncoding('utf8')
    socket.on('connect', () => {
      socket.write(`GET /v1/feed/stream?after=${after} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`)
    })
    socket.on('data', (chunk: string) => r.data(chunk))
    socket.on('error', (err) => (r.established ? undefined : reject(err)))
  })
}

if (perConnection > 1) {
  const connections = Math.ceil(count / perConnection)
  for (let c = 0; c < connections; c += 10) {
    const batch = Array.from({ length: Math.min(10, connections - c) }, (_, k) => (c + k) * perConnection)
    await Promise.all(batch.map((i) => connectHttp2(i, Math.min(perConnection, count - i))))
  }
} else {
  for (let i = 0; i < count; i += 250) {
    await Promise.all(Array.from({ length: Math.min(250, count - i) }, (_, k) => connect(i + k)))
  }
}
process.stdout.write(`ready ${open}\n`)
setTimeout(() => {
  if (!reported) process.stdout.write(`done ${JSON.stringify(received)}\n`)
  process.exit(0)
}, 60_000).unref()
process.stdin.resume() // stay until the parent ends us

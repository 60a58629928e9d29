// An open-loop load at a fixed rate, for "p99 at N requests/s sustained".
// autocannon's overallRate lets each connection send its quota back to back at the start of every second (bursts
// at full concurrency, then idle), and it times a request from when it was written, so a request that waited for
// a free connection is not counted late. Here request i is due at start + i/rate whatever happened before (sent
// in 1 ms ticks), and its latency runs from that due time to the end of its response: queueing on the client's
// side counts (no coordinated omission).
//
// Written on raw keep-alive sockets, as autocannon is, rather than on node:http or undici: the client shares the
// machine's two cores with the server it measures, and node:http spent 60-85 µs of CPU per request (undici 50-65)
// against 25 µs here; at a few thousand requests per second, its own event-loop lag and collections reached the
// p99 it was reporting (bare Fastify answering a fixed string measured 47 ms p99 at 5,800 req/s through
// node:http, 5-6 ms through this client).
import net from 'node:net'

export interface PacedResult {
  sent: number
  completed: number
  errors: number
  non2xx: number
  /** Achieved rate of completed requests over the run. */
  rate: number
  p50: number
  p99: number
  max: number
}

interface Job {
  bytes: Buffer
  due: number
}

interface Connection {
  socket: net.Socket
  /** The request in flight on it, if any. */
  job: Job | null
  received: Buffer | null
  /** Where the answer's body starts and its whole length, once its head is read (else -1). */
  bodyAt: number
  length: number
  status: number
}

/** Keep-alive connections at most; a request due while all are busy waits for one (and its wait counts). */
const MAX_CONNECTIONS = 256

export async function paced(opts: {
  url: string
  rate: number
  seconds: number
  request: () => { method: string; path: string; headers: Record<string, string>; body?: string }
  onResponse?: (status: number, body: string) => void
}): Promise<PacedResult> {
  const target = new URL(opts.url)
  const total = Math.round(opts.rate * opts.seconds)
  const latencies: number[] = []
  let sent = 0
  let errors = 0
  let non2xx = 0
  let pending = 0
  const idle: Connection[] = []
  const waiting: Job[] = []
  const all = new Set<Connection>()
  let finish!: () => void
  const finished = new Promise<void>((resolve) => (finish = resolve))

  const encode = (r: ReturnType<typeof opts.request>): Buffer => {
    const body = r.body === undefined ? null : Buffer.from(r.body)
    let head = `${r.method} ${r.path} HTTP/1.1\r\nhost: ${target.host}\r\n`
    for (const [name, value] of Object.entries(r.headers)) head += `${name}: ${value}\r\n`
    head += `content-length: ${body ? body.length : 0}\r\n\r\n`
    return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1')
  }
  const settle = () => {
    pending--
    if (sent === total && pending === 0) finish()
  }
  const send = (c: Connection, job: Job) => {
    c.job = job
    c.received = null
    c.bodyAt = c.length = -1
    c.socket.write(job.bytes)
  }
  const release = (c: Connection) => {
    const next = waiting.shift()
    if (next) send(c, next)
    else idle.push(c)
  }
  const onData = (c: Connection, chunk: Buffer) => {
    c.received = c.received ? Buffer.concat([c.received, chunk]) : chunk
    if (c.length < 0) {
      const end = c.received.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = c.received.toString('latin1', 0, end)
      c.status = Number(head.slice(9, 12))
      // Every answer measured here has a length (JSON bodies): a chunked one would be a change to notice.
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      if (!length) throw new Error(`paced: an answer without content-length (${head.split('\r\n')[0]})`)
      c.bodyAt = end + 4
      c.length = c.bodyAt + Number(length[1])
    }
    if (c.received.length < c.length) return
    latencies.push(performance.now() - c.job!.due)
    if (c.status < 200 || c.status >= 300) non2xx++
    opts.onResponse?.(c.status, c.received.toString('utf8', c.bodyAt))
    c.job = null
    settle()
    release(c)
  }
  const connect = (job: Job) => {
    const socket = net.connect({ host: target.hostname, port: Number(target.port), noDelay: true })
    const c: Connection = { socket, job: null, received: null, bodyAt: -1, length: -1, status: 0 }
    all.add(c)
    socket.on('data', (chunk: Buffer) => onData(c, chunk))
    socket.on('error', () => {}) // counted on close
    socket.on('close', () => {
      all.delete(c)
      const at = idle.indexOf(c)
      if (at >= 0) idle.splice(at, 1)
      if (c.job) {
        c.job = null
        errors++
        settle()
      }
      // A closed connection is replaced for whatever waits (the server may close keep-alive connections).
      const next = waiting.shift()
      if (next) connect(next)
    })
    send(c, job)
  }

  const start = performance.now()
  const tick = () => {
    const now = performance.now()
    while (sent < total && start + (sent * 1000) / opts.rate <= now) {
      const job = { bytes: encode(opts.request()), due: start + (sent++ * 1000) / opts.rate }
      pending++
      const c = idle.pop()
      if (c) send(c, job)
      else if (all.size < MAX_CONNECTIONS) connect(job)
      else waiting.push(job)
    }
    if (sent < total) setTimeout(tick, 1)
  }
  tick()
  await finished
  const elapsed = (performance.now() - start) / 1000
  for (const c of all) c.socket.destroy()
  latencies.sort((a, b) => a - b)
  const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? NaN)
  return { sent, completed: latencies.length, errors, non2xx, rate: latencies.length / elapsed, p50: pct(50), p99: pct(99), max: Math.round(latencies.at(-1) ?? NaN) }
}

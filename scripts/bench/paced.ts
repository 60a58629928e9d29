// An open-loop load at a fixed rate, for "p99 at N requests/s sustained".
// autocannon's overallRate lets each connection send its quota back to back at the start of every second (bursts
// at full concurrency, then idle), and it times a request from when it was written, so a request that waited for
// a free connection is not counted late. Here request i is due at start + i/rate whatever happened before (sent
// in 2 ms ticks), and its latency runs from that due time to the end of its response: queueing on the client's
// side counts (no coordinated omission).
import http from 'node:http'

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

export async function paced(opts: {
  url: string
  rate: number
  seconds: number
  request: () => { method: string; path: string; headers: Record<string, string>; body?: string }
  onResponse?: (status: number, body: string) => void
}): Promise<PacedResult> {
  const target = new URL(opts.url)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
  const total = Math.round(opts.rate * opts.seconds)
  const latencies: number[] = []
  let sent = 0
  let errors = 0
  let non2xx = 0
  let pending = 0
  const start = performance.now()
  await new Promise<void>((resolve) => {
    const fire = (due: number) => {
      const r = opts.request()
      pending++
      const req = http.request(
        { host: target.hostname, port: target.port, method: r.method, path: r.path, headers: { ...r.headers, ...(r.body ? { 'content-length': Buffer.byteLength(r.body) } : {}) }, agent },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            latencies.push(performance.now() - due)
            if (res.statusCode! < 200 || res.statusCode! >= 300) non2xx++
            opts.onResponse?.(res.statusCode!, Buffer.concat(chunks).toString())
            done()
          })
        },
      )
      req.on('error', () => {
        errors++
        done()
      })
      req.end(r.body)
    }
    const done = () => {
      pending--
      if (sent === total && pending === 0) resolve()
    }
    const tick = () => {
      const now = performance.now()
      while (sent < total && start + (sent * 1000) / opts.rate <= now) fire(start + (sent++ * 1000) / opts.rate)
      if (sent < total) setTimeout(tick, 2)
    }
    tick()
  })
  const elapsed = (performance.now() - start) / 1000
  agent.destroy()
  latencies.sort((a, b) => a - b)
  const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? NaN)
  return { sent, completed: latencies.length, errors, non2xx, rate: latencies.length / elapsed, p50: pct(50), p99: pct(99), max: Math.round(latencies.at(-1) ?? NaN) }
}

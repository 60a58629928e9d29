import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import http from 'node:http'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { seedDemoOrganisations } from '../src/demo/seed.ts'
import { signDevToken } from '../src/platform/tokens.ts'
import { ORG, testApp, testConfig, testDatabase } from './helpers.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Starts src/server.ts as production does, in a process of its own; resolves with its address. */
async function startServer(t: { teardown(fn: () => unknown): void }, env: Record<string, string>) {
  const dir = await mkdtemp(path.join(tmpdir(), 'dp-drain-'))
  const childEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'DATABASE_URL' && !k.startsWith('TAP')) childEnv[k] = v
  Object.assign(childEnv, { NODE_ENV: 'test', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', PGLITE_DIR: path.join(dir, 'pglite'), FAX_SPOOL_DIR: path.join(dir, 'fax'), ...env })
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  const logFile = path.join(dir, 'server.log')
  const log = createWriteStream(logFile)
  child.stdout!.pipe(log)
  let stderr = ''
  child.stderr!.on('data', (c) => (stderr += c))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    await rm(dir, { recursive: true, force: true })
  })
  const address = await new Promise<string>((resolve, reject) => {
    let buffer = ''
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString()
      const m = /"address":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*"msg":"listening"/.exec(buffer)
      if (m) {
        child.stdout!.off('data', onData)
        resolve(m[1]!)
      }
    }
    child.stdout!.on('data', onData)
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)))
    setTimeout(() => reject(new Error(`server did not listen within 90 s: ${stderr}`)), 90_000).unref()
  })
  return { child, address, exited, logFile: () => new Promise<string>((resolve) => log.end(() => resolve(readFile(logFile, 'utf8')))), dir }
}

interface Outcome {
  start: number
  end: number
  status?: number
  connection?: string
  error?: string
  reused: boolean
  body?: string
}

/** One request on the keep-alive agent; never throws. */
function call(agent: http.Agent, base: string, method: string, url: string, headers: Record<string, string>, body?: string): Promise<Outcome> {
  const start = performance.now()
  return new Promise((resolve) => {
    const req = http.request(`${base}${url}`, { method, agent, headers: body ? { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : headers })
    let reused = false
    req.on('socket', () => (reused = req.reusedSocket))
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () =>
        resolve({ start, end: performance.now(), status: res.statusCode, connection: String(res.headers.connection ?? ''), reused: req.reusedSocket, ...(res.statusCode! >= 300 ? { body: text.slice(0, 300) } : {}) }),
      )
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ start, end: performance.now(), status: res.statusCode, error: err.code ?? err.message, reused }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ start, end: performance.now(), error: err.code ?? err.message, reused: req.reusedSocket }))
    req.end(body)
  })
}

/** CPU seconds used so far by a process (user + system), from /proc; null where /proc is not available. */
async function cpuSeconds(pid: number) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null)
  if (!stat) return null
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const CONNECTIONS = 48
const DRAIN_DELAY_MS = 3000
const LOAD_BEFORE_SIGTERM_MS = 2000

/** The server in a process of its own, on its own database, and what the load sends it. */
async function serverUnderTest(t: Parameters<typeof testDatabase>[0] & { teardown(fn: () => unknown): void }) {
  // Load shedding off: on a shared machine a process starved of CPU for a second would shed, which is not what
  // these tests are about.
  const env: Record<string, string> = { DRAIN_DELAY_MS: String(DRAIN_DELAY_MS), SHUTDOWN_GRACE_MS: '15000', MAX_EVENT_LOOP_DELAY_MS: '0' }
  if (process.env.DATABASE_URL) {
    const database = await testDatabase(t)
    await seedDemoOrganisations(database.db)
    env.DATABASE_URL = database.connectionString!
    env.DATABASE_POOL_MAX = '10'
  }
  const server = await startServer(t, env)
  const token = signDevToken(testConfig(), { role: 'pharmacy', org: ORG.pharmacyParis })
  return {
    server,
    base: server.address,
    child: server.child,
    auth: { authorization: `Bearer ${token}` },
    check: JSON.stringify({ boxes: [{ product: '3400949497294', batch: 'LOT1' }, { product: '3400936128149', batch: 'L2411A' }] }),
  }
}

t.test('SIGTERM at saturation: readiness turns 503 at once, no accepted request fails, the process exits cleanly', async (t) => {
  const { server, base, child, auth, check } = await serverUnderTest(t)

  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS })
  t.teardown(() => agent.destroy())
  const outcomes: Outcome[] = []
  let stopping = false
  let sigtermAt = Infinity
  // Like a load balancer: once the readiness probe has answered 503, no new request is sent to this instance.
  let routed = true
  // Closed-loop clients on keep-alive connections: each sends its next request as soon as the previous one is
  // answered, so the server always has CONNECTIONS requests to serve: it runs at its saturation.
  const worker = async (n: number) => {
    for (let i = 0; !stopping && routed; i++) {
      const o = (n + i) % 2 === 0 ? await call(agent, base, 'POST', '/v1/dispensation-checks', auth, check) : await call(agent, base, 'GET', '/v1/feed?after=0&limit=5', auth)
      outcomes.push(o)
      if (o.error === 'ECONNREFUSED') return // the listener is closed: a load balancer would have moved on
    }
  }
  // The load balancer's readiness probe, on a connection of its own each time.
  const probes: Array<{ at: number; end: number; status?: number; reason?: string }> = []
  const probe = async () => {
    while (!stopping) {
      const at = performance.now()
      const r = await new Promise<{ status?: number; reason?: string }>((resolve) => {
        http
          .get(`${base}/health/ready`, { agent: false }, (res) => {
            let body = ''
            res.setEncoding('utf8')
            res.on('data', (c: string) => (body += c))
            res.on('end', () => resolve({ status: res.statusCode, reason: body.includes('"reason"') ? JSON.parse(body).reason : undefined }))
          })
          .on('error', () => resolve({}))
      })
      probes.push({ at, end: performance.now(), ...r })
      if (at >= sigtermAt && r.status === 503) routed = false
      if (r.status === undefined) return
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  // Warm up (first answers compile their serializers) until ready.
  for (let i = 0; i < 50; i++) {
    const ready = await call(agent, base, 'GET', '/health/ready', {})
    const feed = await call(agent, base, 'GET', '/v1/feed?after=0&limit=5', auth)
    if (ready.status === 200 && feed.status === 200) break
    await new Promise((r) => setTimeout(r, 200))
  }
  const cpuAtStart = await cpuSeconds(child.pid!)
  const workers = Array.from({ length: CONNECTIONS }, (_, n) => worker(n))
  const prober = probe()
  await new Promise((r) => setTimeout(r, LOAD_BEFORE_SIGTERM_MS))
  const cpuAtSigterm = await cpuSeconds(child.pid!)
  const answeredBefore = outcomes.length
  sigtermAt = performance.now()
  child.kill('SIGTERM')
  const code = await Promise.race([server.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))])
  stopping = true
  await Promise.all([...workers, prober])
  const log = await server.logFile()

  const before = outcomes.filter((o) => o.start < sigtermAt)
  const after = outcomes.filter((o) => o.start >= sigtermAt)
  const failed = (list: Outcome[]) => list.filter((o) => o.error || !o.status || o.status >= 300)
  const kinds = (list: Outcome[]) => [...new Set(list.map((o) => o.error ?? String(o.status)))]
  const firstDrainingProbe = probes.find((p) => p.at >= sigtermAt && p.status === 503)
  const firstRefused = after.filter((o) => o.error === 'ECONNREFUSED').sort((a, b) => a.start - b.start)[0]
  const windowMs = LOAD_BEFORE_SIGTERM_MS
  const inFlight = before.filter((o) => o.end > sigtermAt).length
  const cpu = cpuAtStart !== null && cpuAtSigterm !== null ? `, server CPU ${Math.round(((cpuAtSigterm - cpuAtStart) * 100_000) / windowMs)} % of a core` : ''
  t.comment(
    `${CONNECTIONS} keep-alive clients: ${answeredBefore} answers in the ${windowMs} ms before SIGTERM (${Math.round((answeredBefore * 1000) / windowMs)}/s${cpu}); ` +
      `${before.length} requests sent before SIGTERM, ${inFlight} in flight at it; ` +
      `${after.length} sent after (${kinds(after).join(', ')}); probes ${JSON.stringify(probes.slice(-5).map((p) => [Math.round(p.at - sigtermAt), p.status]))}; failures before ${JSON.stringify(failed(before).slice(0, 3).map((o) => ({ ...o, start: Math.round(o.start - sigtermAt), end: Math.round(o.end - sigtermAt) })))}; readiness 503 ${firstDrainingProbe ? `${Math.round(firstDrainingProbe.at - sigtermAt)} ms` : 'never'} after SIGTERM` +
      `${firstRefused ? `, listener closed ${Math.round(firstRefused.start - sigtermAt)} ms after` : ''}`,
  )

  t.equal(code, 0, 'the process exits by itself, with 0')
  t.ok(before.length > CONNECTIONS, 'load was running when SIGTERM came')
  t.ok(inFlight > 0, 'requests were in flight at SIGTERM')
  t.same(kinds(failed(before)), [], 'every request sent before SIGTERM was answered with success')
  t.equal(failed(before).length, 0, 'no failure among the requests sent before SIGTERM')
  t.same(failed(after), [], 'nor among those sent after it, until the readiness probe took the instance out')
  t.ok(after.some((o) => o.status === 200), 'the instance kept serving during the drain delay')
  t.ok(firstDrainingProbe, 'readiness answered 503 after SIGTERM')
  t.equal(firstDrainingProbe?.reason, 'draining')
  t.ok(firstDrainingProbe && firstDrainingProbe.at - sigtermAt < DRAIN_DELAY_MS, 'readiness turned 503 before the drain delay was over')
  t.ok(probes.filter((p) => p.end < sigtermAt).every((p) => p.status === 200), 'ready before')
  // Sent once the client had the 503 (not merely after the probe was sent: requests on other connections may be
  // read before the probe, and so before the drain began).
  const keptAlive = after.filter((o) => firstDrainingProbe && o.start > firstDrainingProbe.end && o.status && o.connection !== 'close')
  t.equal(keptAlive.length, 0, 'once draining, every answer says Connection: close')
  // The server's own log: every request it read was answered.
  const incoming = new Set<string>()
  const completed = new Set<string>()
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue
    const entry = JSON.parse(line) as { reqId?: string; msg?: string }
    if (entry.msg === 'incoming request' && entry.reqId) incoming.add(entry.reqId)
    if (entry.msg === 'request completed' && entry.reqId) completed.add(entry.reqId)
  }
  t.ok(incoming.size > 0)
  t.same([...incoming].filter((id) => !completed.has(id)), [], 'every request the server read, it answered')
  t.match(log, /"msg":"stopped"/, 'an orderly stop')
})

/**
 * A client over HTTP/2 as a load balancer or a vendor's server runs one: requests share a connection; once that
 * connection is told to go away (or is gone), the next request opens a new one; a request the server refused
 * without reading it (REFUSED_STREAM, or sent after GOAWAY) is sent again there, once. Never throws.
 */
class Http2Client {
  private session: http2.ClientHttp2Session | undefined
  constructor(private readonly base: string) {}

  private current() {
    if (!this.session || this.session.closed || this.session.destroyed) {
      const session = http2.connect(this.base)
      session.on('error', () => undefined) // shows as the failure of its requests
      session.on('goaway', () => {
        if (this.session === session) this.session = undefined
      })
      this.session = session
    }
    return this.session
  }

  private once(method: string, path: string, headers: Record<string, string>, body?: string) {
    return new Promise<{ status?: number; error?: string; refused?: boolean }>((resolve) => {
      let stream: http2.ClientHttp2Stream
      try {
        stream = this.current().request({ ':method': method, ':path': path, ...headers, ...(body ? { 'content-type': 'application/json' } : {}) }, { endStream: !body })
      } catch (err) {
        return resolve({ error: (err as NodeJS.ErrnoException).code, refused: true }) // the session was closing
      }
      let status: number | undefined
      stream.on('response', (h) => (status = Number(h[':status'])))
      stream.on('data', () => undefined)
      stream.on('end', () => resolve({ status }))
      stream.on('error', (err: NodeJS.ErrnoException) =>
        resolve({ error: err.code, refused: stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || err.code === 'ERR_HTTP2_GOAWAY_SESSION' }),
      )
      if (body) stream.end(body)
    })
  }

  async request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Outcome & { retried: boolean }> {
    const start = performance.now()
    let r = await this.once(method, path, headers, body)
    const retried = !!r.refused
    if (r.refused) r = await this.once(method, path, headers, body)
    return { start, end: performance.now(), status: r.status, error: r.error, reused: false, retried }
  }

  close() {
    this.session?.destroy()
  }
}

t.test('SIGTERM under HTTP/2 load: GOAWAY, no accepted request fails, the process exits cleanly', async (t) => {
  const { server, base, child, auth, check } = await serverUnderTest(t)
  // Eight connections of six streams each, closed loop.
  const clients = Array.from({ length: 8 }, () => new Http2Client(base))
  t.teardown(() => clients.forEach((c) => c.close()))
  const outcomes: Array<Outcome & { retried: boolean }> = []
  let stopping = false
  const worker = async (client: Http2Client, n: number) => {
    for (let i = 0; !stopping; i++) {
      const o = (n + i) % 2 === 0 ? await client.request('POST', '/v1/dispensation-checks', auth, check) : await client.request('GET', '/v1/feed?after=0&limit=5', auth)
      outcomes.push(o)
      if (o.error === 'ECONNREFUSED') return // the listener is closed: a load balancer would have moved on
    }
  }
  for (let i = 0; i < 50; i++) {
    const ready = await clients[0]!.request('GET', '/health/ready', {})
    if (ready.status === 200) break
    await new Promise((r) => setTimeout(r, 200))
  }
  const workers = clients.flatMap((c, k) => Array.from({ length: 6 }, (_, n) => worker(c, k * 6 + n)))
  await new Promise((r) => setTimeout(r, LOAD_BEFORE_SIGTERM_MS))
  const sigtermAt = performance.now()
  child.kill('SIGTERM')
  // The load balancer takes the instance out once readiness answers 503, within the drain delay; here the clients
  // go on until then, then stop.
  await new Promise((r) => setTimeout(r, DRAIN_DELAY_MS - 500))
  stopping = true
  await Promise.all(workers)
  const code = await Promise.race([server.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))])
  const log = await server.logFile()

  const failed = outcomes.filter((o) => o.error || !o.status || o.status >= 300)
  const after = outcomes.filter((o) => o.start >= sigtermAt)
  t.comment(`${outcomes.length} requests over HTTP/2 (${after.length} sent after SIGTERM), ${outcomes.filter((o) => o.retried).length} refused unread and sent again on a new connection`)
  t.same(failed.slice(0, 3), [], 'no request failed, before or after SIGTERM')
  t.ok(after.some((o) => o.status === 200), 'the instance kept serving during the drain delay')
  t.ok(outcomes.some((o) => o.start < sigtermAt), 'load was running when SIGTERM came')
  t.equal(code, 0, 'the process exits by itself, with 0')
  t.match(log, /"msg":"stopped"/, 'an orderly stop')
})

t.test('draining ends streams with a reconnect hint and long-polls at once', async (t) => {
  const ctx = await testApp(t)
  const { app, auth } = ctx
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const paris = auth('pharmacy', ORG.pharmacyParis)

  const openStream = () =>
    new Promise<{ text: Promise<string> }>((resolve, reject) => {
      http
        .get(`${base}/v1/feed/stream`, { headers: { accept: 'text/event-stream', ...paris } }, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (text += c))
          resolve({ text: new Promise((done) => res.on('end', () => done(text))) })
        })
        .on('error', reject)
    })
  const stream = await openStream()
  const poll = app.inject({ method: 'GET', url: '/v1/feed?after=0&wait=30', headers: paris })
  await new Promise((r) => setTimeout(r, 200))
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
  t.equal(app.hub.connections, 1)

  const started = Date.now()
  app.drain.start()
  const ended = await stream.text
  t.match(ended, /retry: 1000\n: [^\n]*reconnect[^\n]*\n\n$/, 'the stream ends with retry: and a comment')
  const polled = await poll
  t.equal(polled.statusCode, 200)
  t.same(polled.json(), { items: [], nextAfter: 0 }, 'the long-poll returns what it has')
  t.ok(Date.now() - started < 5000, 'without waiting its 30 s')
  t.equal(polled.headers.connection, 'close')

  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.equal(ready.headers['retry-after'], '5')
  t.match(ready.json(), { code: 'SERVICE_UNAVAILABLE', reason: 'draining' })
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'still alive')
  const served = await app.inject({ method: 'GET', url: '/v1/feed?after=0', headers: paris })
  t.equal(served.statusCode, 200, 'still serving')
  t.equal(served.headers.connection, 'close')
  const late = await openStream()
  t.match(await late.text, /^retry: 1000\n: [^\n]*reconnect/, 'a stream opened while draining is told to reconnect at once')
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).body.match(/^dp_draining (\d)$/m)?.[1], '1')
})

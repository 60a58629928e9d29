// HTTP/2 without TLS beside HTTP/1.1 on the service's one port (platform/http2.ts): the same answers over both,
// whatever way the first bytes arrive; event streams multiplexed on one connection, each its own organisation's;
// draining sends GOAWAY; hostile first bytes close their connection and nothing else.
import http from 'node:http'
import http2 from 'node:http2'
import net, { type AddressInfo } from 'node:net'
import fc from 'fast-check'
import t from 'tap'
import { publish } from '../src/platform/events/publish.ts'
import { connectHttp2, http2Request, ORG, sseBlocks, testApp, type TestContext } from './helpers.ts'

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'

async function listen(ctx: TestContext) {
  await ctx.app.listen({ host: '127.0.0.1', port: 0 })
  return (ctx.app.server.address() as AddressInfo).port
}

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One request over HTTP/1.1 on a connection of its own (optionally through `connect`). */
function h1(port: number, method: string, path: string, headers: Record<string, string>, body?: string, connect?: () => net.Socket): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false, ...(connect ? { createConnection: connect } : {}) }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const connectH2 = (port: number, connect?: () => net.Socket) => connectHttp2(`http://127.0.0.1:${port}`, connect)

/** What both protocols must agree on: status, body (the request id aside) and the headers a client reads. */
function comparable(a: Answer) {
  const body = a.body.replace(/"(instance|requestId)":"[^"]*"/g, '"$1":"…"')
  const { 'content-type': type, 'content-language': language, 'retry-after': retry } = a.headers
  return { status: a.status, body, type, language, retry, requestId: typeof a.headers['x-request-id'] === 'string' }
}

/**
 * A TCP relay that passes the client's first bytes to the service in pieces, cut at `cuts`, a pause between
 * each: a client whose preface or request line arrives in several reads.
 */
async function splitter(t: { teardown(fn: () => unknown): void }, port: number) {
  let cuts: number[] = []
  const relay = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1')
    upstream.setNoDelay(true)
    let sent = 0
    let queue = Promise.resolve()
    client.on('data', (chunk: Buffer) => {
      queue = queue.then(async () => {
        let at = 0
        for (const cut of cuts) {
          if (cut <= sent + at || cut >= sent + chunk.length) continue
          upstream.write(chunk.subarray(at, cut - sent))
          at = cut - sent
          await new Promise((r) => setTimeout(r, 3))
        }
        upstream.write(chunk.subarray(at))
        sent += chunk.length
      })
    })
    upstream.on('data', (d) => client.write(d))
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => relay.close(() => r())))
  const relayPort = (relay.address() as AddressInfo).port
  return {
    connect: (at: number[]) => {
      cuts = at
      return net.connect(relayPort, '127.0.0.1')
    },
  }
}

t.test('one port, two protocols: the same answers', async (t) => {
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.message)
  process.on('warning', onWarning)
  t.teardown(() => void process.off('warning', onWarning))
  const ctx = await testApp(t)
  const port = await listen(ctx)
  const session = await connectH2(port)
  t.teardown(() => session.close())
  const paris = { ...ctx.auth('pharmacy', ORG.pharmacyParis), 'content-type': 'application/json' }
  const boxes = JSON.stringify({ boxes: [{ product: '3400936128149', batch: 'LOT-1' }, { dataMatrix: 'garbage' }] })

  const cases: Array<[string, string, Record<string, string>, string | undefined]> = [
    ['POST', '/v1/dispensation-checks', paris, boxes],
    ['POST', '/v1/dispensation-checks', { ...paris, 'accept-language': 'en' }, boxes],
    ['POST', '/v1/dispensation-checks', paris, '{"boxes": [}'], // malformed JSON: 400
    ['POST', '/v1/dispensation-checks', paris, JSON.stringify({ boxes: [] })], // invalid: 400 naming the field
    ['POST', '/v1/dispensation-checks', { 'content-type': 'application/json' }, boxes], // no token: 401
    ['GET', '/v1/feed?after=0x10', paris, undefined], // not decimal: 400
    ['GET', '/v1/no-such-route', paris, undefined], // 404
    ['GET', '/health/live', {}, undefined],
  ]
  for (const [method, path, headers, body] of cases) {
    const one = await h1(port, method, path, headers, body)
    const two = await http2Request(session, method, path, headers, body)
    t.same(comparable(two), comparable(one), `${method} ${path} (${one.status}) answers the same over HTTP/2`)
    t.notOk('connection' in two.headers, 'no connection header over HTTP/2')
  }
  t.same(warnings, [], 'Node warned about nothing (no connection-level header set on an HTTP/2 answer)')
  const gauge = async () => Number(/^dp_http2_connections (\d+)$/m.exec((await ctx.app.inject({ method: 'GET', url: '/metrics' })).body)?.[1])
  t.equal(await gauge(), 1, 'the metrics count the open HTTP/2 connection')
  session.close()
  await new Promise((r) => session.once('close', r))
  for (let i = 0; i < 50 && (await gauge()) !== 0; i++) await new Promise((r) => setTimeout(r, 20))
  t.equal(await gauge(), 0, 'and no more once it is closed')
})

t.test('whatever way the first bytes arrive, each connection is read as the protocol it speaks', async (t) => {
  const ctx = await testApp(t)
  const port = await listen(ctx)
  const relay = await splitter(t, port)
  const paris = { ...ctx.auth('pharmacy', ORG.pharmacyParis), 'content-type': 'application/json' }
  const body = JSON.stringify({ boxes: [{ product: '3400936128149', batch: 'LOT-1' }] })
  const expected = comparable(await h1(port, 'POST', '/v1/dispensation-checks', paris, body))
  t.equal(expected.status, 200)
  // Cut points among the first 60 bytes: inside the preface or the request line, on its 24th byte, just past it.
  const cuts = fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { minLength: 0, maxLength: 5 }).map((a) => a.sort((x, y) => x - y))
  await fc.assert(
    fc.asyncProperty(cuts, fc.boolean(), async (at, overHttp2) => {
      let answer: Answer
      if (overHttp2) {
        const session = await connectH2(port, () => relay.connect(at))
        try {
          answer = await http2Request(session, 'POST', '/v1/dispensation-checks', paris, body)
        } finally {
          session.close()
        }
      } else {
        answer = await h1(port, 'POST', '/v1/dispensation-checks', paris, body, () => relay.connect(at))
      }
      t.same(comparable(answer), expected, `${overHttp2 ? 'HTTP/2' : 'HTTP/1.1'} cut at ${at.join(', ') || 'nothing'}`)
    }),
    { seed: 20261207, numRuns: 60 },
  )
})

t.test('hostile first bytes close their own connection, nothing else', async (t) => {
  const ctx = await testApp(t)
  const port = await listen(ctx)
  const raw = (bytes: string | Buffer, end: 'close' | 'wait' = 'wait') =>
    new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      let got = ''
      socket.on('data', (d) => (got += d.toString('latin1')))
      socket.on('error', () => resolve(got))
      socket.on('close', () => resolve(got))
      socket.on('connect', () => {
        socket.write(bytes)
        if (end === 'close') socket.resetAndDestroy()
        else setTimeout(() => socket.destroy(), 300)
      })
    })
  // Reset in the middle of the preface, and before any byte.
  await raw(PREFACE.slice(0, 9), 'close')
  await raw('', 'close')
  // Looks like the preface, then is not: HTTP/1.1 reads it and refuses it as HTTP/1.1 does.
  const diverging = await raw('PRI * HTTP/1.1\r\nHost: x\r\n\r\n')
  t.match(diverging, /^HTTP\/1\.1 [45]\d\d /, 'a request that only begins like the preface is answered as HTTP/1.1')
  // The preface, then garbage instead of HTTP/2 frames: Node closes that connection (GOAWAY).
  await raw(Buffer.concat([Buffer.from(PREFACE), Buffer.alloc(64, 0xff)]))
  const open = () => new Promise<number>((resolve) => ctx.app.server.getConnections((_err, n) => resolve(n)))
  for (let i = 0; i < 50 && (await open()) > 0; i++) await new Promise((r) => setTimeout(r, 20))
  t.equal(await open(), 0, 'none of those connections is left open')
  const after = await h1(port, 'GET', '/health/live', {})
  t.equal(after.status, 200, 'the service still answers over HTTP/1.1')
  const session = await connectH2(port)
  // Headers over 16 KiB: 431 as over HTTP/1.1, and the connection goes on.
  const large = { 'x-large': 'a'.repeat(20_000) }
  const overHttp1 = await h1(port, 'GET', '/health/live', large)
  t.equal(overHttp1.status, 431)
  t.same(comparable(await http2Request(session, 'GET', '/health/live', large)), comparable(overHttp1), 'headers over 16 KiB: 431, the same problem')
  t.equal((await http2Request(session, 'GET', '/health/live', {})).status, 200, 'and over HTTP/2, on the same connection')

  // A body that never ends: 408 once the request delay has passed, as over HTTP/1.1; the connection goes on.
  ctx.app.server.requestTimeout = 300
  const stalled = session.request({ ':method': 'POST', ':path': '/v1/dispensation-checks', 'content-type': 'application/json', ...ctx.auth('pharmacy', ORG.pharmacyParis) })
  stalled.write('{"boxes": [')
  let text = ''
  const head = await new Promise<http2.IncomingHttpHeaders>((resolve) => stalled.once('response', resolve))
  stalled.setEncoding('utf8')
  stalled.on('data', (c: string) => (text += c))
  await new Promise((r) => stalled.once('close', r))
  t.equal(head[':status'], 408)
  t.equal(JSON.parse(text).code, 'REQUEST_TIMEOUT')
  t.equal((await http2Request(session, 'POST', '/v1/dispensation-checks', { 'content-type': 'application/json', ...ctx.auth('pharmacy', ORG.pharmacyParis) }, JSON.stringify({ boxes: [{ product: '3400936128149', batch: 'L' }] }))).status, 200, 'a whole request on the same connection is answered')
  session.close()
})

/** An event stream over an HTTP/2 connection shared with other streams. */
function openStream(session: http2.ClientHttp2Session, headers: Record<string, string>) {
  const events: Array<{ event: string; data: any }> = []
  const stream = session.request({ ':path': '/v1/feed/stream', accept: 'text/event-stream', ...headers })
  stream.setEncoding('utf8')
  const response = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once('response', resolve))
  stream.on(
    'data',
    sseBlocks((fields) => {
      if (fields.data) events.push({ event: fields.event!, data: JSON.parse(fields.data) })
      else if (fields.retry) events.push({ event: 'retry', data: fields.retry })
    }),
  )
  const ended = new Promise<void>((resolve) => stream.once('close', resolve))
  const until = async (what: string, pred: () => boolean) => {
    const end = Date.now() + 5000
    while (!pred()) {
      if (Date.now() > end) throw new Error(`${what}: not within 5 s; got ${JSON.stringify(events)}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  return { events, response, ended, until, stream }
}

t.test('event streams share one HTTP/2 connection, each with its own organisation’s events; draining sends GOAWAY', async (t) => {
  const ctx = await testApp(t)
  const port = await listen(ctx)
  const session = await connectH2(port)
  t.teardown(() => session.destroy())
  const pharmacies = [ORG.pharmacyParis, ORG.pharmacyLyon, ORG.pharmacyAjaccio]
  const streams = pharmacies.map((org) => openStream(session, ctx.auth('pharmacy', org)))
  for (const s of streams) {
    const head = await s.response
    t.equal(head[':status'], 200)
    t.match(head['content-type'], /text\/event-stream/)
    t.notOk('connection' in head)
  }
  await Promise.all(streams.map((s, i) => s.until(`stream ${i} opened`, () => s.events.some((e) => e.event === 'retry'))))
  const send = (org: string, n: number) =>
    ctx.app.db.transaction().execute((tx) => publish(tx, { type: 'test.message', payload: { n }, audience: { orgs: [org] } }, ctx.clock.now))
  for (const [i, org] of pharmacies.entries()) await send(org, i)
  await ctx.app.db.transaction().execute((tx) => publish(tx, { type: 'test.broadcast', payload: { n: 99 }, audience: { roles: ['pharmacy'] } }, ctx.clock.now))
  for (const [i, s] of streams.entries()) {
    await s.until(`stream ${i} got the broadcast`, () => s.events.some((e) => e.data?.payload?.n === 99))
    t.same(s.events.filter((e) => e.event !== 'retry').map((e) => e.data.payload.n), [i, 99], `${pharmacies[i]}: its own event, then the broadcast; none of the others'`)
  }

  // Draining: GOAWAY on the connection, and each stream ends with the reconnect hint.
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()))
  const h1Answer = h1(port, 'GET', '/health/live', {})
  ctx.app.drain.start()
  await goaway
  t.pass('the HTTP/2 connection was told to go away')
  await Promise.all(streams.map((s) => s.ended))
  for (const s of streams) t.ok(s.events.filter((e) => e.event === 'retry').length >= 2, 'the stream ended with a reconnect hint')
  t.equal((await h1Answer).status, 200)
  const during = await h1(port, 'GET', '/health/live', {})
  t.equal(during.headers.connection, 'close', 'HTTP/1.1 answers say Connection: close while draining')
  // A connection opened while draining (the load balancer has not taken the instance out yet): its first request
  // is answered, then it is told to go away, as an HTTP/1.1 connection gets its answer with Connection: close.
  const late = await connectH2(port)
  const lateGoaway = new Promise<void>((resolve) => late.once('goaway', () => resolve()))
  t.equal((await http2Request(late, 'GET', '/health/live', {})).status, 200, 'the first request of a connection opened while draining is answered')
  await lateGoaway
  t.pass('then that connection is told to go away')
  late.destroy()
})

t.test('idle connections are closed: silent from the start, or HTTP/2 with nothing to do', async (t) => {
  const ctx = await testApp(t)
  const port = await listen(ctx)
  ctx.app.server.headersTimeout = 300
  ctx.app.server.keepAliveTimeout = 300
  const silent = net.connect(port, '127.0.0.1')
  silent.on('error', () => undefined)
  const started = Date.now()
  await new Promise((resolve) => silent.once('close', resolve))
  t.ok(Date.now() - started < 5000, 'a connection that says nothing is closed after the headers timeout')
  const session = await connectH2(port)
  t.equal((await http2Request(session, 'GET', '/health/live', {})).status, 200)
  await new Promise((resolve) => session.once('close', resolve))
  t.pass('an HTTP/2 connection left idle is closed after the keep-alive timeout')
})

t.test('HTTP2_CLEARTEXT=false: the port speaks HTTP/1.1 only', async (t) => {
  const ctx = await testApp(t, { env: { HTTP2_CLEARTEXT: 'false' } })
  const port = await listen(ctx)
  const answer = await new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(PREFACE))
    let got = ''
    socket.on('data', (d) => (got += d))
    socket.on('close', () => resolve(got))
    socket.on('error', () => resolve(got))
  })
  t.match(answer, /^HTTP\/1\.1 4\d\d /, 'the preface is refused as a malformed HTTP/1.1 request')
  t.equal((await h1(port, 'GET', '/health/live', {})).status, 200)
})

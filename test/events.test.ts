import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import t from 'tap'
import { buildApp } from '../src/app.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { inTransaction } from '../src/platform/db/transaction.ts'
import { acknowledge, CHANNEL_SEQUENCED, type NewEvent, publish } from '../src/platform/events/publish.ts'
import { sequence } from '../src/platform/events/sequencer.ts'
import { seedDemoOrganisations } from '../src/demo/seed.ts'
import { ORG, sseBlocks, testApp, testDatabase, type TestContext } from './helpers.ts'

const send = (ctx: TestContext, e: Partial<NewEvent> & { audience: NewEvent['audience'] }) =>
  ctx.app.db.transaction().execute((tx) => publish(tx, { type: 'test.message', payload: { n: 1 }, senderOrg: ORG.labArrow, ...e }, ctx.clock.now))

/** Reads a Server-Sent Events stream over real HTTP. */
function openStream(url: string, headers: Record<string, string>) {
  const events: Array<{ id: number; event: string; data: any }> = []
  let waiters: Array<() => void> = []
  const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } })
  const ready = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', (res) => {
      res.setEncoding('utf8')
      const read = sseBlocks((fields) => {
        if (fields.data) events.push({ id: Number(fields.id), event: fields.event!, data: JSON.parse(fields.data) })
        else if (fields.retry) events.push({ id: -1, event: 'retry', data: fields.retry })
      })
      res.on('data', (chunk: string) => {
        read(chunk)
        for (const w of waiters) w()
      })
      resolve(res)
    })
    req.on('error', reject)
  })
  const until = async (pred: () => boolean, ms = 5000) => {
    const end = Date.now() + ms
    while (!pred()) {
      if (Date.now() > end) throw new Error(`stream condition not met; got ${JSON.stringify(events.map((e) => e.id))}`)
      await new Promise<void>((r) => {
        waiters.push(r)
        setTimeout(r, 50)
      })
      waiters = []
    }
  }
  return { events, ready, until, close: () => req.destroy() }
}

async function listen(ctx: TestContext) {
  await ctx.app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`
}

t.test('outbox and pull feed', async (t) => {
  const ctx = await testApp(t)
  const { app, auth } = ctx
  const paris = auth('pharmacy', ORG.pharmacyParis)
  const feed = async (q: string, headers = paris) => (await app.inject({ method: 'GET', url: `/v1/feed${q}`, headers })).json()

  t.test('a rolled-back transaction publishes nothing', async (t) => {
    await t.rejects(
      app.db.transaction().execute(async (tx) => {
        await publish(tx, { type: 'test.rolled-back', payload: {}, audience: { orgs: [ORG.pharmacyParis] } })
        throw new Error('business rule failed')
      }),
    )
    await app.hub.runSequencer()
    t.same((await feed('')).items, [])
    t.equal(Number((await app.db.selectFrom('events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n), 0)
  })

  t.test('committed events come in order, after a cursor, with a page limit', async (t) => {
    for (let n = 1; n <= 5; n++) await send(ctx, { payload: { n }, audience: { orgs: [ORG.pharmacyParis] } })
    await app.hub.runSequencer()
    const all = await feed('?after=0')
    t.same(all.items.map((i: any) => i.payload.n), [1, 2, 3, 4, 5])
    const positions = all.items.map((i: any) => i.pos)
    t.same([...positions].sort((a, b) => a - b), positions, 'positions increase')
    const page = await feed(`?after=${positions[1]}&limit=2`)
    t.same(page.items.map((i: any) => i.payload.n), [3, 4])
    t.equal(page.nextAfter, positions[3])
    const rest = await feed(`?after=${page.nextAfter}`)
    t.same(rest.items.map((i: any) => i.payload.n), [5])
    const none = await feed(`?after=${rest.nextAfter}`)
    t.same(none, { items: [], nextAfter: rest.nextAfter })
    const rows = await app.db.selectFrom('event_deliveries').select(['delivered_via', 'delivered_at']).where('org_id', '=', ORG.pharmacyParis).execute()
    t.ok(rows.every((r) => r.delivered_via === 'pull' && r.delivered_at), 'pulled events are recorded as delivered')
  })

  t.test('long-poll returns as soon as something arrives', async (t) => {
    const before = await feed('')
    const started = Date.now()
    const pending = app.inject({ method: 'GET', url: `/v1/feed?after=${before.nextAfter}&wait=20`, headers: paris })
    await new Promise((r) => setTimeout(r, 200))
    await send(ctx, { payload: { n: 'late' }, audience: { orgs: [ORG.pharmacyParis] } })
    const res = (await pending).json()
    t.same(res.items.map((i: any) => i.payload.n), ['late'])
    t.ok(Date.now() - started < 10_000, 'did not wait for the timeout')
  })

  t.test('audiences: roles, departments (overseas), regions, explicit lists; inactive organisations excluded', async (t) => {
    const overseas = await send(ctx, { audience: { roles: ['pharmacy'], departments: ['971', '972', '973', '974', '976'] } })
    const recipients = async (id: string) =>
      (await app.db.selectFrom('event_deliveries').select('org_id').where('event_id', '=', id).orderBy('org_id').execute()).map((r) => r.org_id)
    t.same(await recipients(overseas.id), [ORG.pharmacyGuadeloupe, '974100060'])
    const corsica = await send(ctx, { audience: { roles: ['pharmacy', 'hospital'], regions: ['94'] } })
    t.same(await recipients(corsica.id), [ORG.pharmacyAjaccio])
    const chain = await send(ctx, { audience: { roles: ['wholesaler', 'hospital'], orgs: [ORG.pharmacyLyon] } })
    t.same(await recipients(chain.id), [ORG.pharmacyLyon, ORG.hospital, ORG.wholesaler].sort())
    await app.db.updateTable('organisations').set({ active: false }).where('id', '=', ORG.pharmacyGuadeloupe).execute()
    const again = await send(ctx, { audience: { roles: ['pharmacy'], departments: ['971'] } })
    t.same(await recipients(again.id), [])
    await app.db.updateTable('organisations').set({ active: true }).where('id', '=', ORG.pharmacyGuadeloupe).execute()
    await t.rejects(send(ctx, { audience: {} }), /recipients/)
  })

  t.test('an organisation never sees another’s events, coverage or recipients', async (t) => {
    const secret = await send(ctx, { payload: { secret: 'for Lyon only' }, audience: { orgs: [ORG.pharmacyLyon] } })
    await app.hub.runSequencer()
    const parisFeed = await feed('?after=0&limit=500')
    t.notOk(parisFeed.items.some((i: any) => i.id === secret.id))
    const lyonFeed = await feed('?after=0&limit=500', auth('pharmacy', ORG.pharmacyLyon))
    t.ok(lyonFeed.items.some((i: any) => i.id === secret.id))
    const read = await app.inject({ method: 'POST', url: '/v1/feed/read', headers: paris, payload: { eventIds: [secret.id] } })
    t.same(read.json(), { read: [], unknown: [secret.id] })
    for (const [role, org] of [['pharmacy', ORG.pharmacyLyon], ['lab', ORG.labBiogaran], ['prescriber', ORG.prescriber]] as const) {
      const cov = await app.inject({ method: 'GET', url: `/v1/events/${secret.id}/coverage`, headers: auth(role, org) })
      t.equal(cov.statusCode, 404, `${role} cannot see coverage`)
      const rec = await app.inject({ method: 'GET', url: `/v1/events/${secret.id}/recipients`, headers: auth(role, org) })
      t.equal(rec.statusCode, 404, `${role} cannot list recipients`)
    }
    const sent = await app.inject({ method: 'GET', url: '/v1/events/sent', headers: auth('lab', ORG.labBiogaran) })
    t.same(sent.json().items, [])
  })

  t.test('delivery records and coverage by category and department', async (t) => {
    const e = await send(ctx, { type: 'test.recall', audience: { roles: ['pharmacy', 'wholesaler'] } })
    await app.hub.runSequencer()
    await feed('?after=0&limit=500') // Paris pulls: delivered
    await app.inject({ method: 'POST', url: '/v1/feed/read', headers: auth('pharmacy', ORG.pharmacyAjaccio), payload: { eventIds: [e.id] } })
    await app.db.transaction().execute((tx) => acknowledge(tx, ORG.pharmacyLyon, e.id, { quarantined: 12 }, ctx.clock.now))
    const cov = (await app.inject({ method: 'GET', url: `/v1/events/${e.id}/coverage`, headers: auth('lab', ORG.labArrow) })).json()
    t.match(cov, { eventId: e.id, type: 'test.recall', recipients: 7, delivered: 3, read: 2, acknowledged: 1 })
    t.match(cov.byRole.find((r: any) => r.role === 'wholesaler'), { recipients: 1, delivered: 0 })
    t.match(cov.byDepartment.find((r: any) => r.department === '2A'), { region: '94', recipients: 1, read: 1 })
    const asAnsm = await app.inject({ method: 'GET', url: `/v1/events/${e.id}/coverage`, headers: auth('ansm', ORG.ansm) })
    t.equal(asAnsm.statusCode, 200)
    const notReached = (await app.inject({ method: 'GET', url: `/v1/events/${e.id}/recipients?status=undelivered`, headers: auth('lab', ORG.labArrow) })).json()
    t.same(notReached.items.map((r: any) => r.orgId).sort(), ['130100030', '971100050', '974100060', ORG.wholesaler].sort())
    const acked = (await app.inject({ method: 'GET', url: `/v1/events/${e.id}/recipients?role=pharmacy&limit=2`, headers: auth('lab', ORG.labArrow) })).json()
    t.equal(acked.items.length, 2)
    t.ok(acked.nextCursor)
    const lyon = (await feed('?after=0&limit=500', auth('pharmacy', ORG.pharmacyLyon))).items.find((i: any) => i.id === e.id)
    t.same(lyon.ack, { quarantined: 12 }, 'the recipient sees its acknowledgement')
    t.ok(lyon.readAt)
    const sent = (await app.inject({ method: 'GET', url: '/v1/events/sent?type=test.recall', headers: auth('lab', ORG.labArrow) })).json()
    t.match(sent.items, [{ id: e.id, recipients: 7 }])
  })

  t.test('bad input', async (t) => {
    const bad = await app.inject({ method: 'GET', url: '/v1/feed?after=-1&wait=999', headers: paris })
    t.equal(bad.statusCode, 400)
    t.same(bad.json().errors.map((e: any) => e.field).sort(), ['querystring.after', 'querystring.wait'])
    const badRead = await app.inject({ method: 'POST', url: '/v1/feed/read', headers: paris, payload: { eventIds: ['nope'] } })
    t.equal(badRead.statusCode, 400)
    t.equal((await app.inject({ method: 'GET', url: '/v1/feed' })).statusCode, 401)
  })
})

t.test('concurrent writers never make the cursor skip an event', async (t) => {
  const ctx = await testApp(t)
  const { app, auth } = ctx
  const headers = auth('pharmacy', ORG.pharmacyParis)
  if (ctx.database.kind === 'postgres') {
    // A transaction that started first but commits last must still be seen after the ones that committed before it.
    let commitSlow!: () => void
    const slowStarted = new Promise<void>((resolve) => {
      void app.db.transaction().execute(async (tx) => {
        await publish(tx, { type: 'test.slow', payload: { who: 'slow' }, audience: { orgs: [ORG.pharmacyParis] } })
        resolve()
        await new Promise<void>((r) => (commitSlow = r))
      })
    })
    await slowStarted
    await send(ctx, { payload: { who: 'fast' }, audience: { orgs: [ORG.pharmacyParis] } })
    await app.hub.runSequencer()
    const first = (await app.inject({ method: 'GET', url: '/v1/feed?after=0', headers })).json()
    t.same(first.items.map((i: any) => i.payload.who), ['fast'])
    commitSlow()
    await new Promise((r) => setTimeout(r, 100))
    await app.hub.runSequencer()
    const next = (await app.inject({ method: 'GET', url: `/v1/feed?after=${first.nextAfter}`, headers })).json()
    t.same(next.items.map((i: any) => i.payload.who), ['slow'], 'the late commit comes after, not skipped')
  }
  // Many writers and a reader polling meanwhile: every event exactly once, in increasing positions.
  const seen: number[] = []
  const positions: number[] = []
  let after = 0
  let writing = true
  const reader = (async () => {
    while (writing || positions.length < 60 + (ctx.database.kind === 'postgres' ? 2 : 0)) {
      const page = (await app.inject({ method: 'GET', url: `/v1/feed?after=${after}&limit=7`, headers })).json()
      for (const i of page.items) {
        positions.push(i.pos)
        if (typeof i.payload.k === 'number') seen.push(i.payload.k)
      }
      after = page.nextAfter
      if (!page.items.length) await new Promise((r) => setTimeout(r, 10))
    }
  })()
  await Promise.all(
    Array.from({ length: 60 }, async (_, k) => {
      await new Promise((r) => setTimeout(r, Math.random() * 50))
      await app.db.transaction().execute(async (tx) => {
        await publish(tx, { type: 'test.concurrent', payload: { k }, audience: { orgs: [ORG.pharmacyParis] } })
        await new Promise((r) => setTimeout(r, Math.random() * 20))
      })
      void app.hub.runSequencer()
    }),
  )
  writing = false
  await app.hub.runSequencer()
  await Promise.race([reader, new Promise((_, reject) => setTimeout(() => reject(new Error('reader did not see every event')), 15_000))])
  t.same([...seen].sort((a, b) => a - b), Array.from({ length: 60 }, (_, k) => k), 'each event exactly once')
  t.ok(positions.every((p, i) => i === 0 || p > positions[i - 1]!), 'positions strictly increase')
})

t.test('push stream (Server-Sent Events)', async (t) => {
  const ctx = await testApp(t, { env: { STREAM_STALL_MS: '1000' } })
  const base = await listen(ctx)
  const headers = ctx.auth('pharmacy', ORG.pharmacyParis)

  t.test('resumes from Last-Event-ID without loss or duplicate', async (t) => {
    await send(ctx, { payload: { n: 1 }, audience: { orgs: [ORG.pharmacyParis] } })
    const s1 = openStream(`${base}/v1/feed/stream`, headers)
    const res = await s1.ready
    t.match(res.headers['content-type'], /text\/event-stream/)
    await s1.until(() => s1.events.some((e) => e.data?.payload?.n === 1))
    t.equal(s1.events[0]!.event, 'retry', 'a retry hint comes first')
    await send(ctx, { payload: { n: 2 }, audience: { orgs: [ORG.pharmacyParis] } })
    await s1.until(() => s1.events.some((e) => e.data?.payload?.n === 2))
    const last = s1.events.at(-1)!.id
    s1.close()
    await send(ctx, { payload: { n: 3 }, audience: { orgs: [ORG.pharmacyParis] } })
    await send(ctx, { payload: { n: 4 }, audience: { orgs: [ORG.pharmacyParis] } })
    const s2 = openStream(`${base}/v1/feed/stream`, { ...headers, 'last-event-id': String(last) })
    await s2.until(() => s2.events.some((e) => e.data?.payload?.n === 4))
    await send(ctx, { payload: { n: 5 }, audience: { orgs: [ORG.pharmacyParis] } })
    await s2.until(() => s2.events.some((e) => e.data?.payload?.n === 5))
    t.same(s2.events.filter((e) => e.id > 0).map((e) => e.data.payload.n), [3, 4, 5], 'exactly what was missed, then live')
    t.equal(s2.events.find((e) => e.data?.payload?.n === 5)!.event, 'test.message')
    s2.close()
    await new Promise((r) => setTimeout(r, 300))
    const rows = await ctx.app.db.selectFrom('event_deliveries').select(['delivered_via']).where('org_id', '=', ORG.pharmacyParis).execute()
    t.ok(rows.every((r) => r.delivered_via === 'stream'), 'streamed events are recorded as delivered')
  })

  t.test('a stream only carries its own organisation’s events', async (t) => {
    const lyon = openStream(`${base}/v1/feed/stream`, ctx.auth('pharmacy', ORG.pharmacyLyon))
    await lyon.ready
    await send(ctx, { payload: { n: 'paris-only' }, audience: { orgs: [ORG.pharmacyParis] } })
    await send(ctx, { payload: { n: 'lyon' }, audience: { orgs: [ORG.pharmacyLyon] } })
    await lyon.until(() => lyon.events.some((e) => e.data?.payload?.n === 'lyon'))
    t.notOk(lyon.events.some((e) => e.data?.payload?.n === 'paris-only'))
    lyon.close()
    const noToken = await fetch(`${base}/v1/feed/stream`)
    t.equal(noToken.status, 401)
  })

  t.test('a slow stream is dropped and does not delay a fast one', async (t) => {
    const fast = openStream(`${base}/v1/feed/stream`, ctx.auth('pharmacy', ORG.pharmacyAjaccio))
    await fast.ready
    // The slow client connects and never reads.
    const slowReq = http.get(`${base}/v1/feed/stream`, { headers: ctx.auth('pharmacy', ORG.pharmacyLyon) })
    const slowRes = await new Promise<http.IncomingMessage>((r) => slowReq.on('response', r))
    slowRes.pause()
    slowReq.on('error', () => {})
    let slowClosed = false
    slowReq.socket!.on('close', () => (slowClosed = true))
    slowRes.on('error', () => {})
    await new Promise((r) => setTimeout(r, 200))
    const big = 'x'.repeat(200_000)
    for (let i = 0; i < 40; i++) await send(ctx, { payload: { i, big }, audience: { orgs: [ORG.pharmacyAjaccio, ORG.pharmacyLyon] } })
    await fast.until(() => fast.events.filter((e) => e.id > 0).length === 40, 20_000)
    t.pass('the fast client got all 40 events')
    const start = Date.now()
    while (ctx.app.hub.connections > 1 && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 50))
    t.equal(ctx.app.hub.connections, 1, 'the slow one was dropped (it resumes with Last-Event-ID)')
    // Reading now, the slow client finds its stream ended by the server.
    slowRes.resume()
    for (let i = 0; i < 100 && !slowClosed; i++) await new Promise((r) => setTimeout(r, 50))
    t.ok(slowClosed, 'its connection was closed by the server')
    fast.close()
    slowReq.destroy()
  })
})

t.test('two instances on one database both deliver to their own streams', { skip: !process.env.DATABASE_URL && 'needs PostgreSQL (LISTEN/NOTIFY across processes)' }, async (t) => {
  const a = await testApp(t)
  const second = await createDatabase({ databaseUrl: a.database.connectionString!, poolMax: 5 })
  const b = await buildApp({ config: a.config, database: second, background: 'manual-jobs' })
  await b.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => {
    await b.close()
    await second.close()
  })
  const baseA = await listen(a)
  const baseB = `http://127.0.0.1:${(b.server.address() as AddressInfo).port}`
  const onA = openStream(`${baseA}/v1/feed/stream`, a.auth('pharmacy', ORG.pharmacyParis))
  const onB = openStream(`${baseB}/v1/feed/stream`, a.auth('pharmacy', ORG.pharmacyLyon))
  await Promise.all([onA.ready, onB.ready])
  // Published through instance A's database connection; B learns of it by NOTIFY only.
  await a.app.db.transaction().execute((tx) => publish(tx, { type: 'test.broadcast', payload: { hello: 'all' }, audience: { roles: ['pharmacy'] } }))
  await onA.until(() => onA.events.some((e) => e.event === 'test.broadcast'))
  await onB.until(() => onB.events.some((e) => e.event === 'test.broadcast'))
  t.pass('both instances delivered')
  onA.close()
  onB.close()
  await b.close() // before instance A's teardown drops the database
  await second.close()
})

// The sequencer runs dozens of times a second in a storm of alerts, holding its lock: four round trips whatever it
// finds (BEGIN, the lock, one statement, COMMIT), on a database without an instance running beside it.
t.test('the sequencer: four statements a run, one notification when it assigned positions, none otherwise', async (t) => {
  const handle = await testDatabase(t)
  await seedDemoOrganisations(handle.db)
  const notified: string[] = []
  if (handle.connectionString) {
    const listener = new pg.Client({ connectionString: handle.connectionString })
    await listener.connect()
    t.teardown(() => listener.end())
    listener.on('notification', (n) => n.channel === CHANNEL_SEQUENCED && notified.push(n.payload ?? ''))
    await listener.query(`listen ${CHANNEL_SEQUENCED}`)
  } else {
    await handle.pglite!.listen(CHANNEL_SEQUENCED, (payload) => notified.push(payload))
  }
  const run = async () => {
    const before = handle.statements().general
    const r = await sequence(handle.db)
    return { ...r, statements: handle.statements().general - before }
  }
  const idle = await run()
  t.match(idle, { assigned: 0, lastPos: 0, statements: 4 }, 'nothing pending: four statements')
  await inTransaction(handle.db, (tx) => publish(tx, { type: 'shortage.signal_lapsed', payload: { signalId: randomUUID(), cip13: '3400936128149' }, audience: { orgs: [ORG.pharmacyParis, ORG.pharmacyLyon] }, senderOrg: null }))
  const busy = await run()
  t.match(busy, { assigned: 2, lastPos: 2, statements: 4 }, 'two deliveries: their positions in the same four statements')
  const positions = await handle.db.selectFrom('event_deliveries').select('pos').orderBy('pos').execute()
  t.same(positions.map((p) => Number(p.pos)), [1, 2], 'the first positions, without a gap')
  t.equal(Number((await handle.db.selectFrom('feed_sequence').select('last_pos').executeTakeFirstOrThrow()).last_pos), 2, 'the last position moved')
  await new Promise((r) => setTimeout(r, 200))
  t.same(notified, ['2'], 'the instances told the last position, once')
  await run()
  await new Promise((r) => setTimeout(r, 200))
  t.same(notified, ['2'], 'a run that assigns nothing notifies nothing')
})

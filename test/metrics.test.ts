import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { sql } from 'kysely'
import t from 'tap'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { publish } from '../src/platform/events/publish.ts'
import { enqueue } from '../src/platform/jobs.ts'
import { listenMetrics, metricsExposure } from '../src/platform/metrics.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

type Teardown = { teardown(fn: () => unknown): void }

/** Parses the Prometheus text format into samples. */
function parse(text: string) {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

async function scrape(ctx: TestContext) {
  const res = await ctx.app.inject({ method: 'GET', url: '/metrics' })
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}: ${res.body}`)
  const samples = parse(res.body)
  /** The value of one sample (labels must match exactly those given); undefined when absent. */
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
  return { res, samples, value, text: res.body }
}

/** A webhook receiver on 127.0.0.1 answering each path with a given status. */
async function receiver(t: Teardown, statuses: Record<string, number>) {
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(statuses[req.url ?? ''] ?? 204).end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  return (path: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`
}

/** An SSE client over real HTTP that counts the events it receives. */
function openStream(url: string, headers: Record<string, string>) {
  let raw = ''
  const ids: number[] = []
  const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } })
  const ready = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        raw += c
        for (const m of raw.matchAll(/^id: (\d+)$/gm)) if (!ids.includes(Number(m[1]))) ids.push(Number(m[1]))
      })
      resolve()
    })
    req.on('error', reject)
  })
  return { ids, ready, close: () => req.destroy() }
}

async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const AMOX = '3400936128149' // Biogaran

t.test('a scripted scenario moves each figure by what it implies', async (t) => {
  const ctx = await testApp(t, { env: { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_DISABLE_AFTER: '5', SERIALIZATION_RATE_PER_MINUTE: '2' } })
  const { app, auth, clock, database } = ctx
  await importBdpmDirectory(app.db, DEMO_BDPM_DIR, SYSTEM)
  clock.now = new Date('2026-11-22T10:00:00Z')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const positions = async () => Number((await app.db.selectFrom('event_deliveries').select((eb) => eb.fn.countAll().as('n')).where('pos', 'is not', null).executeTakeFirstOrThrow()).n)
  const events = async () => Number((await app.db.selectFrom('events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)

  // The import changed the referential's facts: the registry reloads on the notification; the figure is read once
  // it holds the generation the import made.
  await app.blockRegistry!.reload()
  const before = await scrape(ctx)
  t.equal(before.res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  const generation0 = before.value('dp_dispensation_blocks_generation')
  t.equal(generation0, app.blockRegistry!.generation, 'the blocked-batch generation this instance holds')
  t.equal(before.value('dp_feed_open_streams'), 0)
  const positions0 = before.value('dp_feed_positions_assigned_total') ?? 0
  const dbPositions0 = await positions()
  const dbEvents0 = await events()
  const lagCount0 = before.value('dp_feed_sequencing_lag_seconds_count') ?? 0
  t.ok(before.value('process_cpu_seconds_total') !== undefined, 'process figures too')

  // The hospital takes webhooks (its receiver answers 204); the Paris pharmacy has an endpoint that answers 410
  // (disabled at once) and an open stream; the wholesaler has neither and is faxed.
  const url = await receiver(t, { '/gone': 410 })
  t.equal((await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth('hospital', ORG.hospital), payload: { url: url('/ok') } })).statusCode, 201)
  t.equal((await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth('pharmacy', ORG.pharmacyParis), payload: { url: url('/gone') } })).statusCode, 201)
  const stream = openStream(`${base}/v1/feed/stream`, auth('pharmacy', ORG.pharmacyParis))
  await stream.ready
  await until('the stream to be open', async () => (await scrape(ctx)).value('dp_feed_open_streams') === 1)

  // A lab drafts a recall that blocks dispensation; ANSM approves it: broadcast to Paris, Ajaccio, the hospital
  // and the wholesaler, batches blocked (a new generation), faxes and webhooks queued.
  const lab = auth('lab', ORG.labBiogaran)
  const draft = await app.inject({
    method: 'POST',
    url: '/v1/recalls',
    headers: lab,
    payload: {
      title: 'Rappel de lots d’Amoxicilline Biogaran 1 g',
      reason: 'Défaut d’étanchéité de l’opercule',
      message: 'Mettez en quarantaine les boîtes des lots concernés.',
      action: 'quarantine_return',
      recipients: { categories: ['pharmacy', 'wholesaler', 'hospital'], regions: ['11'], departments: ['2A'] },
      contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 01' }],
      batches: [{ cip13: AMOX, batch: 'L2411A', expiry: '2027-06-30' }],
      blockDispensation: true,
    },
  })
  t.equal(draft.statusCode, 201, draft.body)
  const id = draft.json().id
  t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: lab })).statusCode, 200)
  const approved = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/approve`, headers: auth('ansm', ORG.ansm), payload: { comment: 'Validé.' } })
  t.equal(approved.statusCode, 200, approved.body)
  // One more event, published 3 s before the clock (so its lag is exactly 3 s), to Lyon.
  await app.db.transaction().execute((tx) => publish(tx, { type: 'test.late', payload: {}, audience: { orgs: [ORG.pharmacyLyon] } }, new Date(clock.now.getTime() - 3000)))
  await app.hub.runSequencer()
  await until('the broadcast on the stream', () => stream.ids.length === 1)

  const afterBroadcast = await scrape(ctx)
  t.equal(afterBroadcast.value('dp_feed_positions_assigned_total'), positions0 + (await positions()) - dbPositions0, 'positions assigned: one per recipient of each event')
  const sequencedEvents = (await events()) - dbEvents0
  t.equal(afterBroadcast.value('dp_feed_sequencing_lag_seconds_count'), lagCount0 + sequencedEvents, 'one lag per event sequenced')
  t.equal(afterBroadcast.value('dp_feed_sequencing_lag_seconds_bucket', { le: '2' }), (before.value('dp_feed_sequencing_lag_seconds_bucket', { le: '2' }) ?? 0) + sequencedEvents - 1, 'all but the late one within 2 s')
  t.equal(afterBroadcast.value('dp_feed_sequencing_lag_seconds_sum'), (before.value('dp_feed_sequencing_lag_seconds_sum') ?? 0) + 3, 'the late one waited 3 s (by the service clock)')
  t.equal(afterBroadcast.value('dp_events_delivered_total', { channel: 'stream' }), 1, 'the broadcast went down the Paris stream')
  t.equal(afterBroadcast.value('dp_feed_unsequenced_deliveries'), 0)
  t.equal(afterBroadcast.value('dp_feed_unsequenced_oldest_age_seconds'), 0)
  t.ok(app.blockRegistry!.generation > generation0!, 'the recall blocked batches: a new generation')
  t.equal(afterBroadcast.value('dp_dispensation_blocks_generation'), app.blockRegistry!.generation)
  t.equal(afterBroadcast.value('dp_dispensation_blocks_generation_age_seconds'), 0)
  t.equal(afterBroadcast.value('http_request_duration_seconds_count', { method: 'POST', route: '/v1/recalls/:id/approve', status_code: '200' }), 1, 'latency per route pattern')
  t.notMatch(afterBroadcast.text, id, 'never a raw URL')

  // The queue before the jobs run: two webhook deliveries (hospital, Paris) and one fax (the wholesaler; the
  // hospital has a webhook), due since the broadcast; the clock moves 30 s.
  clock.advance(30_000)
  const queued = await scrape(ctx)
  t.equal(queued.value('dp_jobs_pending', { queue: 'webhook.deliver', state: 'due' }), 2, 'webhook deliveries due')
  t.equal(queued.value('dp_jobs_pending', { queue: 'fax.send', state: 'due' }), 1, 'faxes due')
  t.equal(queued.value('dp_jobs_oldest_due_age_seconds', { queue: 'webhook.deliver' }), 30)
  t.equal(queued.value('dp_jobs_oldest_due_age_seconds', { queue: 'fax.send' }), 30)
  const reminders = await app.db.selectFrom('jobs').select((eb) => eb.fn.countAll().as('n')).where('state', '=', 'pending').where('run_at', '>', clock.now).where('queue', '=', 'recall.reminder').executeTakeFirst()
  t.equal(queued.value('dp_jobs_pending', { queue: 'recall.reminder', state: 'scheduled' }) ?? 0, Number(reminders?.n ?? 0), 'scheduled jobs counted apart')
  t.equal(queued.value('dp_dispensation_blocks_generation_age_seconds'), 30, 'the generation has been held 30 s')

  await app.jobs.runDue()
  await app.hub.runSequencer() // the endpoint_disabled event
  const ran = await scrape(ctx)
  t.equal(ran.value('dp_jobs_pending', { queue: 'webhook.deliver', state: 'due' }), 0)
  t.equal(ran.value('dp_jobs_pending', { queue: 'fax.send', state: 'due' }), 0)
  t.equal(ran.value('dp_jobs_oldest_due_age_seconds', { queue: 'fax.send' }), 0)
  t.equal(ran.value('dp_events_delivered_total', { channel: 'webhook' }), 1, 'the hospital got it by webhook')
  t.equal(ran.value('dp_events_delivered_total', { channel: 'fax' }), 1, 'the wholesaler by fax')
  t.equal(ran.value('dp_webhook_attempts_total', { outcome: 'success' }), 1)
  t.equal(ran.value('dp_webhook_attempts_total', { outcome: 'failure' }), 1, 'the 410')
  t.equal(ran.value('dp_webhook_endpoints_disabled_total', { reason: 'gone' }), 1)
  t.equal(ran.value('dp_webhook_endpoints_disabled'), 1)
  t.equal(ran.value('dp_jobs_finished_total', { queue: 'fax.send', outcome: 'done' }), 1)
  t.equal(ran.value('dp_jobs_finished_total', { queue: 'webhook.deliver', outcome: 'done' }), 2, 'the success and the 410 (no retry after 410)')

  // Pull and long-poll: the wholesaler reads its feed; Lyon long-polls and gets the late event.
  const pulled = await app.inject({ method: 'GET', url: '/v1/feed?after=0', headers: auth('wholesaler', ORG.wholesaler) })
  const pulledItems = pulled.json().items.length
  t.ok(pulledItems >= 1)
  const polled = await app.inject({ method: 'GET', url: '/v1/feed?after=0&wait=5', headers: auth('pharmacy', ORG.pharmacyLyon) })
  t.equal(polled.json().items.length, 1)
  // A long-poll that waits: seen while it waits.
  const waiting = app.inject({ method: 'GET', url: `/v1/feed?after=${polled.json().nextAfter}&wait=30`, headers: auth('pharmacy', ORG.pharmacyLyon) })
  await until('the long-poll to wait', async () => (await scrape(ctx)).value('dp_feed_waiting_long_polls') === 1)
  await app.db.transaction().execute((tx) => publish(tx, { type: 'test.wake', payload: {}, audience: { orgs: [ORG.pharmacyLyon] } }, clock.now))
  await app.hub.runSequencer()
  t.equal((await waiting).json().items.length, 1)
  const fed = await scrape(ctx)
  t.equal(fed.value('dp_events_delivered_total', { channel: 'pull' }), pulledItems)
  t.equal(fed.value('dp_events_delivered_total', { channel: 'long_poll' }), 2)
  t.equal(fed.value('dp_feed_waiting_long_polls'), 0)

  // Idempotency replay and rate-limit refusal.
  const read = () => app.inject({ method: 'POST', url: '/v1/feed/read', headers: { ...auth('pharmacy', ORG.pharmacyLyon), 'idempotency-key': 'metrics-test-0001' }, payload: { eventIds: [polled.json().items[0].id] } })
  t.equal((await read()).statusCode, 200)
  t.equal((await read()).headers['idempotent-replayed'], 'true')
  const verify = () =>
    app.inject({ method: 'POST', url: '/v1/serialization/packs/verify', headers: auth('pharmacy', ORG.pharmacyLyon), payload: { dataMatrix: `]d2010340094949729421R1\x1d10LOT-R\x1d17301231` } })
  const statuses = [await verify(), await verify(), await verify()].map((r) => r.statusCode)
  t.same(statuses, [200, 200, 429])
  const guarded = await scrape(ctx)
  t.equal(guarded.value('dp_idempotency_replays_total', { route: '/v1/feed/read' }), 1)
  t.equal(guarded.value('dp_rate_limit_refusals_total', { route: '/v1/serialization/packs/verify' }), 1)
  t.equal(guarded.value('http_request_duration_seconds_count', { method: 'POST', route: '/v1/serialization/packs/verify', status_code: '429' }), 1)

  // A job running on this instance, then finished.
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  app.jobs.register('test.hold', () => held)
  await enqueue(app.db, 'test.hold', {}, { runAt: clock.now })
  const running = app.jobs.runDue()
  await until('the job to run', async () => (await scrape(ctx)).value('dp_jobs_running', { queue: 'test.hold' }) === 1)
  release()
  await running
  const done = await scrape(ctx)
  t.equal(done.value('dp_jobs_running', { queue: 'test.hold' }), undefined, 'no longer running')
  t.equal(done.value('dp_jobs_finished_total', { queue: 'test.hold', outcome: 'done' }), 1)

  // The stream closes.
  stream.close()
  await until('the stream to close', async () => (await scrape(ctx)).value('dp_feed_open_streams') === 0)

  // Pool usage: connections held by the test show as in use (the embedded database is a pool of one).
  if (database.pool) {
    // The instance's own background work (block registry lease, feed dispatch) borrows a connection now and then:
    // a figure is read from a scrape taken while that work holds none (a few tries; the last one is asserted).
    const inUse = async (expected: number) => {
      let last: Awaited<ReturnType<typeof scrape>> | undefined
      for (let i = 0; i < 40; i++) {
        last = await scrape(ctx)
        if (last.value('dp_db_pool_connections', { state: 'in_use' }) === expected) break
        await new Promise((r) => setTimeout(r, 25))
      }
      return last!
    }
    const a = await database.pool.connect()
    const b = await database.pool.connect()
    const held2 = await inUse(2)
    t.equal(held2.value('dp_db_pool_connections', { state: 'in_use' }), 2)
    t.equal(held2.value('dp_db_pool_connections', { state: 'max' }), 10)
    a.release()
    b.release()
    t.equal((await inUse(0)).value('dp_db_pool_connections', { state: 'in_use' }), 0)
  } else {
    const idle = await scrape(ctx)
    t.same([idle.value('dp_db_pool_connections', { state: 'in_use' }), idle.value('dp_db_pool_connections', { state: 'max' })], [0, 1])
    let unblock!: () => void
    const tx = app.db.transaction().execute(() => new Promise<void>((r) => (unblock = r)))
    await until('the transaction to hold the connection', () => database.usage().idle === 0)
    const queuedQuery = app.db.selectFrom('organisations').select('id').limit(1).execute()
    const busy = await scrape(ctx) // its own database figures wait, then time out (dp_database_up 0)
    t.equal(busy.value('dp_db_pool_connections', { state: 'in_use' }), 1)
    // The queued query waits; background work of the instance (lease renewal, feed dispatch) may queue beside it.
    t.ok((busy.value('dp_db_pool_connections', { state: 'waiting' }) ?? 0) >= 1, 'the queued query shows as waiting')
    t.equal(busy.value('dp_database_up'), 0, 'figures that could not be read are left out')
    t.equal(busy.value('dp_jobs_pending', { queue: 'fax.send', state: 'due' }), undefined)
    unblock()
    await tx
    await queuedQuery
    t.equal((await scrape(ctx)).value('dp_database_up'), 1)
  }
})

t.test('/metrics is protected by configuration and stays out of the contract', async (t) => {
  t.test('open on the main port in development; hidden from the OpenAPI document', async (t) => {
    const { app } = await testApp(t)
    t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200)
    t.notOk(Object.keys((app.swagger() as { paths: Record<string, unknown> }).paths).includes('/metrics'))
  })
  t.test('behind a bearer token when METRICS_TOKEN is set', async (t) => {
    const { app } = await testApp(t, { env: { METRICS_TOKEN: 'scrape-token-0123456789' } })
    const none = await app.inject({ method: 'GET', url: '/metrics' })
    t.equal(none.statusCode, 401)
    t.equal(none.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong-token-0123456789' } })).statusCode, 401)
    const ok = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer scrape-token-0123456789' } })
    t.equal(ok.statusCode, 200)
    t.match(ok.body, /# TYPE http_request_duration_seconds histogram/)
  })
  t.test('on METRICS_PORT only, when set: not on the main port', async (t) => {
    const { app, config } = await testApp(t, { env: { METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' } })
    t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
    const server = await listenMetrics(app, config)
    t.teardown(server.close)
    const res = await fetch(`${server.address}/metrics`)
    t.equal(res.status, 200)
    t.match(await res.text(), /dp_feed_positions_assigned_total/)
    t.equal((await fetch(`${server.address}/v1/products`)).status, 404, 'nothing else on that port')
  })
  t.test('off in production unless a token or a port is configured', async (t) => {
    t.equal(metricsExposure({ NODE_ENV: 'production', METRICS_TOKEN: undefined, METRICS_PORT: undefined }), 'off')
    t.equal(metricsExposure({ NODE_ENV: 'production', METRICS_TOKEN: 'scrape-token-0123456789', METRICS_PORT: undefined }), 'main')
    t.equal(metricsExposure({ NODE_ENV: 'production', METRICS_TOKEN: undefined, METRICS_PORT: 9464 }), 'separate')
    t.equal(metricsExposure({ NODE_ENV: 'development', METRICS_TOKEN: undefined, METRICS_PORT: undefined }), 'main')
  })
})

t.test('the statements sent to the database are counted, by pool, and exposed', async (t) => {
  const ctx = await testApp(t)
  // A handle of its own on the same kind of database: no background work of an instance sends anything on it.
  const handle = await createDatabase(ctx.database.connectionString ? { databaseUrl: ctx.database.connectionString, poolMax: 2 } : { pgliteDir: 'memory://' })
  t.teardown(() => handle.close())
  t.same(handle.statements(), { general: 0, counter: 0 }, 'nothing sent yet')
  await handle.db.transaction().execute(async (tx) => {
    await sql`select 1`.execute(tx)
    await sql`select 2`.execute(tx)
  })
  t.same(handle.statements(), { general: 4, counter: 0 }, 'a transaction: BEGIN, its two statements, COMMIT')
  await handle.prepared('test_statements_one', 'select $1::int as n', [1])
  if (handle.kind === 'postgres') t.same(handle.statements(), { general: 4, counter: 1 }, 'a prepared statement goes on the counter\'s pool')
  else t.same(handle.statements(), { general: 5, counter: 0 }, 'embedded: one connection, every statement counted as the general pool\'s')

  const before = ctx.database.statements()
  const scraped = await scrape(ctx)
  const after = ctx.database.statements()
  for (const pool of ['general', 'counter'] as const) {
    const value = scraped.value('dp_db_statements_total', { pool })
    t.ok(value !== undefined && value >= before[pool] && value <= after[pool], `dp_db_statements_total{pool="${pool}"} is the instance's count at the scrape (${before[pool]} ≤ ${value} ≤ ${after[pool]})`)
  }
})

import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { publish } from '../src/platform/events/publish.ts'
import type { Role } from '../src/platform/db/schema.ts'
import { MAX_ATTEMPTS, parseRetryAfter, RETRY_AFTER_CAP_MS, retryDelay, RETRY_SCHEDULE_MS, registerWebhookJobs } from '../src/platform/webhooks/deliver.ts'
import webhookRoutes from '../src/platform/webhooks/routes.ts'
import { isForbiddenAddress } from '../src/platform/webhooks/ssrf.ts'
import { ORG, testApp } from './helpers.ts'

// These tests exercise delivery with made-up payloads: the check of payloads against the event catalogue
// (platform/events/catalogue-check.ts) is off here; the services' tests keep it on.
process.env.EVENT_CATALOGUE_CHECK = 'off'

interface Teardown {
  teardown(fn: () => unknown): void
}

interface Received {
  path: string
  headers: Record<string, string>
  body: string
}
type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'hang'

/** A real HTTP receiver on 127.0.0.1: records every request; each path answers as told (204 by default). */
async function receiver(t: Teardown) {
  const requests: Received[] = []
  const answers = new Map<string, () => Answer>()
  const server = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (body += c))
    req.on('end', () => {
      const path = req.url ?? '/'
      requests.push({ path, headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), body })
      const answer = answers.get(path)?.() ?? { status: 204 }
      if (answer === 'hang') return
      res.writeHead(answer.status, answer.headers)
      res.end(answer.body ?? '')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  const port = (server.address() as AddressInfo).port
  return {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    at: (path: string) => requests.filter((r) => r.path === path),
    answer(path: string, fn: () => Answer) {
      answers.set(path, fn)
    },
  }
}

/** The app with the webhook routes and job, a receiver, and helpers. */
async function setup(t: Teardown, env: Record<string, string> = { WEBHOOK_ALLOW_PRIVATE: 'true' }) {
  // The hanging receiver fails after 2 s instead of 10.
  const ctx = await testApp(t, { env: { WEBHOOK_TIMEOUT_MS: '2000', ...env } })
  const { app, clock } = ctx
  const rx = await receiver(t)
  const emit = (org: string, type = 'recall.broadcast', payload: unknown = { reference: 'RAP-2026-0042' }) =>
    app.db.transaction().execute((tx) => publish(tx, { type, payload, audience: { orgs: [org] }, senderOrg: ORG.ansm }))
  /** Sequences what was committed (webhook jobs are stamped with the test clock), then runs the due jobs. */
  const flush = async () => {
    await app.hub.runSequencer()
    await app.jobs.runDue()
  }
  const as = (role: Role, org: string) => {
    const headers = ctx.auth(role, org)
    return {
      headers,
      create: (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/webhooks', headers, payload }),
      get: (id: string) => app.inject({ method: 'GET', url: `/v1/webhooks/${id}`, headers }),
      list: () => app.inject({ method: 'GET', url: '/v1/webhooks', headers }),
      patch: (id: string, payload: Record<string, unknown>) => app.inject({ method: 'PATCH', url: `/v1/webhooks/${id}`, headers, payload }),
      delete: (id: string) => app.inject({ method: 'DELETE', url: `/v1/webhooks/${id}`, headers }),
      rotate: (id: string) => app.inject({ method: 'POST', url: `/v1/webhooks/${id}/rotate-secret`, headers }),
      deliveries: (id: string, query = '') => app.inject({ method: 'GET', url: `/v1/webhooks/${id}/deliveries${query}`, headers }),
      replay: (id: string, deliveryId: string) => app.inject({ method: 'POST', url: `/v1/webhooks/${id}/deliveries/${deliveryId}/replay`, headers }),
      feed: () => app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=500', headers }),
      /** Creates an endpoint and returns its id and secret. */
      async endpoint(path: string, extra: Record<string, unknown> = {}) {
        const res = await this.create({ url: rx.url(path), ...extra })
        if (res.statusCode !== 201) throw new Error(`create failed: ${res.body}`)
        return res.json() as { id: string; secret: string }
      },
      /** The endpoint's deliveries, newest first. */
      async deliveryList(id: string) {
        const res = await this.deliveries(id)
        if (res.statusCode !== 200) throw new Error(`deliveries failed: ${res.body}`)
        return res.json().items as Array<Record<string, any>>
      },
    }
  }
  return { ...ctx, rx, emit, flush, as }
}

const verify = (secret: string, r: Pick<Received, 'body' | 'headers'>) => new Webhook(secret).verify(r.body, r.headers)

t.test('webhooks (development setting: private addresses allowed)', async (t) => {
  const { app, clock, rx, emit, flush, as } = await setup(t)

  // Each part starts at the real time: the library's verify() compares webhook-timestamp with it.
  t.beforeEach(() => {
    clock.now = new Date()
  })

  t.test('deliveries are signed per Standard Webhooks; tampering fails; the secret is shown once', async (t) => {
    const lab = as('lab', ORG.labArrow)
    const created = await lab.create({ url: rx.url('/sig'), description: 'LGO' })
    t.equal(created.statusCode, 201)
    const endpoint = created.json()
    t.match(endpoint, { url: rx.url('/sig'), description: 'LGO', eventTypes: [], active: true, failureStreak: 0, previousSecretExpiresAt: null })
    t.match(endpoint.secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/)
    t.ok(Buffer.from(endpoint.secret.slice(6), 'base64').length >= 24, 'at least 24 random bytes')
    t.equal(created.headers.location, `/v1/webhooks/${endpoint.id}`)

    const got = await lab.get(endpoint.id)
    t.equal(got.statusCode, 200)
    t.notOk('secret' in got.json(), 'GET does not show the secret')
    t.notMatch(got.body, endpoint.secret.slice(6, 30))
    const list = await lab.list()
    t.equal(list.json().items.length, 1)
    t.notMatch(list.body, /whsec_/)

    const { id: eventId } = await emit(ORG.labArrow, 'recall.broadcast', { reference: 'RAP-1', lots: ['B12345'] })
    await flush()
    const [req] = rx.at('/sig')
    t.ok(req, 'the receiver got the event')
    if (!req) return
    t.equal(req.headers['content-type'], 'application/json')
    t.match(req.headers['user-agent'], /PortailDP/)
    t.match(req.headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+={0,2}$/)
    t.match(req.headers['webhook-timestamp'], /^\d{10}$/)

    const body = verify(endpoint.secret, req) as Record<string, unknown>
    t.match(body, { id: eventId, type: 'recall.broadcast', sender: ORG.ansm, subject: null, payload: { reference: 'RAP-1', lots: ['B12345'] } })
    t.type(body.pos, 'number')
    t.same(Object.keys(body).sort(), ['createdAt', 'id', 'payload', 'pos', 'sender', 'subject', 'type'], 'the feed event minus readAt/ack')

    t.throws(() => verify(endpoint.secret, { ...req, body: req.body.replace('RAP-1', 'RAP-2') }), /signature/i, 'a tampered body fails')
    t.throws(() => verify(endpoint.secret, { ...req, body: `${req.body} ` }), /signature/i, 'an extra byte fails')
    const ts = req.headers['webhook-timestamp']!
    t.throws(() => verify(endpoint.secret, { ...req, headers: { ...req.headers, 'webhook-timestamp': String(Number(ts) - 1) } }), /signature/i, 'a tampered timestamp fails')
    t.throws(() => verify(endpoint.secret, { ...req, headers: { ...req.headers, 'webhook-id': crypto.randomUUID() } }), /signature/i, 'another id fails')
    const other = (await lab.create({ url: rx.url('/other') })).json()
    t.throws(() => verify(other.secret, req), /signature/i, 'another secret fails')
    await lab.delete(other.id)

    const [delivery] = await lab.deliveryList(endpoint.id)
    t.match(delivery, { eventId, eventType: 'recall.broadcast', status: 'succeeded', attempts: 1, lastStatusCode: 204, lastError: null, nextAttemptAt: null })
    t.ok(delivery?.succeededAt)
    t.equal(req.headers['webhook-id'], delivery?.id, 'webhook-id is the delivery id')
    const record = await app.db.selectFrom('event_deliveries').select(['delivered_at', 'delivered_via']).where('event_id', '=', eventId).where('org_id', '=', ORG.labArrow).executeTakeFirstOrThrow()
    t.equal(record.delivered_via, 'webhook', 'the event is recorded as delivered by webhook')
    t.ok(record.delivered_at)

    const audits = await app.db.selectFrom('audit_log').select(['action', 'actor_org']).where('object_type', '=', 'webhook_endpoint').where('object_id', '=', endpoint.id).execute()
    t.match(audits, [{ action: 'webhook.created', actor_org: ORG.labArrow }])
  })

  t.test('event types: only those listed, all when empty', async (t) => {
    const lab = as('lab', ORG.labBiogaran)
    const recalls = await lab.endpoint('/only-recalls', { eventTypes: ['recall.broadcast'] })
    await lab.endpoint('/all')
    await emit(ORG.labBiogaran, 'recall.broadcast')
    await emit(ORG.labBiogaran, 'shortage.automatic_response')
    await flush()
    t.same(rx.at('/only-recalls').map((r) => JSON.parse(r.body).type), ['recall.broadcast'])
    t.same(rx.at('/all').map((r) => JSON.parse(r.body).type).sort(), ['recall.broadcast', 'shortage.automatic_response'])

    const patched = await lab.patch(recalls.id, { eventTypes: ['shortage.automatic_response'] })
    t.equal(patched.statusCode, 200)
    t.same(patched.json().eventTypes, ['shortage.automatic_response'])
    await emit(ORG.labBiogaran, 'recall.broadcast')
    await emit(ORG.labBiogaran, 'shortage.automatic_response')
    await flush()
    t.same(rx.at('/only-recalls').map((r) => JSON.parse(r.body).type), ['recall.broadcast', 'shortage.automatic_response'])
    t.equal(rx.at('/all').length, 4)
    t.equal((await lab.deliveryList(recalls.id)).length, 2, 'no delivery record for filtered-out types')
  })

  t.test('retries back off over about a day, then the delivery fails', async (t) => {
    const lab = as('lab', ORG.labViatris)
    rx.answer('/down', () => ({ status: 500, body: 'database is down' }))
    const endpoint = await lab.endpoint('/down')
    await emit(ORG.labViatris)
    await flush()
    t.equal(rx.at('/down').length, 1, 'first attempt at once')
    const gaps: number[] = []
    for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
      const [d] = await lab.deliveryList(endpoint.id)
      t.match(d, { status: 'pending', attempts: attempt, lastStatusCode: 500, lastError: /HTTP 500.*database is down/ }, `after attempt ${attempt}`)
      const next = new Date(d!.nextAttemptAt).getTime()
      const gap = next - clock.now.getTime()
      const expected = RETRY_SCHEDULE_MS[attempt - 1]!
      t.ok(gap >= expected * 0.9 - 1 && gap <= expected * 1.1 + 1, `retry ${attempt} after ~${expected / 1000} s (got ${gap / 1000} s)`)
      gaps.push(gap)
      clock.now = new Date(next - 1000)
      await app.jobs.runDue()
      t.equal(rx.at('/down').length, attempt, 'not before its time')
      clock.now = new Date(next)
      await app.jobs.runDue()
      t.equal(rx.at('/down').length, attempt + 1, `attempt ${attempt + 1} sent`)
    }
    for (let i = 1; i < 6; i++) t.ok(gaps[i]! > gaps[i - 1]!, `backoff grows (${gaps[i - 1]} < ${gaps[i]})`)
    const total = gaps.reduce((a, b) => a + b, 0)
    t.ok(total > 22 * 3_600_000 && total < 32 * 3_600_000, `about a day in all (${(total / 3_600_000).toFixed(1)} h)`)

    const [d] = await lab.deliveryList(endpoint.id)
    t.match(d, { status: 'failed', attempts: MAX_ATTEMPTS, nextAttemptAt: null, lastStatusCode: 500 })
    clock.advance(48 * 3_600_000)
    await app.jobs.runDue()
    t.equal(rx.at('/down').length, MAX_ATTEMPTS, 'no attempt after the last')
    const sent = rx.at('/down')
    t.equal(new Set(sent.map((r) => r.headers['webhook-id'])).size, 1, 'the same webhook-id on every attempt')
    const stamps = sent.map((r) => Number(r.headers['webhook-timestamp']))
    t.ok(stamps.every((s, i) => i === 0 || s > stamps[i - 1]!), 'a fresh timestamp on every attempt')
    t.match((await lab.get(endpoint.id)).json(), { active: true, failureStreak: MAX_ATTEMPTS }, 'below the disabling streak: still active')
    const job = await app.db.selectFrom('jobs').select('state').where('singleton_key', '=', d!.id).executeTakeFirstOrThrow()
    t.equal(job.state, 'done')
    const failed = await lab.deliveries(endpoint.id, '?status=failed')
    t.equal(failed.json().items.length, 1)
    t.equal((await lab.deliveries(endpoint.id, '?status=succeeded')).json().items.length, 0)
  })

  t.test('Retry-After is honoured, in seconds or as an HTTP date', async (t) => {
    const lab = as('lab', ORG.labAccord)
    rx.answer('/busy', () => ({ status: 503, headers: { 'retry-after': '120' } }))
    const endpoint = await lab.endpoint('/busy')
    await emit(ORG.labAccord)
    await flush()
    let [d] = await lab.deliveryList(endpoint.id)
    t.equal(new Date(d!.nextAttemptAt).getTime() - clock.now.getTime(), 120_000, 'Retry-After: 120 → in 120 s rather than 5 s')
    clock.advance(60_000)
    await app.jobs.runDue()
    t.equal(rx.at('/busy').length, 1, 'not retried before Retry-After')

    rx.answer('/busy', () => ({ status: 429, headers: { 'retry-after': new Date(clock.now.getTime() + 600_000).toUTCString() } }))
    clock.now = new Date(d!.nextAttemptAt)
    await app.jobs.runDue()
    t.equal(rx.at('/busy').length, 2)
    ;[d] = await lab.deliveryList(endpoint.id)
    const wait = new Date(d!.nextAttemptAt).getTime() - clock.now.getTime()
    t.ok(wait > 598_000 && wait <= 600_000, `an HTTP date 10 min ahead → in 10 min rather than 5 (got ${wait / 1000} s)`)
    t.match(d, { attempts: 2, lastStatusCode: 429 })

    rx.answer('/busy', () => ({ status: 200 }))
    clock.now = new Date(new Date(d!.nextAttemptAt).getTime() - 1000)
    await app.jobs.runDue()
    t.equal(rx.at('/busy').length, 2)
    clock.now = new Date(d!.nextAttemptAt)
    await app.jobs.runDue()
    t.equal(rx.at('/busy').length, 3)
    t.match((await lab.deliveryList(endpoint.id))[0], { status: 'succeeded', attempts: 3 })
    t.equal((await lab.get(endpoint.id)).json().failureStreak, 0, 'a success resets the streak')

    const now = new Date('2026-11-22T10:00:00Z')
    t.equal(parseRetryAfter('30', now), 30_000)
    t.equal(parseRetryAfter('99999999', now), RETRY_AFTER_CAP_MS, 'capped')
    t.equal(parseRetryAfter('Sun, 22 Nov 2026 10:05:00 GMT', now), 300_000)
    t.equal(parseRetryAfter('Sun, 22 Nov 2026 09:00:00 GMT', now), 0, 'a past date: no extra wait')
    t.equal(parseRetryAfter('soon', now), null)
    t.equal(parseRetryAfter(undefined, now), null)
    t.equal(retryDelay(1, () => 0), 4_500)
    t.equal(retryDelay(1, () => 1), 5_500)
    t.equal(retryDelay(7, () => 0.5), 36_000_000)
  })

  t.test('410 Gone stops at once and disables the endpoint; re-enabling and replay', async (t) => {
    const pharmacy = as('pharmacy', ORG.pharmacyParis)
    rx.answer('/gone', () => ({ status: 410 }))
    const endpoint = await pharmacy.endpoint('/gone')
    await emit(ORG.pharmacyParis)
    await flush()
    t.equal(rx.at('/gone').length, 1)
    const [d] = await pharmacy.deliveryList(endpoint.id)
    t.match(d, { status: 'failed', attempts: 1, lastStatusCode: 410, nextAttemptAt: null })
    t.match((await pharmacy.get(endpoint.id)).json(), { active: false, disabledReason: /410 Gone/ })
    clock.advance(30 * 3_600_000)
    await app.jobs.runDue()
    t.equal(rx.at('/gone').length, 1, 'never retried')

    await emit(ORG.pharmacyParis)
    await flush()
    t.equal(rx.at('/gone').length, 1, 'a disabled endpoint receives nothing new')
    t.equal((await pharmacy.deliveryList(endpoint.id)).length, 1)
    const feed = (await pharmacy.feed()).json().items.filter((i: any) => i.type === 'webhook.endpoint_disabled')
    t.match(feed, [{ sender: null, subject: { type: 'webhook_endpoint', id: endpoint.id }, payload: { endpointId: endpoint.id, reason: 'gone' } }], 'the owner is told on its feed')

    const refused = await pharmacy.replay(endpoint.id, d!.id)
    t.equal(refused.statusCode, 409, 'no replay to a disabled endpoint')

    rx.answer('/gone', () => ({ status: 200 }))
    const enabled = await pharmacy.patch(endpoint.id, { active: true })
    t.match(enabled.json(), { active: true, disabledReason: null, failureStreak: 0 })
    const replay = await pharmacy.replay(endpoint.id, d!.id)
    t.equal(replay.statusCode, 202)
    t.match(replay.json(), { id: d!.id, status: 'pending' })
    await app.jobs.runDue()
    t.equal(rx.at('/gone').length, 2, 'replayed')
    t.match((await pharmacy.deliveryList(endpoint.id)).find((x) => x.id === d!.id), { status: 'succeeded', attempts: 2, lastStatusCode: 200, lastError: null })
  })

  t.test('rotation: both secrets verify for 24 h, then only the new one signs', async (t) => {
    const pharmacy = as('pharmacy', ORG.pharmacyLyon)
    const endpoint = await pharmacy.endpoint('/rot')
    const rotated = await pharmacy.rotate(endpoint.id)
    t.equal(rotated.statusCode, 200)
    const { secret: fresh, previousSecretExpiresAt } = rotated.json()
    t.match(fresh, /^whsec_/)
    t.not(fresh, endpoint.secret)
    t.equal(new Date(previousSecretExpiresAt).getTime(), clock.now.getTime() + 24 * 3_600_000)
    const got = (await pharmacy.get(endpoint.id)).json()
    t.equal(got.previousSecretExpiresAt, previousSecretExpiresAt)
    t.notOk('secret' in got)

    await emit(ORG.pharmacyLyon)
    await flush()
    const [during] = rx.at('/rot')
    t.equal(during?.headers['webhook-signature']?.split(' ').length, 2, 'two signatures during the overlap')
    t.ok(verify(fresh, during!), 'the new secret verifies')
    t.ok(verify(endpoint.secret, during!), 'the previous secret verifies')
    t.throws(() => verify(fresh, { ...during!, body: during!.body.replace('RAP', 'PAR') }), /signature/i)

    clock.advance(24 * 3_600_000 + 1000)
    await emit(ORG.pharmacyLyon)
    await flush()
    const after = rx.at('/rot')[1]!
    t.ok(after, 'delivered after the overlap')
    // (The library's verify() compares the timestamp with the real clock; the test clock is a day ahead.)
    const expected = (secret: string) => new Webhook(secret).sign(after.headers['webhook-id']!, new Date(Number(after.headers['webhook-timestamp']) * 1000), after.body)
    t.equal(after.headers['webhook-signature'], expected(fresh), 'one signature, with the new secret')
    t.notMatch(after.headers['webhook-signature'], expected(endpoint.secret).slice(3))
    t.equal((await pharmacy.get(endpoint.id)).json().previousSecretExpiresAt, null)

    const audits = await app.db.selectFrom('audit_log').select(['action', 'changes']).where('object_id', '=', endpoint.id).orderBy('seq').execute()
    t.same(audits.map((a) => a.action), ['webhook.created', 'webhook.secret_rotated'])
  })

  t.test('replay sends the same delivery again; delete keeps the history', async (t) => {
    const wholesaler = as('wholesaler', ORG.wholesaler)
    const endpoint = await wholesaler.endpoint('/replay')
    await emit(ORG.wholesaler)
    await flush()
    t.equal(rx.at('/replay').length, 1)
    const [d] = await wholesaler.deliveryList(endpoint.id)
    const res = await wholesaler.replay(endpoint.id, d!.id)
    t.equal(res.statusCode, 202)
    t.match(res.json(), { id: d!.id, status: 'pending', attempts: 1 })
    await app.jobs.runDue()
    const [first, second] = rx.at('/replay')
    t.ok(second, 'sent again')
    t.equal(second?.headers['webhook-id'], first?.headers['webhook-id'], 'same webhook-id: the receiver can deduplicate')
    t.equal(second?.body, first?.body)
    t.ok(verify(endpoint.secret, second!))
    t.match((await wholesaler.deliveryList(endpoint.id))[0], { status: 'succeeded', attempts: 2 })
    t.equal((await wholesaler.replay(endpoint.id, crypto.randomUUID())).statusCode, 404, 'unknown delivery')

    const deleted = await wholesaler.delete(endpoint.id)
    t.equal(deleted.statusCode, 204)
    t.match((await wholesaler.get(endpoint.id)).json(), { active: false, disabledReason: /deleted/ })
    t.equal((await wholesaler.deliveryList(endpoint.id)).length, 1, 'the history stays readable')
    await emit(ORG.wholesaler)
    await flush()
    t.equal(rx.at('/replay').length, 2, 'nothing sent after delete')
    t.equal((await wholesaler.delete(endpoint.id)).statusCode, 204, 'deleting again is harmless')
    const actions = await app.db.selectFrom('audit_log').select('action').where('object_id', '=', endpoint.id).orderBy('seq').execute()
    t.same(actions.map((a) => a.action), ['webhook.created', 'webhook.delivery_replayed', 'webhook.deleted'])
  })

  t.test('timeouts and refused connections are failures, retried', async (t) => {
    const hospital = as('hospital', ORG.hospital)
    rx.answer('/hang', () => 'hang')
    const slow = await hospital.endpoint('/hang')
    const closed = http.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const closedPort = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const refused = (await hospital.create({ url: `http://127.0.0.1:${closedPort}/x` })).json()
    await emit(ORG.hospital)
    await flush()
    t.match((await hospital.deliveryList(slow.id))[0], { status: 'pending', attempts: 1, lastStatusCode: null, lastError: /timeout/ })
    t.match((await hospital.deliveryList(refused.id))[0], { status: 'pending', attempts: 1, lastStatusCode: null, lastError: /ECONNREFUSED/ })
    t.equal((await hospital.get(slow.id)).json().failureStreak, 1)
  })

  t.test('an organisation never sees or touches another’s endpoints and deliveries', async (t) => {
    const owner = as('lab', ORG.labArrow)
    const endpoint = await owner.endpoint('/tenant')
    await emit(ORG.labArrow)
    await flush()
    const [delivery] = await owner.deliveryList(endpoint.id)
    t.ok(delivery)
    const before = await app.db.selectFrom('webhook_endpoints').selectAll().where('id', '=', endpoint.id).executeTakeFirstOrThrow()

    const intruder = as('lab', ORG.labBiogaran)
    const pharmacy = as('pharmacy', ORG.pharmacyParis)
    for (const other of [intruder, pharmacy]) {
      const answers = [
        await other.get(endpoint.id),
        await other.patch(endpoint.id, { url: rx.url('/stolen'), active: true }),
        await other.delete(endpoint.id),
        await other.rotate(endpoint.id),
        await other.deliveries(endpoint.id),
        await other.replay(endpoint.id, delivery!.id),
      ]
      t.same(answers.map((a) => a.statusCode), [404, 404, 404, 404, 404, 404])
      for (const a of answers) {
        t.equal(a.json().code, 'NOT_FOUND')
        t.notMatch(a.body, '/tenant')
      }
      const list = await other.list()
      t.notOk(list.json().items.some((e: any) => e.id === endpoint.id), 'not in another’s list')
    }
    // Through its own endpoint id, the intruder cannot reach the owner's delivery either.
    const own = (await intruder.list()).json().items[0]
    t.ok(own)
    t.equal((await intruder.replay(own.id, delivery!.id)).statusCode, 404)
    const theirs = await intruder.deliveryList(own.id)
    t.ok(theirs.length > 0)
    t.notOk(theirs.some((d) => d.id === delivery!.id || d.eventId === delivery!.eventId), 'never another’s deliveries')

    const after = await app.db.selectFrom('webhook_endpoints').selectAll().where('id', '=', endpoint.id).executeTakeFirstOrThrow()
    t.same(after, before, 'untouched')
    t.equal(rx.at('/stolen').length, 0)
  })

  t.test('bad input, limits and idempotency', async (t) => {
    const pharmacy = as('pharmacy', ORG.pharmacyAjaccio)
    const bad = await pharmacy.create({ url: rx.url('/x'), eventTypes: ['Recall Broadcast'] })
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().errors[0].field, 'body.eventTypes.0')
    t.equal((await pharmacy.create({ url: rx.url('/x'), secret: 'mine' })).statusCode, 400, 'the secret cannot be chosen')
    t.equal((await pharmacy.create({ eventTypes: [] })).json().errors[0].field, 'body.url')
    t.equal((await pharmacy.patch(crypto.randomUUID(), {})).statusCode, 400, 'an empty patch')
    t.equal((await pharmacy.get('not-a-uuid')).statusCode, 400)

    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push((await pharmacy.endpoint(`/n${i}`)).id)
    const eleventh = await pharmacy.create({ url: rx.url('/n10') })
    t.equal(eleventh.statusCode, 409, 'at most 10 active endpoints')
    await pharmacy.delete(ids[0]!)
    t.equal((await pharmacy.create({ url: rx.url('/n10') })).statusCode, 201, 'room again after a delete')
    t.equal((await pharmacy.patch(ids[0]!, { active: true })).statusCode, 409, 're-enabling counts too')
  })

  t.test('no secret in the audit trail', async (t) => {
    const rows = await app.db.selectFrom('audit_log').select('changes').where('object_type', '=', 'webhook_endpoint').execute()
    t.ok(rows.length > 10)
    t.notMatch(JSON.stringify(rows), /whsec_/)
  })
})

t.test('idempotent creation replays the same endpoint', async (t) => {
  const { app, auth, rx } = await setup(t)
  const headers = { ...auth('lab', ORG.labArrow), 'idempotency-key': 'create-endpoint-0001' }
  const first = await app.inject({ method: 'POST', url: '/v1/webhooks', headers, payload: { url: rx.url('/idem') } })
  const again = await app.inject({ method: 'POST', url: '/v1/webhooks', headers, payload: { url: rx.url('/idem') } })
  t.equal(first.statusCode, 201)
  t.equal(again.statusCode, 201)
  t.equal(again.json().id, first.json().id)
  t.equal(again.headers['idempotent-replayed'], 'true')
  const count = await app.db.selectFrom('webhook_endpoints').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
  t.equal(Number(count.n), 1)
})

t.test('a failure streak disables the endpoint and tells its owner', async (t) => {
  const { app, clock, rx, emit, flush, as } = await setup(t, { WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_DISABLE_AFTER: '3' })
  const lab = as('lab', ORG.labArrow)
  let status = 500
  rx.answer('/flaky', () => ({ status }))
  const flaky = await lab.endpoint('/flaky')
  // Another endpoint of the owner, listening only for this kind of event.
  const watcher = await lab.endpoint('/watcher', { eventTypes: ['webhook.endpoint_disabled'] })

  await emit(ORG.labArrow)
  await flush()
  t.equal((await lab.get(flaky.id)).json().failureStreak, 1)
  status = 200
  await emit(ORG.labArrow)
  await flush()
  t.match((await lab.get(flaky.id)).json(), { active: true, failureStreak: 0 }, 'a success ends the streak')

  status = 500
  for (let i = 0; i < 3; i++) await emit(ORG.labArrow)
  await flush()
  const disabled = (await lab.get(flaky.id)).json()
  t.match(disabled, { active: false, disabledReason: /3 consecutive failed attempts.*HTTP 500/ })
  const sent = rx.at('/flaky').length

  await flush() // sequences the new event, delivers it to the other endpoint
  const feed = (await lab.feed()).json().items.filter((i: any) => i.type === 'webhook.endpoint_disabled')
  t.equal(feed.length, 1, 'told once')
  t.match(feed[0], { sender: null, subject: { type: 'webhook_endpoint', id: flaky.id }, payload: { endpointId: flaky.id, url: rx.url('/flaky'), reason: 'failure_streak', failureStreak: 3 } })
  const [told] = rx.at('/watcher')
  t.ok(told, 'its other endpoint got the event too')
  t.match(told && verify(watcher.secret, told), { type: 'webhook.endpoint_disabled', payload: { endpointId: flaky.id } })

  clock.advance(24 * 3_600_000)
  await app.jobs.runDue()
  t.equal(rx.at('/flaky').length, sent, 'nothing more is sent to a disabled endpoint')
  const deliveries = await lab.deliveryList(flaky.id)
  t.notOk(deliveries.some((d) => d.status === 'pending'), 'its pending deliveries are settled')
  t.ok(deliveries.some((d) => d.lastError === 'endpoint disabled'))
  const audits = await app.db.selectFrom('audit_log').select(['action', 'actor_user']).where('object_id', '=', flaky.id).orderBy('seq').execute()
  t.match(audits.at(-1), { action: 'webhook.disabled', actor_user: 'system' })

  status = 200
  t.match((await lab.patch(flaky.id, { active: true })).json(), { active: true, failureStreak: 0, disabledReason: null }, 're-enabling resets the streak')
})

t.test('SSRF: private, loopback and link-local targets are refused (default configuration)', async (t) => {
  const { app, rx, emit, flush, as } = await setup(t, {})
  t.equal(app.config.WEBHOOK_ALLOW_PRIVATE, false)
  const lab = as('lab', ORG.labArrow)
  const refused = [
    'https://127.0.0.1/hook',
    'https://127.10.20.30:8443/hook',
    `http://93.184.215.14/hook`,
    'https://10.0.0.1/hook',
    'https://172.16.5.4/hook',
    'https://192.168.1.10/hook',
    'https://[::1]/',
    'https://169.254.169.254/latest/meta-data/',
    'https://localhost/hook',
    `https://localhost:${rx.port}/hook`,
    'https://100.64.0.1/',
    'https://0.0.0.0/',
    'https://224.0.0.1/',
    'https://[fd00::1]/',
    'https://[fe80::1]/',
    'https://[::ffff:127.0.0.1]/',
    'https://[::ffff:a9fe:a9fe]/',
    'https://[64:ff9b::a00:1]/',
    'https://0x7f.1/',
    'https://2130706433/',
    'https://user:secret@93.184.215.14/hook',
    'ftp://93.184.215.14/hook',
    'not a url at all',
  ]
  for (const url of refused) {
    const res = await lab.create({ url })
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, 'WEBHOOK_URL_REFUSED', url)
    t.equal(res.json().errors?.[0]?.field, 'body.url', url)
  }
  const fr = (await lab.create({ url: 'https://localhost/hook' })).json()
  t.match(fr.detail, /localhost se résout en 127\.0\.0\.1/)
  t.match(fr.errors[0].message, /privée, de bouclage/)
  const en = (await app.inject({ method: 'POST', url: '/v1/webhooks', headers: { ...lab.headers, 'accept-language': 'en' }, payload: { url: 'http://93.184.215.14/' } })).json()
  t.match(en.detail, /only https is allowed/)
  t.equal(en.errors[0].message, 'only https is allowed')

  // A public address is accepted (no DNS needed for an IP literal; nothing is ever sent to it).
  const ok = await as('pharmacy', ORG.pharmacyAjaccio).create({ url: 'https://93.184.215.14/hooks/portail' })
  t.equal(ok.statusCode, 201)
  const patched = await as('pharmacy', ORG.pharmacyAjaccio).patch(ok.json().id, { url: 'https://10.0.0.1/' })
  t.equal(patched.statusCode, 400, 'a patched URL is checked too')
  t.equal(patched.json().errors[0].field, 'body.url')
  t.equal((await as('pharmacy', ORG.pharmacyAjaccio).delete(ok.json().id)).statusCode, 204)

  t.notOk(isForbiddenAddress('93.184.215.14'))
  t.notOk(isForbiddenAddress('2606:4700:4700::1111'))
  t.notOk(isForbiddenAddress('::ffff:8.8.8.8'))
  t.ok(isForbiddenAddress('::ffff:10.1.2.3'))
  t.ok(isForbiddenAddress('2002:7f00:1::'), '6to4 of loopback')

  // DNS rebinding: a name that passed registration but resolves to loopback when delivering is not called.
  const now = new Date()
  for (const [id, url] of [
    [crypto.randomUUID(), `https://localhost:${rx.port}/rebound`],
    [crypto.randomUUID(), `https://127.0.0.1:${rx.port}/literal`],
  ] as const) {
    await app.db
      .insertInto('webhook_endpoints')
      .values({ id, org_id: ORG.labArrow, url, description: null, event_types: [], secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwZ8sGuS+6RDI=', created_at: now, updated_at: now })
      .execute()
  }
  await emit(ORG.labArrow)
  await flush()
  t.equal(rx.at('/rebound').length + rx.at('/literal').length, 0, 'nothing reached the loopback receiver')
  const rows = await app.db.selectFrom('webhook_deliveries').select(['last_error', 'status', 'attempts']).where('org_id', '=', ORG.labArrow).execute()
  t.equal(rows.length, 2, "one delivery per endpoint")
  t.ok(rows.some((r) => /forbidden address: localhost resolves to 127\.0\.0\.1/.test(r.last_error ?? '')), 'refused at connection time')
  t.ok(rows.some((r) => /forbidden address 127\.0\.0\.1/.test(r.last_error ?? '')))
  t.ok(rows.every((r) => r.status === 'pending' && r.attempts === 1), 'counted as failed attempts')
})

t.test('event types come from the catalogue; a test event shows a vendor what its receiver answers', async (t) => {
  const { app, clock, rx, as } = await setup(t)
  clock.now = new Date()
  const lab = as('lab', ORG.labBiogaran)

  t.test('an unknown event type is refused, naming the field and the likely one', async (t) => {
    const bad = await lab.create({ url: rx.url('/typo'), eventTypes: ['recall.broadcast', 'recall.broadcasted'] })
    t.equal(bad.statusCode, 400, bad.body)
    t.equal(bad.json().code, 'VALIDATION_FAILED')
    t.equal(bad.json().errors[0].field, 'body.eventTypes.1')
    t.equal(bad.json().errors[0].code, 'unknown_event_type')
    t.match(bad.json().errors[0].message, /« recall\.broadcasted ».*« recall\.broadcast »/)
    const en = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: { ...lab.headers, 'accept-language': 'en' }, payload: { url: rx.url('/typo'), eventTypes: ['recall.broadcasted'] } })
    t.match(en.json().errors[0].message, /unknown event type "recall\.broadcasted".*"recall\.broadcast"/)
    t.same((await lab.list()).json().items, [], 'nothing created')
    const ok = await lab.endpoint('/typo', { eventTypes: ['recall.broadcast'] })
    const patched = await lab.patch(ok.id, { eventTypes: ['alert.broadcast', 'shortage.automatic_responses'] })
    t.equal(patched.statusCode, 400)
    t.equal(patched.json().errors[0].field, 'body.eventTypes.1')
    t.same((await lab.get(ok.id)).json().eventTypes, ['recall.broadcast'], 'unchanged')
  })

  t.test('the catalogue lists every event type with its label', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/webhooks/event-types', headers: lab.headers })
    t.equal(res.statusCode, 200, res.body)
    const types = res.json().items as Array<{ type: string; label: string; description: string }>
    for (const type of ['recall.broadcast', 'recall.updated', 'recall.closed', 'alert.broadcast', 'shortage.automatic_response', 'emergency.request_answered', 'webhook.endpoint_disabled', 'webhook.test', 'fax.letter_required']) {
      t.ok(types.some((x) => x.type === type), type)
    }
    t.match(types.find((x) => x.type === 'recall.broadcast'), { label: /rappel/i })
    const en = await app.inject({ method: 'GET', url: '/v1/webhooks/event-types', headers: { ...lab.headers, 'accept-language': 'en' } })
    t.match(en.json().items.find((x: any) => x.type === 'recall.broadcast'), { label: /recall/i })
  })

  t.test('POST /webhooks/{id}/test sends a signed sample event and answers what the receiver replied', async (t) => {
    const endpoint = await lab.endpoint('/tested', { eventTypes: ['recall.broadcast'] })
    const res = await app.inject({ method: 'POST', url: `/v1/webhooks/${endpoint.id}/test`, headers: lab.headers })
    t.equal(res.statusCode, 200, res.body)
    const out = res.json()
    t.match(out, { delivered: true, statusCode: 204, error: null, type: 'webhook.test', url: rx.url('/tested') })
    t.ok(Number.isInteger(out.latencyMs) && out.latencyMs >= 0, 'latency in ms')
    const [received] = rx.at('/tested')
    t.ok(received, 'the receiver got it (whatever the endpoint’s event types)')
    const body = verify(endpoint.secret, received!) as any
    t.match(body, { id: out.eventId, type: 'webhook.test', sender: null, subject: { type: 'webhook_endpoint', id: endpoint.id }, payload: { test: true }, pos: null })
    t.equal(received!.headers['webhook-id'], out.webhookId)
    t.same(await lab.deliveryList(endpoint.id), [], 'a test is not a delivery of the feed')

    rx.answer('/tested', () => ({ status: 503, body: 'maintenance' }))
    const failed = (await app.inject({ method: 'POST', url: `/v1/webhooks/${endpoint.id}/test`, headers: lab.headers })).json()
    t.match(failed, { delivered: false, statusCode: 503, error: /HTTP 503.*maintenance/ })
    t.equal((await lab.get(endpoint.id)).json().failureStreak, 0, 'a test does not count towards disabling the endpoint')
  })

  t.test('another organisation’s endpoint: 404 and nothing is sent', async (t) => {
    const endpoint = await lab.endpoint('/private')
    for (const other of [as('lab', ORG.labArrow), as('pharmacy', ORG.pharmacyParis)]) {
      const res = await app.inject({ method: 'POST', url: `/v1/webhooks/${endpoint.id}/test`, headers: other.headers })
      t.equal(res.statusCode, 404)
    }
    t.equal(rx.at('/private').length, 0)
  })
})

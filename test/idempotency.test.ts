import t from 'tap'
import { ORG, testApp } from './helpers.ts'

t.test('Idempotency-Key', async (t) => {
  let throttled = true
  let release: () => void = () => {}
  let started: () => void = () => {}
  const { app, auth, database } = await testApp(t, {
    extend(app) {
      // A write that stays in flight until the test lets it finish.
      // Throttled once, then accepted.
      app.post('/v1/test/throttled', { config: { roles: ['ordre'] } }, async (_request, reply) => {
        if (throttled) {
          throttled = false
          return reply.code(429).header('retry-after', '1').send({ code: 'RATE_LIMITED' })
        }
        return { ok: true }
      })
      app.post('/v1/test/slow', { config: { roles: ['ordre'] } }, async () => {
        started()
        await new Promise<void>((resolve) => (release = resolve))
        return { done: true }
      })
    },
  })
  const ordre = auth('ordre', ORG.ordre)
  const create = (key: string, body: Record<string, unknown>, headers = ordre) =>
    app.inject({ method: 'POST', url: '/v1/organisations', headers: { ...headers, 'idempotency-key': key }, payload: body })
  const body = { id: '330100090', role: 'pharmacy', name: 'Pharmacie des Chartrons', city: 'Bordeaux' }

  t.test('same key, same body → the first response replayed, one object', async (t) => {
    const first = await create('key-00000001', body)
    t.equal(first.statusCode, 201)
    const again = await create('key-00000001', body)
    t.equal(again.statusCode, 201)
    t.equal(again.headers['idempotent-replayed'], 'true')
    t.equal(again.headers.location, '/v1/organisations/330100090')
    t.same(again.json(), first.json())
    const history = await database.db.selectFrom('audit_log').select('seq').where('object_id', '=', '330100090').execute()
    t.equal(history.length, 1, 'the change was made once')
  })

  t.test('key order in the body does not matter', async (t) => {
    const reordered = { city: 'Bordeaux', name: 'Pharmacie des Chartrons', role: 'pharmacy', id: '330100090' }
    const res = await create('key-00000001', reordered)
    t.equal(res.headers['idempotent-replayed'], 'true')
  })

  t.test('same key, another body → 422', async (t) => {
    const res = await create('key-00000001', { ...body, name: 'Autre nom' })
    t.equal(res.statusCode, 422)
    t.equal(res.json().code, 'IDEMPOTENCY_KEY_REUSED')
  })

  t.test('a refusal is replayed too (no second attempt with the same key)', async (t) => {
    const dup = await create('key-00000002', body)
    t.equal(dup.statusCode, 409)
    const again = await create('key-00000002', body)
    t.equal(again.statusCode, 409)
    t.equal(again.headers['idempotent-replayed'], 'true')
  })

  t.test('same key while the first is still running → 409, then the replay', async (t) => {
    const call = () => app.inject({ method: 'POST', url: '/v1/test/slow', headers: { ...ordre, 'idempotency-key': 'key-running' }, payload: { n: 1 } })
    const inFlight = new Promise<void>((resolve) => (started = resolve))
    const first = call()
    await inFlight
    const second = await call()
    t.equal(second.statusCode, 409)
    t.equal(second.json().code, 'IDEMPOTENCY_IN_PROGRESS')
    release()
    t.same((await first).json(), { done: true })
    const third = await call()
    t.equal(third.headers['idempotent-replayed'], 'true')
    t.same(third.json(), { done: true })
  })

  t.test('keys are scoped per organisation', async (t) => {
    await database.db
      .insertInto('idempotency_keys')
      .values({ org_id: 'ANSM', key: 'key-shared-1', request_hash: 'x', state: 'done', status_code: 200, response_body: '{}', expires_at: new Date(Date.now() + 3600_000) })
      .execute()
    const res = await create('key-shared-1', { ...body, id: '690100999' })
    t.equal(res.statusCode, 201, 'ANSM’s key does not affect the operator')
  })

  t.test('expired keys may be reused', async (t) => {
    await database.db
      .insertInto('idempotency_keys')
      .values({ org_id: ORG.ordre, key: 'key-expired', request_hash: 'x', state: 'done', status_code: 200, response_body: '{}', expires_at: new Date(Date.now() - 1000) })
      .execute()
    const res = await create('key-expired', { ...body, id: '130100888' })
    t.equal(res.statusCode, 201)
  })

  t.test('a 429 is not kept: the retry with the same key runs again', async (t) => {
    const call = () => app.inject({ method: 'POST', url: '/v1/test/throttled', headers: { ...ordre, 'idempotency-key': 'key-throttled' }, payload: {} })
    t.equal((await call()).statusCode, 429)
    const retry = await call()
    t.equal(retry.statusCode, 200)
    t.notOk(retry.headers['idempotent-replayed'])
  })

  t.test('an invalid key → 400', async (t) => {
    const res = await create('short', { ...body, id: '130100777' })
    t.equal(res.statusCode, 400)
    t.equal(res.json().code, 'IDEMPOTENCY_KEY_INVALID')
  })

  t.test('keys are kept at least 24 hours', async (t) => {
    const row = await database.db.selectFrom('idempotency_keys').selectAll().where('key', '=', 'key-00000001').executeTakeFirstOrThrow()
    t.ok(row.expires_at.getTime() - row.created_at.getTime() >= 24 * 3600_000 - 1000)
  })
})

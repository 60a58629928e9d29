import t from 'tap'
import { ORG, testApp } from './helpers.ts'

t.test('problem details everywhere', async (t) => {
  const { app, auth } = await testApp(t, {
    extend(app) {
      app.get('/v1/test/boom', { config: { roles: 'public' } }, async () => {
        throw new Error('connection to db-internal-7.prod failed: password=hunter2')
      })
    },
  })
  const ordre = auth('ordre', ORG.ordre)

  t.test('unknown route → 404 ROUTE_NOT_FOUND', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/nope?x=1' })
    t.equal(res.statusCode, 404)
    t.match(res.headers['content-type'], /application\/problem\+json/)
    t.match(res.json(), { code: 'ROUTE_NOT_FOUND', instance: '/v1/nope', detail: /GET \/v1\/nope/ })
  })

  t.test('validation errors name each field, in French then English', async (t) => {
    const payload = { id: '7', role: 'baker', name: '', extra: 1, email: 'not-an-email' }
    const fr = await app.inject({ method: 'POST', url: '/v1/organisations', headers: ordre, payload })
    t.equal(fr.statusCode, 400)
    const body = fr.json()
    t.equal(body.code, 'VALIDATION_FAILED')
    const byField = Object.fromEntries(body.errors.map((e: any) => [e.field, e]))
    t.match(byField['body.id'], { code: 'minLength', message: 'doit contenir au moins 2 caractère(s)' })
    t.match(byField['body.role'], { code: 'enum', message: /valeurs admises : pharmacy, lab/ })
    t.match(byField['body.name'], { code: 'minLength' })
    t.match(byField['body.extra'], { code: 'additionalProperties', message: 'champ inconnu' })
    t.match(byField['body.email'], { code: 'format', message: 'doit être une adresse électronique' })
    const en = await app.inject({ method: 'POST', url: '/v1/organisations', headers: { ...ordre, 'accept-language': 'en' }, payload })
    t.match(en.json(), { title: 'Invalid request', errors: [{ message: /./ }] })
    t.ok(en.json().errors.some((e: any) => e.message === 'unknown field'))
  })

  t.test('query and path parameters are validated with their location', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/organisations?limit=1000&role=x', headers: ordre })
    t.equal(res.statusCode, 400)
    const fields = res.json().errors.map((e: any) => e.field).sort()
    t.same(fields, ['querystring.limit', 'querystring.role'])
  })

  t.test('malformed JSON → 400 MALFORMED_BODY; wrong media type → 415', async (t) => {
    const bad = await app.inject({ method: 'POST', url: '/v1/organisations', headers: { ...ordre, 'content-type': 'application/json' }, payload: '{"id":' })
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().code, 'MALFORMED_BODY')
    const xml = await app.inject({ method: 'POST', url: '/v1/organisations', headers: { ...ordre, 'content-type': 'application/xml' }, payload: '<a/>' })
    t.equal(xml.statusCode, 415)
    t.equal(xml.json().code, 'UNSUPPORTED_MEDIA_TYPE')
  })

  t.test('a 500 leaks nothing and gives a reference', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/test/boom', headers: { 'x-request-id': 'trace-42' } })
    t.equal(res.statusCode, 500)
    t.equal(res.json().code, 'INTERNAL')
    t.equal(res.json().requestId, 'trace-42')
    t.equal(res.headers['x-request-id'], 'trace-42')
    t.notMatch(res.body, /hunter2|db-internal|stack|Error:/)
  })

  t.test('the error catalogue lists stable codes', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/problems' })
    t.equal(res.statusCode, 200)
    const codes = res.json().map((e: any) => e.code)
    for (const c of ['VALIDATION_FAILED', 'UNAUTHENTICATED', 'TOKEN_EXPIRED', 'FORBIDDEN_ROLE', 'NOT_FOUND', 'IDEMPOTENCY_KEY_REUSED', 'INTERNAL']) t.ok(codes.includes(c), c)
  })
})

import { request as httpRequest } from 'node:http'
import { Writable } from 'node:stream'
import { createSigner } from 'fast-jwt'
import { NoResultError } from 'kysely'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEV_JWT_SECRET, loadConfig, parseTrustProxy } from '../src/platform/config.ts'
import { fromDatabaseError, validationErrors } from '../src/platform/errors.ts'
import { neutraliseCell, stringify } from '../src/platform/csv.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { buildApp } from '../src/app.ts'
import { ORG, testApp, testConfig, testDatabase, type TestContext } from './helpers.ts'

// Regression tests for the causes found by fuzzing the contract (the fuzz suite itself is fuzz-*.test.ts).

const AMOX = '3400936128149' // Biogaran, MITM
const ROSU = '3400949497294' // Biogaran
const IBU = '3400936843127' // Biogaran
const problemOf = (res: { statusCode: number; headers: Record<string, unknown>; body: string; json(): any }) => {
  t.match(String(res.headers['content-type']), /^application\/problem\+json/, `problem+json: ${res.statusCode} ${res.body.slice(0, 200)}`)
  return res.json()
}
const fields = (body: any) => (body.errors ?? []).map((e: any) => `${e.field}:${e.code}`)

// One app and database for the tests that need no configuration of their own (a database each is slow on a
// busy machine): the demo organisations and products, the clock on 22 November 2026.
let sharedApp: Promise<TestContext> | undefined
const shared = () =>
  (sharedApp ??= (async () => {
    const ctx = await testApp(t)
    await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
    ctx.clock.now = new Date('2026-11-22T10:00:00Z')
    return ctx
  })())

t.test('NUL and lone surrogates are refused field by field, on every part of every route', async (t) => {
  const { app, auth } = await shared()
  const lab = auth('lab', ORG.labBiogaran)
  const products = await app.inject({ method: 'GET', url: '/v1/products?q=%00', headers: lab })
  t.equal(products.statusCode, 400)
  t.same(fields(problemOf(products)), ['querystring.q:unicode'])
  t.match(products.json().errors[0].message, /caractère nul/)

  const recall = await app.inject({ method: 'POST', url: '/v1/recalls', headers: { ...lab, 'content-type': 'application/json' }, payload: '{"title":"Rappel\\u0000","x":"\\ud800"}' })
  t.equal(recall.statusCode, 400)
  const f = fields(problemOf(recall))
  t.ok(f.includes('body.title:unicode'), 'the NUL is named')
  t.ok(f.includes('body.x:additionalProperties') || f.includes('body.x:unicode'), 'with the other errors of the body')

  const org = await app.inject({ method: 'POST', url: '/v1/organisations', headers: auth('ordre', ORG.ordre), payload: { id: '330100090', role: 'pharmacy', name: 'Pharmacie \ud800' } })
  t.equal(org.statusCode, 400)
  t.same(fields(problemOf(org)), ['body.name:unicode'])
  const en = await app.inject({ method: 'POST', url: '/v1/organisations', headers: { ...auth('ordre', ORG.ordre), 'accept-language': 'en' }, payload: { id: '330100090', role: 'pharmacy', name: 'Pharmacie \ud800' } })
  t.match(en.json().errors[0].message, /lone surrogate/)

  const path = await app.inject({ method: 'GET', url: '/v1/lab-holders/AB%00C', headers: auth('ordre', ORG.ordre) })
  t.not(path.statusCode, 500)
})

t.test('numbers: non-finite refused, every integer bounded', async (t) => {
  const { app, auth } = await shared()
  const lab = auth('lab', ORG.labBiogaran)
  for (const url of ['/v1/organisations?limit=1e309', '/v1/feed?after=99999999999999999999', '/v1/feed?limit=Infinity']) {
    const res = await app.inject({ method: 'GET', url, headers: auth('ordre', ORG.ordre) })
    t.equal(res.statusCode, 400, url)
    problemOf(res)
  }
  const stats = await app.inject({ method: 'GET', url: '/v1/public/shortage-statistics?year=1e309' })
  t.equal(stats.statusCode, 400, 'public statistics, no token')
  // Not a plain decimal, said once: the reason is how it is written (input-checks.test.ts), before what it would be worth.
  t.same(fields(problemOf(stats)), ['querystring.year:decimal'])

  const huge = `1${'0'.repeat(400)}`
  const settings = await app.inject({ method: 'PUT', url: '/v1/shortage-settings', headers: { ...lab, 'content-type': 'application/json' }, payload: `{"signalThreshold":${huge}}` })
  t.equal(settings.statusCode, 400)
  t.ok(fields(problemOf(settings)).some((x: string) => x.startsWith('body.signalThreshold')))
  const big = await app.inject({ method: 'PUT', url: '/v1/shortage-settings', headers: { ...lab, 'content-type': 'application/json' }, payload: '{"signalThreshold":2147483648}' })
  t.equal(big.statusCode, 400, 'beyond the integer column, not a 500')

  const doc = (await app.inject('/openapi.json')).json()
  const after = doc.paths['/v1/feed'].get.parameters.find((p: any) => p.name === 'after')
  t.equal(after.schema.maximum, Number.MAX_SAFE_INTEGER, 'feed positions are bigints and say so')
  const limit = doc.paths['/v1/organisations'].get.parameters.find((p: any) => p.name === 'limit')
  t.ok(Number.isFinite(limit.schema.maximum))
})

t.test('JSON bodies are strictly typed; query strings are still coerced', async (t) => {
  const { app, auth } = await shared()
  const paris = auth('pharmacy', ORG.pharmacyParis)
  const cases: Array<[string, string, unknown, string[]]> = [
    ['/v1/emergency-requests', 'POST', { cip13: AMOX, quantity: '2', patientEmergency: 'true' }, ['body.quantity:type', 'body.patientEmergency:type']],
    ['/v1/stock-campaigns/7d0f6a0e-8c1b-4c55-9a51-0e7c3b1f9d22/declarations', 'POST', { cip13: AMOX, quantity: '12' }, ['body.quantity:type']],
    ['/v1/shortage-signals', 'POST', { code: Number(AMOX), wholesaler: true, unavailableSince: '2026-11-18' }, ['body.code:type', 'body.wholesaler:type']],
    ['/v1/shortage-signals', 'POST', { code: AMOX, wholesaler: ['OCP'], unavailableSince: '2026-11-18' }, ['body.wholesaler:type']],
  ]
  for (const [url, method, payload, expected] of cases) {
    const res = await app.inject({ method: method as 'POST', url, headers: paris, payload: payload as object })
    t.equal(res.statusCode, 400, `${url} ${JSON.stringify(payload)}`)
    const got = fields(problemOf(res))
    for (const e of expected) t.ok(got.includes(e), `${e} in ${got.join(', ')}`)
  }
  const coerced = await app.inject({ method: 'GET', url: '/v1/shortage-signals?limit=5', headers: paris })
  t.equal(coerced.statusCode, 200, 'limit=5 in a query string is a number')
})

t.test('races: the loser of a unique fact gets the domain 409; PUT racing DELETE never 500', async (t) => {
  const { app, auth } = await shared()
  const biogaran = auth('lab', ORG.labBiogaran)
  const declaration = { kind: 'anticipated', presentations: [ROSU], cause: 'raw_material', anticipatedStart: '2030-01-10', estimatedEnd: '2030-02-01' }
  const answers = await Promise.all(Array.from({ length: 8 }, () => app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: declaration })))
  const statuses = answers.map((r) => r.statusCode).sort()
  t.same(statuses, [201, 409, 409, 409, 409, 409, 409, 409], 'one created, seven refused')
  for (const r of answers.filter((x) => x.statusCode === 409)) t.equal(problemOf(r).code, 'PRESENTATION_ALREADY_DECLARED')

  const url = `/v1/shortage-automatic-responses/${AMOX}`
  for (let round = 0; round < 5; round++) {
    const mixed = await Promise.all([
      app.inject({ method: 'PUT', url, headers: biogaran, payload: { message: `Retour prévu (${round})` } }),
      app.inject({ method: 'DELETE', url, headers: biogaran }),
      app.inject({ method: 'PUT', url, headers: biogaran, payload: { message: 'Autre message' } }),
      app.inject({ method: 'DELETE', url, headers: biogaran }),
    ])
    for (const r of mixed) t.ok([200, 204, 404].includes(r.statusCode), `${r.statusCode} ${r.body.slice(0, 120)}`)
  }
})

t.test('database refusals map to problems at one point', async (t) => {
  const unique = Object.assign(new Error('duplicate key'), { code: '23505', constraint: 'shortage_declaration_items_active', detail: `Key (cip13)=(${AMOX}) already exists.` })
  t.match(fromDatabaseError(unique, 'POST'), { code: 'PRESENTATION_ALREADY_DECLARED', params: { cip13: AMOX } })
  t.match(fromDatabaseError(Object.assign(new Error('x'), { code: '23505', constraint: 'other' }), 'POST'), { code: 'CONCURRENT_CHANGE' })
  t.match(fromDatabaseError(Object.assign(new Error('x'), { code: '40001' }), 'POST'), { code: 'CONCURRENT_CHANGE' })
  t.match(fromDatabaseError(Object.assign(new Error('x'), { code: '40P01' }), 'PATCH'), { code: 'CONCURRENT_CHANGE' })
  t.match(fromDatabaseError(Object.assign(new Error('x'), { code: '22021' }), 'POST'), { code: 'INVALID_VALUE' })
  t.match(fromDatabaseError(new NoResultError({} as never), 'PUT'), { code: 'CONCURRENT_CHANGE' })
  t.match(fromDatabaseError(new NoResultError({} as never), 'GET'), { code: 'NOT_FOUND' })
  t.equal(fromDatabaseError(Object.assign(new Error('x'), { code: '42P01' }), 'GET'), null, 'our own bugs stay 500')
})

t.test('413, 414, 415 and 431 are problems, declared on every operation where they can occur', async (t) => {
  // Its own app: it listens on a port.
  const { app, auth } = await testApp(t, { seed: true })
  const lab = auth('lab', ORG.labBiogaran)
  const long = await app.inject({ method: 'GET', url: `/v1/recalls/${'a'.repeat(120)}`, headers: lab })
  t.equal(long.statusCode, 414)
  t.match(problemOf(long), { code: 'URI_TOO_LONG', status: 414 })
  t.notMatch(long.body, /aaaaaaaaaa/, 'the URL is not echoed')
  const badUrl = await app.inject({ method: 'GET', url: '/v1/recalls/%ff', headers: lab })
  t.equal(badUrl.statusCode, 400)
  t.equal(problemOf(badUrl).code, 'MALFORMED_URL')
  const xml = await app.inject({ method: 'POST', url: '/v1/recalls', headers: { ...lab, 'content-type': 'application/xml' }, payload: '<recall/>' })
  t.equal(xml.statusCode, 415)
  t.equal(problemOf(xml).code, 'UNSUPPORTED_MEDIA_TYPE')
  const big = await app.inject({ method: 'POST', url: '/v1/recalls', headers: { ...lab, 'content-type': 'application/json' }, payload: `{"title":"${'x'.repeat(10 * 1024 * 1024)}"}` })
  t.equal(big.statusCode, 413)
  t.equal(problemOf(big).code, 'PAYLOAD_TOO_LARGE')

  const doc = (await app.inject('/openapi.json')).json()
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const where = `${method.toUpperCase()} ${path}`
      t.ok(op.responses['431'], `${where} declares 431`)
      if (['post', 'put', 'patch', 'delete'].includes(method)) t.ok(op.responses['413'] && op.responses['415'] && op.responses['400'], `${where} declares 400, 413 and 415`)
      if (path.includes('{')) t.ok(op.responses['414'], `${where} declares 414`)
    }
  }

  // 431 comes from Node's HTTP parser, before any route: only a real connection shows it.
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const answer = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/recalls', headers: { authorization: `Bearer ${'a'.repeat(100_000)}` } }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }))
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(answer.status, 431)
  t.match(answer.type, /^application\/problem\+json/)
  t.match(JSON.parse(answer.body), { code: 'HEADERS_TOO_LARGE', status: 431, type: '/problems/headers_too_large' })
})

t.test('plausible dates: no year before 2000, no actual date in the future', async (t) => {
  const { app, auth } = await shared()
  const biogaran = auth('lab', ORG.labBiogaran)
  const post = (body: object) => app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: { presentations: [IBU], cause: 'raw_material', ...body } })
  const ancient = await post({ kind: 'anticipated', anticipatedStart: '0050-06-15' })
  t.equal(ancient.statusCode, 400)
  t.match(problemOf(ancient).errors, [{ field: 'body.anticipatedStart', code: 'formatMinimum', message: /2000-01-01/ }])
  const future = await post({ kind: 'observed', actualStart: '2099-06-15' })
  t.equal(future.statusCode, 400)
  t.match(problemOf(future), { code: 'DATES_OUT_OF_ORDER', errors: [{ field: 'body.actualStart', code: 'future', message: /dans le futur \(2099-06-15\).*2026-11-22/ }] })
  const ok = await post({ kind: 'observed', actualStart: '2026-11-20' })
  t.equal(ok.statusCode, 201)
  const id = ok.json().id
  const resolved = await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${id}/transitions`, headers: biogaran, payload: { to: 'resolved', date: '2026-12-25' } })
  t.equal(resolved.statusCode, 400)
  t.match(problemOf(resolved).errors, [{ field: 'body.date', code: 'future' }])
  const patched = await app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${id}`, headers: { ...biogaran, 'accept-language': 'en' }, payload: { actualEnd: '2027-01-01' } })
  t.equal(patched.statusCode, 400)
  t.match(problemOf(patched).errors, [{ field: 'body.actualEnd', code: 'future', message: /actual date in the future/ }])
})

t.test('tokens: iat beyond 60 s of clock skew, and tokens older than the maximum age, are refused', async (t) => {
  const { app } = await testApp(t, { env: { JWT_MAX_AGE_SECONDS: '3600' } })
  const sign = (opts: Record<string, unknown>) => `Bearer ${createSigner({ key: DEV_JWT_SECRET, algorithm: 'HS256', ...opts })({ role: 'pharmacy', org: ORG.pharmacyParis, sub: 'u' })}`
  const call = (authorization: string) => app.inject({ method: 'GET', url: '/v1/organisations/me', headers: { authorization } })
  t.equal((await call(sign({ expiresIn: 600_000 }))).statusCode, 200, 'a fresh token')
  t.equal((await call(sign({ expiresIn: 600_000, clockTimestamp: Date.now() + 30_000 }))).statusCode, 200, '30 s ahead: clock skew')
  const tomorrow = await call(sign({ expiresIn: 600_000, clockTimestamp: Date.now() + 86_400_000 }))
  t.equal(tomorrow.statusCode, 401)
  t.match(problemOf(tomorrow), { code: 'TOKEN_INVALID', detail: /futur/ })
  const old = await call(sign({ expiresIn: 7 * 86_400_000, clockTimestamp: Date.now() - 2 * 3600_000 }))
  t.equal(old.statusCode, 401)
  t.equal(problemOf(old).code, 'TOKEN_EXPIRED')
  const noIat = await call(sign({ expiresIn: 600_000, noTimestamp: true }))
  t.equal(noIat.statusCode, 401)
  t.equal(problemOf(noIat).code, 'TOKEN_INVALID')
  t.throws(() => loadConfig({ JWT_MAX_AGE_SECONDS: '10' }), /JWT_MAX_AGE_SECONDS/)
})

t.test('CSV cells a spreadsheet would execute are neutralised', async (t) => {
  for (const v of ['=1+1', '+33 1 00', '-2', '@SUM(A1)', '\tx', '\rx', '=cmd|" /C calc"!A0']) t.equal(neutraliseCell(v), `'${v}`, JSON.stringify(v))
  for (const v of ['ROSUVASTATINE', '1 000', 'a=b', '', ' =x']) t.equal(neutraliseCell(v), v, JSON.stringify(v))
  const csv = stringify([{ a: '=HYPERLINK("http://x")', b: -3, c: 'ok' }], { header: true, delimiter: ';', columns: ['a', 'b', 'c'] })
  t.equal(csv, 'a;b;c\n"\'=HYPERLINK(""http://x"")";-3;ok\n', 'strings only: a negative number stays a number')

  const { app, auth } = await shared()
  const created = await app.inject({
    method: 'POST',
    url: '/v1/shortage-declarations',
    headers: auth('lab', ORG.labBiogaran),
    payload: { kind: 'anticipated', presentations: [AMOX], cause: 'other', causeText: '=HYPERLINK("https://evil.example","Cliquez")', anticipatedStart: '2026-12-01', advice: '@SUM(1+1)' },
  })
  t.equal(created.statusCode, 201)
  const res = await app.inject({ method: 'GET', url: '/v1/ansm/mitm-shortages.csv', headers: auth('ansm', ORG.ansm) })
  t.equal(res.statusCode, 200)
  t.notMatch(res.body, /[;\n]"?=HYPERLINK/, 'no cell starts with =')
  t.match(res.body, /'=HYPERLINK/)
  t.notMatch(res.body, /[;\n]"?@SUM/)
})

t.test('problem types resolve, in the request’s language; no message shows a regular expression', async (t) => {
  const { app, auth } = await shared()
  const ordre = auth('ordre', ORG.ordre)
  const missing = await app.inject({ method: 'GET', url: '/v1/organisations/999999999', headers: ordre })
  const type = problemOf(missing).type
  const fr = await app.inject({ method: 'GET', url: type })
  t.equal(fr.statusCode, 200)
  t.match(fr.json(), { code: 'NOT_FOUND', type, status: 404, title: 'Introuvable', description: /introuvable/, action: /identifiant/ })
  t.equal(fr.headers['content-language'], 'fr')
  const en = await app.inject({ method: 'GET', url: type, headers: { 'accept-language': 'en' } })
  t.match(en.json(), { title: 'Not found', action: /identifier/ })
  const html = await app.inject({ method: 'GET', url: '/problems/validation_failed', headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } })
  t.match(html.headers['content-type'], /text\/html/)
  t.match(html.body, /<h1>Requête invalide<\/h1>/)
  const unknown = await app.inject({ method: 'GET', url: '/problems/no_such_problem' })
  t.equal(unknown.statusCode, 404)
  t.equal(problemOf(unknown).code, 'NOT_FOUND')
  // Every code of the catalogue resolves.
  for (const entry of (await app.inject('/problems')).json()) t.equal((await app.inject(entry.type)).statusCode, 200, entry.type)

  const empty = await app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.pharmacyParis}`, headers: ordre, payload: {} })
  t.equal(empty.statusCode, 400)
  t.match(problemOf(empty).errors, [{ field: 'body', code: 'minProperties', message: 'indiquez au moins un champ à modifier' }])
  const emptyEn = await app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.pharmacyParis}`, headers: { ...ordre, 'accept-language': 'en' }, payload: {} })
  t.match(emptyEn.json().errors, [{ message: 'give at least one field to change' }])
  const pattern = await app.inject({ method: 'GET', url: '/v1/organisations?department=XYZ&region=1', headers: ordre })
  t.equal(pattern.statusCode, 400)
  const messages = problemOf(pattern).errors.map((e: any) => e.message)
  t.match(messages, [/département/, /région/])
  for (const m of messages) t.notMatch(m, /\\d|\^|\$/, `no regular expression in "${m}"`)
})

t.test('TRUST_PROXY: the client address comes from X-Forwarded-For only when configured', async (t) => {
  t.equal(parseTrustProxy('false'), false)
  t.equal(parseTrustProxy('true'), true)
  t.equal(parseTrustProxy('2'), 2)
  t.same(parseTrustProxy('10.0.0.0/8, 192.168.1.10,::1'), ['10.0.0.0/8', '192.168.1.10', '::1'])
  for (const bad of ['yes', '10.0.0.0/33', '300.1.1.1', 'lb.internal', '1000']) t.equal(parseTrustProxy(bad), null, bad)
  t.throws(() => loadConfig({ TRUST_PROXY: 'yes' }), /TRUST_PROXY/)
  t.equal(loadConfig({}).TRUST_PROXY, false, 'off by default')

  const seen = async (env: Record<string, string>) => {
    const { app } = await testApp(t, {
      seed: false,
      env,
      extend(app) {
        // Per-client limit keyed like the platform's (the address when there is no organisation).
        app.get('/v1/test/limited', { config: { roles: 'public', rateLimit: { max: 2, timeWindow: 60_000 } } }, async (request) => ({ ip: request.ip }))
      },
    })
    const call = (xff: string) => app.inject({ method: 'GET', url: '/v1/test/limited', remoteAddress: '10.0.0.5', headers: { 'x-forwarded-for': xff } })
    const a = [await call('203.0.113.7'), await call('203.0.113.7'), await call('203.0.113.7')]
    const b = await call('198.51.100.9')
    return { ips: a.map((r) => r.json().ip ?? null), statuses: [...a.map((r) => r.statusCode), b.statusCode] }
  }
  const direct = await seen({})
  t.same(direct.ips.slice(0, 2), ['10.0.0.5', '10.0.0.5'], 'no proxy trusted: the peer')
  t.same(direct.statuses, [200, 200, 429, 429], 'both clients share the load balancer’s bucket')
  const proxied = await seen({ TRUST_PROXY: '10.0.0.0/8' })
  t.same(proxied.ips.slice(0, 2), ['203.0.113.7', '203.0.113.7'], 'trusted proxy: the client')
  t.same(proxied.statuses, [200, 200, 429, 200], 'each client has its own bucket')
  const hops = await seen({ TRUST_PROXY: '1' })
  t.same(hops.ips.slice(0, 2), ['203.0.113.7', '203.0.113.7'], 'one proxy hop: the client')
  const untrusted = await seen({ TRUST_PROXY: '192.168.0.0/16' })
  t.same(untrusted.ips.slice(0, 2), ['10.0.0.5', '10.0.0.5'], 'a peer outside the list is not believed')
})

t.test('logs show the client address behind a trusted proxy', async (t) => {
  const database = await testDatabase(t)
  for (const [env, expected] of [[{}, '10.0.0.5'], [{ TRUST_PROXY: '1' }, '203.0.113.7']] as const) {
    const lines: any[] = []
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)))
        done()
      },
    })
    const app = await buildApp({ config: testConfig(env), database, background: 'off', logger: { level: 'info', stream } })
    await app.ready()
    await app.inject({ method: 'GET', url: '/health/live', remoteAddress: '10.0.0.5', headers: { 'x-forwarded-for': '203.0.113.7' } })
    await app.close()
    const incoming = lines.find((l) => l.msg === 'incoming request')
    t.equal(incoming?.req?.remoteAddress, expected, JSON.stringify(env))
  }
})

t.test('every pattern of the contract is explained in words, in French and in English', async (t) => {
  const { app } = await shared()
  const doc = (await app.inject('/openapi.json')).json()
  const patterns: Array<Record<string, any>> = []
  const walk = (n: unknown) => {
    if (Array.isArray(n)) n.forEach(walk)
    else if (n && typeof n === 'object') {
      if (typeof (n as any).pattern === 'string') patterns.push(n as Record<string, any>)
      Object.values(n).forEach(walk)
    }
  }
  walk(doc.paths)
  walk(doc.components)
  t.ok(patterns.length > 5)
  for (const schema of patterns) {
    for (const lang of ['fr', 'en'] as const) {
      const [e] = validationErrors([{ keyword: 'pattern', instancePath: '/x', params: { pattern: schema.pattern }, parentSchema: schema }], 'body', lang)
      t.notOk(e!.message.includes(schema.pattern), `${schema.pattern} (${lang}): ${e!.message}`)
      t.notMatch(e!.message, /\\[dwsS]|\^|\$/, `no regular expression shown for ${schema.pattern}`)
    }
  }
})

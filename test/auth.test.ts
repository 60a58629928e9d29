import { createServer } from 'node:http'
import { generateKeyPairSync } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { DEV_JWT_SECRET } from '../src/platform/config.ts'
import { ORG, testApp } from './helpers.ts'

const sign = (claims: Record<string, unknown>, opts: Record<string, unknown> = {}) =>
  createSigner({ key: DEV_JWT_SECRET, algorithm: 'HS256', expiresIn: 60_000, ...opts })(claims)

t.test('shared-secret mode (development)', async (t) => {
  const { app, auth } = await testApp(t)
  const get = (headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: '/v1/organisations/me', headers })

  t.test('a valid token identifies the organisation', async (t) => {
    const res = await get(auth('pharmacy', ORG.pharmacyParis))
    t.equal(res.statusCode, 200)
    t.equal(res.json().id, ORG.pharmacyParis)
  })

  t.test('no token → 401 UNAUTHENTICATED, problem+json, French', async (t) => {
    const res = await get()
    t.equal(res.statusCode, 401)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.match(res.json(), { code: 'UNAUTHENTICATED', status: 401, title: 'Authentification requise', type: '/problems/unauthenticated' })
  })

  t.test('English on request', async (t) => {
    const res = await get({ 'accept-language': 'en-GB,en;q=0.9,fr;q=0.5' })
    t.equal(res.json().title, 'Authentication required')
  })

  t.test('malformed header, bad signature, expired, missing claims → 401', async (t) => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['not bearer', { authorization: 'Basic abc' }, 'UNAUTHENTICATED'],
      ['garbage', { authorization: 'Bearer abc.def.ghi' }, 'TOKEN_INVALID'],
      ['other secret', { authorization: `Bearer ${createSigner({ key: 'x'.repeat(40), expiresIn: 60_000 })({ role: 'pharmacy', org: ORG.pharmacyParis, sub: 'u' })}` }, 'TOKEN_INVALID'],
      ['expired', { authorization: `Bearer ${sign({ role: 'pharmacy', org: ORG.pharmacyParis, sub: 'u', exp: Math.floor(Date.now() / 1000) - 10 }, { expiresIn: undefined })}` }, 'TOKEN_EXPIRED'],
      ['no org claim', { authorization: `Bearer ${sign({ role: 'pharmacy', sub: 'u' })}` }, 'TOKEN_INVALID'],
      ['no exp', { authorization: `Bearer ${sign({ role: 'pharmacy', org: ORG.pharmacyParis, sub: 'u' }, { expiresIn: undefined })}` }, 'TOKEN_INVALID'],
      ['unknown role', { authorization: `Bearer ${sign({ role: 'admin', org: ORG.pharmacyParis, sub: 'u' })}` }, 'TOKEN_INVALID'],
      ['alg none', { authorization: `Bearer ${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ role: 'pharmacy', org: ORG.pharmacyParis, sub: 'u', exp: 9999999999 })).toString('base64url')}.` }, 'TOKEN_INVALID'],
    ]
    for (const [name, headers, code] of cases) {
      const res = await get(headers)
      t.equal(res.statusCode, 401, name)
      t.equal(res.json().code, code, name)
    }
  })

  t.test('unknown organisation or a role that is not its own → 403', async (t) => {
    let res = await get({ authorization: `Bearer ${sign({ role: 'pharmacy', org: '750999990', sub: 'u' })}` })
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'ORGANISATION_NOT_REGISTERED')
    res = await get({ authorization: `Bearer ${sign({ role: 'ordre', org: ORG.pharmacyParis, sub: 'u' })}` })
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'ORGANISATION_NOT_REGISTERED')
  })

  t.test('role not allowed on the route → 403 naming the allowed roles', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/organisations', headers: auth('pharmacy', ORG.pharmacyParis) })
    t.equal(res.statusCode, 403)
    t.match(res.json(), { code: 'FORBIDDEN_ROLE', detail: /ordre, ansm/ })
  })

  t.test('a deactivated organisation is refused at once on this instance', async (t) => {
    const token = auth('pharmacy', ORG.pharmacyLyon)
    t.equal((await get(token)).statusCode, 200)
    const res = await app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.pharmacyLyon}`, headers: auth('ordre', ORG.ordre), payload: { active: false } })
    t.equal(res.statusCode, 200)
    t.equal(res.json().active, false)
    const refused = await get(token)
    t.equal(refused.statusCode, 403)
    t.equal(refused.json().code, 'ORGANISATION_NOT_REGISTERED')
  })
})

t.test('public-key mode (ES256 PEM) with issuer and audience', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const { app } = await testApp(t, { env: { JWT_PUBLIC_KEY: pem, JWT_ALGORITHMS: 'ES256', JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'portail-dp' } })
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const es = (extra: Record<string, unknown> = {}) =>
    createSigner({ key, algorithm: 'ES256', expiresIn: 60_000, iss: 'https://idp.example', aud: 'portail-dp', ...extra })({ role: 'lab', org: ORG.labArrow, sub: 'quality@arrow' })
  const call = (token: string) => app.inject({ method: 'GET', url: '/v1/organisations/me', headers: { authorization: `Bearer ${token}` } })

  t.equal((await call(es())).statusCode, 200, 'a token of the identity provider is accepted')
  t.equal((await call(es({ iss: 'https://evil.example' }))).json().code, 'TOKEN_INVALID', 'wrong issuer')
  t.equal((await call(es({ aud: 'other-api' }))).json().code, 'TOKEN_INVALID', 'wrong audience')
  const hs = sign({ role: 'lab', org: ORG.labArrow, sub: 'u' }, { iss: 'https://idp.example', aud: 'portail-dp' })
  t.equal((await call(hs)).statusCode, 401, 'a shared-secret token is refused (algorithm confusion)')
})

t.test('JWKS mode (RS256) fetches the provider’s keys', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }
  let fetched = 0
  const server = createServer((req, res) => {
    fetched++
    if (req.url === '/realms/psc/protocol/openid-connect/certs') {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ keys: [jwk] }))
    } else {
      res.statusCode = 404
      res.end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const { app } = await testApp(t, {
    env: { JWT_JWKS_URL: `${origin}/realms/psc/protocol/openid-connect/certs`, JWT_ALGORITHMS: 'RS256', JWT_ISSUER: origin, JWT_AUDIENCE: 'portail-dp' },
  })
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  const rs = (kid: string) =>
    createSigner({ key, algorithm: 'RS256', kid, expiresIn: 60_000, iss: origin, aud: 'portail-dp' })({ role: 'prescriber', org: ORG.prescriber, sub: 'dr-martin' })
  const ok = await app.inject({ method: 'GET', url: '/v1/organisations/me', headers: { authorization: `Bearer ${rs('k1')}` } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.json().role, 'prescriber')
  t.ok(fetched >= 1)
  const unknownKid = await app.inject({ method: 'GET', url: '/v1/organisations/me', headers: { authorization: `Bearer ${rs('k2')}` } })
  t.equal(unknownKid.statusCode, 401)
})

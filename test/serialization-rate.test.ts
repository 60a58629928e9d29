import t from 'tap'
import { ORG, testApp } from './helpers.ts'

const GS = '\x1d'
const dm = (serial: string) => `]d2010340094949729421${serial}${GS}10LOT-R${GS}17301231`

t.test('pack verifications and state changes are limited per organisation', async (t) => {
  const { app, auth } = await testApp(t, { env: { SERIALIZATION_RATE_PER_MINUTE: '3' } })
  const verify = (org: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/serialization/packs/verify', headers: { ...auth('pharmacy', org), ...headers }, payload: { dataMatrix: dm('R1') } })

  for (let i = 0; i < 3; i++) t.equal((await verify(ORG.pharmacyParis)).statusCode, 200, `request ${i + 1} within the rate`)
  const over = await verify(ORG.pharmacyParis)
  t.equal(over.statusCode, 429)
  t.equal(over.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.ok(Number(over.headers['retry-after']) > 0, 'Retry-After says when to retry')
  t.match(over.json(), { code: 'TOO_MANY_REQUESTS', status: 429, detail: /3 vérifications .* réessayez dans/ })
  t.match((await verify(ORG.pharmacyParis, { 'accept-language': 'en' })).json(), { detail: /went over 3 pack verifications/ })

  // A state change counts against the same organisation's rate; another organisation has its own.
  const change = await app.inject({ method: 'POST', url: '/v1/serialization/packs/state', headers: auth('pharmacy', ORG.pharmacyParis), payload: { action: 'supply', dataMatrix: dm('R1') } })
  t.equal(change.statusCode, 429)
  t.equal((await verify(ORG.pharmacyLyon)).statusCode, 200, 'another pharmacy is not limited by the first')
  // Other services are not limited.
  t.equal((await app.inject({ method: 'GET', url: '/v1/products/3400949497294', headers: auth('pharmacy', ORG.pharmacyParis) })).statusCode, 404)
})

t.test('0 turns the limit off', async (t) => {
  const { app, auth } = await testApp(t, { env: { SERIALIZATION_RATE_PER_MINUTE: '0' } })
  for (let i = 0; i < 5; i++) {
    const r = await app.inject({ method: 'POST', url: '/v1/serialization/packs/verify', headers: auth('pharmacy', ORG.pharmacyParis), payload: { dataMatrix: dm('R2') } })
    t.equal(r.statusCode, 200)
  }
})

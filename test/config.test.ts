import fc from 'fast-check'
import t from 'tap'
import { ConfigError, DEV_JWT_SECRET, loadConfig } from '../src/platform/config.ts'

t.test('defaults: embedded database, development secret, migrations and demo data on', async (t) => {
  const c = loadConfig({})
  t.equal(c.embedded, true)
  t.equal(c.PORT, 3000)
  t.equal(c.authMode, 'secret')
  t.equal(c.JWT_SECRET, DEV_JWT_SECRET)
  t.equal(c.AUTO_MIGRATE, true)
  t.equal(c.DEMO_DATA, true)
})

t.test('with DATABASE_URL, migrations and demo data are explicit', async (t) => {
  const c = loadConfig({ DATABASE_URL: 'postgres://u@h/db' })
  t.equal(c.embedded, false)
  t.equal(c.AUTO_MIGRATE, false)
  t.equal(c.DEMO_DATA, false)
  t.equal(loadConfig({ DATABASE_URL: 'postgres://u@h/db', AUTO_MIGRATE: 'true' }).AUTO_MIGRATE, true)
})

t.test('every wrong value is named in one error', async (t) => {
  try {
    loadConfig({ PORT: 'abc', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x', AUTO_MIGRATE: 'yes' })
    t.fail('should throw')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    const problems = (err as ConfigError).problems
    t.equal(problems.length, 4)
    t.match(problems.join('\n'), /PORT/)
    t.match(problems.join('\n'), /LOG_LEVEL: valeurs admises : fatal, error/)
    t.match(problems.join('\n'), /DATABASE_URL/)
    t.match(problems.join('\n'), /AUTO_MIGRATE/)
  }
})

t.test('out-of-range and too-short values', async (t) => {
  t.throws(() => loadConfig({ PORT: '70000' }), /PORT/)
  t.throws(() => loadConfig({ JWT_SECRET: 'short' }), /JWT_SECRET/)
  t.throws(() => loadConfig({ IDEMPOTENCY_TTL_HOURS: '1' }), /IDEMPOTENCY_TTL_HOURS/)
})

t.test('the pool keeps at least DATABASE_POOL_MIN connections, never more than its maximum', async (t) => {
  t.equal(loadConfig({}).DATABASE_POOL_MIN, 4)
  t.equal(loadConfig({ DATABASE_POOL_MAX: '2' }).DATABASE_POOL_MIN, 2, 'the default follows a smaller maximum')
  t.equal(loadConfig({ DATABASE_POOL_MIN: '0' }).DATABASE_POOL_MIN, 0)
  const err = t.throws(() => loadConfig({ DATABASE_POOL_MIN: '30', DATABASE_POOL_MAX: '20' })) as ConfigError
  t.match(err.problems, [/^DATABASE_POOL_MIN : au plus DATABASE_POOL_MAX \(20\) \(valeur reçue : 30\)$/])
})

t.test('whatever the two sizes, the minimum kept is the one given or refused, and never above the maximum', async () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 500 }), fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }), (max, min) => {
      const env = { DATABASE_POOL_MAX: String(max), ...(min === undefined ? {} : { DATABASE_POOL_MIN: String(min) }) }
      if (min !== undefined && min > max) {
        try {
          loadConfig(env)
        } catch (err) {
          return err instanceof ConfigError && err.problems.length === 1 && err.problems[0]!.startsWith('DATABASE_POOL_MIN : au plus DATABASE_POOL_MAX')
        }
        return false
      }
      const c = loadConfig(env)
      return c.DATABASE_POOL_MAX === max && c.DATABASE_POOL_MIN === (min ?? Math.min(4, max))
    }),
    { seed: 2026, numRuns: 300 },
  )
})

t.test('production refuses the shared secret and needs issuer and audience', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) }), /JWT_PUBLIC_KEY ou JWT_JWKS_URL/)
  t.throws(() => loadConfig({ NODE_ENV: 'production', JWT_JWKS_URL: 'https://idp.example/jwks' }), /JWT_ISSUER et JWT_AUDIENCE/)
  const prod = { NODE_ENV: 'production', JWT_JWKS_URL: 'https://idp.example/jwks', JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'portail-dp' }
  t.throws(() => loadConfig(prod), /RECEIPT_SIGNING_KEY/, 'receipts must be signed with a configured key')
  t.throws(() => loadConfig({ ...prod, RECEIPT_SIGNING_KEY: '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----' }), /SCAN_PSEUDONYM_SECRET/, 'scan pseudonyms need a configured key')
  const c = loadConfig({ ...prod, RECEIPT_SIGNING_KEY: '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----', SCAN_PSEUDONYM_SECRET: 'x'.repeat(40) })
  t.equal(c.authMode, 'jwks')
  t.same(c.JWT_ALGORITHMS, ['RS256', 'ES256'])
  t.equal(c.JWT_SECRET, undefined)
})

t.test('a public key cannot be combined with HS256 or with a JWKS', async (t) => {
  const pem = '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----'
  t.throws(() => loadConfig({ JWT_PUBLIC_KEY: pem, JWT_ALGORITHMS: 'RS256,HS256' }), /HS256 interdit/)
  t.throws(() => loadConfig({ JWT_PUBLIC_KEY: pem, JWT_JWKS_URL: 'https://idp.example/jwks' }), /l’un des deux/)
})

t.test('empty strings count as unset', async (t) => {
  t.equal(loadConfig({ DATABASE_URL: '', PORT: '' }).embedded, true)
})

import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { buildApp } from '../src/app.ts'
import { seedDemoOrganisations } from '../src/demo/seed.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { migrateToLatest } from '../src/platform/db/migrate.ts'
import { isDatabaseUnavailable } from '../src/platform/errors.ts'
import { signDevToken } from '../src/platform/tokens.ts'
import { ORG, testApp, testConfig } from './helpers.ts'

/**
 * A database restart under load. The machine's shared PostgreSQL is never touched: the test starts a private
 * PostgreSQL 15 instance of its own (initdb and pg_ctl, in a temporary folder, on a free port) and restarts that.
 * Skipped when those binaries are not installed (PG_BIN names another folder).
 */
const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'
const run = promisify(execFile)

t.test('connection failures are recognised wherever node-postgres puts them', async (t) => {
  const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code })
  for (const code of ['ECONNREFUSED', 'ECONNRESET', '57P01', '57P02', '57P03', '08006', '08001', '53300']) t.ok(isDatabaseUnavailable(coded(code)), code)
  t.ok(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect')), 'pool timeout')
  t.ok(isDatabaseUnavailable(new Error('Connection terminated unexpectedly')), 'connection lost mid-query')
  t.ok(isDatabaseUnavailable(new AggregateError([coded('ECONNREFUSED')], 'connect failed')), 'inside an AggregateError')
  t.ok(isDatabaseUnavailable(new Error('wrapped', { cause: coded('57P01') })), 'as a cause')
  for (const code of ['23505', '23503', '40001', '22P02', '42P01']) t.notOk(isDatabaseUnavailable(coded(code)), `${code} is not an outage`)
  t.notOk(isDatabaseUnavailable(new Error('boom')))
})

t.test('a write that fails because the database is away stays a 503 problem even when its idempotency key cannot be freed', async (t) => {
  const unreachable = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
  const { app, auth } = await testApp(t, {
    extend: (app) =>
      app.post('/v1/test-outage', { config: { roles: ['pharmacy'] } }, async () => {
        // The database goes away after the key was claimed: the write fails, and so does freeing the key.
        const db = app.db as unknown as { deleteFrom: (table: string) => unknown }
        const real = db.deleteFrom
        db.deleteFrom = function (table: string) {
          if (table !== 'idempotency_keys') return real.call(this, table)
          db.deleteFrom = real
          return { where: () => ({ where: () => ({ execute: () => Promise.reject(unreachable()) }) }) }
        }
        throw unreachable()
      }),
  })
  const res = await app.inject({ method: 'POST', url: '/v1/test-outage', headers: { ...auth('pharmacy', ORG.pharmacyParis), 'idempotency-key': 'outage-key-0001' }, payload: {} })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '5')
  t.match(res.json(), { code: 'SERVICE_UNAVAILABLE', type: '/problems/service_unavailable' })
  t.notMatch(res.body, /ECONNREFUSED|5432/, 'no internals')
})

async function freePort() {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

/** A private PostgreSQL: runs its commands as the postgres user when the test runs as root (initdb refuses root). */
async function privatePostgres(t: { teardown(fn: () => unknown): void }) {
  const dir = await mkdtemp(path.join(tmpdir(), 'dp-pg-outage-'))
  const asRoot = process.getuid?.() === 0
  if (asRoot) await chown(dir, Number((await run('id', ['-u', 'postgres'])).stdout.trim()), Number((await run('id', ['-g', 'postgres'])).stdout.trim()))
  const cmd = (bin: string, args: string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', path.join(BIN, bin), ...args]) : run(path.join(BIN, bin), args))
  const data = path.join(dir, 'data')
  const port = await freePort()
  await cmd('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'])
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`
  const start = () => cmd('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start'])
  const stop = (mode: 'fast' | 'immediate') => cmd('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop'])
  await start()
  t.teardown(async () => {
    await stop('immediate').catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, start, stop }
}

interface Answer {
  at: number
  route: string
  status?: number
  retryAfter?: string
  code?: string
  reason?: string
  error?: string
}

t.test('a database restart under load: only 2xx and 503 with Retry-After; readiness says so; it recovers by itself', { skip: existsSync(path.join(BIN, 'initdb')) ? false : `no PostgreSQL binaries in ${BIN} (set PG_BIN)` }, async (t) => {
  const pg = await privatePostgres(t)
  const database = await createDatabase({ databaseUrl: pg.url, poolMax: 8, connectTimeoutMs: 1000, onConnectionError: () => {} })
  await migrateToLatest(database.db)
  await seedDemoOrganisations(database.db)
  const config = testConfig({ DATABASE_URL: pg.url })
  const app = await buildApp({ config, database, background: 'manual-jobs' })
  t.teardown(async () => {
    await app.close()
    await database.close()
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const auth = (role: 'pharmacy' | 'lab', org: string) => ({ authorization: `Bearer ${signDevToken(config, { role, org })}` })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => agent.destroy())

  const answers: Answer[] = []
  const call = (route: string, method: string, url: string, headers: Record<string, string>, body?: unknown) =>
    new Promise<Answer>((resolve) => {
      const at = performance.now()
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const req = http.request(`${base}${url}`, { method, agent, headers: payload ? { ...headers, 'content-type': 'application/json' } : headers }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (text += c))
        res.on('end', () => {
          const json = res.headers['content-type']?.includes('json') ? JSON.parse(text || 'null') : null
          resolve({ at, route, status: res.statusCode, retryAfter: res.headers['retry-after'] as string | undefined, code: json?.code, reason: json?.reason })
        })
      })
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ at, route, error: err.code ?? err.message }))
      req.end(payload)
    })
  // Reads and writes of several kinds: the feed (read + write), read receipts (a write with an idempotency key),
  // an organisation lookup, readiness.
  const kinds = [
    () => call('feed', 'GET', '/v1/feed?after=0&limit=5', auth('pharmacy', ORG.pharmacyParis)),
    () => call('read', 'POST', '/v1/feed/read', { ...auth('pharmacy', ORG.pharmacyLyon), 'idempotency-key': `k-${Math.random()}` }, { eventIds: ['0b7e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e'] }),
    () => call('organisation', 'GET', `/v1/organisations/${ORG.labArrow}`, auth('lab', ORG.labArrow)),
    () => call('ready', 'GET', '/health/ready', {}),
  ]
  let stopping = false
  const worker = async (n: number) => {
    for (let i = n; !stopping; i++) {
      answers.push(await kinds[i % kinds.length]!())
      await new Promise((r) => setTimeout(r, 5))
    }
  }
  const workers = Array.from({ length: 6 }, (_, n) => worker(n))

  await new Promise((r) => setTimeout(r, 1500))
  const restartAt = performance.now()
  await pg.stop('fast') // active connections get 57P01, new ones are refused
  await new Promise((r) => setTimeout(r, 2000))
  await pg.start()
  const upAt = performance.now()
  // Wait until every kind of request has succeeded again, a few times over.
  const deadline = upAt + 30_000
  const recovered = () => kinds.every((_, k) => answers.filter((a) => a.at > upAt && a.status !== undefined && a.status < 300 && a.route === ['feed', 'read', 'organisation', 'ready'][k]).length >= 3)
  while (!recovered() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  stopping = true
  await Promise.all(workers)

  const during = answers.filter((a) => a.at >= restartAt && a.at < upAt)
  const statuses = [...new Set(answers.map((a) => a.error ?? String(a.status)))].sort()
  const unavailable = answers.filter((a) => a.status === 503)
  t.comment(`${answers.length} requests; ${during.length} while the database was stopped; statuses ${statuses.join(', ')}; ${unavailable.length} × 503; recovered ${recovered() ? `${Math.round(answers.find((a) => a.at > upAt && a.status === 200 && a.route === 'feed')!.at - upAt)} ms after the restart` : 'not within 30 s'}`)

  t.same(
    answers.filter((a) => a.error || !a.status || (a.status >= 300 && a.status !== 503)),
    [],
    'only 2xx and 503: no 500, no reset',
  )
  t.ok(unavailable.length > 0, 'the outage was seen')
  t.same(unavailable.filter((a) => a.retryAfter !== '5' || a.code !== 'SERVICE_UNAVAILABLE'), [], '503 SERVICE_UNAVAILABLE with Retry-After')
  t.ok(unavailable.some((a) => a.route === 'ready' && a.reason === 'database'), 'readiness said the database was away')
  t.ok(unavailable.some((a) => a.route !== 'ready'), 'API requests too')
  t.ok(recovered(), 'every kind of request succeeds again, without a restart of the service')
})

import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, rename, writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import pg from 'pg'
import { buildApp } from '../src/app.ts'
import { observeContract } from './contract-observer.ts'
import { type Config, loadConfig } from '../src/platform/config.ts'
import { createDatabase, type DatabaseHandle } from '../src/platform/db/index.ts'
import type { Role } from '../src/platform/db/schema.ts'
import { MIGRATIONS_DIR, migrateToLatest, migrator } from '../src/platform/db/migrate.ts'
import { signDevToken } from '../src/platform/tokens.ts'
import { seedDemoOrganisations } from '../src/demo/seed.ts'

interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * A fresh, migrated database for one test file: a new PostgreSQL database when DATABASE_URL is set,
 * otherwise an in-memory embedded one. Dropped at the end of the file, so files run in parallel.
 */
export async function testDatabase(t: Teardown, opts: { upTo?: string; poolMin?: number } = {}): Promise<DatabaseHandle> {
  const { handle, drop } = await createTestDatabase(opts.upTo, opts.poolMin)
  t.teardown(drop)
  return handle
}

/**
 * `upTo`: stop after that migration (a test of a migration starts from the schema before it). `poolMin`: the
 * pool's kept connections, on PostgreSQL (none by default).
 */
async function createTestDatabase(upTo?: string, poolMin = 0): Promise<{ handle: DatabaseHandle; drop: () => Promise<void> }> {
  const url = process.env.DATABASE_URL
  const migrate = async (db: DatabaseHandle['db']) => {
    if (!upTo) return void (await migrateToLatest(db))
    const r = await migrator(db).migrateTo(upTo)
    if (r.error) throw r.error
  }
  if (!url) {
    const handle = await createDatabase({ pgliteDir: 'memory://', ...(upTo ? {} : { pgliteLoadDataDir: await migratedTemplate() }) })
    await migrate(handle.db) // nothing to do when the template is current; kept as a guard
    return { handle, drop: () => handle.close() }
  }
  const name = `t_${process.pid}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  try {
    await admin.query(upTo ? `create database ${name}` : `create database ${name} template ${await migratedTemplateDatabase(admin, url)}`)
  } finally {
    await admin.end()
  }
  const handle = await createDatabase({ databaseUrl: databaseUrl(url, name), poolMax: 10, poolMin, onConnectionError: () => {} })
  await migrate(handle.db) // nothing to do when copied from the template; kept as a guard
  return {
    handle,
    drop: async () => {
      await handle.close()
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.end()
    },
  }
}

/**
 * An embedded database already migrated, as a dump of its data folder: starting one from it takes about a quarter
 * of the time of an empty one plus the migrations (initdb dominates), and every test file starts several. Made
 * once per set of migrations and PGlite version, kept in the temporary folder for the other test processes.
 */
let template: Promise<Blob> | undefined
function migratedTemplate(): Promise<Blob> {
  template ??= (async () => {
    const root = fileURLToPath(new URL('..', import.meta.url))
    const pglite = await readFile(path.join(root, 'node_modules/@electric-sql/pglite/package.json')).catch(() => Buffer.from('unknown'))
    const file = path.join(tmpdir(), `portail-dp-pglite-${await migrationsKey(pglite)}.tar`)
    const cached = await readFile(file).catch(() => null)
    if (cached) return new Blob([cached])
    const fresh = await createDatabase({ pgliteDir: 'memory://' })
    await migrateToLatest(fresh.db)
    const dump = await fresh.pglite!.dumpDataDir('none')
    await fresh.close()
    // Written aside then renamed: test processes starting together never read a half-written file.
    const partial = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`
    await writeFile(partial, Buffer.from(await dump.arrayBuffer()))
    await rename(partial, file)
    return dump
  })()
  return template
}

/** Names the migrations' current contents (and whatever else is given): a template made from others is not used. */
async function migrationsKey(...more: Buffer[]): Promise<string> {
  const key = createHash('sha256')
  for (const m of more) key.update(m)
  for (const name of (await readdir(MIGRATIONS_DIR)).sort()) key.update(name).update(await readFile(path.join(MIGRATIONS_DIR, name)))
  return key.digest('hex').slice(0, 20)
}

function databaseUrl(serverUrl: string, name: string): string {
  const u = new URL(serverUrl)
  u.pathname = `/${name}`
  return u.toString()
}

/**
 * The PostgreSQL counterpart of the embedded template: a migrated database each test file's database is copied from
 * (CREATE DATABASE … TEMPLATE), in a quarter of the time the migrations take, and less under load. Made by the first
 * test process that needs it while the others wait on an advisory lock, under a temporary name until complete, and
 * kept on the server for later runs (`tpl_portail_dp_*`: dropping it is harmless).
 */
async function migratedTemplateDatabase(admin: pg.Client, url: string): Promise<string> {
  const name = `tpl_portail_dp_${await migrationsKey()}`
  const exists = async () => (await admin.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1
  if (await exists()) return name
  await admin.query(`select pg_advisory_lock(hashtext('portail-dp test template'))`)
  try {
    if (await exists()) return name
    const building = `${name}_building`
    await admin.query(`drop database if exists ${building} with (force)`) // left by a run that was stopped
    await admin.query(`create database ${building}`)
    const handle = await createDatabase({ databaseUrl: databaseUrl(url, building), poolMax: 2, poolMin: 0, onConnectionError: () => {} })
    try {
      await migrateToLatest(handle.db)
    } finally {
      await handle.close() // a template cannot be copied while anyone is connected to it
    }
    await admin.query(`alter database ${building} rename to ${name}`)
    return name
  } finally {
    await admin.query(`select pg_advisory_unlock(hashtext('portail-dp test template'))`)
  }
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ NODE_ENV: 'test', MAX_EVENT_LOOP_DELAY_MS: '0', LOG_LEVEL: 'silent', FAX_SPOOL_DIR: path.join(tmpdir(), `fax-spool-${process.pid}`), ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}), ...env })
}

export interface TestContext {
  app: FastifyInstance
  database: DatabaseHandle
  config: Config
  /** A bearer header for the given organisation (demo organisations are loaded). */
  auth(role: Role, org: string, user?: string): { authorization: string }
  clock: { now: Date; advance(ms: number): void }
}

export const ORG = {
  ansm: 'ANSM',
  ordre: 'ORDRE',
  ministry: 'MINISTERE',
  labArrow: '301234563', // subscribed
  labBiogaran: '412345670', // subscribed
  labViatris: '523456788', // subscribed
  labAccord: '634567895', // not subscribed
  pharmacyParis: '750100010',
  pharmacyLyon: '690100020',
  pharmacyAjaccio: '2A0100040',
  pharmacyGuadeloupe: '971100050',
  wholesaler: '920100070',
  hospital: '750100080',
  prescriber: '10001234565',
  prescriber2: '10002345675',
} as const

/** The app over a fresh database with the demo organisations, and an injectable clock. */
export async function testApp(
  t: Teardown,
  opts: { env?: Record<string, string>; seed?: boolean; extend?: (app: FastifyInstance) => void } = {},
): Promise<TestContext> {
  const { handle: database, drop } = await createTestDatabase()
  if (opts.seed !== false) await seedDemoOrganisations(database.db)
  const config = testConfig(opts.env)
  const clock = {
    now: new Date(),
    advance(ms: number) {
      clock.now = new Date(clock.now.getTime() + ms)
    },
  }
  const app = await buildApp({ config, database, now: () => clock.now, background: 'manual-jobs' })
  opts.extend?.(app)
  const contract = observeContract(app)
  // One teardown, in order: the app (its streams, listener and pool users) before its database.
  t.teardown(async () => {
    const undeclared = contract.undeclared()
    await app.close()
    await drop()
    if (undeclared.length) throw new Error(`answers the contract does not declare:\n${undeclared.join('\n')}`)
  })
  await app.ready()
  return {
    app,
    database,
    config,
    clock,
    auth: (role, org, user) => ({ authorization: `Bearer ${signDevToken(config, { role, org, sub: user ?? `${role}-user` })}` }),
  }
}

export { sql }

/** An HTTP/2 connection (prior knowledge, no TLS) to a listening app, once it is established. */
export function connectHttp2(url: string, createConnection?: () => Socket) {
  return new Promise<http2.ClientHttp2Session>((resolve, reject) => {
    const session = http2.connect(url, createConnection ? { createConnection } : {})
    session.once('connect', () => resolve(session))
    session.once('error', reject)
  })
}

/** One request on an HTTP/2 connection: its status, headers (without `:status`) and body as text. */
export function http2Request(session: http2.ClientHttp2Session, method: string, path: string, headers: Record<string, string>, body?: string | Buffer) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    // Node ends a GET's stream with its headers unless told: a GET may carry a (hostile) body here.
    const stream = session.request({ ':method': method, ':path': path, ...headers }, { endStream: body === undefined })
    const chunks: Buffer[] = []
    let head: http2.IncomingHttpHeaders = {}
    stream.on('response', (h) => (head = h))
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => {
      const { ':status': status, ...rest } = head
      resolve({ status: Number(status), headers: rest, body: Buffer.concat(chunks).toString('utf8') })
    })
    stream.on('error', reject)
    if (body !== undefined) stream.end(body)
  })
}

/**
 * Reads a Server-Sent Events text as it arrives: calls `onBlock` with each block's fields (`id`, `event`, `data`,
 * `retry`; comment lines dropped) once its blank line has come.
 */
export function sseBlocks(onBlock: (fields: Record<string, string>) => void) {
  let buffer = ''
  return (chunk: string) => {
    buffer += chunk
    let i
    while ((i = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, i)
      buffer = buffer.slice(i + 2)
      const lines = block.split('\n').filter((l) => !l.startsWith(':') && l.includes(': '))
      onBlock(Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)])))
    }
  }
}

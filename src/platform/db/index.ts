import { mkdirSync } from 'node:fs'
import { PGlite, types as pgliteTypes } from '@electric-sql/pglite'
import { CompiledQuery, Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { DB } from './schema.ts'
import { NamingClient } from './named.ts'
import { PGliteDialect } from './pglite-dialect.ts'

export type Database = Kysely<DB>

export interface DatabaseHandle {
  db: Database
  kind: 'postgres' | 'pglite'
  /** The embedded instance, when kind is 'pglite' (LISTEN/NOTIFY, tests). */
  pglite?: PGlite
  /** The pool, when kind is 'postgres'. */
  pool?: pg.Pool
  /** The connection string, when kind is 'postgres' (the notification listener opens its own connection). */
  connectionString?: string
  /**
   * Runs a hot-path query as a named prepared statement on PostgreSQL, so that it is planned once per
   * connection instead of on every call (a join of a few tables costs more to plan than to run): on connections
   * of their own, which always use the generic plan (see createDatabase). On the embedded database it goes
   * through Kysely's connection lock like any query.
   */
  prepared<R>(name: string, sql: string, params: unknown[]): Promise<R[]>
  /** The general pool's connections: open (total), idle, requests waiting for one, and the maximum (metrics). */
  usage(): { total: number; idle: number; waiting: number; max: number }
  /**
   * Statements sent since the start, BEGIN and COMMIT included: by the general pool, and by the counter's
   * (prepared()). Round trips per request are what the hot paths are made of: the bench prints them per scenario,
   * so that one more shows. On the embedded database every statement counts as the general pool's.
   */
  statements(): { general: number; counter: number }
  close(): Promise<void>
}

const INT8 = 20
const DATE = 1082

// Same JavaScript values on both drivers: bigint columns as numbers (our sequences stay far below 2^53),
// DATE as 'YYYY-MM-DD' strings (no time-zone shift), timestamptz as Date.
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8) return (v: string) => Number(v)
    if (oid === DATE) return (v: string) => v
    return pg.types.getTypeParser(oid, format)
  },
}

export interface DatabaseOptions {
  databaseUrl?: string | undefined
  /** Folder of the embedded database; 'memory://' for a throw-away one. */
  pgliteDir?: string
  /** Start the embedded database from this dump of a data folder (PGlite's dumpDataDir) instead of an empty one. */
  pgliteLoadDataDir?: Blob
  poolMax?: number
  /** Connections opened at once and kept when idle (pg closes idle ones after 10 s, down to this). Default 0. */
  poolMin?: number
  /** Longest wait for a pooled connection (ms); the query then fails, and the request answers 503. */
  connectTimeoutMs?: number
  /** Told when a connection fails outside a query: an idle pooled one, or one opened at start (logged by the server). */
  onConnectionError?: (err: Error) => void
}

export async function createDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const max = options.poolMax ?? 20
    // The error listeners of both pools: an idle connection closed by the server (restart, failover) emits on the
    // pool; without a listener it would end the process, and the pool drops it and opens a new one on the next
    // query. A connection lent out (a transaction between two queries) has no listener of the pool's: the server
    // ending it then (57P01) would be an uncaught exception; the transaction's next query fails instead (answered
    // 503), and the pool drops the connection when it comes back.
    const newPool = (config: pg.PoolConfig) => {
      const p = new pg.Pool({ connectionString: options.databaseUrl, types: pgTypes, connectionTimeoutMillis: options.connectTimeoutMs ?? 5000, ...config })
      p.on('error', (err) => options.onConnectionError?.(err))
      p.on('connect', (client) => client.on('error', (err) => options.onConnectionError?.(err)))
      return p
    }
    // NamingClient: the statements given to executeNamed (named.ts) are sent as named prepared statements.
    // Each pool's clients count what they send (statements()): every statement of Kysely, of its transactions and
    // of prepared() goes through a client's query().
    const counts = { general: 0, counter: 0 }
    const counting = (Base: typeof pg.Client, pool: keyof typeof counts) =>
      class extends Base {
        override query(...args: any[]): any {
          counts[pool]++
          return (super.query as any)(...args)
        }
      }
    const min = Math.min(options.poolMin ?? 0, max)
    const pool = newPool({ max, min, Client: counting(NamingClient, 'general') })
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) })
    // The hot path's named statements (prepared()) run on connections of their own, set to always use the generic
    // plan. Their parameters are mostly arrays (a batch of scans): by default PostgreSQL compares the generic plan
    // with custom ones that know each array's length, finds the custom ones cheaper, and so plans every call again
    // (measured with pg_stat_statements: 0.3-0.8 ms of planning per call, as much as the execution). On the general
    // pool the setting would also reach Kysely's unnamed statements, whose plans may need the values (optional
    // filters): it is not set there. Half the general pool's size: the batchers keep few statements in flight.
    const hotMin = Math.ceil(min / 2)
    const hot = newPool({ max: Math.max(2, Math.ceil(max / 2)), min: hotMin, options: '-c plan_cache_mode=force_generic_plan', Client: counting(pg.Client, 'counter') })
    // pg opens connections only on demand: without this, the first requests after a start (or after a quiet spell)
    // each wait for a connection to be opened. A database that cannot be reached now is reported, not fatal: the
    // pool opens connections again on the next query, and readiness says what it finds.
    await Promise.all([warm(pool, min), warm(hot, hotMin)]).catch((err: Error) => options.onConnectionError?.(err))
    return {
      db,
      kind: 'postgres',
      pool,
      connectionString: options.databaseUrl,
      prepared: async <R>(name: string, text: string, values: unknown[]) => (await hot.query<R & pg.QueryResultRow>({ name, text, values })).rows,
      usage: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max }),
      statements: () => ({ ...counts }),
      close: once(async () => {
        await Promise.all([db.destroy(), hot.end()])
      }),
    }
  }
  const dir = options.pgliteDir ?? 'memory://'
  if (!dir.includes('://')) mkdirSync(dir, { recursive: true })
  const pglite = await PGlite.create(dir, {
    ...(options.pgliteLoadDataDir ? { loadDataDir: options.pgliteLoadDataDir } : {}),
    parsers: { [pgliteTypes.DATE]: (v: string) => v, [pgliteTypes.INT8]: (v: string) => Number(v) },
  })
  const dialect = new PGliteDialect(pglite)
  const db = new Kysely<DB>({ dialect })
  return {
    db,
    kind: 'pglite',
    pglite,
    prepared: async <R>(_name: string, text: string, values: unknown[]) => (await db.executeQuery<R>(CompiledQuery.raw(text, values))).rows,
    usage: () => dialect.usage(),
    statements: () => ({ general: dialect.statements, counter: 0 }),
    close: once(async () => {
      await db.destroy()
      await pglite.close()
    }),
  }
}

async function warm(pool: pg.Pool, n: number) {
  const clients = await Promise.allSettled(Array.from({ length: n }, () => pool.connect()))
  for (const c of clients) if (c.status === 'fulfilled') c.value.release()
  const failed = clients.find((c) => c.status === 'rejected')
  if (failed) throw failed.reason
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined
  return () => (done ??= fn())
}

import type { PGlite } from '@electric-sql/pglite'
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
} from 'kysely'

/**
 * Kysely dialect for the embedded PGlite database. Written here (about 60 lines) because the published
 * adapters pin old PGlite versions or pull in a code generator. PGlite has a single connection: a
 * mutex hands it to one Kysely connection (and so one transaction) at a time.
 */
export class PGliteDialect implements Dialect {
  private driver: PGliteDriver | undefined
  constructor(private readonly pglite: PGlite) {}
  /** Statements sent since the start, BEGIN and COMMIT included (metrics). */
  get statements() {
    return this.driver?.statements ?? 0
  }
  /** The single connection as a pool of one (metrics). */
  usage() {
    const busy = this.driver?.busy ?? false
    return { total: 1, idle: busy ? 0 : 1, waiting: this.driver?.waiting ?? 0, max: 1 }
  }
  createAdapter() {
    return new PostgresAdapter()
  }
  createDriver(): Driver {
    return (this.driver = new PGliteDriver(this.pglite))
  }
  createIntrospector(db: Kysely<any>) {
    return new PostgresIntrospector(db)
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler()
  }
}

class PGliteDriver implements Driver {
  private queue: Promise<void> = Promise.resolve()
  private readonly connection: PGliteConnection
  private releaseCurrent: (() => void) | undefined
  busy = false
  waiting = 0
  statements = 0

  constructor(pglite: PGlite) {
    this.connection = new PGliteConnection(pglite, () => this.statements++)
  }
  async init() {}
  async acquireConnection(): Promise<DatabaseConnection> {
    let release!: () => void
    const next = new Promise<void>((resolve) => (release = resolve))
    const previous = this.queue
    this.queue = previous.then(() => next)
    this.waiting++
    await previous
    this.waiting--
    this.busy = true
    this.releaseCurrent = release
    return this.connection
  }
  async beginTransaction(conn: DatabaseConnection) {
    await conn.executeQuery(CompiledQuery.raw('begin'))
  }
  async commitTransaction(conn: DatabaseConnection) {
    await conn.executeQuery(CompiledQuery.raw('commit'))
  }
  async rollbackTransaction(conn: DatabaseConnection) {
    await conn.executeQuery(CompiledQuery.raw('rollback'))
  }
  async releaseConnection() {
    const release = this.releaseCurrent
    this.releaseCurrent = undefined
    this.busy = false
    release?.()
  }
  async destroy() {
    // The owner of the PGlite instance closes it (see db/index.ts).
  }
}

class PGliteConnection implements DatabaseConnection {
  constructor(
    private readonly pglite: PGlite,
    private readonly counted: () => void,
  ) {}
  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    this.counted()
    const result = await this.pglite.query<R>(query.sql, query.parameters as unknown[])
    return {
      rows: result.rows,
      ...(result.affectedRows !== undefined ? { numAffectedRows: BigInt(result.affectedRows) } : {}),
    }
  }
  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('Streaming queries are not supported on the embedded database')
  }
}

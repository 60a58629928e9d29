import type { PGlite } from '@electric-sql/pglite'
import type { FastifyBaseLogger } from 'fastify'
import pg from 'pg'
import type { DatabaseHandle } from '../db/index.ts'

export type Listener = (payload: string) => void

/**
 * LISTEN/NOTIFY for both databases. On PostgreSQL a dedicated connection (outside the pool) listens and
 * reconnects after a failure; every instance sharing the database is woken. On the embedded database,
 * notifications stay inside the process.
 */
export interface Notifier {
  listen(channel: string, fn: Listener): Promise<void>
  close(): Promise<void>
}

export function createNotifier(database: DatabaseHandle, log: FastifyBaseLogger): Notifier {
  if (database.kind === 'pglite') return new PGliteNotifier(database.pglite!)
  return new PgNotifier(database.connectionString!, log)
}

class PGliteNotifier implements Notifier {
  private readonly unsubscribers: Array<() => Promise<void>> = []
  constructor(private readonly pglite: PGlite) {}
  async listen(channel: string, fn: Listener) {
    this.unsubscribers.push(await this.pglite.listen(channel, fn))
  }
  async close() {
    for (const u of this.unsubscribers) await u().catch(() => {})
  }
}

class PgNotifier implements Notifier {
  private client: pg.Client | undefined
  private readonly channels = new Map<string, Listener[]>()
  private closed = false
  private connecting: Promise<void> | undefined

  constructor(
    private readonly connectionString: string,
    private readonly log: FastifyBaseLogger,
  ) {}

  async listen(channel: string, fn: Listener) {
    const list = this.channels.get(channel) ?? []
    list.push(fn)
    this.channels.set(channel, list)
    await this.connect()
    if (list.length === 1) await this.client!.query(`listen ${pg.escapeIdentifier(channel)}`)
  }

  private connect(): Promise<void> {
    if (this.client) return Promise.resolve()
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.connectionString })
      client.on('notification', (n) => {
        for (const fn of this.channels.get(n.channel) ?? []) fn(n.payload ?? '')
      })
      client.on('error', (err) => {
        this.log.warn({ err }, 'notification connection lost; reconnecting')
        this.client = undefined
        if (!this.closed) setTimeout(() => void this.reconnect(), 1000).unref()
      })
      await client.connect()
      this.client = client
    })().finally(() => (this.connecting = undefined))
    return this.connecting
  }

  private async reconnect() {
    try {
      await this.connect()
      for (const channel of this.channels.keys()) await this.client!.query(`listen ${pg.escapeIdentifier(channel)}`)
      // Anything published while disconnected: listeners treat an empty payload as "look again".
      for (const fns of this.channels.values()) for (const fn of fns) fn('')
    } catch (err) {
      this.log.warn({ err }, 'notification reconnection failed; retrying')
      this.client = undefined
      if (!this.closed) setTimeout(() => void this.reconnect(), 2000).unref()
    }
  }

  async close() {
    this.closed = true
    await this.client?.end().catch(() => {})
  }
}

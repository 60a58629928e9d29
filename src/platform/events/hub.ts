import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { DB } from '../db/schema.ts'
import type { Metrics } from '../metrics.ts'
import { eventFields, type FeedItem, markDelivered } from './feed.ts'
import type { Notifier } from './notifier.ts'
import { CHANNEL_PUBLISHED, CHANNEL_SEQUENCED, registerLocalSequencer } from './publish.ts'
import { sequence } from './sequencer.ts'

export interface Subscriber {
  orgId: string
  /** Receives new items in feed order. Must not block: it queues or drops the connection. */
  push(items: FeedItem[]): void
  /** Ends the connection (shutdown, drain): the client reconnects to another instance and resumes. */
  end(): void
}

/** Deliveries read at once by a hub. */
const FETCH_PAGE = 20_000

/**
 * Per-instance dispatcher. A committed publication notifies every instance; each runs the sequencer (one at a
 * time across instances), and the sequencer's commit notifies every instance again with the last position.
 * The hub then reads the newly sequenced deliveries once and hands each to the streams and long-polls of its
 * organisation on this instance. The database is the truth: a missed notification only delays delivery until
 * the next sweep (every second).
 */
export class Hub {
  private readonly subscribers = new Map<string, Set<Subscriber>>()
  private readonly waiters = new Map<string, Set<() => void>>()
  private lastPos = 0
  private sweepTimer: NodeJS.Timeout | undefined
  private pendingDelivered: number[] = []
  private deliveredTimer: NodeJS.Timeout | undefined
  private sequencing: Promise<void> | undefined
  private sequenceAgain = false
  private fetching: Promise<void> | undefined
  private fetchAgain = false
  private closed = false
  private drainingSince: Date | undefined

  constructor(
    private readonly db: Kysely<DB>,
    private readonly notifier: Notifier,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => Date,
    private readonly metrics?: Metrics,
  ) {}

  /**
   * The instance is stopping: streams end (each tells its client to reconnect), waiting long-polls return what
   * they have, and new long-polls do not wait. Sequencing and dispatch go on until close().
   */
  drain() {
    this.drainingSince ??= this.now()
    for (const set of this.subscribers.values()) for (const s of [...set]) s.end()
    for (const set of this.waiters.values()) for (const wake of [...set]) wake()
  }

  get draining() {
    return this.drainingSince !== undefined
  }

  async start() {
    const row = await this.db.selectFrom('feed_sequence').select('last_pos').where('id', '=', 1).executeTakeFirst()
    this.lastPos = row?.last_pos ?? 0
    await this.notifier.listen(CHANNEL_PUBLISHED, () => this.runSequencer())
    registerLocalSequencer(this.db, this.wakeSequencer, true)
    await this.notifier.listen(CHANNEL_SEQUENCED, () => this.fetch())
    const sweep = () => {
      if (this.closed) return
      this.runSequencer()
      this.fetch()
      this.sweepTimer = setTimeout(sweep, 1000).unref()
    }
    this.sweepTimer = setTimeout(sweep, 1000).unref()
    this.runSequencer() // events committed while no instance was running
  }

  /** Publications committed on this instance wake its sequencer directly (publish.ts). */
  private readonly wakeSequencer = () => void this.runSequencer()

  async close() {
    this.closed = true
    registerLocalSequencer(this.db, this.wakeSequencer, false)
    clearTimeout(this.sweepTimer)
    clearTimeout(this.deliveredTimer)
    await this.sequencing
    await this.fetching
    await this.flushDelivered()
    for (const set of this.subscribers.values()) for (const s of [...set]) s.end()
    for (const set of this.waiters.values()) for (const wake of [...set]) wake()
    await this.notifier.close()
  }

  subscribe(s: Subscriber): () => void {
    const set = this.subscribers.get(s.orgId) ?? new Set()
    set.add(s)
    this.subscribers.set(s.orgId, set)
    return () => {
      set.delete(s)
      if (set.size === 0) this.subscribers.delete(s.orgId)
    }
  }

  get connections() {
    let n = 0
    for (const set of this.subscribers.values()) n += set.size
    return n
  }

  /** Long-polls waiting on this instance. */
  get waiting() {
    let n = 0
    for (const set of this.waiters.values()) n += set.size
    return n
  }

  /** Resolves when something new arrives for the organisation, or after ms (at once when draining). */
  wait(orgId: string, ms: number): Promise<void> {
    if (this.draining) return Promise.resolve()
    return new Promise((resolve) => {
      const set = this.waiters.get(orgId) ?? new Set()
      const done = () => {
        clearTimeout(timer)
        set.delete(done)
        if (set.size === 0) this.waiters.delete(orgId)
        resolve()
      }
      const timer = setTimeout(done, ms)
      set.add(done)
      this.waiters.set(orgId, set)
    })
  }

  /** Streams report what they wrote; the delivery records are updated in batches. */
  delivered(positions: number[]) {
    for (const p of positions) this.pendingDelivered.push(p)
    this.deliveredTimer ??= setTimeout(() => {
      this.deliveredTimer = undefined
      void this.flushDelivered()
    }, 200)
  }

  private async flushDelivered() {
    const batch = this.pendingDelivered
    this.pendingDelivered = []
    for (let i = 0; i < batch.length; i += 5000) {
      await markDelivered(this.db, batch.slice(i, i + 5000), 'stream', this.now()).catch((err) => this.log.warn({ err }, 'could not record stream deliveries'))
    }
  }

  /** Runs the sequencer now; calls during a run coalesce into one more run. Exposed for tests and publishers. */
  runSequencer(): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.sequencing) {
      this.sequenceAgain = true
      return this.sequencing
    }
    this.sequencing = (async () => {
      do {
        this.sequenceAgain = false
        try {
          const r = await sequence(this.db, this.now())
          if (this.metrics && r.assigned > 0) {
            this.metrics.feedPositions.inc(r.assigned)
            const now = this.now().getTime()
            for (const e of r.published) this.metrics.feedLag.observe(Math.max(0, (now - e.at.getTime()) / 1000))
          }
        } catch (err) {
          if (!this.closed) this.log.error({ err }, 'sequencer failed')
        }
      } while (this.sequenceAgain && !this.closed)
    })().finally(() => (this.sequencing = undefined))
    return this.sequencing
  }

  /** Reads what was sequenced since the last read and dispatches it. */
  fetch(): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.fetching) {
      this.fetchAgain = true
      return this.fetching
    }
    this.fetching = (async () => {
      do {
        this.fetchAgain = false
        try {
          await this.fetchOnce()
        } catch (err) {
          if (!this.closed) this.log.error({ err }, 'feed dispatch failed')
        }
      } while (this.fetchAgain && !this.closed)
    })().finally(() => (this.fetching = undefined))
    return this.fetching
  }

  private async fetchOnce() {
    // Page after page; a page shorter than the limit was the last one (what is sequenced after this read notifies
    // again, and fetch() runs once more), so a wake-up costs one read, not a second that finds nothing.
    for (let more = true; more; ) {
      const rows = await this.db
        .selectFrom('event_deliveries')
        .select(['org_id', 'pos', 'event_id'])
        .where('pos', '>', this.lastPos)
        .orderBy('pos')
        .limit(FETCH_PAGE)
        .execute()
      more = rows.length === FETCH_PAGE
      if (rows.length === 0) return
      this.lastPos = rows[rows.length - 1]!.pos!
      const wanted = rows.filter((r) => this.subscribers.has(r.org_id) || this.waiters.has(r.org_id))
      if (wanted.length === 0) continue
      const ids = [...new Set(wanted.map((r) => r.event_id))]
      const events = await this.db
        .selectFrom('events')
        .select(['id', 'type', 'created_at', 'sender_org', 'subject_type', 'subject_id', 'payload'])
        .where('id', 'in', ids)
        .execute()
      const byId = new Map(events.map((e) => [e.id, eventFields(e)]))
      const perOrg = new Map<string, FeedItem[]>()
      for (const r of wanted) {
        const list = perOrg.get(r.org_id) ?? []
        list.push({ pos: r.pos!, ...byId.get(r.event_id)!, readAt: null, ack: null })
        perOrg.set(r.org_id, list)
      }
      for (const [org, items] of perOrg) {
        for (const s of this.subscribers.get(org) ?? []) s.push(items)
        for (const wake of this.waiters.get(org) ?? []) wake()
      }
    }
  }
}

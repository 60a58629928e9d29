import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { type Kysely, sql, type Transaction, type UpdateObject } from 'kysely'
import type { FastifyBaseLogger } from 'fastify'
import type { DB } from './db/schema.ts'
import type { Metrics } from './metrics.ts'

/**
 * Scheduled work on a PostgreSQL table, claimed with FOR UPDATE SKIP LOCKED and a lease, so that it survives
 * restarts and one job never runs on two instances at the same time.
 *
 * Why not pg-boss or graphile-worker: both need a pool of real PostgreSQL connections (graphile-worker also a
 * dedicated LISTEN connection); the embedded database has a single connection shared with the requests. This
 * queue is a table and three statements, and runs the same on both.
 */

export interface EnqueueOptions {
  runAt?: Date
  /** At most one pending or running job per (queue, key): enqueuing again is a no-op. */
  singletonKey?: string
  maxAttempts?: number
}

export async function enqueue(db: Kysely<DB> | Transaction<DB>, queue: string, payload: unknown, opts: EnqueueOptions = {}) {
  const id = randomUUID()
  const row = await db
    .insertInto('jobs')
    .values({
      id,
      queue,
      payload: JSON.stringify(payload ?? null),
      run_at: opts.runAt ?? new Date(),
      max_attempts: opts.maxAttempts ?? 10,
      state: 'pending',
      singleton_key: opts.singletonKey ?? null,
      created_at: new Date(),
    })
    .onConflict((oc) => oc.columns(['queue', 'singleton_key']).where('singleton_key', 'is not', null).where('state', 'in', ['pending', 'running']).doNothing())
    .returning('id')
    .executeTakeFirst()
  return row?.id ?? null
}

/** Thrown by a handler to run the job again at a given time without counting a failure (e.g. Retry-After). */
export class RetryAt extends Error {
  constructor(readonly at: Date, reason = 'retry later') {
    super(reason)
  }
}

export interface JobContext {
  id: string
  attempt: number
  maxAttempts: number
  now: Date
  log: FastifyBaseLogger
}
export type JobHandler = (payload: any, ctx: JobContext) => Promise<void>

/** Exponential backoff with full jitter: about 10 s, 20 s, 40 s… capped at an hour. */
export function backoff(attempt: number, baseMs = 10_000, capMs = 3_600_000) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2))
}

export interface JobRunnerOptions {
  db: Kysely<DB>
  log: FastifyBaseLogger
  now?: () => Date
  pollMs?: number
  leaseMs?: number
  batch?: number
  metrics?: Metrics
}

export class JobRunner {
  private readonly handlers = new Map<string, JobHandler>()
  private timer: NodeJS.Timeout | undefined
  private running: Promise<number> | undefined
  private stopped = false
  private readonly active = new Map<string, number>()
  readonly instance = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`

  constructor(private readonly opts: JobRunnerOptions) {}

  /** The queues this runner serves. */
  get queues() {
    return [...this.handlers.keys()]
  }

  /** Jobs running now on this runner, per queue. */
  get activeByQueue(): ReadonlyMap<string, number> {
    return this.active
  }

  register(queue: string, handler: JobHandler) {
    if (this.handlers.has(queue)) throw new Error(`job queue ${queue} registered twice`)
    this.handlers.set(queue, handler)
  }

  start() {
    this.stopped = false
    const tick = async () => {
      if (this.stopped) return
      try {
        await this.runDue()
      } catch (err) {
        this.opts.log.error({ err }, 'job runner tick failed')
      }
      if (!this.stopped) this.timer = setTimeout(tick, this.opts.pollMs ?? 1000).unref()
    }
    this.timer = setTimeout(tick, 0).unref()
  }

  /** Wakes the runner now (after an enqueue on this instance), instead of at the next poll. */
  poke() {
    if (this.stopped || this.running) return
    void this.runDue().catch((err) => this.opts.log.error({ err }, 'job runner failed'))
  }

  async stop() {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
  }

  /** Claims and runs every job due now (by the injected clock); returns how many ran. Tests call it directly. */
  runDue(): Promise<number> {
    this.running ??= this.drain().finally(() => (this.running = undefined))
    return this.running
  }

  private async drain(): Promise<number> {
    let total = 0
    for (;;) {
      const n = await this.runBatch()
      total += n
      if (n === 0 || this.stopped) return total
    }
  }

  private async runBatch(): Promise<number> {
    const { db } = this.opts
    const now = this.opts.now?.() ?? new Date()
    const lease = new Date(now.getTime() + (this.opts.leaseMs ?? 300_000))
    const queues = [...this.handlers.keys()]
    if (queues.length === 0) return 0
    // A job whose lease expired (its instance died) is due again.
    const claimed = await db
      .updateTable('jobs')
      .set({ state: 'running', locked_by: this.instance, locked_until: lease, attempts: sql`attempts + 1` })
      .where('id', 'in', (qb) =>
        qb
          .selectFrom('jobs')
          .select('id')
          .where('queue', 'in', queues)
          .where((eb) => eb.or([eb.and([eb('state', '=', 'pending'), eb('run_at', '<=', now)]), eb.and([eb('state', '=', 'running'), eb('locked_until', '<', now)])]))
          .orderBy('run_at')
          .limit(this.opts.batch ?? 20)
          .forUpdate()
          .skipLocked(),
      )
      .returning(['id', 'queue', 'payload', 'attempts', 'max_attempts'])
      .execute()
    // The batch runs concurrently (a slow webhook endpoint must not hold up the others), bounded by its size.
    await Promise.all(claimed.map((job) => this.runOne(job, now)))
    return claimed.length
  }

  private async runOne(job: { id: string; queue: string; payload: unknown; attempts: number; max_attempts: number }, now: Date) {
    const { db, log } = this.opts
    const handler = this.handlers.get(job.queue)!
    // Only while this instance still holds the job: one whose lock lapsed may have been claimed again elsewhere.
    const settle = (set: UpdateObject<DB, 'jobs'>) => db.updateTable('jobs').set(set).where('id', '=', job.id).where('locked_by', '=', this.instance).execute()
    const finished = (outcome: 'done' | 'rescheduled' | 'retry' | 'failed') => this.opts.metrics?.jobsFinished.inc({ queue: job.queue, outcome })
    this.active.set(job.queue, (this.active.get(job.queue) ?? 0) + 1)
    try {
      await handler(job.payload, { id: job.id, attempt: job.attempts, maxAttempts: job.max_attempts, now, log })
      await settle({ state: 'done', finished_at: new Date(), locked_until: null })
      finished('done')
    } catch (err) {
      if (err instanceof RetryAt) {
        await settle({ state: 'pending', run_at: err.at, attempts: sql`attempts - 1`, last_error: err.message, locked_until: null })
        finished('rescheduled')
        return
      }
      const message = err instanceof Error ? err.message : String(err)
      const last = job.attempts >= job.max_attempts
      log.warn({ job: job.id, queue: job.queue, attempt: job.attempts, err: message }, last ? 'job failed for good' : 'job failed, will retry')
      await settle(
        last
          ? { state: 'failed', finished_at: new Date(), last_error: message, locked_until: null }
          : { state: 'pending', run_at: new Date(now.getTime() + backoff(job.attempts)), last_error: message, locked_until: null },
      )
      finished(last ? 'failed' : 'retry')
    } finally {
      const n = (this.active.get(job.queue) ?? 1) - 1
      if (n > 0) this.active.set(job.queue, n)
      else this.active.delete(job.queue)
    }
  }
}

/** Removes finished jobs older than the retention (kept for inspection meanwhile). */
export async function purgeFinishedJobs(db: Kysely<DB>, olderThan: Date) {
  const r = await db.deleteFrom('jobs').where('state', 'in', ['done', 'failed']).where('finished_at', '<', olderThan).executeTakeFirst()
  return Number(r.numDeletedRows)
}

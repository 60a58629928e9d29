import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { type ColumnType, sql, type Transaction } from 'kysely'
import type { Actor } from '../platform/audit.ts'
import type { DatabaseHandle } from '../platform/db/index.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError } from '../platform/errors.ts'
import { createNotifier, type Notifier } from '../platform/events/notifier.ts'
import { setBatchStatus } from '../serialization/service.ts'

// Blocking of dispensation. Every API instance holds the whole set of blocked batches in memory (a few
// thousand rows at most: recalls are rare) and answers the dispensation check without touching the database.
// It must never answer "not blocked" for a batch blocked at the moment of the call, so a change that blocks
// goes in two steps (applyBlocks):
//   1. the new batches are written as 'pending' (already blocking) and committed, with the generation bumped
//      and a NOTIFY; every instance reloads and records the generation it has loaded;
//   2. once every instance holding a valid lease has loaded that generation, the use case's own transaction
//      (broadcast, new version…) commits and the rows become 'active'.
// An instance answers from memory only while its lease is valid by its own clock (minus a margin); when it
// cannot renew it (database unreachable, listener lost, process paused) it asks the database on each call
// instead, and when it renews it reloads first if it missed a generation. A broadcast thus waits for every
// live instance, or for the lease of one that died (at most LEASE_MS). Unblocking needs no such wait:
// blocking a few milliseconds too long is harmless.

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type DateOnly = ColumnType<string, string, string>

export interface DispensationBlocksTable {
  cip13: string
  batch: string
  recall_id: string
  reference: string
  version: number
  lab_id: string
  expiry: DateOnly | null
  message_fr: string
  message_en: string | null
  state: 'pending' | 'active'
  since: Timestamp
}

declare module '../platform/db/schema.ts' {
  interface DB {
    dispensation_blocks: DispensationBlocksTable
    dispensation_block_generation: { id: number; generation: number }
    dispensation_block_instances: { id: string; loaded_generation: number; lease_until: Timestamp; started_at: Timestamp }
  }
}

export const CHANNEL_BLOCKS = 'dp_dispensation_blocks'
export const LEASE_MS = 5_000
const HEARTBEAT_MS = 1_000
/** Margin between the end of an instance's own view of its lease and the lease in the database. */
const SAFETY_MS = 1_500
/** A broadcast gives up (and blocks nothing) if the instances have not all loaded its batches by then. */
const ANNOUNCE_TIMEOUT_MS = 3 * LEASE_MS

/** The same batch typed by hand in lower case, or read with Caps Lock, must still match. */
export function normaliseBatch(batch: string): string {
  // Most batches arrive trimmed and in capitals: looking is cheaper than making a new string on every box checked.
  let plain = batch.length > 0 && batch.charCodeAt(0) > 32 && batch.charCodeAt(batch.length - 1) > 32
  for (let k = 0; plain && k < batch.length; k++) {
    const c = batch.charCodeAt(k)
    if ((c >= 97 && c <= 122) || c >= 128) plain = false
  }
  return plain ? batch : batch.trim().toUpperCase()
}
const keyOf = (cip13: string, batch: string) => `${cip13}\u0000${normaliseBatch(batch)}`

export interface BlockEntry {
  recallId: string
  reference: string
  version: number
  labId: string
  expiry: string | null
  messageFr: string
  messageEn: string | null
  since: Date
  /** The entry as the dispensation check shows it, in French and in English: built once, when loaded. */
  shown: { fr: ShownRecall; en: ShownRecall }
}

export interface ShownRecall {
  reference: string
  version: number
  lab: string
  message: string
  expiry: string | null
  since: string
}

interface BlockRow {
  cip13: string
  batch: string
  recall_id: string
  reference: string
  version: number
  lab_id: string
  expiry: string | null
  message_fr: string
  message_en: string | null
  since: Date
}

const SELECT_COLUMNS = 'cip13, batch, recall_id, reference, version, lab_id, expiry, message_fr, message_en, since'
function toEntry(r: BlockRow): BlockEntry {
  const shown = (message: string): ShownRecall => ({ reference: r.reference, version: r.version, lab: r.lab_id, message, expiry: r.expiry, since: r.since.toISOString() })
  return {
    recallId: r.recall_id,
    reference: r.reference,
    version: r.version,
    labId: r.lab_id,
    expiry: r.expiry,
    messageFr: r.message_fr,
    messageEn: r.message_en,
    since: r.since,
    shown: { fr: shown(r.message_fr), en: shown(r.message_en ?? r.message_fr) },
  }
}

const NONE: BlockEntry[] = []

/** This instance's copy of the blocked batches, kept current by notifications and a leased heartbeat. */
export class BlockRegistry {
  readonly id = randomUUID()
  /** Product → normalised batch → the recalls blocking it (two lookups: no key string to build per box). */
  private entries = new Map<string, Map<string, BlockEntry[]>>()
  private loaded = -1
  /** performance.now() until which the in-memory set may be trusted; 0 = ask the database. */
  private freshUntil = 0
  private timer: NodeJS.Timeout | undefined
  private notifier: Notifier | undefined
  private reloading: Promise<void> | undefined
  private again = false
  private stopped = false

  constructor(
    private readonly database: DatabaseHandle,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Registers this instance, loads the set and keeps it current. Without start(), every check asks the database. */
  async start() {
    await this.database.db
      .insertInto('dispensation_block_instances')
      .values({ id: this.id, loaded_generation: -1, lease_until: sql<Date>`now()`, started_at: sql<Date>`now()` })
      .execute()
    this.notifier = createNotifier(this.database, this.log)
    await this.notifier.listen(CHANNEL_BLOCKS, () => void this.reload().catch((err) => this.log.warn({ err }, 'dispensation blocks: reload failed')))
    await this.reload()
    await this.heartbeat()
    this.timer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS)
    this.timer.unref()
  }

  async stop() {
    this.stopped = true
    this.freshUntil = 0
    if (this.timer) clearInterval(this.timer)
    await this.notifier?.close()
    // Leaving at once spares the next broadcast the wait for this lease.
    await this.database.db.deleteFrom('dispensation_block_instances').where('id', '=', this.id).execute().catch(() => {})
  }

  get generation() {
    return this.loaded
  }

  /** The recalls blocking each (cip13, batch), in the order given: from memory when fresh, else one query. */
  lookup(boxes: ReadonlyArray<{ cip13: string; batch: string }>): BlockEntry[][] | Promise<BlockEntry[][]> {
    if (performance.now() >= this.freshUntil) return lookupInDatabase(this.database, boxes)
    const found: BlockEntry[][] = new Array(boxes.length)
    for (let i = 0; i < boxes.length; i++) {
      const batches = this.entries.get(boxes[i]!.cip13)
      found[i] = (batches && batches.get(normaliseBatch(boxes[i]!.batch))) ?? NONE
    }
    return found
  }

  /** Reloads the whole set (coalescing calls that arrive while a reload runs) and records the generation. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true
      return this.reloading
    }
    this.reloading = (async () => {
      do {
        this.again = false
        const { generation, rows } = await this.database.db
          .transaction()
          .setIsolationLevel('repeatable read')
          .execute(async (tx) => {
            const g = await tx.selectFrom('dispensation_block_generation').select('generation').where('id', '=', 1).executeTakeFirstOrThrow()
            const r = await sql<BlockRow>`select ${sql.raw(SELECT_COLUMNS)} from dispensation_blocks`.execute(tx)
            return { generation: g.generation, rows: r.rows }
          })
        if (generation >= this.loaded) {
          const map = new Map<string, Map<string, BlockEntry[]>>()
          for (const row of rows) {
            let batches = map.get(row.cip13)
            if (!batches) map.set(row.cip13, (batches = new Map()))
            const key = normaliseBatch(row.batch)
            const list = batches.get(key)
            if (list) list.push(toEntry(row))
            else batches.set(key, [toEntry(row)])
          }
          this.entries = map
          this.loaded = generation
        }
        if (!this.stopped) {
          await this.database.db.updateTable('dispensation_block_instances').set({ loaded_generation: this.loaded }).where('id', '=', this.id).where('loaded_generation', '<', this.loaded).execute()
        }
      } while (this.again)
    })().finally(() => (this.reloading = undefined))
    return this.reloading
  }

  /**
   * Renews the lease. The generation row is read FOR SHARE in the same statement: a broadcast announcing new
   * batches holds that row, so a renewal either commits before the announcement (and the broadcast then waits
   * for this instance) or sees the new generation (and this instance reloads before trusting its set).
   */
  private async heartbeat() {
    if (this.stopped) return
    const sentAt = performance.now()
    try {
      const rows = await this.database.prepared<{ generation: number }>(
        'dp_blocks_heartbeat',
        `with g as (select generation from dispensation_block_generation where id = 1 for share)
         update dispensation_block_instances set lease_until = now() + ($2::int * interval '1 millisecond')
         where id = $1 returning (select generation from g) as generation`,
        [this.id, LEASE_MS],
      )
      if (rows.length === 0) {
        // Removed as dead by someone else (a long pause): register again and reload before trusting anything.
        this.freshUntil = 0
        await this.database.db
          .insertInto('dispensation_block_instances')
          .values({ id: this.id, loaded_generation: -1, lease_until: sql<Date>`now() + (${LEASE_MS}::int * interval '1 millisecond')`, started_at: sql<Date>`now()` })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute()
        await this.reload()
        return
      }
      if (Number(rows[0]!.generation) > this.loaded) {
        this.freshUntil = 0
        await this.reload()
      }
      if (!this.stopped) this.freshUntil = sentAt + LEASE_MS - SAFETY_MS
      // Rows of instances gone for an hour are only noise.
      if (Math.random() < 0.01) await this.database.db.deleteFrom('dispensation_block_instances').where('lease_until', '<', sql<Date>`now() - interval '1 hour'`).execute()
    } catch (err) {
      this.log.warn({ err }, 'dispensation blocks: lease renewal failed; answering from the database')
    }
  }
}

async function lookupInDatabase(database: DatabaseHandle, boxes: ReadonlyArray<{ cip13: string; batch: string }>): Promise<BlockEntry[][]> {
  if (boxes.length === 0) return []
  const rows = await database.prepared<BlockRow>(
    'dp_blocks_lookup',
    `select ${SELECT_COLUMNS} from dispensation_blocks where (cip13, batch) in (select * from unnest($1::text[], $2::text[]))`,
    [boxes.map((b) => b.cip13), boxes.map((b) => normaliseBatch(b.batch))],
  )
  const map = new Map<string, BlockEntry[]>()
  for (const row of rows) {
    const key = keyOf(row.cip13, row.batch)
    map.set(key, [...(map.get(key) ?? []), toEntry(row)])
  }
  return boxes.map((b) => map.get(keyOf(b.cip13, b.batch)) ?? [])
}

// ---- changing the set: only through applyBlocks ----------------------------------------------------------

export interface BlockedBatch {
  cip13: string
  batch: string
  /** YYYY-MM-DD, informative: a batch number identifies the batch. */
  expiry: string | null
}

export interface RecallBlocks {
  recallId: string
  reference: string
  version: number
  labId: string
  /** What the pharmacist sees at the counter. */
  messageFr: string
  messageEn?: string | null
  /** The complete set blocked from now on; [] unblocks everything (the recall is closed). */
  batches: BlockedBatch[]
}

class AnnouncementLost extends Error {}

async function bumpGeneration(tx: Transaction<DB>): Promise<number> {
  const row = await tx
    .updateTable('dispensation_block_generation')
    .set({ generation: sql<number>`generation + 1` })
    .where('id', '=', 1)
    .returning('generation')
    .executeTakeFirstOrThrow()
  await sql`select pg_notify(${CHANNEL_BLOCKS}, ${String(row.generation)})`.execute(tx)
  return Number(row.generation)
}

/** Waits until every instance holding a valid lease has loaded generation g. */
async function waitForInstances(app: FastifyInstance, g: number) {
  void app.blockRegistry?.reload().catch(() => {})
  const deadline = performance.now() + ANNOUNCE_TIMEOUT_MS
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    const behind = await app.database.prepared<{ id: string }>(
      'dp_blocks_behind',
      'select id from dispensation_block_instances where lease_until > now() and loaded_generation < $1',
      [g],
    )
    if (behind.length === 0) return
    if (performance.now() > deadline) {
      app.log.error({ instances: behind.map((b) => b.id), generation: g }, 'dispensation blocks: instances did not load a new block in time')
      throw new AppError('SERVICE_UNAVAILABLE')
    }
    await sleep(pause)
  }
}

/**
 * Sets the recall's blocked batches to exactly target.batches and runs fn in the same transaction (the
 * broadcast, a new version, the close). Newly blocked batches are announced to every instance before that
 * transaction commits; serialization's batch status follows (recalled while blocked, active again after).
 */
export async function applyBlocks<T>(app: FastifyInstance, target: RecallBlocks, actor: Actor, fn: (tx: Transaction<DB>) => Promise<T>): Promise<T> {
  const wanted = new Map<string, BlockedBatch & { norm: string }>()
  for (const b of target.batches) wanted.set(keyOf(b.cip13, b.batch), { ...b, norm: normaliseBatch(b.batch) })

  for (let attempt = 1; ; attempt++) {
    // 1. Announce the batches not yet blocked by this recall.
    const existing = await app.db.selectFrom('dispensation_blocks').select(['cip13', 'batch']).where('recall_id', '=', target.recallId).execute()
    const existingKeys = new Set(existing.map((r) => keyOf(r.cip13, r.batch)))
    const additions = [...wanted.entries()].filter(([k]) => !existingKeys.has(k)).map(([, b]) => b)
    let announced: Array<{ cip13: string; batch: string }> = []
    if (additions.length > 0) {
      const now = app.now()
      const g = await app.db.transaction().execute(async (tx) => {
        announced = await tx
          .insertInto('dispensation_blocks')
          .values(additions.map((b) => ({ cip13: b.cip13, batch: b.norm, recall_id: target.recallId, reference: target.reference, version: target.version, lab_id: target.labId, expiry: b.expiry, message_fr: target.messageFr, message_en: target.messageEn ?? null, state: 'pending' as const, since: now })))
          .onConflict((oc) => oc.columns(['cip13', 'batch', 'recall_id']).doNothing())
          .returning(['cip13', 'batch'])
          .execute()
        return bumpGeneration(tx)
      })
      try {
        await waitForInstances(app, g)
      } catch (err) {
        await withdrawAnnouncement(app, target.recallId, announced)
        throw err
      }
    }

    // 2. The use case and the final set, in one transaction.
    try {
      return await app.db.transaction().execute(async (tx) => {
        const result = await fn(tx)
        const rows = await tx.selectFrom('dispensation_blocks').select(['cip13', 'batch', 'state']).where('recall_id', '=', target.recallId).forUpdate().execute()
        const present = new Set(rows.map((r) => keyOf(r.cip13, r.batch)))
        // Another attempt's clean-up removed a row this one relied on: announce again.
        for (const k of wanted.keys()) if (!present.has(k)) throw new AnnouncementLost()
        const removed = rows.filter((r) => !wanted.has(keyOf(r.cip13, r.batch)))
        const now = app.now()
        if (removed.length > 0) {
          await tx
            .deleteFrom('dispensation_blocks')
            .where('recall_id', '=', target.recallId)
            .where(sql<boolean>`(cip13, batch) in (select * from unnest(${removed.map((r) => r.cip13)}::text[], ${removed.map((r) => r.batch)}::text[]))`)
            .execute()
        }
        if (wanted.size > 0) {
          await tx
            .updateTable('dispensation_blocks')
            .set({ state: 'active', reference: target.reference, version: target.version, lab_id: target.labId, message_fr: target.messageFr, message_en: target.messageEn ?? null })
            .where('recall_id', '=', target.recallId)
            .execute()
        }
        // One truth with serialization: the batch is recalled there while a recall blocks it.
        // (A batch the lab already withdrew or marked expired keeps that status.)
        for (const b of wanted.values()) {
          const batch = await tx.selectFrom('serial_batches').select(['batch', 'status']).where('cip13', '=', b.cip13).where(sql<boolean>`upper(batch) = ${b.norm}`).executeTakeFirst()
          if (batch?.status === 'active') await setBatchStatus(tx, actor, { cip13: b.cip13, batch: batch.batch, status: 'recalled', reason: `Rappel ${target.reference}` }, now)
        }
        for (const r of removed) {
          const still = await tx.selectFrom('dispensation_blocks').select('recall_id').where('cip13', '=', r.cip13).where('batch', '=', r.batch).executeTakeFirst()
          if (still) continue
          const batch = await tx.selectFrom('serial_batches').select(['batch', 'status']).where('cip13', '=', r.cip13).where(sql<boolean>`upper(batch) = ${r.batch}`).executeTakeFirst()
          if (batch?.status === 'recalled') await setBatchStatus(tx, actor, { cip13: r.cip13, batch: batch.batch, status: 'active', reason: `Fin du rappel ${target.reference}` }, now)
        }
        if (additions.length > 0 || removed.length > 0 || rows.some((r) => r.state === 'pending')) await bumpGeneration(tx)
        return result
      })
    } catch (err) {
      await withdrawAnnouncement(app, target.recallId, announced)
      if (err instanceof AnnouncementLost && attempt < 3) continue
      throw err
    }
  }
}

/** Removes the rows announced by an attempt that did not commit (only those still pending). */
async function withdrawAnnouncement(app: FastifyInstance, recallId: string, rows: Array<{ cip13: string; batch: string }>) {
  if (rows.length === 0) return
  await app.db.transaction().execute(async (tx) => {
    const deleted = await tx
      .deleteFrom('dispensation_blocks')
      .where('recall_id', '=', recallId)
      .where('state', '=', 'pending')
      .where(sql<boolean>`(cip13, batch) in (select * from unnest(${rows.map((r) => r.cip13)}::text[], ${rows.map((r) => r.batch)}::text[]))`)
      .executeTakeFirst()
    if (Number(deleted.numDeletedRows) > 0) await bumpGeneration(tx)
  })
}

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's blocked batches; null when background work is off (every check asks the database). */
    blockRegistry: BlockRegistry | null
  }
}

import { type Kysely, sql, type Transaction } from 'kysely'
import type { Static } from 'typebox'
import type { FastifyInstance } from 'fastify'
import { changeFacts, bumpGeneration } from '../dispensation/registry.ts'
import { type Actor, audit } from '../platform/audit.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError, defineErrors, errorDef, notFound } from '../platform/errors.ts'
import { type Blocking, blockingSql } from '../dispensation/rule.ts'
import type { BatchStatus } from './db.ts'
import './db.ts'
import type { PackUploadReport } from './schemas/packs.ts'
import { inTransaction } from '../platform/db/transaction.ts'

defineErrors({
  // The serialization return code of the same name, as an HTTP answer: the request was not processed.
  TOO_MANY_REQUESTS: errorDef(429, 'Trop de requêtes', 'Too many requests', (p) => ({
    fr: `Votre organisation a dépassé ${p.max} vérifications ou changements d’état de boîtes par minute : rien n’a été fait ; réessayez dans ${p.after}.`,
    en: `Your organisation went over ${p.max} pack verifications or state changes per minute: nothing was done; retry in ${p.after}.`,
  })),
  BATCH_EXPIRY_CONFLICT: errorDef(409, 'Lot déjà déclaré avec une autre date de péremption', 'Batch already declared with another expiry date', (p) => ({
    fr: `Le lot ${p.batch} de ce produit est déjà déclaré avec la date de péremption ${p.expiry} : un lot a une seule date. Vérifiez le numéro de lot ou la date.`,
    en: `Batch ${p.batch} of this product is already declared with expiry date ${p.expiry}: a batch has one date. Check the batch number or the date.`,
  })),
})

type Db = Kysely<DB> | Transaction<DB>

// ---- the lab's side ----------------------------------------------------------------------------------------

/** The product, if the lab exploits it; otherwise 404 as if it did not exist. */
export async function assertLabProduct(db: Db, labId: string, cip13: string) {
  const row = await db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['p.cip13'])
    .where('p.cip13', '=', cip13)
    .where('m.lab_id', '=', labId)
    .executeTakeFirst()
  if (!row) throw notFound(`Le produit ${cip13}`, `Product ${cip13}`)
}

export interface UploadInput {
  cip13: string
  batch: string
  expiry: string
  serials: string[]
}

export type UploadReport = Static<typeof PackUploadReport>

/**
 * The batch row of an upload: created with this expiry, or checked to have it (409 BATCH_EXPIRY_CONFLICT: a batch
 * has one date). A concurrent upload of the same new batch waits here until the first one commits.
 */
export async function ensureBatch(tx: Transaction<DB>, labId: string, input: { cip13: string; batch: string; expiry: string }, now: Date) {
  const known = await tx.selectFrom('serial_batches').select('batch').where('cip13', '=', input.cip13).limit(1).executeTakeFirst()
  const created = await tx
    .insertInto('serial_batches')
    .values({ cip13: input.cip13, batch: input.batch, lab_id: labId, expiry: input.expiry, created_at: now, updated_at: now })
    .onConflict((oc) => oc.columns(['cip13', 'batch']).doNothing())
    .returning('batch')
    .executeTakeFirst()
  // The product's first batch: it is now under serialization, and the dispensation check must ask its DataMatrix for
  // a serial (dispensation/registry.ts). Nothing new is blocked: the instances learn it at their next reload.
  if (!known && created) await bumpGeneration(tx)
  const batch = await tx.selectFrom('serial_batches').select(['expiry']).where('cip13', '=', input.cip13).where('batch', '=', input.batch).executeTakeFirstOrThrow()
  if (batch.expiry !== input.expiry) throw new AppError('BATCH_EXPIRY_CONFLICT', { batch: input.batch, expiry: batch.expiry })
}

/** What one chunk of serials did: each distinct serial is created, unchanged (already in this batch) or a conflict. */
export interface ChunkOutcome {
  /** Distinct serials of the chunk. */
  distinct: number
  created: number
  unchanged: number
  /** Serials already uploaded in another batch of the product: left as they were. */
  conflicts: Array<{ serial: string; batch: string }>
}

/**
 * Inserts one chunk of serials (up to a few tens of thousands: one array parameter) into a batch that ensureBatch
 * made sure of. Shared by the JSON upload and the streamed one. Serials are inserted in sorted order, so two uploads
 * that overlap lock their rows in the same order (no deadlock within a chunk).
 */
export async function insertSerialChunk(tx: Transaction<DB>, target: { cip13: string; batch: string }, serials: readonly string[], now: Date): Promise<ChunkOutcome> {
  const distinct = [...new Set(serials)].sort()
  if (distinct.length === 0) return { distinct: 0, created: 0, unchanged: 0, conflicts: [] }
  const inserted = await sql<{ serial: string }>`
    insert into packs (cip13, serial, batch, state, state_at, last_txn, created_at)
    select ${target.cip13}, s, ${target.batch}, 'active', ${now}::timestamptz, null, ${now}::timestamptz from unnest(${distinct}::text[]) as s
    on conflict (cip13, serial) do nothing
    returning serial`.execute(tx)
  const created = inserted.rows.length
  if (created === distinct.length) return { distinct: distinct.length, created, unchanged: 0, conflicts: [] }
  // A second statement (a new snapshot): it sees the rows a concurrent upload committed while this insert waited.
  const fresh = new Set(inserted.rows.map((r) => r.serial))
  const rest = distinct.filter((s) => !fresh.has(s))
  const existing = await sql<{ serial: string; batch: string }>`
    select serial, batch from packs where cip13 = ${target.cip13} and serial = any(${rest}::text[])`.execute(tx)
  const conflicts = existing.rows.filter((e) => e.batch !== target.batch).map((e) => ({ serial: e.serial, batch: e.batch }))
  return { distinct: distinct.length, created, unchanged: existing.rows.length - conflicts.length, conflicts }
}

/** Uploads packs of one batch: idempotent (a serial already in this batch is unchanged; in another batch, a conflict). */
export async function uploadPacks(db: Kysely<DB>, actor: Actor & { org: string }, input: UploadInput, now: Date): Promise<UploadReport> {
  return inTransaction(db, async (tx) => {
    await assertLabProduct(tx, actor.org, input.cip13)
    await ensureBatch(tx, actor.org, input, now)
    const chunk = await insertSerialChunk(tx, input, input.serials, now)
    const report: UploadReport = {
      product: input.cip13,
      batch: input.batch,
      expiry: input.expiry,
      received: input.serials.length,
      created: chunk.created,
      unchanged: chunk.unchanged,
      duplicatesInRequest: input.serials.length - chunk.distinct,
      conflicts: chunk.conflicts,
    }
    if (report.created > 0 || report.conflicts.length > 0) {
      await audit(tx, actor, { action: 'serialization.packs.uploaded', objectType: 'serial_batch', objectId: `${input.cip13}/${input.batch}`, changes: { ...report, conflicts: report.conflicts.length } }, now)
    }
    return report
  })
}

/**
 * The lab sets a batch's status: its own fact, kept apart from DP-Rappels (a recall's blocking is read from the
 * recall, never copied here). A status that blocks answers only once every API instance blocks it too
 * (dispensation/registry.ts changeFacts). Returns the previous status, or null if the batch is unknown.
 */
export async function setBatchStatus(app: FastifyInstance, actor: Actor & { org: string }, input: { cip13: string; batch: string; status: BatchStatus; reason: string | null }, now: Date) {
  return changeFacts(app, async (tx) => {
    await assertLabProduct(tx, actor.org, input.cip13)
    const before = await tx.selectFrom('serial_batches').select(['status']).where('cip13', '=', input.cip13).where('batch', '=', input.batch).forUpdate().executeTakeFirst()
    if (!before) return { result: null, changed: false, blocks: false }
    const changed = before.status !== input.status
    if (changed) {
      await tx.updateTable('serial_batches').set({ status: input.status, status_reason: input.reason, updated_at: now }).where('cip13', '=', input.cip13).where('batch', '=', input.batch).execute()
      await audit(tx, actor, { action: 'serialization.batch.status', objectType: 'serial_batch', objectId: `${input.cip13}/${input.batch}`, changes: { status: [before.status, input.status], reason: input.reason } }, now)
    }
    return { result: before.status, changed, blocks: input.status !== 'active' }
  })
}

/** The lab sets the status of a whole product (every batch follows; their own statuses apply again once active). */
export async function setProductStatus(app: FastifyInstance, actor: Actor & { org: string }, input: { cip13: string; status: BatchStatus; reason: string | null }, now: Date) {
  return changeFacts(app, async (tx) => {
    await assertLabProduct(tx, actor.org, input.cip13)
    const before = await tx.selectFrom('serial_products').select(['status']).where('cip13', '=', input.cip13).forUpdate().executeTakeFirst()
    const previous = before?.status ?? 'active'
    const changed = previous !== input.status
    if (changed) {
      await tx
        .insertInto('serial_products')
        .values({ cip13: input.cip13, lab_id: actor.org, status: input.status, status_reason: input.reason, updated_at: now })
        .onConflict((oc) => oc.column('cip13').doUpdateSet({ status: input.status, status_reason: input.reason, lab_id: actor.org, updated_at: now }))
        .execute()
      await audit(tx, actor, { action: 'serialization.product.status', objectType: 'serial_product', objectId: input.cip13, changes: { status: [previous, input.status], reason: input.reason } }, now)
    }
    // A first serial_products row also puts the product under serialization: a change the instances must load.
    return { result: previous, changed: changed || !before, blocks: input.status !== 'active' }
  })
}

/** A YYYY-MM-DD of ours as an SQL literal (checked: it is spliced into the statement). */
function dateLiteral(day: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`not a date: ${day}`)
  return `'${day}'::date`
}

export interface BatchFigures {
  product: string
  batch: string
  expiry: string
  /** What its packs answer (dispensation/rule.ts). */
  status: BatchStatus
  labStatus: BatchStatus
  statusReason: string | null
  productStatus: BatchStatus
  recalls: string[]
  packs: number
  byState: Record<string, number>
}

/** Batches of a product with their counts per pack state; `after`: keyset on the batch number. */
export async function batchFigures(db: Db, cip13: string, opts: { batch?: string; after?: string; limit: number; today: string }): Promise<BatchFigures[]> {
  let q = db
    .selectFrom('serial_batches as b')
    .leftJoin('serial_products as sp', 'sp.cip13', 'b.cip13')
    .select(['b.batch', 'b.expiry', 'b.status', 'b.status_reason', 'sp.status as product_status'])
    .select(sql<Blocking | null>`${sql.raw(blockingSql({ cip13: 'b.cip13', batch: 'b.batch', batchStatus: 'b.status', productStatus: 'sp.status', expiry: 'b.expiry', today: dateLiteral(opts.today) }))}`.as('blocking'))
    .select(sql<string[]>`array(select d.reference from dispensation_blocks d where d.cip13 = b.cip13 and d.batch = upper(b.batch) order by d.reference)`.as('recalls'))
    .where('b.cip13', '=', cip13)
    .orderBy('b.batch')
    .limit(opts.limit)
  if (opts.batch !== undefined) q = q.where('b.batch', '=', opts.batch)
  if (opts.after !== undefined) q = q.where('b.batch', '>', opts.after)
  const batches = await q.execute()
  if (batches.length === 0) return []
  const counts = await db
    .selectFrom('packs')
    .select(['batch', 'state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('cip13', '=', cip13)
    .where('batch', 'in', batches.map((b) => b.batch))
    .groupBy(['batch', 'state'])
    .execute()
  return batches.map((b) => {
    const byState: Record<string, number> = {}
    for (const c of counts) if (c.batch === b.batch) byState[c.state] = Number(c.n)
    return {
      product: cip13,
      batch: b.batch,
      expiry: b.expiry,
      status: b.blocking ?? 'active',
      labStatus: b.status,
      statusReason: b.status_reason,
      productStatus: b.product_status ?? 'active',
      recalls: b.recalls ?? [],
      packs: Object.values(byState).reduce((a, n) => a + n, 0),
      byState,
    }
  })
}


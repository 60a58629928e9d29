/**
 * The lab's side: its product is checked first (another lab's answers 404), then its batches are read with their
 * figures, created at upload (ensureBatch), or given a status, as is the whole product. A status, and a product's
 * first batch, change what the dispensation rule reads (dispensation/registry.ts).
 */
import type { FastifyInstance } from 'fastify'
import type { Kysely, Transaction } from 'kysely'
import { changeFacts, bumpGeneration } from '../../dispensation/use-cases/facts.ts'
import { type Actor, audit } from '../../platform/audit.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import type { DB } from '../../platform/db/schema.ts'
import { AppError, notFound } from '../../platform/errors.ts'
import { parisDay } from '../../platform/paris-time.ts'
import type { BatchStatus } from '../db.ts'
import '../errors.ts'
import * as q from '../queries/lab.ts'

type Db = Kysely<DB> | Transaction<DB>

export interface LabDeps {
  db: Kysely<DB>
  now: () => Date
  /** The instance: a blocking status answers once every instance blocks it (setBatchStatus). */
  instance: FastifyInstance
}

const batchNotFound = (batch: string) => notFound(`Le lot ${batch}`, `Batch ${batch}`)

/** The product, if the lab exploits it; otherwise 404 as if it did not exist. */
export async function assertLabProduct(db: Db, labId: string, cip13: string) {
  const row = await q.labProduct(db, labId, cip13)
  if (!row) throw notFound(`Le produit ${cip13}`, `Product ${cip13}`)
}

// ---- batches and their figures -----------------------------------------------------------------------------

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
async function batchFigures(db: Db, cip13: string, opts: { batch?: string; after?: string; limit: number; today: string }): Promise<BatchFigures[]> {
  const batches = await q.batchRows(db, cip13, opts)
  if (batches.length === 0) return []
  const counts = await q.packCounts(db, cip13, batches.map((b) => b.batch))
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

/** A page of the lab's batches of its product, in batch order. */
export async function listBatches(deps: LabDeps, lab: string, cip13: string, query: { limit?: number | undefined; cursor?: string | undefined }) {
  await assertLabProduct(deps.db, lab, cip13)
  const limit = query.limit ?? 50
  const after = query.cursor ? decodeCursor<{ batch: string }>(query.cursor, { cip13 }).batch : undefined
  const items = await batchFigures(deps.db, cip13, { limit, today: parisDay(deps.now()), ...(after !== undefined ? { after } : {}) })
  return { items, nextCursor: items.length === limit ? encodeCursor({ batch: items.at(-1)!.batch }, { cip13 }) : null }
}

export async function getBatch(deps: LabDeps, lab: string, cip13: string, batch: string) {
  await assertLabProduct(deps.db, lab, cip13)
  const [figures] = await batchFigures(deps.db, cip13, { batch, limit: 1, today: parisDay(deps.now()) })
  if (!figures) throw batchNotFound(batch)
  return figures
}

/**
 * The batch row of an upload: created with this expiry, or checked to have it (409 BATCH_EXPIRY_CONFLICT: a batch
 * has one date). A concurrent upload of the same new batch waits here until the first one commits.
 */
export async function ensureBatch(tx: Transaction<DB>, labId: string, input: { cip13: string; batch: string; expiry: string }, now: Date) {
  const known = await q.anyBatchOf(tx, input.cip13)
  const created = await q.insertBatch(tx, labId, input, now)
  // The product's first batch: it is now under serialization, and the dispensation check must ask its DataMatrix for
  // a serial (dispensation/registry.ts). Nothing new is blocked: the instances learn it at their next reload.
  if (!known && created) await bumpGeneration(tx)
  const batch = await q.batchExpiry(tx, input.cip13, input.batch)
  if (batch.expiry !== input.expiry) throw new AppError('BATCH_EXPIRY_CONFLICT', { batch: input.batch, expiry: batch.expiry })
}

// ---- statuses ----------------------------------------------------------------------------------------------

/**
 * The lab sets a batch's status: its own fact, kept apart from DP-Rappels (a recall's blocking is read from the
 * recall, never copied here). A status that blocks answers only once every API instance blocks it too
 * (dispensation/use-cases/facts.ts changeFacts). Returns the previous status, or null if the batch is unknown.
 */
async function setBatchStatus(app: FastifyInstance, actor: Actor & { org: string }, input: { cip13: string; batch: string; status: BatchStatus; reason: string | null }, now: Date) {
  return changeFacts(app, async (tx) => {
    await assertLabProduct(tx, actor.org, input.cip13)
    const before = await q.lockBatchStatus(tx, input.cip13, input.batch)
    if (!before) return { result: null, changed: false, blocks: false }
    const changed = before.status !== input.status
    if (changed) {
      await q.updateBatchStatus(tx, input, now)
      await audit(tx, actor, { action: 'serialization.batch.status', objectType: 'serial_batch', objectId: `${input.cip13}/${input.batch}`, changes: { status: [before.status, input.status], reason: input.reason } }, now)
    }
    return { result: before.status, changed, blocks: input.status !== 'active' }
  })
}

/** Sets the lab's status of the batch, then answers its figures (read after the change is committed). */
export async function changeBatchStatus(deps: LabDeps, actor: Actor & { org: string }, input: { cip13: string; batch: string; status: BatchStatus; reason: string | null }) {
  const previous = await setBatchStatus(deps.instance, actor, input, deps.now())
  if (previous === null) throw batchNotFound(input.batch)
  const [figures] = await batchFigures(deps.db, input.cip13, { batch: input.batch, limit: 1, today: parisDay(deps.now()) })
  return figures!
}

/** The lab sets the status of a whole product (every batch follows; their own statuses apply again once active). */
export async function setProductStatus(app: FastifyInstance, actor: Actor & { org: string }, input: { cip13: string; status: BatchStatus; reason: string | null }, now: Date) {
  return changeFacts(app, async (tx) => {
    await assertLabProduct(tx, actor.org, input.cip13)
    const before = await q.lockProductStatus(tx, input.cip13)
    const previous = before?.status ?? 'active'
    const changed = previous !== input.status
    if (changed) {
      await q.upsertProductStatus(tx, actor.org, input, now)
      await audit(tx, actor, { action: 'serialization.product.status', objectType: 'serial_product', objectId: input.cip13, changes: { status: [previous, input.status], reason: input.reason } }, now)
    }
    // A first serial_products row also puts the product under serialization: a change the instances must load.
    return { result: previous, changed: changed || !before, blocks: input.status !== 'active' }
  })
}

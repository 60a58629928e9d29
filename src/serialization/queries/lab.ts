/**
 * The lab's side in SQL: its product, its batches (created at upload, their statuses and figures), the product's
 * status, and the packs an upload inserts. The lab's own product is checked by the use cases (labProduct) first.
 */
import { type Kysely, sql, type Transaction } from 'kysely'
import { type Blocking, blockingSql } from '../../dispensation/rule.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { BatchStatus } from '../db.ts'

type Db = Kysely<DB> | Transaction<DB>

/** The product, if the lab exploits it. */
export function labProduct(db: Db, labId: string, cip13: string) {
  return db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['p.cip13'])
    .where('p.cip13', '=', cip13)
    .where('m.lab_id', '=', labId)
    .executeTakeFirst()
}

// ---- batches and uploaded packs ----------------------------------------------------------------------------

/** Any batch of the product (none: the product is not under serialization yet). */
export function anyBatchOf(tx: Transaction<DB>, cip13: string) {
  return tx.selectFrom('serial_batches').select('batch').where('cip13', '=', cip13).limit(1).executeTakeFirst()
}

/** Creates the batch with this expiry unless it exists: the batch when created. */
export function insertBatch(tx: Transaction<DB>, labId: string, input: { cip13: string; batch: string; expiry: string }, now: Date) {
  return tx
    .insertInto('serial_batches')
    .values({ cip13: input.cip13, batch: input.batch, lab_id: labId, expiry: input.expiry, created_at: now, updated_at: now })
    .onConflict((oc) => oc.columns(['cip13', 'batch']).doNothing())
    .returning('batch')
    .executeTakeFirst()
}

export function batchExpiry(tx: Transaction<DB>, cip13: string, batch: string) {
  return tx.selectFrom('serial_batches').select(['expiry']).where('cip13', '=', cip13).where('batch', '=', batch).executeTakeFirstOrThrow()
}

/** Inserts the serials (one array parameter) as active packs of the batch: the serials inserted, the others left as they were. */
export function insertPacks(tx: Transaction<DB>, target: { cip13: string; batch: string }, serials: readonly string[], now: Date) {
  return sql<{ serial: string }>`
    insert into packs (cip13, serial, batch, state, state_at, last_txn, created_at)
    select ${target.cip13}, s, ${target.batch}, 'active', ${now}::timestamptz, null, ${now}::timestamptz from unnest(${serials}::text[]) as s
    on conflict (cip13, serial) do nothing
    returning serial`.execute(tx)
}

/** The batch of each of these serials of the product that has a pack. */
export function batchesOfSerials(tx: Transaction<DB>, cip13: string, serials: readonly string[]) {
  return sql<{ serial: string; batch: string }>`
    select serial, batch from packs where cip13 = ${cip13} and serial = any(${serials}::text[])`.execute(tx)
}

// ---- statuses ----------------------------------------------------------------------------------------------

/** The batch's status, its row locked until the transaction ends. */
export function lockBatchStatus(tx: Transaction<DB>, cip13: string, batch: string) {
  return tx.selectFrom('serial_batches').select(['status']).where('cip13', '=', cip13).where('batch', '=', batch).forUpdate().executeTakeFirst()
}

export function updateBatchStatus(tx: Transaction<DB>, input: { cip13: string; batch: string; status: BatchStatus; reason: string | null }, now: Date) {
  return tx.updateTable('serial_batches').set({ status: input.status, status_reason: input.reason, updated_at: now }).where('cip13', '=', input.cip13).where('batch', '=', input.batch).execute()
}

/** The product's status row, locked until the transaction ends (none: never set, active). */
export function lockProductStatus(tx: Transaction<DB>, cip13: string) {
  return tx.selectFrom('serial_products').select(['status']).where('cip13', '=', cip13).forUpdate().executeTakeFirst()
}

export function upsertProductStatus(tx: Transaction<DB>, labId: string, input: { cip13: string; status: BatchStatus; reason: string | null }, now: Date) {
  return tx
    .insertInto('serial_products')
    .values({ cip13: input.cip13, lab_id: labId, status: input.status, status_reason: input.reason, updated_at: now })
    .onConflict((oc) => oc.column('cip13').doUpdateSet({ status: input.status, status_reason: input.reason, lab_id: labId, updated_at: now }))
    .execute()
}

// ---- figures -----------------------------------------------------------------------------------------------

/** A YYYY-MM-DD of ours as an SQL literal (checked: it is spliced into the statement). */
function dateLiteral(day: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`not a date: ${day}`)
  return `'${day}'::date`
}

/** Batches of a product with what blocks them (dispensation/rule.ts) and the recalls naming them; `after`: keyset on the batch number. */
export function batchRows(db: Db, cip13: string, opts: { batch?: string; after?: string; limit: number; today: string }) {
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
  return q.execute()
}

/** The packs of these batches of the product, counted per batch and state. */
export function packCounts(db: Db, cip13: string, batches: string[]) {
  return db
    .selectFrom('packs')
    .select(['batch', 'state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('cip13', '=', cip13)
    .where('batch', 'in', batches)
    .groupBy(['batch', 'state'])
    .execute()
}

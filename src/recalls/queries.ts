/**
 * The SQL of a recall's blocked batches (`dispensation_blocks`, one row per recall and batch; what the rows mean
 * and how the instances load them: src/dispensation/). Functions take a Kysely or a Transaction.
 */
import { type Insertable, type Kysely, sql, type Transaction } from 'kysely'
import type { DispensationBlocksTable } from '../dispensation/db.ts'
import type { DB } from '../platform/db/schema.ts'

type Db = Kysely<DB> | Transaction<DB>
type Box = { cip13: string; batch: string }

/** The batches the recall blocks now, announced or in force. */
export function blockedBatches(db: Db, recallId: string) {
  return db.selectFrom('dispensation_blocks').select(['cip13', 'batch']).where('recall_id', '=', recallId).execute()
}

/** Adds rows, leaving those already there as they are; answers the rows this call added. */
export function insertBlocks(tx: Transaction<DB>, rows: Array<Insertable<DispensationBlocksTable>>) {
  return tx
    .insertInto('dispensation_blocks')
    .values(rows)
    .onConflict((oc) => oc.columns(['cip13', 'batch', 'recall_id']).doNothing())
    .returning(['cip13', 'batch'])
    .execute()
}

/** The recall's rows, locked until the transaction ends. */
export function lockBlocks(tx: Transaction<DB>, recallId: string) {
  return tx.selectFrom('dispensation_blocks').select(['cip13', 'batch', 'state']).where('recall_id', '=', recallId).forUpdate().execute()
}

/** Removes these batches from the recall's rows. */
export async function deleteBlocks(tx: Transaction<DB>, recallId: string, rows: Box[]) {
  await tx
    .deleteFrom('dispensation_blocks')
    .where('recall_id', '=', recallId)
    .where(sql<boolean>`(cip13, batch) in (select * from unnest(${rows.map((r) => r.cip13)}::text[], ${rows.map((r) => r.batch)}::text[]))`)
    .execute()
}

/** Puts every row of the recall in force, with what the version in force says. */
export async function activateBlocks(tx: Transaction<DB>, recallId: string, set: { reference: string; version: number; lab_id: string; message_fr: string; message_en: string | null }) {
  await tx
    .updateTable('dispensation_blocks')
    .set({ state: 'active', ...set })
    .where('recall_id', '=', recallId)
    .execute()
}

/** Removes those of these batches still pending; answers how many were removed. */
export async function deletePendingBlocks(tx: Transaction<DB>, recallId: string, rows: Box[]) {
  const deleted = await tx
    .deleteFrom('dispensation_blocks')
    .where('recall_id', '=', recallId)
    .where('state', '=', 'pending')
    .where(sql<boolean>`(cip13, batch) in (select * from unnest(${rows.map((r) => r.cip13)}::text[], ${rows.map((r) => r.batch)}::text[]))`)
    .executeTakeFirst()
  return Number(deleted.numDeletedRows)
}

/** The lab holders' SQL: which lab each BDPM holder maps to, and the medicines that holder covers. */
import type { Kysely, Transaction } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'

type Db = Kysely<DB> | Transaction<DB>

/** One page of holders with their lab and counts, by holder, with one row more than `limit` when another page follows. */
export function listLabHolders(db: Db, unmapped: boolean | undefined, afterHolder: string | null, limit: number) {
  let query = db
    .selectFrom('medicines as m')
    .leftJoin('lab_holders as h', 'h.holder', 'm.holder')
    .leftJoin('organisations as o', 'o.id', 'h.lab_id')
    .select((eb) => ['m.holder', 'h.lab_id', 'o.name', eb.fn.countAll<number>().as('n'), eb.fn.countAll<number>().filterWhere('m.lab_id', 'is', null).as('without')])
    .where('m.holder', 'is not', null)
    .groupBy(['m.holder', 'h.lab_id', 'o.name'])
    .orderBy('m.holder')
    .limit(limit + 1)
  if (unmapped) query = query.having((eb) => eb.fn.countAll().filterWhere('m.lab_id', 'is', null), '>', 0)
  if (afterHolder !== null) query = query.where('m.holder', '>', afterHolder)
  return query.execute()
}

/** The holder's mapping with its lab's name. */
export function labHolderMapping(db: Db, holder: string) {
  return db
    .selectFrom('lab_holders as h')
    .leftJoin('organisations as o', 'o.id', 'h.lab_id')
    .select(['h.lab_id', 'o.name'])
    .where('h.holder', '=', holder)
    .executeTakeFirst()
}

/** The holder's medicines, and how many of them have no lab. */
export function holderCounts(db: Db, holder: string) {
  return db
    .selectFrom('medicines')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.countAll<number>().filterWhere('lab_id', 'is', null).as('without')])
    .where('holder', '=', holder)
    .executeTakeFirstOrThrow()
}

export function lockLabHolder(tx: Transaction<DB>, holder: string) {
  return tx.selectFrom('lab_holders').select('lab_id').where('holder', '=', holder).forUpdate().executeTakeFirst()
}

export async function upsertLabHolder(tx: Transaction<DB>, holder: string, labId: string | null) {
  await tx
    .insertInto('lab_holders')
    .values({ holder, lab_id: labId, updated_at: new Date() })
    .onConflict((oc) => oc.column('holder').doUpdateSet({ lab_id: labId, updated_at: new Date() }))
    .execute()
}

/** Gives the holder's medicines to the lab (or none): how many changed. */
export async function reassignMedicines(tx: Transaction<DB>, holder: string, labId: string | null) {
  const reassigned = await tx
    .updateTable('medicines')
    .set({ lab_id: labId, updated_at: new Date() })
    .where('holder', '=', holder)
    .where('lab_id', 'is distinct from', labId)
    .executeTakeFirst()
  return Number(reassigned.numUpdatedRows)
}

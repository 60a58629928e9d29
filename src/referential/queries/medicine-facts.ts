/**
 * The SQL behind the medicine facts: presentations with their medicine, generic group memberships, composition,
 * and the medicines whose composition names a substance. The referential is public to every role: no tenancy filter.
 */
import type { Kysely, Transaction } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import '../db.ts'
import type { ComponentFact } from '../rules/medicine-facts.ts'

type Db = Kysely<DB> | Transaction<DB>

/** The composition of the given medicines, per CIS, in the published order. */
export async function componentsOf(db: Db, cisList: string[]): Promise<Map<string, ComponentFact[]>> {
  const out = new Map<string, ComponentFact[]>()
  if (cisList.length === 0) return out
  const rows = await db.selectFrom('medicine_components').selectAll().where('cis', 'in', cisList).orderBy('cis').orderBy('element').orderBy('link_no').orderBy('nature').execute()
  for (const r of rows) {
    const list = out.get(r.cis) ?? []
    list.push({ element: r.element, linkNo: r.link_no, nature: r.nature, substanceCode: r.substance_code, substance: r.substance, searchSubstance: r.search_substance, dosage: r.dosage })
    out.set(r.cis, list)
  }
  return out
}

/** The given presentations with their medicine's name and form (unknown CIP13s have no row). */
export function presentationsWithMedicine(db: Db, codes: string[]) {
  return db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['p.cip13', 'p.cis', 'p.label', 'm.name', 'm.form'])
    .where('p.cip13', 'in', codes)
    .execute()
}

/** The generic groups the given medicines belong to, by group. */
export function genericMemberships(db: Db, cisList: string[]) {
  return db
    .selectFrom('generic_group_members as gm')
    .innerJoin('generic_groups as g', 'g.id', 'gm.group_id')
    .select(['gm.cis', 'gm.group_id', 'gm.type', 'g.label'])
    .where('gm.cis', 'in', cisList)
    .orderBy('gm.group_id')
    .execute()
}

/** Whether any composition row is loaded. */
export async function anyComposition(db: Db): Promise<boolean> {
  return (await db.selectFrom('medicine_components').select('cis').limit(1).executeTakeFirst()) !== undefined
}

/** Medicines (at most 2000) with a component named after the substance, or after it with its salt or hydrate. */
export function medicinesNamingSubstance(db: Db, first: string) {
  return db
    .selectFrom('medicine_components')
    .select('cis')
    .distinct()
    .where((eb) => eb.or([eb('search_substance', '=', first), eb('search_substance', 'like', `${first} %`), eb('search_substance', 'like', `${first}(%`)]))
    .limit(2000)
    .execute()
}

/** The form of each of the given medicines. */
export function formsOf(db: Db, cisList: string[]) {
  return db.selectFrom('medicines').select(['cis', 'form']).where('cis', 'in', cisList).execute()
}

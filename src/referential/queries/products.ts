/**
 * The products' SQL: presentations, medicines, their availability lines, generic groups, composition and
 * prescription conditions. The referential is public to every role: no tenancy filter.
 */
import type { Kysely, Transaction } from 'kysely'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { DB } from '../../platform/db/schema.ts'
import { searchName } from '../rules/search-name.ts'
import '../db.ts'
import { escapeLike } from '../../platform/db/like.ts'

type Db = Kysely<DB> | Transaction<DB>

/** Presentation + medicine + lab + its own and its medicine-wide availability: one row per product. */
function productQuery(db: Db) {
  return db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .leftJoin('organisations as o', 'o.id', 'm.lab_id')
    .leftJoin('availability as ap', (j) => j.onRef('ap.cis', '=', 'p.cis').onRef('ap.cip13', '=', 'p.cip13'))
    .leftJoin('availability as am', (j) => j.onRef('am.cis', '=', 'p.cis').on('am.cip13', 'is', null))
    .select([
      'p.cip13', 'p.cip7', 'p.cis', 'p.label', 'p.administrative_status', 'p.marketing_state as presentation_state', 'p.declaration_date',
      'p.hospital_approved', 'p.reimbursement_rate', 'p.price_eur',
      'm.name', 'm.search_name', 'm.form', 'm.routes', 'm.atc', 'm.mitm', 'm.niche', 'm.enhanced_monitoring', 'm.holder',
      'm.authorisation_status', 'm.marketing_state as medicine_state', 'm.lab_id', 'o.name as lab_name',
      'ap.status_code as ap_code', 'ap.status_label as ap_label', 'ap.start_date as ap_start', 'ap.planned_end_date as ap_end', 'ap.return_date as ap_return', 'ap.link as ap_link', 'ap.updated_at as ap_updated',
      'am.status_code as am_code', 'am.status_label as am_label', 'am.start_date as am_start', 'am.planned_end_date as am_end', 'am.return_date as am_return', 'am.link as am_link', 'am.updated_at as am_updated',
    ])
}
export type ProductRow = Awaited<ReturnType<ReturnType<typeof productQuery>['executeTakeFirstOrThrow']>>

/**
 * The look-up by CIP13 or CIP7 is the hot path: its SQL is built once, when the service starts, and each call
 * only binds the code.
 */
export function productLookup(db: Kysely<DB>, prepared: DatabaseHandle['prepared'], where: 'p.cip13' | 'p.cip7') {
  const q = productQuery(db).where(where, '=', '').orderBy('p.cip13').compile()
  if (q.parameters.length !== 1) throw new Error('product look-up: one parameter expected')
  const name = `product_by_${where.slice(2)}`
  return (code: string) => prepared<ProductRow>(name, q.sql, [code])
}

export interface ProductFilter {
  /** Trimmed: an exact code, or words of the name. */
  q?: string
  /** Upper case: a code or a prefix. */
  atc?: string
  mitm?: boolean
  labId?: string
}

/** One page by name then CIP13, with one row more than `limit` when another page follows. */
export function searchProducts(db: Db, filter: ProductFilter, after: { s: string; c: string } | null, limit: number): Promise<ProductRow[]> {
  const { q, atc, mitm, labId } = filter
  let query = productQuery(db).orderBy('m.search_name').orderBy('p.cip13').limit(limit + 1)
  if (q) {
    if (/^\d{13}$/.test(q)) query = query.where('p.cip13', '=', q)
    else if (/^0\d{13}$/.test(q)) query = query.where('p.cip13', '=', q.slice(1))
    else if (/^\d{7}$/.test(q)) query = query.where('p.cip7', '=', q)
    else if (/^\d{8}$/.test(q)) query = query.where('p.cis', '=', q)
    else for (const word of searchName(q).split(/\s+/).filter(Boolean)) query = query.where('m.search_name', 'like', `%${escapeLike(word)}%`)
  }
  if (atc) query = query.where('m.atc', 'like', `${atc}%`)
  if (mitm !== undefined) query = query.where('m.mitm', '=', mitm)
  if (labId) query = query.where('m.lab_id', '=', labId)
  if (after) {
    const { s, c } = after
    query = query.where((eb) => eb(eb.refTuple('m.search_name', 'p.cip13'), '>', eb.tuple(s, c)))
  }
  return query.execute()
}

/** Generic groups, composition and conditions of the given medicines (at least one), in three queries. */
export async function detailRows(db: Db, cis: string[]) {
  const [groups, components, conditions] = await Promise.all([
    db.selectFrom('generic_group_members as gm').innerJoin('generic_groups as g', 'g.id', 'gm.group_id').select(['gm.cis', 'g.id', 'g.label', 'gm.type']).where('gm.cis', 'in', cis).orderBy('g.id').execute(),
    db.selectFrom('medicine_components').selectAll().where('cis', 'in', cis).orderBy('element').orderBy('link_no').orderBy('nature', 'desc').orderBy('substance_code').execute(),
    db.selectFrom('prescription_conditions').select(['cis', 'condition']).where('cis', 'in', cis).orderBy('condition').execute(),
  ])
  return { groups, components, conditions }
}
export type DetailRows = Awaited<ReturnType<typeof detailRows>>

/** A medicine with its lab's name and its medicine-wide availability line. */
export function medicineRow(db: Db, cis: string) {
  return db
    .selectFrom('medicines as m')
    .leftJoin('organisations as o', 'o.id', 'm.lab_id')
    .leftJoin('availability as am', (j) => j.onRef('am.cis', '=', 'm.cis').on('am.cip13', 'is', null))
    .selectAll('m')
    .select(['o.name as lab_name', 'am.status_code as am_code', 'am.status_label as am_label', 'am.start_date as am_start', 'am.planned_end_date as am_end', 'am.return_date as am_return', 'am.link as am_link'])
    .where('m.cis', '=', cis)
    .executeTakeFirst()
}
export type MedicineRow = NonNullable<Awaited<ReturnType<typeof medicineRow>>>

/** A medicine's presentations with their own availability lines, by CIP13. */
export function presentationRows(db: Db, cis: string) {
  return db
    .selectFrom('presentations as p')
    .leftJoin('availability as ap', (j) => j.onRef('ap.cis', '=', 'p.cis').onRef('ap.cip13', '=', 'p.cip13'))
    .selectAll('p')
    .select(['ap.status_code as ap_code', 'ap.status_label as ap_label', 'ap.start_date as ap_start', 'ap.planned_end_date as ap_end', 'ap.return_date as ap_return', 'ap.link as ap_link', 'ap.updated_at as ap_updated'])
    .where('p.cis', '=', cis)
    .orderBy('p.cip13')
    .execute()
}
export type PresentationRow = Awaited<ReturnType<typeof presentationRows>>[number]

export function genericGroup(db: Db, id: number) {
  return db.selectFrom('generic_groups').select(['id', 'label']).where('id', '=', id).executeTakeFirst()
}

/** The members in the published order, with the name of those the referential holds. */
export function genericGroupMembers(db: Db, id: number) {
  return db
    .selectFrom('generic_group_members as gm')
    .leftJoin('medicines as m', 'm.cis', 'gm.cis')
    .select(['gm.cis', 'gm.type', 'm.name'])
    .where('gm.group_id', '=', id)
    .orderBy('gm.sort_order')
    .orderBy('gm.cis')
    .execute()
}

/** The fields an operator corrects, locked until the transaction ends. */
export function lockMedicineCorrections(tx: Transaction<DB>, cis: string) {
  return tx.selectFrom('medicines').select(['lab_id', 'niche', 'mitm', 'atc']).where('cis', '=', cis).forUpdate().executeTakeFirst()
}

export interface MedicineCorrection {
  labId?: string | null
  niche?: boolean
  mitm?: boolean
  atc?: string | null
}

/** Sets the fields given (undefined: left as is). */
export async function correctMedicine(tx: Transaction<DB>, cis: string, patch: MedicineCorrection) {
  await tx
    .updateTable('medicines')
    .set({
      ...(patch.labId !== undefined ? { lab_id: patch.labId } : {}),
      ...(patch.niche !== undefined ? { niche: patch.niche } : {}),
      ...(patch.mitm !== undefined ? { mitm: patch.mitm } : {}),
      ...(patch.atc !== undefined ? { atc: patch.atc } : {}),
      updated_at: new Date(),
    })
    .where('cis', '=', cis)
    .execute()
}

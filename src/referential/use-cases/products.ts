/** The products' operations: look up a box's code, search, read a medicine or a generic group, correct a medicine. */
import type { Kysely, Transaction } from 'kysely'
import type { Static } from 'typebox'
import { audit, diff } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { declaredAvailability } from '../../shortages/use-cases/public.ts'
import { genericGroupNotFound, medicineNotFound, productNotFound } from '../errors.ts'
import * as q from '../queries/products.ts'
import { type Details, GENERIC_TYPES, type MedicinePatch, type Product } from '../schemas/products.ts'
import { detailsByCis, noDetails, toMedicine, toProduct } from '../views.ts'
import { actor, type Deps, type Who } from './context.ts'
import { assertLab } from './organisations.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

type Db = Kysely<DB> | Transaction<DB>

/** A product's code once parsed: the CIP13 (from a CIP13 or a GTIN-14) or the older CIP7. */
export type ProductKey = { cip13: string } | { cip7: string }

/** Generic groups, composition and conditions of the given medicines, in three queries (none for no medicine). */
async function detailsOf(db: Db, cisList: string[]): Promise<(cis: string) => Details> {
  const cis = [...new Set(cisList)]
  if (cis.length === 0) return noDetails
  return detailsByCis(await q.detailRows(db, cis))
}

/**
 * The look-up of one product by the code read from a box, its statements prepared once when the service
 * starts; `code` is the code as given, for the answer when nothing matches.
 */
export function productFinder(deps: Deps) {
  const byCip13 = q.productLookup(deps.db, deps.prepared, 'p.cip13')
  const byCip7 = q.productLookup(deps.db, deps.prepared, 'p.cip7')
  return async (key: ProductKey, code: string): Promise<Static<typeof Product>> => {
    const rows = await ('cip7' in key ? byCip7(key.cip7) : byCip13(key.cip13))
    if (!rows[0]) throw productNotFound(code)
    return toProduct(rows[0], await declaredAvailability(deps.db, [rows[0].cip13]), (await detailsOf(deps.db, [rows[0].cis]))(rows[0].cis))
  }
}

export async function searchProducts(deps: Deps, filter: q.ProductFilter, after: { s: string; c: string } | null, limit: number) {
  const rows = await q.searchProducts(deps.db, filter, after, limit)
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  const [declared, details] = await Promise.all([declaredAvailability(deps.db, page.map((r) => r.cip13)), detailsOf(deps.db, page.map((r) => r.cis))])
  return { items: page.map((r) => toProduct(r, declared, details(r.cis))), next: rows.length > limit && last ? { s: last.search_name, c: last.cip13 } : null }
}

async function getMedicine(db: Db, cis: string) {
  const m = await q.medicineRow(db, cis)
  if (!m) return null
  const presentations = await q.presentationRows(db, cis)
  const declared = await declaredAvailability(db, presentations.map((p) => p.cip13))
  const details = (await detailsOf(db, [cis]))(cis)
  return toMedicine(m, presentations, declared, details)
}

export async function readMedicine(deps: Deps, cis: string) {
  const medicine = await getMedicine(deps.db, cis)
  if (!medicine) throw medicineNotFound(cis)
  return medicine
}

export async function readGenericGroup(deps: Deps, id: number) {
  const group = await q.genericGroup(deps.db, id)
  if (!group) throw genericGroupNotFound(id)
  const members = await q.genericGroupMembers(deps.db, id)
  return { id: group.id, label: group.label, members: members.map((m) => ({ cis: m.cis, name: m.name, type: GENERIC_TYPES[m.type], typeCode: m.type })) }
}

/** The operator's correction of a medicine's lab, niche, MITM flag or ATC code; audited only when something changed. */
export async function correctMedicine(deps: Deps, who: Who, cis: string, { reason, ...body }: Static<typeof MedicinePatch>) {
  const patch = { ...body, ...(body.atc ? { atc: body.atc.toUpperCase() } : {}) }
  const medicine = await inTransaction(deps.db, async (tx) => {
    const before = await q.lockMedicineCorrections(tx, cis)
    if (!before) throw medicineNotFound(cis)
    if (patch.labId) await assertLab(tx, patch.labId, 'body.labId', who.lang)
    const changes = diff({ labId: before.lab_id, niche: before.niche, mitm: before.mitm, atc: before.atc }, patch)
    if (Object.keys(changes).length) {
      await q.correctMedicine(tx, cis, patch)
      await audit(tx, actor(who), { action: 'medicine.updated', objectType: 'medicine', objectId: cis, changes: { ...changes, ...(reason ? { reason } : {}) } })
    }
    return getMedicine(tx, cis)
  })
  return medicine!
}

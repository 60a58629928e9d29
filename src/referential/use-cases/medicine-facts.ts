/**
 * The facts of products that substitution relies on, as the e-prescription reads them: on the caller's database
 * handle or transaction (they start none), read through queries/medicine-facts.ts and matched by rules/medicine-facts.ts.
 */
import type { Kysely, Transaction } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import * as q from '../queries/medicine-facts.ts'
import { matchSubstance, type ProductFact, type SubstanceMismatch, type SubstanceSpec, substancesOf, unitsOfLabel } from '../rules/medicine-facts.ts'

type Db = Kysely<DB> | Transaction<DB>

/** The facts of the given presentations (unknown CIP13s are absent from the map). */
export async function productFacts(db: Db, cip13s: string[]): Promise<Map<string, ProductFact>> {
  const out = new Map<string, ProductFact>()
  const codes = [...new Set(cip13s)]
  if (codes.length === 0) return out
  const rows = await q.presentationsWithMedicine(db, codes)
  const cisList = [...new Set(rows.map((r) => r.cis))]
  const groups = cisList.length ? await q.genericMemberships(db, cisList) : []
  const components = await q.componentsOf(db, cisList)
  for (const r of rows) {
    out.set(r.cip13, {
      cip13: r.cip13,
      cis: r.cis,
      name: r.name,
      label: r.label,
      form: r.form,
      units: unitsOfLabel(r.label),
      groups: groups.filter((g) => g.cis === r.cis).map((g) => ({ id: g.group_id, label: g.label, type: g.type })),
      components: components.get(r.cis) ?? [],
    })
  }
  return out
}

/** Whether composition data is loaded at all (without it, substance lines cannot be checked at issue). */
export async function hasComposition(db: Db): Promise<boolean> {
  return q.anyComposition(db)
}

/**
 * Medicines carrying exactly these substances at these strengths in this form: how many, and the ANSM code of
 * each substance (for the FHIR Bundle). `why` tells the closest miss when there is none.
 */
export async function findSubstanceMedicines(db: Db, spec: SubstanceSpec): Promise<{ count: number; substanceCodes: string[] | null; why: SubstanceMismatch | null }> {
  const first = substancesOf(spec.substance)[0]
  if (!first) return { count: 0, substanceCodes: null, why: 'substance' }
  const candidates = await q.medicinesNamingSubstance(db, first)
  const cisList = candidates.map((c) => c.cis)
  if (cisList.length === 0) return { count: 0, substanceCodes: null, why: 'substance' }
  const components = await q.componentsOf(db, cisList)
  const forms = new Map((await q.formsOf(db, cisList)).map((m) => [m.cis, m.form]))
  let count = 0
  let codes: string[] | null = null
  const rank: Record<SubstanceMismatch, number> = { 'composition-unknown': 0, substance: 1, 'other-substances': 2, strength: 3, form: 4 }
  let why: SubstanceMismatch = 'substance'
  for (const cis of cisList) {
    const r = matchSubstance({ components: components.get(cis) ?? [], form: forms.get(cis) ?? null }, spec)
    if (r.ok) {
      count++
      codes ??= r.substanceCodes
    } else if (rank[r.why] > rank[why]) why = r.why
  }
  return { count, substanceCodes: codes, why: count ? null : why }
}

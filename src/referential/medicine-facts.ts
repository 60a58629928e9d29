/**
 * What the referential knows about a product that substitution relies on: its medicine (CIS), generic groups,
 * composition, form and number of units per box. Read by the e-prescription through these functions only.
 */
import type { Kysely, Transaction } from 'kysely'
import type { DB } from '../platform/db/schema.ts'
import { searchName } from './rules/search-name.ts'
import './db.ts'
import type { GenericType } from './db.ts'

type Db = Kysely<DB> | Transaction<DB>

export interface ComponentFact {
  element: string
  linkNo: number
  nature: 'SA' | 'FT'
  substanceCode: string
  substance: string
  searchSubstance: string
  dosage: string | null
}

export interface ProductFact {
  cip13: string
  cis: string
  name: string
  label: string
  form: string | null
  /** Units (tablets, capsules, sachets…) in one box; null when the label does not say in countable units. */
  units: number | null
  groups: Array<{ id: number; label: string; type: GenericType }>
  components: ComponentFact[]
}

// ---- units per box -------------------------------------------------------------------------------------

// Dose units a patient counts. Volumes and masses (ml, g) are not: two bottles of 100 ml are not two "units" of a
// 200 ml bottle, so such presentations have no unit count and their quantities are not compared.
const COUNTABLE = [
  'comprimé', 'gélule', 'capsule', 'sachet', 'suppositoire', 'ovule', 'pastille', 'lyophilisat', 'récipient unidose', 'récipient',
  'ampoule', 'seringue', 'stylo', 'cartouche', 'dispositif', 'patch', 'timbre', 'dose', 'film', 'gomme', 'implant', 'insert',
  'comprimé effervescent', 'unidose', 'applicateur', 'trousse', 'poche', 'flacon unidose',
].map((u) => searchName(u))
const unitAt = (s: string) => COUNTABLE.some((u) => s.startsWith(u) && /^(\(S\)|S\b|\s|-|$)/.test(s.slice(u.length)))

/**
 * The number of units in a box from its BDPM label: "plaquette(s) … de 30 comprimé(s)" → 30, "3 plaquette(s) … de 10
 * gélule(s)" → 30, "8 sachet(s)-dose(s) …" → 8, "20 récipient(s) unidose(s) … de 2 ml" → 20; "1 flacon(s) … de 100 ml"
 * → null. Written by hand: the labels are free text with no published grammar.
 */
export function unitsOfLabel(label: string): number | null {
  const first = searchName(label).split(/ - |\+/)[0]!.trim() // kits ("poudre - solvant"): the first component
  const lead = /^(\d+)\s+(.*)$/.exec(first)
  const count = lead ? Number(lead[1]) : 1
  const rest = lead ? lead[2]! : first
  const inner = /\bDE\s+(\d+)\s+([^\d].*)$/.exec(rest)
  if (inner && unitAt(inner[2]!.trim())) return count * Number(inner[1])
  if (lead && unitAt(rest)) return count
  return null
}

// ---- strengths -----------------------------------------------------------------------------------------

const MASS: Record<string, number> = { G: 1000, MG: 1, µG: 0.001, UG: 0.001, MCG: 0.001, MICROGRAMME: 0.001, MICROGRAMMES: 0.001, NG: 0.000001 }

/** "500 mg", "500,00 mg", "0,5 g", "100 microgrammes", "1 000 000 UI" → a comparable value; null when not read. */
export function parseStrength(text: string | null): { value: number; unit: string } | null {
  if (!text) return null
  const m = /^\s*(\d{1,3}(?:[  ]\d{3})+|\d+)(?:[.,](\d+))?\s*([a-zµ%.]+)\b/i.exec(text.replace(/\s+/g, ' '))
  if (!m) return null
  const value = Number(`${m[1]!.replace(/[  ]/g, '')}.${m[2] ?? '0'}`)
  const unit = searchName(m[3]!).replace(/\./g, '')
  if (unit in MASS) return { value: value * MASS[unit]!, unit: 'MG' }
  if (unit === 'UI' || unit === 'U') return { value, unit: 'UI' }
  if (unit === 'ML') return { value, unit: 'ML' }
  if (unit === '%') return { value, unit: '%' }
  return { value, unit }
}

const sameStrength = (a: { value: number; unit: string }, b: { value: number; unit: string }) => a.unit === b.unit && Math.abs(a.value - b.value) <= 1e-9 * Math.max(1, Math.abs(a.value))

// ---- substance, strength and form ---------------------------------------------------------------------

export interface SubstanceSpec {
  /** One or several substances ("amoxicilline + acide clavulanique"). */
  substance: string
  /** As many strengths, separated by "/" ("1 g/125 mg"). */
  strength: string
  form: string
}

/** "amoxicilline + acide clavulanique" → ["AMOXICILLINE", "ACIDE CLAVULANIQUE"]. */
export const substancesOf = (s: string) => searchName(s).split(/\s*(?:\+|\/|,| ET )\s*/).map((x) => x.trim()).filter(Boolean)
const strengthsOf = (s: string) => s.split('/').map((x) => x.trim())

/** A composition name carries the prescribed substance: the same, or the same followed by its salt or hydrate ("AMOXICILLINE TRIHYDRATÉE", "RANITIDINE (CHLORHYDRATE DE)"). */
const carries = (name: string, substance: string) => name === substance || name.startsWith(`${substance} `) || name.startsWith(`${substance}(`)

// Forms that change how the medicine is released or taken: "comprimé" does not cover "comprimé effervescent".
const SPECIAL = ['EFFERVESCENT', 'ORODISPERSIBLE', 'DISPERSIBLE', 'LIBERATION', 'GASTRO', 'CROQUER', 'SUCER', 'SUBLINGUAL', 'BUCCO', 'VAGINAL', 'SOLUBLE']
function formMatches(prescribed: string, medicineForm: string | null, elements: string[]): boolean {
  const want = searchName(prescribed).trim()
  // The medicine's form when known ("comprimé effervescent"); the composition's element ("comprimé") says less.
  const candidates = (medicineForm ? [medicineForm] : elements).map((f) => searchName(f).trim())
  return candidates.some((f) => {
    if (f === want) return true
    if (!f.startsWith(`${want} `)) return false
    const extra = f.slice(want.length)
    return !SPECIAL.some((w) => extra.includes(w) && !want.includes(w))
  })
}

export type SubstanceMismatch = 'composition-unknown' | 'substance' | 'other-substances' | 'strength' | 'form'

/**
 * Whether a product carries exactly the prescribed substances at the prescribed strengths, in the prescribed form.
 * Compared per pharmaceutical element, per active component (an SA and its FT share a link number; the FT, the
 * active moiety, carries the strength when it is given). Answers why not, for the refusal.
 */
export function matchSubstance(p: Pick<ProductFact, 'components' | 'form'>, spec: SubstanceSpec): { ok: true; substanceCodes: string[] } | { ok: false; why: SubstanceMismatch } {
  if (p.components.length === 0) return { ok: false, why: 'composition-unknown' }
  const wanted = substancesOf(spec.substance)
  const strengths = strengthsOf(spec.strength).map(parseStrength)
  let best: SubstanceMismatch = 'substance'
  const rank: Record<SubstanceMismatch, number> = { 'composition-unknown': 0, substance: 1, 'other-substances': 2, strength: 3, form: 4 }
  const worse = (why: SubstanceMismatch) => {
    if (rank[why] > rank[best]) best = why
  }
  const byElement = new Map<string, Map<number, ComponentFact[]>>()
  for (const c of p.components) {
    const links = byElement.get(c.element) ?? new Map<number, ComponentFact[]>()
    links.set(c.linkNo, [...(links.get(c.linkNo) ?? []), c])
    byElement.set(c.element, links)
  }
  for (const [element, links] of byElement) {
    const groups = [...links.values()]
    const used = new Set<number>()
    const codes: string[] = []
    let found = true
    let strengthOk = true
    wanted.forEach((substance, i) => {
      const gi = groups.findIndex((g, k) => !used.has(k) && g.some((c) => carries(c.searchSubstance, substance)))
      if (gi < 0) {
        found = false
        return
      }
      used.add(gi)
      const g = groups[gi]!
      const carrier = g.find((c) => carries(c.searchSubstance, substance))!
      codes.push(carrier.substanceCode)
      const want = strengths[i] ?? strengths[0]
      const dosages = [...g.filter((c) => c.nature === 'FT'), ...g.filter((c) => c.nature === 'SA')].map((c) => parseStrength(c.dosage)).filter((d) => d !== null)
      if (!want || !dosages.some((d) => sameStrength(d, want))) strengthOk = false
    })
    if (!found) continue
    if (groups.length !== wanted.length) {
      worse('other-substances')
      continue
    }
    if (!strengthOk) {
      worse('strength')
      continue
    }
    if (!formMatches(spec.form, p.form, [element])) {
      worse('form')
      continue
    }
    return { ok: true, substanceCodes: codes }
  }
  return { ok: false, why: best }
}

// ---- queries ---------------------------------------------------------------------------------------------

async function componentsOf(db: Db, cisList: string[]): Promise<Map<string, ComponentFact[]>> {
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

/** The facts of the given presentations (unknown CIP13s are absent from the map). */
export async function productFacts(db: Db, cip13s: string[]): Promise<Map<string, ProductFact>> {
  const out = new Map<string, ProductFact>()
  const codes = [...new Set(cip13s)]
  if (codes.length === 0) return out
  const rows = await db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['p.cip13', 'p.cis', 'p.label', 'm.name', 'm.form'])
    .where('p.cip13', 'in', codes)
    .execute()
  const cisList = [...new Set(rows.map((r) => r.cis))]
  const groups = cisList.length
    ? await db
        .selectFrom('generic_group_members as gm')
        .innerJoin('generic_groups as g', 'g.id', 'gm.group_id')
        .select(['gm.cis', 'gm.group_id', 'gm.type', 'g.label'])
        .where('gm.cis', 'in', cisList)
        .orderBy('gm.group_id')
        .execute()
    : []
  const components = await componentsOf(db, cisList)
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
  return (await db.selectFrom('medicine_components').select('cis').limit(1).executeTakeFirst()) !== undefined
}

/**
 * Medicines carrying exactly these substances at these strengths in this form: how many, and the ANSM code of
 * each substance (for the FHIR Bundle). `why` tells the closest miss when there is none.
 */
export async function findSubstanceMedicines(db: Db, spec: SubstanceSpec): Promise<{ count: number; substanceCodes: string[] | null; why: SubstanceMismatch | null }> {
  const first = substancesOf(spec.substance)[0]
  if (!first) return { count: 0, substanceCodes: null, why: 'substance' }
  const candidates = await db
    .selectFrom('medicine_components')
    .select('cis')
    .distinct()
    .where((eb) => eb.or([eb('search_substance', '=', first), eb('search_substance', 'like', `${first} %`), eb('search_substance', 'like', `${first}(%`)]))
    .limit(2000)
    .execute()
  const cisList = candidates.map((c) => c.cis)
  if (cisList.length === 0) return { count: 0, substanceCodes: null, why: 'substance' }
  const components = await componentsOf(db, cisList)
  const forms = new Map((await db.selectFrom('medicines').select(['cis', 'form']).where('cis', 'in', cisList).execute()).map((m) => [m.cis, m.form]))
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

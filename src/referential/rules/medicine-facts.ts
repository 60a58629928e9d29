/**
 * What the referential knows about a product that substitution relies on (its medicine, generic groups,
 * composition, form and units per box), and how a product is matched against a prescribed substance, strength and
 * form. Needs no database: the facts are read by use-cases/medicine-facts.ts.
 */
import type { GenericType } from '../db.ts'
import { searchName } from './search-name.ts'

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

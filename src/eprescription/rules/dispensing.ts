/**
 * What a pharmacist may deliver on a line, as French substitution rules allow it, and how much. Pure: the use
 * case gives the referential's facts about the prescribed and delivered products.
 *
 * - A presentation line (CIP13): the prescribed presentation; another pack size of the same medicine when the
 *   units match; a presentation of a medicine of the same generic group (a substitution). On a "non
 *   substituable" line, only the prescribed presentation.
 * - A substance line (DCI): a product carrying exactly that substance at that strength, in that form (from the
 *   composition). On a "non substituable" line, once a medicine was delivered, the renewals keep to it.
 * - Quantities: units (tablets, capsules…) are compared when both boxes say how many they hold; a larger
 *   quantity is refused unless the pharmacist states why from a short vocabulary, recorded on the line.
 */
import { matchSubstance, type ProductFact, type SubstanceMismatch } from '../../referential/rules/medicine-facts.ts'
import type { DeliveredMatch, QuantityReason } from '../db.ts'

export const QUANTITY_REASONS = ['pack-size', 'unit-conversion'] as const satisfies readonly QuantityReason[]

export interface LineRule {
  line_no: number
  cip13: string | null
  substance: string | null
  strength: string | null
  form: string | null
  quantity: number | null
  units: number | null
  non_substitutable: boolean
}

export type NotASubstitute = 'no-generic-group' | 'other-generic-group' | SubstanceMismatch
export type Refusal =
  | { code: 'EPRESCRIPTION_NOT_A_SUBSTITUTE'; why: NotASubstitute; group: { id: number; label: string } | null }
  | { code: 'EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED'; why: 'presentation-only' | 'same-medicine'; medicine: string | null }
  | { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED'; why: 'over' | 'more-than-a-pack' | 'same-presentation'; allowed: number; delivered: number; unit: 'units' | 'boxes'; maxBoxes: number | null }
  | { code: 'EPRESCRIPTION_QUANTITY_UNVERIFIABLE'; cip13: string }

export interface Decision {
  match: DeliveredMatch
  substituted: boolean
  /** Units delivered, when the box says how many it holds. */
  units: number | null
  /** Recorded only when the quantity needed it. */
  quantityReason: QuantityReason | null
}

export interface DeliveryInput {
  quantity: number
  quantityReason?: QuantityReason
}

/**
 * Decides whether `delivered` may be given on `line`, and records how it matched. `prescribed` is the
 * referential's entry for a presentation line's CIP13; `previousCis` the medicine delivered on this line by an
 * earlier dispensation, if any.
 */
export function decideDelivery(line: LineRule, prescribed: ProductFact | null, delivered: ProductFact, previousCis: string | null, input: DeliveryInput): { ok: true; decision: Decision } | { ok: false; refusal: Refusal } {
  let match: DeliveredMatch
  let substituted = false
  if (line.cip13 !== null) {
    if (delivered.cip13 === line.cip13) match = 'prescribed'
    else if (line.non_substitutable) return { ok: false, refusal: { code: 'EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED', why: 'presentation-only', medicine: null } }
    else if (prescribed && delivered.cis === prescribed.cis) match = 'pack-size'
    else {
      const shared = prescribed?.groups.find((g) => delivered.groups.some((d) => d.id === g.id))
      if (!shared) {
        const group = prescribed?.groups[0] ?? null
        return { ok: false, refusal: { code: 'EPRESCRIPTION_NOT_A_SUBSTITUTE', why: group ? 'other-generic-group' : 'no-generic-group', group: group ? { id: group.id, label: group.label } : null } }
      }
      match = 'generic-group'
      substituted = true
    }
  } else {
    const m = matchSubstance(delivered, { substance: line.substance ?? '', strength: line.strength ?? '', form: line.form ?? '' })
    if (!m.ok) return { ok: false, refusal: { code: 'EPRESCRIPTION_NOT_A_SUBSTITUTE', why: m.why, group: null } }
    if (previousCis !== null && previousCis !== delivered.cis) {
      if (line.non_substitutable) return { ok: false, refusal: { code: 'EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED', why: 'same-medicine', medicine: previousCis } }
      substituted = true // another medicine than the one the patient received before
    }
    match = 'substance'
  }

  // ---- quantity --------------------------------------------------------------------------------------
  const reason = input.quantityReason ?? null
  const units = delivered.units !== null ? input.quantity * delivered.units : null
  const allowedUnits = line.units ?? (line.cip13 !== null && line.quantity !== null && prescribed?.units != null ? line.quantity * prescribed.units : null)
  const decision = (needed: boolean): { ok: true; decision: Decision } => ({ ok: true, decision: { match, substituted, units, quantityReason: needed ? reason : null } })

  if (allowedUnits !== null) {
    if (units === null) return reason ? decision(true) : { ok: false, refusal: { code: 'EPRESCRIPTION_QUANTITY_UNVERIFIABLE', cip13: delivered.cip13 } }
    if (units <= allowedUnits) return decision(false)
    const maxBoxes = Math.ceil(allowedUnits / delivered.units!)
    if (!reason) return { ok: false, refusal: { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED', why: 'over', allowed: allowedUnits, delivered: units, unit: 'units', maxBoxes } }
    // The pack sizes on the market may force more than prescribed, by less than one box: no more.
    if (reason === 'pack-size' && input.quantity > maxBoxes) {
      return { ok: false, refusal: { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED', why: 'more-than-a-pack', allowed: allowedUnits, delivered: units, unit: 'units', maxBoxes } }
    }
    return decision(true)
  }
  if (line.quantity !== null) {
    // Units unknown on one side: another presentation than the prescribed one cannot be compared.
    if (line.cip13 !== null && delivered.cip13 !== line.cip13) return reason ? decision(true) : { ok: false, refusal: { code: 'EPRESCRIPTION_QUANTITY_UNVERIFIABLE', cip13: delivered.cip13 } }
    if (input.quantity <= line.quantity) return decision(false)
    if (!reason) return { ok: false, refusal: { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED', why: 'over', allowed: line.quantity, delivered: input.quantity, unit: 'boxes', maxBoxes: line.quantity } }
    if (reason === 'pack-size' && line.cip13 !== null) {
      return { ok: false, refusal: { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED', why: 'same-presentation', allowed: line.quantity, delivered: input.quantity, unit: 'boxes', maxBoxes: line.quantity } }
    }
    return decision(true)
  }
  // A line given by duration only: its posology is free text, so the service cannot compute a quantity.
  return decision(false)
}

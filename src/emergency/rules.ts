/**
 * The emergency service's rules that need no database: declared hours, what an answer must and may carry,
 * eligibility conditions and the lab's maximum quantity. Each names the field it refuses.
 */
import type { Static } from 'typebox'
import { AppError } from '../platform/errors.ts'
import type { Lang } from '../platform/i18n.ts'
import { minutesOf } from './business-hours.ts'
import { type AnswerInput, CONDITIONS, type Condition, type Decision, type ServiceHours } from './schemas.ts'

export const fieldError = (field: string, code: string, text: { fr: string; en: string }, lang: Lang) =>
  new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field, code, message: text[lang] }] })

/** Declared hours: each range ends after it starts; two ranges of one day do not overlap. Answers them normalised (days sorted, holidays explicit). */
export function checkServiceHours(hours: Static<typeof ServiceHours>, lang: Lang) {
  const ranges = hours.slots.map((s) => ({ days: s.days, from: minutesOf(s.from), to: minutesOf(s.to) }))
  for (const [i, r] of ranges.entries()) {
    if (r.to <= r.from) throw fieldError(`body.serviceHours.slots.${i}.to`, 'order', { fr: `doit être après ${hours.slots[i]!.from}`, en: `must be after ${hours.slots[i]!.from}` }, lang)
    for (const [j, earlier] of ranges.slice(0, i).entries()) {
      const day = r.days.find((d) => earlier.days.includes(d))
      if (day !== undefined && r.from < earlier.to && earlier.from < r.to) {
        throw fieldError(`body.serviceHours.slots.${i}`, 'overlap', { fr: `chevauche la plage ${j} le jour ${day}`, en: `overlaps range ${j} on day ${day}` }, lang)
      }
    }
  }
  return { slots: hours.slots.map((s) => ({ days: [...s.days].sort((a, b) => a - b), from: s.from, to: s.to })), publicHolidays: hours.publicHolidays ?? 'closed' } as const
}

// ---- answers -----------------------------------------------------------------------------------------------

export type Answer = Static<typeof AnswerInput>

const ALLOWED_FIELDS: Record<Decision, string[]> = {
  accepted: ['quantity', 'shippingChannel', 'expectedDelivery', 'comment'],
  partially_accepted: ['quantity', 'shippingChannel', 'expectedDelivery', 'comment'],
  redirected: ['redirectTo', 'comment'],
  refused: ['reason', 'comment'],
}

/** An answer carries only the fields of its decision, and all those the decision requires. */
export function checkAnswerFields(b: Answer, lang: Lang) {
  for (const key of Object.keys(b)) {
    if (key !== 'decision' && !ALLOWED_FIELDS[b.decision].includes(key)) {
      throw fieldError(`body.${key}`, 'not_allowed', { fr: `ne s’applique pas à la décision « ${b.decision} »`, en: `does not apply to decision "${b.decision}"` }, lang)
    }
  }
  const need = (key: keyof Answer) => {
    if (b[key] === undefined) throw fieldError(`body.${key}`, 'required', { fr: `obligatoire pour la décision « ${b.decision} »`, en: `required for decision "${b.decision}"` }, lang)
  }
  if (b.decision === 'accepted' || b.decision === 'partially_accepted') {
    if (b.decision === 'partially_accepted') need('quantity')
    need('shippingChannel')
    need('expectedDelivery')
  }
  if (b.decision === 'redirected') need('redirectTo')
  if (b.decision === 'refused') {
    need('reason')
    if (b.reason === 'other') need('comment')
  }
}

export const notAWholesaler = (lang: Lang) =>
  fieldError('body.redirectTo.organisationId', 'unknown', { fr: 'pas un grossiste-répartiteur enregistré sur le service', en: 'not a wholesaler registered on the service' }, lang)

/**
 * The quantity an answer grants, checked against the requested one: an acceptance is for exactly what was
 * requested, a partial acceptance for less. Undefined for the decisions that grant none.
 */
export function grantedQuantity(b: Answer, requested: number, lang: Lang): number | undefined {
  if (b.decision === 'accepted') {
    const quantity = b.quantity ?? requested
    if (quantity !== requested) {
      throw fieldError('body.quantity', 'quantity', { fr: `une acceptation porte sur la quantité demandée (${requested}) ; sinon « partially_accepted »`, en: `an acceptance is for the requested quantity (${requested}); otherwise use "partially_accepted"` }, lang)
    }
    return quantity
  }
  if (b.decision === 'partially_accepted') {
    const quantity = b.quantity!
    if (quantity >= requested) {
      throw fieldError('body.quantity', 'quantity', { fr: `doit être inférieure à la quantité demandée (${requested})`, en: `must be lower than the requested quantity (${requested})` }, lang)
    }
    return quantity
  }
  return undefined
}

/** The expected delivery, when given, is not before the request was sent. */
export function checkExpectedDelivery(expectedDelivery: string | undefined, submittedAt: Date, lang: Lang) {
  if (expectedDelivery && new Date(expectedDelivery) < submittedAt) {
    throw fieldError('body.expectedDelivery', 'order', { fr: `antérieure à l’envoi de la demande (${submittedAt.toISOString()})`, en: `before the request was sent (${submittedAt.toISOString()})` }, lang)
  }
}

// ---- eligibility -------------------------------------------------------------------------------------------

/** Every eligibility condition that fails, in the vocabulary's order. */
export function failedConditions(f: { mitm: boolean; niche: boolean; activeShortage: boolean; labSubscribed: boolean; opened: boolean }): Condition[] {
  const failed: Condition[] = []
  if (!f.mitm && !f.niche) failed.push('mitm_or_niche')
  if (!f.activeShortage) failed.push('active_shortage')
  if (!f.labSubscribed) failed.push('lab_subscribed')
  if (!f.opened) failed.push('opened')
  return failed
}

export const notEligible = (cip13: string, failed: Condition[], lang: Lang) =>
  new AppError(
    'EMERGENCY_NOT_ELIGIBLE',
    { cip13, fr: failed.map((c) => CONDITIONS[c].fr).join(' ; '), en: failed.map((c) => CONDITIONS[c].en).join('; ') },
    { failedConditions: failed.map((c) => ({ condition: c, message: CONDITIONS[c][lang] })) },
  )

/** The lab's maximum per request, when it set one. */
export function checkMaxQuantity(max: number | null, quantity: number, lang: Lang) {
  if (max !== null && quantity > max) {
    throw new AppError('EMERGENCY_QUANTITY_ABOVE_MAXIMUM', { max, quantity }, {
      maxQuantity: max,
      errors: [{ field: 'body.quantity', code: 'maximum', message: lang === 'fr' ? `au plus ${max} pour cette présentation` : `at most ${max} for this presentation` }],
    })
  }
}

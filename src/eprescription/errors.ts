import { AppError, defineErrors, errorDef as d } from '../platform/errors.ts'
import type { Text } from '../platform/i18n.ts'

const fmt = (iso: unknown) => String(iso).slice(0, 10)

/** The e-prescription error catalogue (stable codes; GET /problems lists them). */
defineErrors({
  EPRESCRIPTION_ID_INVALID: d(400, 'Identifiant d’ordonnance invalide', 'Invalid prescription ID', (p) => ({
    fr: `${p.field} : ${p.fr}`,
    en: `${p.field}: ${p.en}`,
  })),
  EPRESCRIPTION_ACCESS_CODE_INVALID: d(400, 'Code d’accès mal saisi', 'Mistyped access code', (p) => ({
    fr: `${p.field} : ${p.fr}`,
    en: `${p.field}: ${p.en}`,
  })),
  EPRESCRIPTION_QR_INVALID: d(400, 'QR code non reconnu', 'QR code not recognised', () => ({
    fr: 'Le contenu du QR code n’est pas celui d’une ordonnance numérique ; scannez à nouveau ou saisissez l’identifiant et le code d’accès imprimés.',
    en: 'The QR code content is not an e-prescription; scan again or type the printed ID and access code.',
  })),
  EPRESCRIPTION_NOT_FOUND: d(404, 'Ordonnance introuvable', 'Prescription not found', () => ({
    fr: 'Aucune ordonnance ne correspond à cet identifiant et à ce code d’accès.',
    en: 'No prescription matches this ID and access code.',
  })),
  EPRESCRIPTION_THROTTLED: d(429, 'Trop de codes d’accès erronés', 'Too many wrong access codes', (p) => ({
    fr: `Trop de codes d’accès erronés ${p.scope === 'prescription' ? 'pour cette ordonnance' : 'depuis votre poste'} ; réessayez dans ${p.seconds} s.`,
    en: `Too many wrong access codes ${p.scope === 'prescription' ? 'for this prescription' : 'from your side'}; retry in ${p.seconds} s.`,
  })),
  EPRESCRIPTION_IN_PROGRESS: d(409, 'Ordonnance prise en charge par une autre pharmacie', 'Prescription taken by another pharmacy', () => ({
    fr: 'Cette ordonnance est en cours de délivrance dans une autre pharmacie ; elle redeviendra disponible si celle-ci la libère.',
    en: 'This prescription is being dispensed by another pharmacy; it becomes available again if that pharmacy releases it.',
  })),
  EPRESCRIPTION_EXPIRED: d(409, 'Ordonnance expirée', 'Prescription expired', (p) => ({
    fr: `Cette ordonnance n’est plus valable depuis le ${fmt(p.validUntil)}.`,
    en: `This prescription expired on ${fmt(p.validUntil)}.`,
  })),
  EPRESCRIPTION_CANCELLED: d(409, 'Ordonnance annulée', 'Prescription cancelled', (p) => ({
    fr: `Le prescripteur a annulé cette ordonnance le ${fmt(p.cancelledAt)}.`,
    en: `The prescriber cancelled this prescription on ${fmt(p.cancelledAt)}.`,
  })),
  EPRESCRIPTION_COMPLETED: d(409, 'Ordonnance entièrement délivrée', 'Prescription fully dispensed', () => ({
    fr: 'Cette ordonnance a déjà été entièrement délivrée (renouvellements compris).',
    en: 'This prescription has already been fully dispensed (renewals included).',
  })),
  EPRESCRIPTION_NOT_CANCELLABLE: d(409, 'Annulation impossible', 'Cannot cancel', (p) => ({
    fr: p.status === 'in_progress' ? 'Une pharmacie a pris en charge cette ordonnance : elle ne peut plus être annulée tant qu’elle n’est pas libérée.' : `Une ordonnance à l’état « ${p.status} » ne peut pas être annulée.`,
    en: p.status === 'in_progress' ? 'A pharmacy holds this prescription: it cannot be cancelled until released.' : `A prescription in state "${p.status}" cannot be cancelled.`,
  })),
  EPRESCRIPTION_SECRET_INVALID: d(403, 'Secret de délivrance invalide', 'Invalid dispensation secret', (p) => ({
    fr: p.voided ? 'Ce secret a été invalidé (ordonnance libérée) ; reprenez l’ordonnance avec son code d’accès.' : 'Le secret de délivrance (en-tête x-eprescription-secret) ne correspond pas ; reprenez l’ordonnance avec son code d’accès pour le retrouver.',
    en: p.voided ? 'This secret was voided (prescription released); take the prescription again with its access code.' : 'The dispensation secret (header x-eprescription-secret) does not match; take the prescription again with its access code to get it back.',
  })),
  EPRESCRIPTION_DISPENSATION_CLOSED: d(409, 'Délivrance clôturée', 'Dispensation closed', () => ({
    fr: 'Cette délivrance est clôturée ; elle ne peut plus être modifiée (son reçu reste disponible).',
    en: 'This dispensation is closed; it can no longer be changed (its receipt remains available).',
  })),
  EPRESCRIPTION_DISPENSATION_EMPTY: d(409, 'Rien n’a été enregistré', 'Nothing recorded', () => ({
    fr: 'Aucune ligne n’a été enregistrée pour cette délivrance : enregistrez au moins une ligne, ou libérez l’ordonnance.',
    en: 'No line was recorded for this dispensation: record at least one line, or release the prescription.',
  })),
  EPRESCRIPTION_LINE_EXHAUSTED: d(409, 'Ligne entièrement délivrée', 'Line fully dispensed', (p) => ({
    fr: `La ligne ${p.line} a déjà été délivrée autant de fois que prescrit (renouvellements compris).`,
    en: `Line ${p.line} has already been dispensed as many times as prescribed (renewals included).`,
  })),
  EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED: d(400, 'Substitution interdite', 'Substitution not allowed', (p) => ({
    fr: `${p.field} : la ligne ${p.line} est marquée « non substituable » ; délivrez la présentation prescrite.`,
    en: `${p.field}: line ${p.line} is marked "non substitutable"; deliver the prescribed presentation.`,
  })),
  EPRESCRIPTION_UNKNOWN_PRODUCT: d(400, 'Produit inconnu', 'Unknown product', (p) => ({
    fr: `${p.field} : le CIP13 ${p.cip13} ne figure pas dans le référentiel des produits.`,
    en: `${p.field}: CIP13 ${p.cip13} is not in the product referential.`,
  })),
})

export const fieldError = (code: string, params: Record<string, unknown>, field: string, message: Text, lang: 'fr' | 'en') =>
  new AppError(code, { field, ...params }, { errors: [{ field, code: code.toLowerCase(), message: message[lang] }] })

/** Validation errors found by the service (combinations the schema cannot express). */
export function invalid(errors: Array<{ field: string; code: string; message: Text }>, lang: 'fr' | 'en') {
  return new AppError('VALIDATION_FAILED', { count: errors.length }, { errors: errors.map((e) => ({ field: e.field, code: e.code, message: e.message[lang] })) })
}

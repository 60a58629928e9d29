import { AppError, defineErrors, errorDef as d, notFound } from '../platform/errors.ts'
import type { Text } from '../platform/i18n.ts'
import { display } from './ids.ts'

const fmt = (iso: unknown) => String(iso).slice(0, 10)

const NOT_A_SUBSTITUTE: Record<string, Text> = {
  'no-generic-group': { fr: 'la présentation prescrite n’appartient à aucun groupe générique : seule une autre boîte du même médicament peut la remplacer', en: 'the prescribed presentation belongs to no generic group: only another pack of the same medicine may replace it' },
  'other-generic-group': { fr: 'ce produit n’est pas du groupe générique du produit prescrit', en: 'this product is not in the generic group of the prescribed one' },
  'composition-unknown': { fr: 'la composition de ce produit n’est pas dans le référentiel', en: 'the composition of this product is not in the referential' },
  substance: { fr: 'ce produit ne contient pas la substance prescrite', en: 'this product does not contain the prescribed substance' },
  'other-substances': { fr: 'ce produit contient d’autres substances actives que celles prescrites', en: 'this product contains other active substances than the prescribed ones' },
  strength: { fr: 'ce produit n’a pas le dosage prescrit', en: 'this product does not have the prescribed strength' },
  form: { fr: 'ce produit n’a pas la forme prescrite', en: 'this product does not have the prescribed form' },
}

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
    fr: `Trop de codes d’accès erronés depuis votre poste${p.scope === 'prescription' ? ' pour cette ordonnance' : ''} ; réessayez dans ${p.seconds} s.`,
    en: `Too many wrong access codes from your side${p.scope === 'prescription' ? ' for this prescription' : ''}; retry in ${p.seconds} s.`,
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
  EPRESCRIPTION_SECRET_INVALID: d(403, 'Secret de délivrance invalide', 'Invalid dispensation secret', (p) =>
    p.state === 'closed'
      ? {
          fr: 'Cette délivrance est clôturée : son secret ne donne plus accès à l’ordonnance (son reçu reste disponible). Pour une nouvelle délivrance, reprenez l’ordonnance avec son code d’accès.',
          en: 'This dispensation is closed: its secret no longer opens the prescription (its receipt remains available). For a new dispensation, take the prescription again with its access code.',
        }
      : p.voided
        ? { fr: 'Ce secret a été invalidé (ordonnance libérée ou secret renouvelé) ; reprenez l’ordonnance avec son code d’accès.', en: 'This secret was voided (prescription released or secret renewed); take the prescription again with its access code.' }
        : {
            fr: 'Le secret de délivrance (en-tête x-eprescription-secret) ne correspond pas ; reprenez l’ordonnance avec son code d’accès pour en obtenir un nouveau.',
            en: 'The dispensation secret (header x-eprescription-secret) does not match; take the prescription again with its access code to get a new one.',
          },
  ),
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
  EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED: d(400, 'Substitution interdite', 'Substitution not allowed', (p) =>
    p.why === 'same-medicine'
      ? {
          fr: `${p.field} : la ligne ${p.line} est marquée « non substituable » ; délivrez le même médicament qu’aux délivrances précédentes (CIS ${p.medicine}).`,
          en: `${p.field}: line ${p.line} is marked "non substitutable"; deliver the same medicine as in the previous dispensations (CIS ${p.medicine}).`,
        }
      : {
          fr: `${p.field} : la ligne ${p.line} est marquée « non substituable » ; délivrez la présentation prescrite.`,
          en: `${p.field}: line ${p.line} is marked "non substitutable"; deliver the prescribed presentation.`,
        },
  ),
  EPRESCRIPTION_NOT_A_SUBSTITUTE: d(400, 'Produit non substituable à la ligne', 'Product not a substitute for the line', (p) => ({
    fr: `${p.field} : ligne ${p.line}, le CIP13 ${p.cip13} ne peut pas être délivré : ${NOT_A_SUBSTITUTE[String(p.why)]?.fr ?? p.why}${p.groupId ? ` (groupe ${p.groupId})` : ''}.`,
    en: `${p.field}: line ${p.line}, CIP13 ${p.cip13} cannot be delivered: ${NOT_A_SUBSTITUTE[String(p.why)]?.en ?? p.why}${p.groupId ? ` (group ${p.groupId})` : ''}.`,
  })),
  EPRESCRIPTION_QUANTITY_EXCEEDED: d(400, 'Quantité supérieure à la prescription', 'Quantity above the prescription', (p) => {
    const what = p.unit === 'units' ? { fr: 'unités', en: 'units' } : { fr: 'boîtes', en: 'boxes' }
    if (p.why === 'more-than-a-pack')
      return {
        fr: `${p.field} : ligne ${p.line}, ${p.delivered} ${what.fr} pour ${p.allowed} prescrites : la taille des boîtes justifie au plus ${p.maxBoxes} boîte(s).`,
        en: `${p.field}: line ${p.line}, ${p.delivered} ${what.en} for ${p.allowed} prescribed: pack sizes justify at most ${p.maxBoxes} box(es).`,
      }
    if (p.why === 'same-presentation')
      return {
        fr: `${p.field} : ligne ${p.line}, ${p.delivered} boîtes de la présentation prescrite pour ${p.allowed} : la taille du conditionnement ne peut pas le justifier.`,
        en: `${p.field}: line ${p.line}, ${p.delivered} boxes of the prescribed presentation for ${p.allowed}: the pack size cannot justify it.`,
      }
    return {
      fr: `${p.field} : ligne ${p.line}, ${p.delivered} ${what.fr} délivrées pour ${p.allowed} prescrites ; indiquez la raison (quantityReason : pack-size ou unit-conversion) si elle s’impose.`,
      en: `${p.field}: line ${p.line}, ${p.delivered} ${what.en} delivered for ${p.allowed} prescribed; state the reason (quantityReason: pack-size or unit-conversion) if one applies.`,
    }
  }),
  EPRESCRIPTION_QUANTITY_UNVERIFIABLE: d(400, 'Quantité non comparable', 'Quantity cannot be compared', (p) => ({
    fr: `${p.field} : ligne ${p.line}, le nombre d’unités de ${p.cip13} ne peut pas être comparé à la prescription ; indiquez la raison (quantityReason : pack-size ou unit-conversion).`,
    en: `${p.field}: line ${p.line}, the units of ${p.cip13} cannot be compared with the prescription; state the reason (quantityReason: pack-size or unit-conversion).`,
  })),
  EPRESCRIPTION_RENEWAL_TOO_EARLY: d(409, 'Renouvellement trop tôt', 'Renewal too early', (p) =>
    p.line
      ? {
          fr: `La ligne ${p.line} ne peut pas être délivrée avant le ${p.notBeforeDay} (fin du traitement précédent, moins la tolérance).`,
          en: `Line ${p.line} cannot be dispensed before ${p.notBeforeDay} (end of the previous treatment, less the tolerance).`,
        }
      : {
          fr: `Aucune ligne de cette ordonnance ne peut être délivrée avant le ${p.notBeforeDay} (fin du traitement précédent, moins la tolérance).`,
          en: `No line of this prescription can be dispensed before ${p.notBeforeDay} (end of the previous treatment, less the tolerance).`,
        },
  ),
  EPRESCRIPTION_UNKNOWN_SUBSTANCE: d(400, 'Substance sans produit correspondant', 'No product for this substance', (p) => ({
    fr: `${p.field} : aucun médicament du référentiel ne contient ${p.substance} ${p.strength} sous la forme ${p.form} (${NOT_A_SUBSTITUTE[String(p.why)]?.fr ?? p.why}).`,
    en: `${p.field}: no medicine in the referential contains ${p.substance} ${p.strength} as ${p.form} (${NOT_A_SUBSTITUTE[String(p.why)]?.en ?? p.why}).`,
  })),
  EPRESCRIPTION_NOT_ACTIVE: d(409, 'Ordonnance close', 'Prescription no longer active', (p) => ({
    fr: `Une ordonnance à l’état « ${p.status} » n’a plus de code d’accès à renouveler.`,
    en: `A prescription in state "${p.status}" has no access code left to renew.`,
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

/** Another prescriber's prescription, or a pharmacy that never held it: as if it did not exist. */
export const prescriptionNotFound = (id: string) => notFound(`L’ordonnance ${display(id)}`, `Prescription ${display(id)}`)

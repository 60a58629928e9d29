/** Serialization's own error codes (its refusals as HTTP answers; the return codes of pack calls are rules/codes.ts). */
import { defineErrors, errorDef } from '../platform/errors.ts'

defineErrors({
  // The serialization return code of the same name, as an HTTP answer: the request was not processed.
  TOO_MANY_REQUESTS: errorDef(429, 'Trop de requêtes', 'Too many requests', (p) => ({
    fr: `Votre organisation a dépassé ${p.max} vérifications ou changements d’état de boîtes par minute : rien n’a été fait ; réessayez dans ${p.after}.`,
    en: `Your organisation went over ${p.max} pack verifications or state changes per minute: nothing was done; retry in ${p.after}.`,
  })),
  BATCH_EXPIRY_CONFLICT: errorDef(409, 'Lot déjà déclaré avec une autre date de péremption', 'Batch already declared with another expiry date', (p) => ({
    fr: `Le lot ${p.batch} de ce produit est déjà déclaré avec la date de péremption ${p.expiry} : un lot a une seule date. Vérifiez le numéro de lot ou la date.`,
    en: `Batch ${p.batch} of this product is already declared with expiry date ${p.expiry}: a batch has one date. Check the batch number or the date.`,
  })),
  TOO_MANY_SERIALS: errorDef(413, 'Trop de numéros de série', 'Too many serial numbers', (p) => ({
    fr: `Un envoi contient au plus ${p.max} numéros de série : rien n’a été enregistré. Découpez le lot en plusieurs envois (les numéros déjà reçus sont comptés « unchanged »).`,
    en: `One upload holds at most ${p.max} serial numbers: nothing was recorded. Split the batch into several uploads (serials already received count as "unchanged").`,
  })),
})

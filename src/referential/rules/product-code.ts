import { AppError } from '../../platform/errors.ts'
import type { Lang } from '../../platform/i18n.ts'
import { cip13Problem } from '../../platform/identifiers.ts'

/**
 * A product named by its code in a request (CIP13, or GTIN-14: 0 followed by the CIP13), as every service that
 * takes one reads it: the CIP13, or a 400 naming the field and why; and the 404 of a product the referential lacks.
 */
/** CIP13 from a CIP13 or GTIN-14, or a 400 naming the field and why. */
export function cip13Of(code: string, field: string, lang: Lang): string {
  const c = code.length === 14 ? code.slice(1) : code
  const problem = code.length === 14 && !code.startsWith('0') ? { fr: 'un GTIN-14 de médicament s’écrit 0 suivi du CIP13', en: 'a medicine GTIN-14 is 0 followed by the CIP13' } : cip13Problem(c)
  if (problem) throw new AppError('INVALID_IDENTIFIER', { field, fr: problem.fr, en: problem.en }, { errors: [{ field, code: 'cip13', message: problem[lang] }] })
  return c
}

export function unknownProduct(cip13: string, field: string, lang: Lang) {
  return new AppError('NOT_FOUND', { what: `Le produit ${cip13}`, whatEn: `Product ${cip13}` }, {
    errors: [{ field, code: 'unknown', message: lang === 'fr' ? `produit ${cip13} introuvable` : `product ${cip13} not found` }],
  })
}

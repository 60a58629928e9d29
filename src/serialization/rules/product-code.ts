// A product code named in a serialization path or body, read by gs1.ts productCode: its messages and codes are
// serialization's own, not those of referential/rules/product-code.ts (the contract answers with these).
import { AppError } from '../../platform/errors.ts'
import type { Lang } from '../../platform/i18n.ts'
import { productCode } from './gs1.ts'

/** A product named in a path or body: CIP13 or GTIN-14, else 400 naming the field. */
export function cip13Of(value: string, field: string, lang: Lang): string {
  const r = productCode(value, field)
  if ('error' in r) throw new AppError('INVALID_IDENTIFIER', { field, fr: r.error.fr, en: r.error.en }, { errors: [{ field, code: 'identifier', message: r.error[lang] }] })
  return r.cip13
}

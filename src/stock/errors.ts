/** The stock campaigns' errors that are not a schema's: not found, and a 400 naming one field. */
import { AppError, notFound } from '../platform/errors.ts'
import type { Lang } from '../platform/i18n.ts'

export const campaignNotFound = () => notFound('La campagne', 'The campaign')
export const declarationNotFound = () => notFound('La déclaration', 'The declaration')

/** A 400 naming the field, like the schema validation's. */
export function fieldError(field: string, code: string, text: { fr: string; en: string }, lang: Lang) {
  return new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field, code, message: text[lang] }] })
}

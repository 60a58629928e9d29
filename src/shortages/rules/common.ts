// What the shortages' rules share: the audit's object types, how a request's field is refused, the UUID format.
import { AppError } from '../../platform/errors.ts'
import type { Lang } from '../../platform/i18n.ts'

export const OBJECT_DECLARATION = 'shortage-declaration'
export const OBJECT_SIGNAL = 'shortage-signal'
export const OBJECT_RESPONSE = 'shortage-automatic-response'

export function fieldError(code: 'VALIDATION_FAILED' | 'DATES_OUT_OF_ORDER', field: string, kind: string, text: { fr: string; en: string }, lang: Lang) {
  const params = code === 'VALIDATION_FAILED' ? { count: 1 } : { field, ...text }
  return new AppError(code, params, { errors: [{ field, code: kind, message: text[lang] }] })
}

export const isUuid = (s: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)

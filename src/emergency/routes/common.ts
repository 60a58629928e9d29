/** What the emergency route files share: the tag, path parameters, who calls. */
import { Type } from 'typebox'

export const TAGS = ['emergency-requests']

export const CipParams = Type.Object({
  cip13: Type.String({ pattern: '^\\d{13,14}$', 'x-message': { fr: 'un CIP13 (13 chiffres) ou un GTIN-14 est attendu', en: 'a CIP13 (13 digits) or GTIN-14 is expected' } }),
})
export { IdParams } from '../../platform/schemas.ts'

export { whoOf } from '../../platform/who.ts'

/** What the e-prescription route files share: identifiers from the path or body, headers, who calls. */
import { Type } from 'typebox'
import { type Lang, type Text } from '../../platform/i18n.ts'
import { IdempotencyKeyHeader } from '../../platform/openapi.ts'
import { fieldError } from '../errors.ts'
import { ACCESS_CODE_LENGTH, ID_LENGTH, parseChecked } from '../ids.ts'
import { PrescriptionIdParam } from '../schemas.ts'

export const TAGS = ['eprescription']
export const SECRET_HEADER = 'x-eprescription-secret'
export const ACCESS_CODE_HEADER = 'x-access-code'

export const IdParams = Type.Object({ id: PrescriptionIdParam })
export const SecretHeader = Type.String({ minLength: 1, maxLength: 100, description: 'The secret returned when the pharmacy took the prescription.' })
export const SecretHeaders = Type.Object({ ...IdempotencyKeyHeader.properties, [SECRET_HEADER]: SecretHeader })
export const AccessCodeHeader = Type.String({ minLength: 1, maxLength: 60, description: 'The access code printed under the QR code (dashes and case ignored).' })
export const AccessCodeHeaders = Type.Object({ ...IdempotencyKeyHeader.properties, [ACCESS_CODE_HEADER]: AccessCodeHeader })
export const binary = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: 'string', format: 'binary' } } } })

const ID_REASONS: Record<'length' | 'character' | 'check', Text> = {
  length: { fr: `un identifiant d’ordonnance compte ${ID_LENGTH} caractères`, en: `a prescription ID has ${ID_LENGTH} characters` },
  character: { fr: 'caractère non admis (chiffres et lettres, sauf I, L, O et U)', en: 'character not allowed (digits and letters except I, L, O and U)' },
  check: { fr: 'caractère de contrôle incorrect : vérifiez la saisie (faute de frappe ou inversion)', en: 'wrong check character: check what was typed (typo or swapped characters)' },
}
const CODE_REASONS: Record<'length' | 'character' | 'check', Text> = {
  length: { fr: `un code d’accès compte ${ACCESS_CODE_LENGTH} caractères`, en: `an access code has ${ACCESS_CODE_LENGTH} characters` },
  character: ID_REASONS.character,
  check: ID_REASONS.check,
}

export function parseId(raw: string, field: string, lang: Lang): string {
  const r = parseChecked(raw, ID_LENGTH)
  if (r.ok) return r.value
  throw fieldError('EPRESCRIPTION_ID_INVALID', ID_REASONS[r.reason], field, ID_REASONS[r.reason], lang)
}

/** A typo is caught by the check character before it counts as a wrong attempt. */
export function parseAccessCode(raw: string, field: string, lang: Lang): string {
  const r = parseChecked(raw, ACCESS_CODE_LENGTH)
  if (r.ok) return r.value
  throw fieldError('EPRESCRIPTION_ACCESS_CODE_INVALID', CODE_REASONS[r.reason], field, CODE_REASONS[r.reason], lang)
}

export { whoOf } from '../../platform/who.ts'

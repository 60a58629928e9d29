import type { Kysely } from 'kysely'
import { type Actor } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { SigningKey } from '../receipts.ts'

/** What every e-prescription use case needs, built once when the service starts. */
export interface Deps {
  db: Kysely<DB>
  /** EPRESCRIPTION_CODE_KEY: the key of the access code and secret hashes. */
  codeKey: string
  /** EPRESCRIPTION_RENEWAL_TOLERANCE_DAYS. */
  toleranceDays: number
  signingKey: SigningKey
}

export type { Who } from '../../platform/who.ts'

export { actor } from '../../platform/who.ts'
export const PATIENT_ACTOR = (requestId: string): Actor => ({ role: 'patient', org: null, user: 'patient', requestId })
export const PATIENT = { role: 'patient', org: null } as const

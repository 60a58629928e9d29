import type { Kysely } from 'kysely'
import { actorOf, type Actor } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { Lang } from '../../platform/i18n.ts'
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

/** Who calls, for tenancy, the audit trail and the language of field errors. */
export interface Who {
  principal: Principal
  requestId: string
  lang: Lang
}

export const actor = (who: Who): Actor => actorOf(who.principal, who.requestId)
export const PATIENT_ACTOR = (requestId: string): Actor => ({ role: 'patient', org: null, user: 'patient', requestId })
export const PATIENT = { role: 'patient', org: null } as const

/** What every emergency use case needs (built once when the routes register), who calls, and checks they share. */
import type { Kysely } from 'kysely'
import { actorOf, type Actor } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import type { DB } from '../../platform/db/schema.ts'
import { AppError } from '../../platform/errors.ts'
import type { Lang } from '../../platform/i18n.ts'
import { isSubscribed } from '../../referential/use-cases/organisations.ts'

export interface Deps {
  db: Kysely<DB>
  /** The service clock. */
  now: () => Date
  /** Escalation delay, in business hours, of an opening that sets none. */
  defaultHours: number
}

/** Who calls, for tenancy, the audit trail and the language of field errors. */
export interface Who {
  principal: Principal
  requestId: string
  lang: Lang
}

export const actor = (who: Who): Actor => actorOf(who.principal, who.requestId)

/** Labs use emergency requests only while subscribed. */
export async function assertSubscribed(deps: Deps, labId: string) {
  if (!(await isSubscribed(deps.db, labId))) throw new AppError('LAB_NOT_SUBSCRIBED')
}

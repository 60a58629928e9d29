/** What the referential's use cases need, built once when the service starts, and who calls. */
import type { Kysely } from 'kysely'
import { actorOf, type Actor } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { Lang } from '../../platform/i18n.ts'

export interface Deps {
  db: Kysely<DB>
  now: () => Date
  /** Runs a hot-path query as a named prepared statement. */
  prepared: DatabaseHandle['prepared']
  /** Drops an organisation from the authentication cache of this instance, once its change is committed. */
  invalidateOrganisation: (id: string) => void
}

/** Who calls, for visibility, the audit trail and the language of field errors. */
export interface Who {
  principal: Principal
  requestId: string
  lang: Lang
}

export const actor = (who: Who): Actor => actorOf(who.principal, who.requestId)

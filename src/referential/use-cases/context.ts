/** What the referential's use cases need, built once when the service starts, and who calls. */
import type { Kysely } from 'kysely'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { DB } from '../../platform/db/schema.ts'

export interface Deps {
  db: Kysely<DB>
  now: () => Date
  /** Runs a hot-path query as a named prepared statement. */
  prepared: DatabaseHandle['prepared']
  /** Drops an organisation from the authentication cache of this instance, once its change is committed. */
  invalidateOrganisation: (id: string) => void
}

export type { Who } from '../../platform/who.ts'

export { actor } from '../../platform/who.ts'

/** The scanning organisations, over which a pseudonym is recomputed to find who is behind it. */
import type { Kysely } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import { SCANNER_ROLES } from '../rules/pseudonyms.ts'

/** Their ids: the service's own routing (PseudonymDirectory). */
export function scanningOrganisationIds(db: Kysely<DB>) {
  return db.selectFrom('organisations').select('id').where('role', 'in', [...SCANNER_ROLES]).execute()
}

/** Their ids, roles and names: the operator's resolution. */
export function scanningOrganisations(db: Kysely<DB>) {
  return db.selectFrom('organisations').select(['id', 'role', 'name']).where('role', 'in', [...SCANNER_ROLES]).execute()
}

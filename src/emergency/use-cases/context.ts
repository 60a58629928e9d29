/** What every emergency use case needs (built once when the routes register), who calls, and checks they share. */
import type { Kysely } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import { AppError } from '../../platform/errors.ts'
import { isSubscribed } from '../../referential/use-cases/organisations.ts'

export interface Deps {
  db: Kysely<DB>
  /** The service clock. */
  now: () => Date
  /** Escalation delay, in business hours, of an opening that sets none. */
  defaultHours: number
}

export type { Who } from '../../platform/who.ts'

export { actor } from '../../platform/who.ts'

/** Labs use emergency requests only while subscribed. */
export async function assertSubscribed(deps: Deps, labId: string) {
  if (!(await isSubscribed(deps.db, labId))) throw new AppError('LAB_NOT_SUBSCRIBED')
}

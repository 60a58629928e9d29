/** What every DP-Ruptures use case needs (database, clock, settings), who calls, and the subscription rule. */
import type { Kysely } from 'kysely'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { DB } from '../../platform/db/schema.ts'
import { AppError } from '../../platform/errors.ts'
import { isSubscribed } from '../../referential/use-cases/organisations.ts'

export const DEFAULT_LAPSE_DAYS = 30

export type ShortageOptions = {
  /** Days after which an open signal that was not renewed lapses (SHORTAGE_SIGNAL_LAPSE_DAYS, default 30). */
  signalLapseDays?: number
  /** Public statistics: smallest number of distinct pharmacies behind a published figure (default 3). */
  publicMinPharmacies?: number
}

export function lapseDays(opts: ShortageOptions): number {
  const raw = opts.signalLapseDays ?? DEFAULT_LAPSE_DAYS
  if (!Number.isInteger(raw) || raw < 1 || raw > 365) throw new Error(`SHORTAGE_SIGNAL_LAPSE_DAYS: an integer from 1 to 365 is expected (got ${raw})`)
  return raw
}

/** Built once when the service starts. */
export interface Deps {
  db: Kysely<DB>
  /** For the prepared statement of the duplicate signal path. */
  database: DatabaseHandle
  now: () => Date
}

export type { Who } from '../../platform/who.ts'

export { actor } from '../../platform/who.ts'

/** Only subscribed labs use DP-Ruptures. */
export async function assertSubscribed(db: Kysely<DB>, labId: string) {
  if (!(await isSubscribed(db, labId))) throw new AppError('LAB_NOT_SUBSCRIBED')
}

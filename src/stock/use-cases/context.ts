/** What the stock use cases share: their dependencies, who calls, the audit trail's object types, the campaign. */
import type { Kysely } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import { campaignNotFound } from '../errors.ts'
import * as q from '../queries.ts'

export interface Deps {
  db: Kysely<DB>
}

export type { Who } from '../../platform/who.ts'

export { actor } from '../../platform/who.ts'

export const OBJECT_CAMPAIGN = 'stock-campaign'
export const OBJECT_DECLARATION = 'stock-declaration'

/** The campaign, or a 404; `lock` takes its row lock for the caller's transaction. */
export async function loadCampaign(db: q.Db, id: string, lock?: 'update' | 'share') {
  const c = await q.findCampaign(db, id, lock)
  if (!c) throw campaignNotFound()
  return c
}

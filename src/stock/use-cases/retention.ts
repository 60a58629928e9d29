/** The retention of raw declarations: the job's queue and the purge it runs. */
import type { Kysely } from 'kysely'
import { audit, SYSTEM } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import * as q from '../queries.ts'
import { endsAt, opensAt, purgeAt } from '../rules.ts'
import { weekAt, weekOfMonday } from '../time.ts'
import { OBJECT_CAMPAIGN } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

export const RETENTION_QUEUE = 'stock.retention'

/**
 * Purges the raw declarations (and their history) of every week past the campaign's retention, and records
 * the purge with its counts in the audit trail. The aggregates are kept. Returns when to run again: the purge
 * time of the oldest week left, or of the current week while the campaign may still receive declarations;
 * null when nothing is left to purge.
 */
export async function purgeExpired(db: Kysely<DB>, campaignId: string, now: Date): Promise<{ declarations: number; history: number; weeks: string[]; next: Date | null }> {
  return inTransaction(db, async (tx) => {
    const campaign = await q.findCampaign(tx, campaignId, 'update')
    if (!campaign) return { declarations: 0, history: 0, weeks: [], next: null }
    const weeks = await q.declaredWeeks(tx, campaignId)
    const expired = weeks.filter((w) => purgeAt(w, campaign.retention_days) <= now)
    let declarations = 0
    let history = 0
    if (expired.length > 0) {
      ;({ declarations, history } = await q.deleteWeeks(tx, campaignId, expired))
      await q.setPurgedThrough(tx, campaignId, expired[expired.length - 1]!)
      await audit(
        tx,
        { ...SYSTEM, user: 'stock-retention' },
        {
          action: `${OBJECT_CAMPAIGN}.raw-data-purged`,
          objectType: OBJECT_CAMPAIGN,
          objectId: campaignId,
          changes: { declarations, history, weeks: expired.map((w) => weekOfMonday(w).week), retentionDays: campaign.retention_days },
        },
        now,
      )
    }
    const left = weeks.filter((w) => !expired.includes(w))
    let next: Date | null = null
    if (left.length > 0) next = purgeAt(left[0]!, campaign.retention_days)
    else if (!campaign.closed_at && now < endsAt(campaign)) next = purgeAt(weekAt(now < opensAt(campaign) ? opensAt(campaign) : now).monday, campaign.retention_days)
    return { declarations, history, weeks: expired, next }
  })
}

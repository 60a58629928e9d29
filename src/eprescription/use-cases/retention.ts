/**
 * Retention, per prescription: a job wakes at the end of validity (records the expiry), then when its state's
 * retention ends, and purges it — the prescription, its lines, dispensations and access log — recording the
 * purge in the audit trail. A prescription ever dispensed is kept ten years after the end of its life.
 */
import type { Kysely } from 'kysely'
import { audit, SYSTEM } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { THROTTLE } from '../rules/access.ts'
import * as q from '../queries.ts'
import { purgeAt } from '../rules/retention.ts'
import { effectiveStatus } from '../views.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

export const RETENTION_QUEUE = 'eprescription.retention'
const DAY = 86_400_000

/** Applies the retention rule to one prescription; answers when to look at it again (null: purged or gone). */
export async function applyRetention(db: Kysely<DB>, id: string, now: Date): Promise<Date | null> {
  return inTransaction(db, async (tx) => {
    const p = await tx.selectFrom('eprescriptions').selectAll().where('id', '=', id).forUpdate().executeTakeFirst()
    if (!p) return null
    const status = effectiveStatus(p, now)
    if (status === 'expired' && p.status !== 'expired') {
      await q.setStatus(tx, id, { status: 'expired', expired_at: p.valid_until }, now)
      await audit(tx, SYSTEM, { action: 'eprescription.expired', objectType: 'eprescription', objectId: id, changes: { status: [p.status, 'expired'] } }, now)
    }
    const lastClosedAt = await q.lastClosedAt(tx, id)
    const at = purgeAt({ ...p, status, lastClosedAt })
    if (at && at.getTime() <= now.getTime()) {
      await tx.deleteFrom('eprescriptions').where('id', '=', id).execute()
      await audit(tx, SYSTEM, { action: 'eprescription.purged', objectType: 'eprescription', objectId: id, changes: { status, reason: 'retention', dispensations: p.dispensations_closed } }, now)
      return null
    }
    // Live (ready, in progress): look again at the end of validity, or daily once past it.
    return at ?? new Date(Math.max(p.valid_until.getTime(), now.getTime() + DAY))
  })
}

/** Wrong-code records only matter within the throttle window; a day's worth is kept for the operator's look. */
export async function purgeOldFailures(db: Kysely<DB>, now: Date) {
  await q.purgeFailures(db, new Date(now.getTime() - Math.max(THROTTLE.windowMs, DAY)))
}

/**
 * Wrong access codes, counted per caller — the pharmacy's organisation, or the patient's address — so that one
 * caller's failures never refuse another caller's correct code: whoever read the printed ID cannot lock the
 * patient or their pharmacy out. Many failures on one prescription raise an alert to the operator instead.
 */
import type { Kysely, Transaction } from 'kysely'
import { audit, SYSTEM } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import { AppError } from '../../platform/errors.ts'
import { publish } from '../../platform/events/publish.ts'
import { display } from '../ids.ts'
import * as q from '../queries.ts'
import { accessCodeHash, type Caller, sameHash, THROTTLE } from '../rules/access.ts'

/** Refuses (429) a caller with too many wrong codes within the window, in all or on this prescription. */
export async function checkThrottle(db: Kysely<DB>, caller: Caller, prescriptionId: string | null, now: Date) {
  const since = new Date(now.getTime() - THROTTLE.windowMs)
  const { all, onPrescription } = await q.callerFailures(db, caller, prescriptionId, since)
  const limits: Array<['prescription' | 'client', Date[], number]> = [
    ['prescription', onPrescription, THROTTLE.perCallerPerPrescription],
    ['client', all, THROTTLE.perCaller],
  ]
  for (const [scope, failures, limit] of limits) {
    if (failures.length < limit) continue
    const freeAt = failures[limit - 1]!.getTime() + THROTTLE.windowMs
    const seconds = Math.max(1, Math.ceil((freeAt - now.getTime()) / 1000))
    throw new AppError('EPRESCRIPTION_THROTTLED', { scope, seconds }, { retryAfter: seconds })
  }
}

/**
 * Records a wrong code (outside the request's transaction, so that it counts although the request fails) and,
 * when a prescription collects many from anyone, alerts the operator once per window: an event on the operator's
 * feed and an entry in the audit trail. The prescription itself stays open to its rightful holders.
 */
export async function recordFailure(db: Kysely<DB>, prescriptionId: string | null, caller: Caller, now: Date) {
  await q.insertFailure(db, prescriptionId, caller, now)
  if (!prescriptionId) return
  const since = new Date(now.getTime() - THROTTLE.windowMs)
  const seen = await q.prescriptionFailures(db, prescriptionId, since)
  if (seen.failures < THROTTLE.alertAfter) return
  await inTransaction(db, async (tx: Transaction<DB>) => {
    // One alert per window, even when failures arrive together: the prescription's row serialises them.
    if (!(await q.lockPrescription(tx, prescriptionId))) return
    const last = await q.lastAlert(tx, prescriptionId)
    if (last && last.raised_at.getTime() > since.getTime()) return
    const counted = await q.prescriptionFailures(tx, prescriptionId, since)
    await q.insertAlert(tx, { prescription_id: prescriptionId, raised_at: now, failures: counted.failures, callers: counted.callers })
    const payload = {
      prescriptionId,
      displayId: display(prescriptionId),
      failures: counted.failures,
      callers: counted.callers,
      windowMinutes: THROTTLE.windowMs / 60_000,
      firstAt: (counted.first ?? now).toISOString(),
      raisedAt: now.toISOString(),
    }
    await publish(tx, { type: 'eprescription.access.alert', payload, audience: { roles: ['ordre'] }, subject: { type: 'eprescription', id: prescriptionId } }, now)
    await audit(tx, SYSTEM, { action: 'eprescription.access.alert', objectType: 'eprescription', objectId: prescriptionId, changes: { failures: counted.failures, callers: counted.callers } }, now)
  })
}

/**
 * ID + access code → nothing, or 404 (the same answer for an unknown ID and a wrong code). The caller's
 * throttle is checked first; a wrong code is recorded.
 */
export async function authenticateWithCode(db: Kysely<DB>, key: string, id: string, accessCode: string, caller: Caller, now: Date) {
  await checkThrottle(db, caller, id, now)
  const row = await q.accessCodeOf(db, id)
  if (!row || !sameHash(row.access_code_hash, accessCodeHash(key, id, accessCode))) {
    await recordFailure(db, row ? id : null, caller, now)
    throw new AppError('EPRESCRIPTION_NOT_FOUND')
  }
}


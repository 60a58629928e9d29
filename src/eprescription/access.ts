/**
 * Who may open a prescription: ID + access code (a pharmacy taking it, the patient), the current secret of the
 * pharmacy that holds it, or the prescriber's own right. Codes and secrets are stored as keyed hashes
 * (HMAC-SHA256 with EPRESCRIPTION_CODE_KEY): a copy of the database opens nothing.
 *
 * Wrong codes are counted per caller — the pharmacy's organisation, or the patient's address — so that one
 * caller's failures never refuse another caller's correct code: whoever read the printed ID cannot lock the
 * patient or their pharmacy out. Many failures on one prescription raise an alert to the operator instead.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import { audit, SYSTEM } from '../platform/audit.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError } from '../platform/errors.ts'
import { publish } from '../platform/events/publish.ts'
import { prescriptionNotFound } from './errors.ts'
import { display } from './ids.ts'
import * as q from './queries.ts'
import type { Loaded } from './queries.ts'
import { inTransaction } from '../platform/db/transaction.ts'

export const THROTTLE = {
  windowMs: 15 * 60_000,
  /** Wrong codes one caller may give for one prescription within the window. */
  perCallerPerPrescription: 5,
  /** Wrong codes one caller may give in all within the window (guessing many prescriptions). */
  perCaller: 20,
  /** Wrong codes on one prescription, from anyone, that alert the operator (once per window). */
  alertAfter: 10,
}

const mac = (key: string, text: string) => createHmac('sha256', key).update(text).digest('base64url')
export const accessCodeHash = (key: string, prescriptionId: string, code: string) => mac(key, `access-code:${prescriptionId}:${code}`)
export const secretHash = (key: string, dispensationId: string, secret: string) => mac(key, `secret:${dispensationId}:${secret}`)
export const newSecret = () => randomBytes(32).toString('base64url')

const sameHash = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

/** 'org:<FINESS>' for a pharmacy, 'ip:<address>' for a patient. */
export type Caller = `org:${string}` | `ip:${string}`

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
    const p = await tx.selectFrom('eprescriptions').select('id').where('id', '=', prescriptionId).forUpdate().executeTakeFirst()
    if (!p) return
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
  const row = await db.selectFrom('eprescriptions').select(['id', 'access_code_hash']).where('id', '=', id).executeTakeFirst()
  if (!row || !sameHash(row.access_code_hash, accessCodeHash(key, id, accessCode))) {
    await recordFailure(db, row ? id : null, caller, now)
    throw new AppError('EPRESCRIPTION_NOT_FOUND')
  }
}

/** The prescriber's own check of a code it holds (to print the QR code): no throttle, its own prescription. */
export function codeMatches(key: string, p: { id: string; access_code_hash: string }, accessCode: string) {
  return sameHash(p.access_code_hash, accessCodeHash(key, p.id, accessCode))
}

export type Holding = Loaded['dispensations'][number]

/**
 * The dispensation of this pharmacy that the secret opens, whatever its state: 404 when the pharmacy never held
 * the prescription, 403 when the secret is not one of its own. The caller decides what each state allows.
 */
export function dispensationOf(l: Loaded, key: string, org: string, secret: string): Holding {
  const mine = l.dispensations.filter((d) => d.pharmacy_org === org)
  if (mine.length === 0) throw prescriptionNotFound(l.p.id)
  const d = mine.find((x) => sameHash(x.secret_hash, secretHash(key, x.id, secret)))
  if (!d) throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: false })
  return d
}

/** A live holding: the pharmacy's open dispensation. A released or closed one answers 403 with nothing of the prescription. */
export function liveHolding(l: Loaded, key: string, org: string, secret: string): Holding {
  const d = dispensationOf(l, key, org, secret)
  if (d.status === 'released') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true, state: 'released' })
  if (d.status === 'closed') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true, state: 'closed' })
  return d
}

/**
 * Logging a scan that its own statement did not log, and raising its alert: the alert, its scan row, its audit
 * entry and its event to the lab in one transaction, a bounded number of them at once per database.
 */
import { randomUUID } from 'node:crypto'
import { type Actor, audit } from '../../platform/audit.ts'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import { publish } from '../../platform/events/publish.ts'
import { parisDay } from '../../platform/paris-time.ts'
import * as q from '../queries/alerts.ts'
import { CASE_SENSITIVE_CODES, REPEAT_WINDOW_MS, swapCase } from '../rules/alerts.ts'
import type { PackRef, PackResult } from '../rules/packs.ts'
import type { Scanner } from '../rules/pseudonyms.ts'

/** How a scan ended once logged: the alert it raised, or the keyboard hint that was given instead. */
export interface ScanRecord {
  alertReference?: string
  /** The scan was read with its case inverted (Caps Lock): answered INVALID_CODE with the hint, no alert. */
  capsLock?: boolean
}

/**
 * Alert transactions in flight at once, per database: at most half of its pool. Each commits an event (NOTIFY, which
 * PostgreSQL serialises at commit) and an audit entry; in a storm of alert-raising scans they would otherwise take
 * every pooled connection and the verifications of other pharmacies would wait behind them. Beyond the limit they
 * queue here, in order; none is dropped. (A counter and a queue of resolvers: no library needed for this.)
 */
const alertSlots = new WeakMap<DatabaseHandle, { free: number; waiting: Array<() => void> }>()
async function withAlertSlot<T>(database: DatabaseHandle, fn: () => Promise<T>): Promise<T> {
  let slots = alertSlots.get(database)
  if (!slots) alertSlots.set(database, (slots = { free: Math.max(1, Math.floor(database.usage().max / 2)), waiting: [] }))
  if (slots.free > 0) slots.free--
  else await new Promise<void>((resolve) => slots.waiting.push(resolve))
  try {
    return await fn()
  } finally {
    const next = slots.waiting.shift()
    if (next) next()
    else slots.free++
  }
}

/**
 * Logs a scan (verification or state change) of a readable French pack and, when its answer raises an alert
 * (rules/alerts.ts), the alert. Before any alert, a scan whose serial and batch exist with their letters' case
 * inverted gets the keyboard hint instead (a keyboard-wedge scanner with Caps Lock on, without AIM prefix to
 * betray it). Repeated identical failures of one pharmacy on one pack within REPEAT_WINDOW_MS count on the open
 * alert. An alert, its scan row, its audit entry and its event to the lab are written in one transaction: the
 * pharmacy receives the reference only once all of them are committed.
 *
 * The successful state changes and the verifications without alert are logged by their own statement
 * (use-cases/pack-state.ts changePackState, queries/verify-batch.ts); this logs the others.
 */
export async function recordScan(database: DatabaseHandle, scanner: Scanner, ref: PackRef, action: string, outcome: PackResult, now: Date): Promise<ScanRecord> {
  if (!ref.cip13) return {}
  const cip13 = ref.cip13
  const scan: q.ScanRow = {
    cip13, id: randomUUID(), at: now, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, action, code: outcome.code as string, role: scanner.role,
    pharmacy_pseudonym: scanner.org, transaction_id: outcome.transactionId ?? null,
  }
  if (!outcome.alert) {
    await q.logScan(database, scan)
    return {}
  }
  if (ref.scan && !ref.scan.aim && CASE_SENSITIVE_CODES.has(outcome.code)) {
    const serial = swapCase(ref.serial)
    const batch = swapCase(ref.batch)
    if (serial !== ref.serial || batch !== ref.batch) {
      const twin = await q.packBatch(database.db, cip13, serial)
      if (twin?.batch === batch) {
        await q.logScan(database, { ...scan, code: 'INVALID_CODE' })
        return { capsLock: true }
      }
    }
  }
  return withAlertSlot(database, () => inTransaction(database.db, async (tx) => {
    // One alert for repeated identical failures (re-scans, retries, users racing on the same box): the lock
    // serializes them; the read after it sees the alert a concurrent request just committed.
    const lab = await q.lockRepeatsAndFindLab(tx, { cip13, serial: ref.serial, org: scanner.org, code: outcome.code })
    if (!lab) {
      await q.insertScan(tx, { ...scan, alert_reference: null })
      return {}
    }
    const { reference, created } = await q.countAgainOrRaise(tx, {
      scan, since: new Date(now.getTime() - REPEAT_WINDOW_MS), lab, year: parisDay(now).slice(0, 4), userPseudonym: scanner.user, scanned: ref.scan?.raw ?? null,
    })
    if (!created) return { alertReference: reference }
    // To the lab: the pseudonym, never the pharmacy (no FINESS, no user, no sender).
    await publish(
      tx,
      {
        type: 'serialization.alert',
        payload: {
          reference, product: cip13, gtin: ref.gtin, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, code: outcome.code, action,
          pharmacy: scanner.org, packState: outcome.pack.state, at: now.toISOString(),
        },
        audience: { orgs: [lab] },
        senderOrg: null,
        subject: { type: 'serial_alert', id: reference },
      },
      now,
    )
    // Last: the audit entry takes its chain's lock until the commit; the statements before it do not wait on it.
    // The audit trail names the pseudonyms: no FINESS in what serialization records.
    const actor: Actor = { role: scanner.role, org: scanner.org, user: scanner.user }
    await audit(tx, actor, { action: 'serialization.alert.raised', objectType: 'serial_alert', objectId: reference, changes: { product: cip13, serial: ref.serial, batch: ref.batch, code: outcome.code, action } }, now)
    return { alertReference: reference }
  }))
}

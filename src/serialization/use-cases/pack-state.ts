/**
 * A pack's state change (supply, destroy, stolen, sample, free sample, lock, export; undo and unlock): exactly
 * once, one statement when it succeeds (grouped with concurrent ones by queries/change-batch.ts), diagnosed when
 * it does not.
 */
import { randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { DB } from '../../platform/db/schema.ts'
import { parisDay } from '../../platform/paris-time.ts'
import type { Action } from '../db.ts'
import type { ChangeBatcher, ChangeDone } from '../queries/change-batch.ts'
import * as q from '../queries/packs.ts'
import { raisesAlert } from '../rules/alerts.ts'
import type { ReturnCodeName } from '../rules/codes.ts'
import { judge, type PackRef, type PackResult, type PackRow, packView } from '../rules/packs.ts'
import type { Scanner } from '../rules/pseudonyms.ts'
import { ALLOWED_WHEN_BLOCKED, diagnoseChange, FINAL, TARGET, UNDO_WINDOW_MS, UNDOABLE, UUID } from '../rules/transitions.ts'

type Db = Kysely<DB> | Transaction<DB>

export interface ChangeRequest {
  action: Action
  pack: PackRef
  /** For undo and unlock: the transaction that set the state being reverted. */
  transactionId?: string | undefined
}

/** The answer of a state change; `logged`: its scan-log row is already written (by the change's own statement). */
export interface ChangeOutcome {
  outcome: PackResult
  logged: boolean
}

/**
 * Changes a pack's state. The success of a non-undo change is ONE statement (one round trip): the conditional
 * UPDATE, its transaction row and its pseudonymised scan-log row, committed together. Refusals are diagnosed with a
 * second read and logged by the caller (alert-raising.ts recordScan), as they may raise an alert (rules/alerts.ts).
 */
export async function changePackState(database: DatabaseHandle, scanner: Scanner, request: ChangeRequest, now: Date, batcher?: ChangeBatcher): Promise<ChangeOutcome> {
  const { pack: ref, action } = request
  const today = parisDay(now)
  if (!ref.cip13) return { outcome: { ok: false, code: 'UNKNOWN_PRODUCT', alert: false, pack: packView(ref, null) }, logged: false }
  const isUndo = action === 'undo' || action === 'unlock'
  // A concurrent change can make the diagnosis see an active pack after the UPDATE missed it: try again (bounded).
  for (let attempt = 0; attempt < 3; attempt++) {
    const id = randomUUID()
    if (!isUndo) {
      const target = TARGET[action as keyof typeof TARGET]
      const force = ALLOWED_WHEN_BLOCKED.includes(action)
      // The first attempt joins the other changes in flight (queries/change-batch.ts), whose statement also reads the
      // pack when it does not change it; a retry after a race goes alone, and its refusal takes a second read.
      let done: ChangeDone
      if (batcher && attempt === 0) {
        done = await batcher.change({ scanner, cip13: ref.cip13, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, target, action, force, id, scanId: randomUUID(), now, today })
      } else {
        const [alone] = await q.changeActivePack(database, ref.cip13, ref.serial, target, now, id, ref.batch, ref.expiry, force, today, action, scanner)
        done = alone ? { changed: true, blocking: alone.blocking } : { changed: false, pack: await q.readPack(database, ref, today) }
      }
      if (done.changed) {
        const row: PackRow = { product_known: true, state: target, batch: ref.batch, state_at: now, last_txn: id, expiry: ref.expiry, blocking: done.blocking }
        return { outcome: { ok: true, code: 'STATE_CHANGED', alert: false, pack: packView(ref, row), transactionId: id }, logged: true }
      }
      const row = done.pack
      const code = diagnoseChange(action, ref, row, scanner)
      if (code) return { outcome: { ok: false, code, alert: raisesAlert(code, 'decommission'), pack: packView(ref, row) }, logged: false }
      continue
    }
    let rows: Array<{ id: string }> = []
    if (request.transactionId && UUID.test(request.transactionId)) {
      const states = action === 'unlock' ? ['locked'] : UNDOABLE
      rows = await q.undoChange(database, ref.cip13, ref.serial, request.transactionId, scanner, new Date(now.getTime() - UNDO_WINDOW_MS), states, now, id, ref.batch, ref.expiry, today, action)
    }
    const row = await q.readPack(database, ref, today)
    if (rows[0]) return { outcome: { ok: true, code: 'STATE_CHANGED', alert: false, pack: packView(ref, row), transactionId: id, undid: request.transactionId! }, logged: false }
    const code = await diagnoseUndo(database.db, scanner, request, row, now)
    if (code) return { outcome: { ok: false, code, alert: raisesAlert(code, 'undo'), pack: packView(ref, row) }, logged: false }
  }
  throw new Error('pack state change: no outcome after 3 attempts')
}

/** Why an undo did not happen (null: it may be tried again): the pack as read first, then the transaction it names. */
async function diagnoseUndo(db: Db, scanner: Scanner, request: ChangeRequest, row: PackRow | null, now: Date): Promise<ReturnCodeName | null> {
  const ref = request.pack
  const code = judge(ref, row)
  if (['UNKNOWN_PRODUCT', 'UNKNOWN_SERIAL', 'BATCH_UNKNOWN', 'BATCH_MISMATCH', 'EXPIRY_MISMATCH'].includes(code)) return code
  if (row!.state === 'active') return 'STATUS_ALREADY_SET'
  if (FINAL.includes(row!.state!)) return 'UNDO_NOT_ALLOWED'
  if (!request.transactionId || !UUID.test(request.transactionId) || row!.last_txn !== request.transactionId) return 'UNKNOWN_TRANSACTION'
  const txn = await q.packTransaction(db, ref.cip13!, request.transactionId, ref.serial)
  if (!txn) return 'UNKNOWN_TRANSACTION'
  // Another organisation's change: the undo code, never its details (who, when).
  if (txn.org_pseudonym !== scanner.org) return 'UNDO_OTHER_ORGANISATION'
  if (txn.user_pseudonym !== scanner.user) return 'UNDO_OTHER_USER'
  if (!UNDOABLE.includes(txn.to_state) || (request.action === 'unlock' && txn.to_state !== 'locked')) return 'UNDO_NOT_ALLOWED'
  if (txn.at.getTime() <= now.getTime() - UNDO_WINDOW_MS) return 'UNDO_WINDOW_EXCEEDED'
  if (code !== 'ALREADY_INACTIVE') return code // batch or product recalled, withdrawn or expired: never undone
  return null
}


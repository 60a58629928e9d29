// The alert rules: which answers about a pack raise an alert, on which attempts.
import type { ReturnCodeName } from './codes.ts'

/**
 * When an answer about a pack raises an alert (the pharmacy quarantines the box, the lab investigates, a suspected
 * falsification goes to ANSM). The rules of the EU repositories system, as the domain file states them
 * (serialization.md, "Return codes and alerts"): a verification is read-only and alerts only on what may mean a
 * falsified pack; any decommission attempt on a pack that is already inactive alerts (NMVS_NC_PCK_22), whatever
 * made it inactive, except when its batch or product is expired, recalled or withdrawn (the status comes back,
 * no alert) and when the same organisation repeats its own change (NMVS_NC_PCK_19, status already set).
 *
 * | answer                                                   | verify | decommission (supply, destroy…) | undo, unlock |
 * | UNKNOWN_SERIAL, BATCH_UNKNOWN, BATCH_MISMATCH, EXPIRY_MISMATCH | alert  | alert                           | alert        |
 * | ALREADY_INACTIVE                                          | —      | alert                           | —            |
 * | STATUS_ALREADY_SET (own change repeated; undo of an active pack) | —  | no                              | no           |
 * | BATCH_RECALLED, WITHDRAWN, EXPIRED                        | no     | no                              | no           |
 * | UNDO_NOT_ALLOWED, UNDO_WINDOW_EXCEEDED, UNDO_OTHER_USER, UNDO_OTHER_ORGANISATION | — | —   | alert        |
 * | anything else (PACK_ACTIVE, STATE_CHANGED, INVALID_CODE, UNKNOWN_PRODUCT, UNKNOWN_TRANSACTION, TOO_MANY_REQUESTS) | no | no | no |
 * A Caps-Lock-inverted serial is answered INVALID_CODE with the keyboard hint before any of these (see below).
 */
export type Attempt = 'verify' | 'decommission' | 'undo'

const FALSIFICATION_SIGNS: ReadonlySet<ReturnCodeName> = new Set(['UNKNOWN_SERIAL', 'BATCH_UNKNOWN', 'BATCH_MISMATCH', 'EXPIRY_MISMATCH'])
const UNDO_REFUSALS: ReadonlySet<ReturnCodeName> = new Set(['UNDO_NOT_ALLOWED', 'UNDO_WINDOW_EXCEEDED', 'UNDO_OTHER_USER', 'UNDO_OTHER_ORGANISATION'])

export function raisesAlert(code: ReturnCodeName, attempt: Attempt): boolean {
  if (FALSIFICATION_SIGNS.has(code)) return true
  if (attempt === 'decommission') return code === 'ALREADY_INACTIVE'
  if (attempt === 'undo') return UNDO_REFUSALS.has(code)
  return false
}

/** For the catalogue: the attempts on which a code raises an alert. */
export const alertOn = (code: ReturnCodeName): Attempt[] => (['verify', 'decommission', 'undo'] as const).filter((a) => raisesAlert(code, a))

/** Identical failures of one pharmacy on one pack within this window count on the open alert instead of a new one. */
export const REPEAT_WINDOW_MS = 30 * 60_000

// Before any alert, a scan whose serial and batch exist with their letters' case inverted gets the keyboard hint
// instead (use-cases/alert-raising.ts): the answers a Caps Lock can cause, and what it does to the letters.
/** Caps Lock inverts the case of every letter. */
export const swapCase = (s: string) => s.replace(/[a-zA-Z]/g, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()))
export const CASE_SENSITIVE_CODES: ReadonlySet<ReturnCodeName> = new Set(['UNKNOWN_SERIAL', 'BATCH_UNKNOWN', 'BATCH_MISMATCH'])

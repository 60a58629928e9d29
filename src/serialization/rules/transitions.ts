/**
 * The pack state changes' rules: the state each action sets, which changes an undo may revert and for how long,
 * which actions are allowed on a blocked batch, and why a change did not happen.
 */
import { BLOCKED_CODE } from '../../dispensation/rule.ts'
import type { Action, PackState } from '../db.ts'
import type { ReturnCodeName } from './codes.ts'
import { judge, type PackRef, type PackRow } from './packs.ts'
import type { Scanner } from './pseudonyms.ts'

/** Undo is allowed for 10 days (240 hours) after the change. */
export const UNDO_WINDOW_MS = 10 * 24 * 3600_000
export const UNDOABLE: readonly PackState[] = ['supplied', 'sample', 'free_sample', 'locked', 'exported']
export const FINAL: readonly PackState[] = ['destroyed', 'stolen']

/** The state changes a pharmacy, hospital or wholesaler may ask for. */
export const TARGET: Record<Exclude<Action, 'undo' | 'unlock'>, PackState> = {
  supply: 'supplied',
  destroy: 'destroyed',
  stolen: 'stolen',
  sample: 'sample',
  free_sample: 'free_sample',
  lock: 'locked',
  export: 'exported',
}
/** Allowed even when the batch or product is recalled, withdrawn or expired: they take the box out for good. */
export const ALLOWED_WHEN_BLOCKED: readonly Action[] = ['destroy', 'stolen']

/** A transaction id as an undo names it. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Why a decommission did not happen (null: the pack is active and nothing blocks it, try again). */
export function diagnoseChange(action: Action, ref: PackRef, row: PackRow | null, scanner: Scanner): ReturnCodeName | null {
  const code = judge(ref, row)
  if (code === 'PACK_ACTIVE') return null
  if (BLOCKED.has(code) && ALLOWED_WHEN_BLOCKED.includes(action)) {
    if (row!.state === 'active') return null
  } else if (code !== 'ALREADY_INACTIVE') return code
  // Inactive: the same organisation repeating its own change is told the status is already set; any other attempt
  // is ALREADY_INACTIVE (an alert: rules/alerts.ts).
  return row!.last_org === scanner.org && row!.state === TARGET[action as keyof typeof TARGET] ? 'STATUS_ALREADY_SET' : 'ALREADY_INACTIVE'
}
const BLOCKED: ReadonlySet<ReturnCodeName> = new Set(Object.values(BLOCKED_CODE))

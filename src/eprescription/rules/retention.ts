/**
 * How long a prescription is kept, per state. Whatever happened after, a prescription that was ever dispensed
 * keeps its dispensations and receipts for the dispensed retention (the ordonnancier's ten years, art.
 * R.5132-10 CSP), counted from the end of its life, which is never before its last dispensation.
 */
import type { PrescriptionStatus } from '../db.ts'

export const RETENTION = {
  /** Cancelled before any dispensation: purged quickly. */
  cancelledDays: 7,
  /** Expired without any dispensation: nothing to keep. */
  expiredUndispensedDays: 30,
  /** Ever dispensed: the legal period. */
  dispensedYears: 10,
}

const DAY = 86_400_000
const addYears = (d: Date, n: number) => {
  const x = new Date(d)
  x.setUTCFullYear(x.getUTCFullYear() + n)
  return x
}

export interface RetentionState {
  /** The effective status (ready past its validity reads as expired). */
  status: PrescriptionStatus
  valid_until: Date
  cancelled_at: Date | null
  completed_at: Date | null
  dispensations_closed: number
  /** When the last dispensation closed; null when none did. */
  lastClosedAt: Date | null
}

/** When the prescription may be purged; null while it is live. */
export function purgeAt(s: RetentionState): Date | null {
  const ended = s.status === 'cancelled' || s.status === 'expired' || s.status === 'completed'
  if (!ended) return null
  if (s.dispensations_closed > 0 || s.lastClosedAt) {
    const end = Math.max(
      s.lastClosedAt?.getTime() ?? 0,
      s.cancelled_at?.getTime() ?? 0,
      s.completed_at?.getTime() ?? 0,
      s.status === 'expired' ? s.valid_until.getTime() : 0,
    )
    return addYears(new Date(end), RETENTION.dispensedYears)
  }
  if (s.status === 'cancelled') return new Date((s.cancelled_at ?? s.valid_until).getTime() + RETENTION.cancelledDays * DAY)
  if (s.status === 'expired') return new Date(s.valid_until.getTime() + RETENTION.expiredUndispensedDays * DAY)
  // Completed implies a dispensation; a completed row without one (never written by the service) is kept as dispensed.
  return addYears(s.completed_at ?? s.valid_until, RETENTION.dispensedYears)
}

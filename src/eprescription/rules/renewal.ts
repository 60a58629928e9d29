/**
 * Renewal windows. Dispensation n of a line may take place from the day the previous one's treatment ends
 * (its date plus the line's duration) minus a tolerance, counted in Paris calendar days: a pharmacist thinks in
 * days, so the window opens at midnight, Paris time. The first dispensation may take place from issue.
 */
import { DAY, parisDay, parisStartOfDay } from '../../platform/paris-time.ts'

/** The treatment period assumed for a renewable line issued without a duration (lines issued before it was required). */
export const DEFAULT_PERIOD_DAYS = 30

export interface RenewableLine {
  duration_days: number | null
  renewals: number
}

/** The calendar day `days` after a Paris day. */
function addDays(day: string, days: number): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number]
  return new Date(Date.UTC(y, m - 1, d) + days * DAY).toISOString().slice(0, 10)
}

/**
 * When the next dispensation of the line may take place, given the close times of the dispensations that
 * delivered it (any order); null when the line has been dispensed as many times as prescribed.
 */
export function nextDispensationFrom(line: RenewableLine, deliveredAt: Date[], issuedAt: Date, toleranceDays: number): Date | null {
  if (deliveredAt.length >= 1 + line.renewals) return null
  if (deliveredAt.length === 0) return issuedAt
  const last = new Date(Math.max(...deliveredAt.map((d) => d.getTime())))
  const days = Math.max(0, (line.duration_days ?? DEFAULT_PERIOD_DAYS) - toleranceDays)
  const from = parisStartOfDay(addDays(parisDay(last), days))
  return from.getTime() > issuedAt.getTime() ? from : issuedAt
}

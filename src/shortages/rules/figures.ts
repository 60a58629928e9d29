// How a lab's figures count: periods of Paris days, calendar quarters, and figures rounded to two decimals.
import { DAY } from '../../platform/paris-time.ts'

export interface Period {
  /** Paris days, inclusive; either may be missing. */
  from: string | null
  to: string | null
}

/** A calendar day plus some days (no time zone involved). */
export const addDays = (day: string, days: number) => new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY).toISOString().slice(0, 10)

/** Two decimals; null when there is no figure. */
export const rounded = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 100) / 100)

/** First and last day of a calendar quarter. */
export function quarterDays(year: number, quarter: number) {
  const first = `${year}-${String((quarter - 1) * 3 + 1).padStart(2, '0')}-01`
  const next = quarter === 4 ? `${year + 1}-01-01` : `${year}-${String(quarter * 3 + 1).padStart(2, '0')}-01`
  return { first, next, last: addDays(next, -1) }
}

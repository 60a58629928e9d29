/**
 * Campaign weeks: ISO weeks of the Europe/Paris calendar, from Monday 00:00 Paris time to the next Monday
 * 00:00 Paris time. A week is therefore 167 or 169 hours long when daylight-saving time changes on its Sunday;
 * it is identified by its ISO label (2026-W44) and stored as its Monday (a DATE).
 */
import { DAY, parisDay, parisStartOfDay } from '../platform/paris-time.ts'

export { DAY, parisDay, parisStartOfDay }

/** Adds days to a calendar day (YYYY-MM-DD), by the calendar (no time zone involved). */
export function addDays(day: string, days: number): string {
  const d = new Date(`${day}T00:00:00Z`)
  return new Date(d.getTime() + days * DAY).toISOString().slice(0, 10)
}

/** ISO day of week of a calendar day: 1 Monday … 7 Sunday. */
function isoDow(day: string): number {
  const dow = new Date(`${day}T00:00:00Z`).getUTCDay()
  return dow === 0 ? 7 : dow
}

/** The Monday of the ISO week holding a calendar day. */
export const mondayOf = (day: string) => addDays(day, 1 - isoDow(day))

/** ISO week label of a week's Monday: 2026-W44 (the ISO year is the year of the week's Thursday). */
export function weekLabel(monday: string): string {
  const thursday = addDays(monday, 3)
  const year = thursday.slice(0, 4)
  const week1 = mondayOf(`${year}-01-04`)
  const n = Math.round((Date.parse(`${monday}T00:00:00Z`) - Date.parse(`${week1}T00:00:00Z`)) / (7 * DAY)) + 1
  return `${year}-W${String(n).padStart(2, '0')}`
}

/**
 * The Monday of an ISO week label (2026-W44), or null when the label names no week (2026-W54). Any label of the
 * form is read without failing: years 0001 to 9998 by the calendar (year 0 does not exist, and the last weeks of
 * 9999 end in year 10000, which no date here can be written in); the service's own years are the caller's rule.
 */
export function mondayOfLabel(label: string): string | null {
  const m = /^(\d{4})-W(\d{2})$/.exec(label)
  if (!m) return null
  const year = Number(m[1])
  const n = Number(m[2])
  if (n < 1 || n > 53 || year < 1 || year > 9998) return null
  const monday = addDays(mondayOf(`${m[1]}-01-04`), (n - 1) * 7)
  return weekLabel(monday) === label ? monday : null
}

export interface Week {
  /** ISO label, e.g. 2026-W44. */
  week: string
  /** Monday (Paris calendar). */
  monday: string
  /** Monday 00:00 Paris time. */
  start: Date
  /** The next Monday 00:00 Paris time (excluded). */
  end: Date
}

export function weekOfMonday(monday: string): Week {
  return { week: weekLabel(monday), monday, start: parisStartOfDay(monday), end: parisStartOfDay(addDays(monday, 7)) }
}

/** The week an instant falls in, by the Paris calendar. */
export const weekAt = (at: Date): Week => weekOfMonday(mondayOf(parisDay(at)))

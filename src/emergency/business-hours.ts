/**
 * Business hours in Europe/Paris, for the escalation delay of emergency requests.
 *
 * Why business hours: a lab's emergency service ("service dépannage d'urgence") is staffed during office
 * hours, like its pharmaceutical-affairs desk; a request sent on Friday at 17:30 that escalates on Friday
 * night would reach nobody and only add noise for the operator. Counting 4 business hours (Monday to Friday,
 * 09:00–18:00 Paris time) means a morning request escalates the same afternoon and an evening request the
 * next working morning, which keeps the patient's wait bounded to about one working day while leaving the
 * service half a day to answer. The eleven national public holidays (jours fériés, Code du travail L3133-1) are
 * closed days; the local ones (Alsace-Moselle, overseas abolition days) are not counted. A lab can shorten or
 * lengthen the delay per opening, and declare the hours its service actually keeps (split days, Saturdays, around
 * the clock, open on holidays or not): the clock then counts those hours instead of the office hours.
 *
 * Local wall-clock times are converted to instants by platform/paris-time.ts (correct across the DST changes,
 * which happen at night, outside business hours).
 */
import { parisDate, parisInstant } from '../platform/paris-time.ts'

const HOUR = 3_600_000

/** Hours of a week: on each of `days` (ISO weekdays, 1 = Monday … 7 = Sunday), from `from` to `to`, in minutes after local midnight (to ≤ 1440). */
export interface Slot {
  days: readonly number[]
  from: number
  to: number
}

export interface BusinessCalendar {
  /** Opening hour (local, 0–23), with `close` and `days`: one range a day. */
  open?: number
  /** Closing hour (local, 1–24). */
  close?: number
  /** ISO weekdays that are working days (1 = Monday … 7 = Sunday). */
  days?: readonly number[]
  /** Or any number of ranges in the week (a lab's declared hours: split days, Saturdays, around the clock). */
  slots?: readonly Slot[]
  /** Closed days among those (public holidays). */
  closed?: (y: number, m: number, d: number) => boolean
}

const slotsOf = (cal: BusinessCalendar): readonly Slot[] =>
  cal.slots ?? (cal.open !== undefined && cal.close !== undefined && cal.days ? [{ days: cal.days, from: cal.open * 60, to: cal.close * 60 }] : [])

/** A declared time of day, 'HH:MM' (24:00 is the end of the day), in minutes. */
export const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5))

/** The calendar of a lab's declared hours (null: the default office hours). */
export function calendarOf(hours: { slots: Array<{ days: number[]; from: string; to: string }>; publicHolidays?: 'closed' | 'open' } | null): BusinessCalendar {
  if (!hours) return PARIS_OFFICE_HOURS
  return {
    slots: hours.slots.map((s) => ({ days: s.days, from: minutesOf(s.from), to: minutesOf(s.to) })),
    ...(hours.publicHolidays === 'open' ? {} : { closed: isFrenchPublicHoliday }),
  }
}

/** Easter Sunday of a Gregorian year (anonymous Gregorian algorithm), as [month, day]. */
export function easter(y: number): [number, number] {
  const a = y % 19
  const b = Math.floor(y / 100)
  const c = y % 100
  const d = Math.floor(b / 4)
  const e = b % 4
  const f = Math.floor((b + 8) / 25)
  const g = Math.floor((b - f + 1) / 3)
  const h = (19 * a + b - d - g + 15) % 30
  const i = Math.floor(c / 4)
  const k = c % 4
  const l = (32 + 2 * e + 2 * i - h - k) % 7
  const m = Math.floor((a + 11 * h + 22 * l) / 451)
  const month = Math.floor((h + l - 7 * m + 114) / 31)
  const day = ((h + l - 7 * m + 114) % 31) + 1
  return [month, day]
}

const FIXED_HOLIDAYS = new Set(['1-1', '5-1', '5-8', '7-14', '8-15', '11-1', '11-11', '12-25'])

/** The national public holidays: eight fixed dates, Easter Monday, Ascension Thursday and Whit Monday. */
export function isFrenchPublicHoliday(y: number, m: number, d: number): boolean {
  if (FIXED_HOLIDAYS.has(`${m}-${d}`)) return true
  const [em, ed] = easter(y)
  const days = (Date.UTC(y, m - 1, d) - Date.UTC(y, em - 1, ed)) / (24 * HOUR)
  return days === 1 || days === 39 || days === 50
}

export const PARIS_OFFICE_HOURS: BusinessCalendar = { open: 9, close: 18, days: [1, 2, 3, 4, 5], closed: isFrenchPublicHoliday }

/** `start` plus `hours` counted only inside business hours. */
export function addBusinessHours(start: Date, hours: number, cal: BusinessCalendar = PARIS_OFFICE_HOURS): Date {
  if (!(hours >= 0)) throw new Error('hours must be >= 0')
  const slots = slotsOf(cal)
  if (!slots.some((s) => s.days.length > 0 && s.to > s.from)) throw new Error('empty business calendar')
  let remaining = hours * HOUR
  let t = start
  // Two years of days: more than any delay (72 business hours at most) needs, even with one hour a week.
  for (let day = 0; day < 800; day++) {
    const { y, m, d, weekday } = parisDate(t)
    if (!cal.closed?.(y, m, d)) {
      const ranges = slots.filter((s) => s.days.includes(weekday) && s.to > s.from).sort((a, b) => a.from - b.from)
      for (const r of ranges) {
        // Wall-clock minutes to instants (correct across the DST changes, which fall at 02:00–03:00).
        const at = (min: number) => parisInstant(y, m, d, Math.floor(min / 60)).getTime() + (min % 60) * 60_000
        const open = at(r.from)
        const close = at(r.to)
        const from = Math.max(t.getTime(), open)
        if (from < close) {
          if (from + remaining <= close) return new Date(from + remaining)
          remaining -= close - from
          t = new Date(close)
        } else if (remaining === 0 && from === close) {
          return new Date(close)
        }
      }
    }
    // Next Paris day, 00:00 local (day + 1 at noon UTC is always the next calendar day).
    const next = new Date(Date.UTC(y, m - 1, d, 12) + 24 * HOUR)
    t = parisInstant(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), 0)
  }
  throw new Error('business calendar: no opening within two years')
}

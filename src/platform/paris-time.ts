/**
 * Europe/Paris calendar helpers. Node's Intl carries the time-zone database, so no library is needed for the
 * three conversions the service makes: a calendar day to the instant it starts in Paris, an instant to its
 * Paris day, and an instant written in Paris time for a message.
 */
export const PARIS = 'Europe/Paris'

const partsFormat = new Intl.DateTimeFormat('en-GB', {
  timeZone: PARIS,
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
})

function parisParts(at: Date) {
  const p = Object.fromEntries(partsFormat.formatToParts(at).map((x) => [x.type, x.value]))
  return { y: Number(p.year), m: Number(p.month), d: Number(p.day), h: Number(p.hour), min: Number(p.minute), s: Number(p.second) }
}

/** Offset of Paris from UTC at an instant, in milliseconds (+1 h in winter, +2 h in summer). */
function parisOffsetMs(at: Date): number {
  const p = parisParts(at)
  return Date.UTC(p.y, p.m - 1, p.d, p.h, p.min, p.s) - Math.floor(at.getTime() / 1000) * 1000
}

/** The instant of a Paris wall-clock time on a calendar day (hour may be 24: midnight at the end of the day). */
export function parisInstant(y: number, m: number, d: number, hour = 0): Date {
  const local = Date.UTC(y, m - 1, d, hour)
  // Two passes: the offset at the guess may differ from the offset at the result around a change.
  let guess = local - parisOffsetMs(new Date(local))
  guess = local - parisOffsetMs(new Date(guess))
  return new Date(guess)
}

/** The instant a Paris calendar day (YYYY-MM-DD) starts: 00:00 local, whatever the offset that day. */
export function parisStartOfDay(date: string): Date {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number]
  return parisInstant(y, m, d, 0)
}

/** The Paris calendar day of an instant, with its ISO weekday (1 = Monday … 7 = Sunday). */
export function parisDate(at: Date) {
  const p = parisParts(at)
  const weekday = ((new Date(Date.UTC(p.y, p.m - 1, p.d)).getUTCDay() + 6) % 7) + 1
  return { y: p.y, m: p.m, d: p.d, weekday }
}

// en-CA writes YYYY-MM-DD. One formatter for the process: building one costs far more than formatting with it,
// and formatting is on the hot paths (every pack verification and change).
const dayFormat = new Intl.DateTimeFormat('en-CA', { timeZone: PARIS, year: 'numeric', month: '2-digit', day: '2-digit' })

// Formatting still costs microseconds, and the hot paths ask for the day of "now" again and again: the last
// answer is kept for its minute. Exact, because since 1911 Paris has been offset from UTC by whole hours, so a
// Paris day always starts on a UTC minute.
const MINUTE = 60_000
const WHOLE_HOUR_OFFSETS_FROM = Date.UTC(1912, 0, 1)
let cachedMinute = Number.NaN
let cachedDay = ''

/** The Paris calendar day (YYYY-MM-DD) of an instant. */
export function parisDay(at: Date): string {
  const ms = at.getTime()
  const minute = Math.floor(ms / MINUTE)
  if (minute === cachedMinute) return cachedDay
  const day = dayFormat.format(at)
  if (ms >= WHOLE_HOUR_OFFSETS_FROM) {
    cachedMinute = minute
    cachedDay = day
  }
  return day
}

/** The Paris month (YYYY-MM) of an instant. */
export const parisMonth = (at: Date) => parisDay(at).slice(0, 7)

/** "30/03/2026 à 01:00" (fr) or "30/03/2026 at 01:00" (en), Paris time. */
export function parisText(at: Date, lang: 'fr' | 'en'): string {
  const p = parisParts(at)
  const two = (n: number) => String(n).padStart(2, '0')
  return `${two(p.d)}/${two(p.m)}/${p.y} ${lang === 'fr' ? 'à' : 'at'} ${two(p.h)}:${two(p.min)}`
}

export const HOUR = 3_600_000
export const DAY = 24 * HOUR

import t from 'tap'
import { parisDay, parisMonth } from '../src/platform/paris-time.ts'

// parisDay keeps its last answer for the minute: it must still change at Paris midnight, on the days the clocks
// change too, whatever the order of the calls.
const formatter = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit' })

t.test('parisDay gives the Paris calendar day of every second around midnights and clock changes', async (t) => {
  let checked = 0
  // A winter midnight (23:00 UTC), the spring change (2026-03-29), a summer midnight (22:00 UTC), the autumn change (2026-10-25), New Year.
  for (const around of ['2026-01-14T23:00:00Z', '2026-03-28T23:00:00Z', '2026-03-29T01:00:00Z', '2026-07-14T22:00:00Z', '2026-10-25T01:00:00Z', '2026-10-25T23:00:00Z', '2026-12-31T23:00:00Z']) {
    const centre = Date.parse(around)
    for (let s = -180; s <= 180; s++) {
      const at = new Date(centre + s * 1000 + (s % 7) * 37) // a few milliseconds off the second too
      if (parisDay(at) !== formatter.format(at)) t.fail(`parisDay(${at.toISOString()}) = ${parisDay(at)}, expected ${formatter.format(at)}`)
      checked++
    }
  }
  t.equal(checked, 7 * 361)
  t.equal(parisDay(new Date('2026-01-14T22:59:59.999Z')), '2026-01-14')
  t.equal(parisDay(new Date('2026-01-14T23:00:00.000Z')), '2026-01-15')
  t.equal(parisDay(new Date('2026-07-14T21:59:59.999Z')), '2026-07-14')
  t.equal(parisDay(new Date('2026-07-14T22:00:00.000Z')), '2026-07-15')
  t.equal(parisMonth(new Date('2026-12-31T23:00:00Z')), '2027-01')
})

t.test('instants far apart in any order, and before whole-hour offsets', async (t) => {
  const instants = ['2026-11-22T10:00:00Z', '1999-12-31T23:30:00Z', '2026-11-22T10:00:30Z', '1900-01-01T23:55:00Z', '1900-01-01T23:50:30Z', '1900-01-01T23:50:50Z', '2026-11-22T10:00:59Z']
  for (const iso of instants) {
    const at = new Date(iso)
    t.equal(parisDay(at), formatter.format(at), iso)
  }
  t.throws(() => parisDay(new Date(Number.NaN)), RangeError, 'an invalid date is refused as before')
})

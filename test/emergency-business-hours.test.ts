import t from 'tap'
import { addBusinessHours, easter, isFrenchPublicHoliday } from '../src/emergency/business-hours.ts'
import { parisInstant } from '../src/platform/paris-time.ts'

const add = (iso: string, hours: number) => addBusinessHours(new Date(iso), hours).toISOString()

t.test('inside one working day', async (t) => {
  // Monday 23 Nov 2026, 10:00 Paris (UTC+1)
  t.equal(add('2026-11-23T09:00:00Z', 4), '2026-11-23T13:00:00.000Z')
  t.equal(add('2026-11-23T09:00:00Z', 0), '2026-11-23T09:00:00.000Z')
  // ends exactly at closing time
  t.equal(add('2026-11-23T13:00:00Z', 4), '2026-11-23T17:00:00.000Z')
})

t.test('before opening, after closing, and across nights', async (t) => {
  // 07:30 Paris: counting starts at 09:00
  t.equal(add('2026-11-23T06:30:00Z', 4), '2026-11-23T12:00:00.000Z')
  // 20:00 Paris Monday: Tuesday 09:00 + 4 h
  t.equal(add('2026-11-23T19:00:00Z', 4), '2026-11-24T12:00:00.000Z')
  // 16:00 Paris: 2 h today, 2 h tomorrow
  t.equal(add('2026-11-24T15:00:00Z', 4), '2026-11-25T10:00:00.000Z')
  // 9 h (one full day) from opening is closing time; 18 h is two full days
  t.equal(add('2026-11-23T08:00:00Z', 9), '2026-11-23T17:00:00.000Z')
  t.equal(add('2026-11-23T08:00:00Z', 18), '2026-11-24T17:00:00.000Z')
})

t.test('weekends do not count', async (t) => {
  // Friday 27 Nov 16:00 Paris → Monday 30 Nov 11:00 Paris
  t.equal(add('2026-11-27T15:00:00Z', 4), '2026-11-30T10:00:00.000Z')
  // Saturday and Sunday → Monday 09:00 + 4 h
  t.equal(add('2026-11-28T10:00:00Z', 4), '2026-11-30T12:00:00.000Z')
  t.equal(add('2026-11-29T22:30:00Z', 1), '2026-11-30T09:00:00.000Z', 'Sunday 23:30 Paris')
  // Friday 17:59:59 Paris with 1 h → Monday 09:59:59
  t.equal(add('2026-11-27T16:59:59Z', 1), '2026-11-30T08:59:59.000Z')
  // 45 hours = 5 working days: Monday 09:00 → Friday 18:00; one more hour → next Monday 10:00
  t.equal(add('2026-11-23T08:00:00Z', 45), '2026-11-27T17:00:00.000Z')
  t.equal(add('2026-11-23T08:00:00Z', 46), '2026-11-30T09:00:00.000Z')
})

t.test('daylight saving time changes (last Sunday of March and of October)', async (t) => {
  // Spring forward: Friday 27 March 2026 16:00 Paris (UTC+1) → Monday 30 March 11:00 Paris (UTC+2)
  t.equal(add('2026-03-27T15:00:00Z', 4), '2026-03-30T09:00:00.000Z')
  // Fall back: Friday 23 October 2026 16:00 Paris (UTC+2) → Monday 26 October 11:00 Paris (UTC+1)
  t.equal(add('2026-10-23T14:00:00Z', 4), '2026-10-26T10:00:00.000Z')
  // Summer day: 09:00 Paris is 07:00 UTC
  t.equal(add('2026-07-01T05:00:00Z', 1), '2026-07-01T08:00:00.000Z')
  // A request on the night of the change itself (Sunday 29 March 02:30 UTC = 04:30 Paris)
  t.equal(add('2026-03-29T02:30:00Z', 2), '2026-03-30T09:00:00.000Z')
  // Local times around the change
  t.equal(parisInstant(2026, 3, 29, 0).toISOString(), '2026-03-28T23:00:00.000Z')
  t.equal(parisInstant(2026, 3, 29, 9).toISOString(), '2026-03-29T07:00:00.000Z')
  t.equal(parisInstant(2026, 10, 25, 9).toISOString(), '2026-10-25T08:00:00.000Z')
  t.equal(parisInstant(2026, 10, 25, 24).toISOString(), '2026-10-25T23:00:00.000Z')
})

t.test('year end and bad input', async (t) => {
  // Thursday 31 Dec 2026 17:00 Paris → 1 hour that day, Friday 1 Jan is a public holiday, the weekend, then
  // Monday 4 Jan 12:00
  t.equal(add('2026-12-31T16:00:00Z', 4), '2027-01-04T11:00:00.000Z')
  t.throws(() => addBusinessHours(new Date(), -1))
  t.throws(() => addBusinessHours(new Date(), 1, { open: 9, close: 9, days: [1] }))
})

t.test('French public holidays are closed days', async (t) => {
  t.same(easter(2024), [3, 31])
  t.same(easter(2026), [4, 5])
  t.same(easter(2027), [3, 28])
  t.same(easter(2038), [4, 25])
  const holidays2026 = ['1-1', '4-6', '5-1', '5-8', '5-14', '5-25', '7-14', '8-15', '11-1', '11-11', '12-25']
  for (const md of holidays2026) {
    const [m, d] = md.split('-').map(Number) as [number, number]
    t.ok(isFrenchPublicHoliday(2026, m, d), `2026-${md} is a public holiday`)
  }
  let count = 0
  for (let day = 0; day < 365; day++) {
    const date = new Date(Date.UTC(2026, 0, 1 + day))
    if (isFrenchPublicHoliday(2026, date.getUTCMonth() + 1, date.getUTCDate())) count++
  }
  t.equal(count, 11, 'eleven in a year')
  // Wednesday 13 May 2026 16:00 Paris + 4 h: 2 h that day, Ascension Thursday closed, 2 h on Friday → Friday 11:00
  t.equal(add('2026-05-13T14:00:00Z', 4), '2026-05-15T09:00:00.000Z')
  // Friday 3 April 2026 17:00 + 4 h: 1 h, weekend, Easter Monday closed → Tuesday 7 April 12:00 Paris
  t.equal(add('2026-04-03T15:00:00Z', 4), '2026-04-07T10:00:00.000Z')
})

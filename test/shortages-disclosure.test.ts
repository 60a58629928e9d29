import fc from 'fast-check'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { type SignalGroup, marginsOf } from '../src/shortages/rules/disclosure.ts'
import { referentialPairs } from '../src/shortages/queries/statistics.ts'
import { publicSignalFigures } from '../src/shortages/use-cases/statistics.ts'
import { attackSignals, type PublishedSignals, violates } from './disclosure-attacker.ts'
import { ORG, testApp } from './helpers.ts'

const ROSU = '3400949497294' // CIS 60002283, not MITM (ATC set to C below)
const IBU = '3400936843127' // CIS 64000015, no ATC, not MITM
const LEVO = '3400927901836' // CIS 64000022, H03AA01, MITM

const SEED = Number(process.env.FC_SEED ?? 20261206)

t.test('the issue’s example: byMitm.false − byAtc["?"] no longer gives the single pharmacy’s figure', async (t) => {
  const ctx = await testApp(t)
  const { app, auth, clock } = ctx
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  await app.db.updateTable('medicines').set({ atc: 'C10AA07' }).where('cis', '=', '60002283').execute()
  const pharmacies = Array.from({ length: 9 }, (_, i) => `7501${String(i).padStart(2, '0')}999`)
  await app.db.insertInto('organisations').values(pharmacies.map((id) => ({ id, role: 'pharmacy' as const, name: `Pharmacie ${id}`, department: '75' }))).execute()
  clock.now = new Date('2026-11-22T10:00:00Z')
  const signal = async (org: string, code: string) => {
    const res = await app.inject({ method: 'POST', url: '/v1/shortage-signals', headers: auth('pharmacy', org), payload: { code, wholesaler: 'OCP', unavailableSince: '2026-11-15' } })
    t.equal(res.statusCode, 201)
  }
  await signal(pharmacies[0]!, ROSU)
  for (const org of pharmacies.slice(1, 6)) await signal(org, IBU)
  for (const org of pharmacies.slice(6, 9)) await signal(org, LEVO)

  const res = await app.inject({ method: 'GET', url: '/v1/public/shortage-statistics?year=2026' })
  t.equal(res.statusCode, 200)
  const s = res.json()
  const c = s.byAtc.find((x: any) => x.atc === 'C')
  t.same(c, { atc: 'C', declarations: 0, signals: null, suppressed: true }, 'the one pharmacy’s figure is withheld')
  const notMitm = s.byMitm.find((x: any) => !x.mitm)
  const unknown = s.byAtc.find((x: any) => x.atc === '?')
  t.notOk(notMitm.signals !== null && unknown.signals !== null, 'byMitm.false and byAtc["?"] are not both published')

  const published: PublishedSignals = {
    byMonth: s.byMonth.map((x: any) => ({ key: x.month, signals: x.signals, suppressed: x.suppressed })),
    byAtc: s.byAtc.map((x: any) => ({ key: x.atc, signals: x.signals, suppressed: x.suppressed })),
    byMitm: s.byMitm.map((x: any) => ({ key: String(x.mitm), signals: x.signals, suppressed: x.suppressed })),
  }
  const intervals = attackSignals(published, await referentialPairs(app.db))
  const interval = intervals.get('atc:C')!
  t.equal(violates(1, interval, 3), null, `the attacker cannot bring C below 3: ${JSON.stringify(interval)}`)
  t.notOk(res.body.includes(pharmacies[0]!))
})

/** A random referential (medicines with an ATC first level and a MITM flag), pharmacies and their signals. */
const dataset = fc.record({
  k: fc.constantFrom(2, 3, 4),
  months: fc.integer({ min: 1, max: 12 }),
  medicines: fc.array(fc.record({ atc: fc.constantFrom('A', 'C', 'H', 'J', 'N', '?'), mitm: fc.boolean() }), { minLength: 1, maxLength: 7 }),
  signals: fc.array(fc.record({ pharmacy: fc.integer({ min: 0, max: 11 }), medicine: fc.nat(), month: fc.nat(), times: fc.integer({ min: 1, max: 3 }) }), { maxLength: 40 }),
})

t.test('property: an attacker who solves every published figure cannot pin a figure behind fewer than k pharmacies', async (t) => {
  let checked = 0
  fc.assert(
    fc.property(dataset, (d) => {
      const months = Array.from({ length: d.months }, (_, i) => `2026-${String(i + 1).padStart(2, '0')}`)
      const groups: SignalGroup[] = d.signals.map((s) => {
        const m = d.medicines[s.medicine % d.medicines.length]!
        return { month: months[s.month % months.length]!, atc: m.atc, mitm: m.mitm, pharmacyId: `P${s.pharmacy}`, signals: s.times }
      })
      const pairs = d.medicines.map((m) => ({ atc: m.atc, mitm: m.mitm }))
      const figures = publicSignalFigures(groups, months, pairs, d.k)
      const truth = marginsOf(groups, months, pairs).cells
      const published: PublishedSignals = { byMonth: figures.month, byAtc: figures.atc, byMitm: figures.mitm }
      // Every published figure is the true one.
      for (const c of [...figures.month, ...figures.atc, ...figures.mitm]) {
        const real = truth.find((x) => x.breakdown === c.breakdown && x.key === c.key)!
        if (!c.suppressed && c.signals !== real.signals) throw new Error(`${c.breakdown}:${c.key} published ${c.signals}, true ${real.signals}`)
        if (c.suppressed && real.signals === 0) throw new Error(`${c.breakdown}:${c.key}: a zero is withheld`)
      }
      const intervals = attackSignals(published, pairs)
      for (const c of truth) {
        if (c.pharmacies === 0 || c.pharmacies >= d.k) continue
        const interval = intervals.get(`${c.breakdown}:${c.key}`)
        if (!interval) throw new Error(`${c.breakdown}:${c.key} (${c.pharmacies} pharmacies) is published`)
        const why = violates(c.signals, interval, d.k)
        if (why) throw new Error(`${c.breakdown}:${c.key} = ${c.signals} (${c.pharmacies} pharmacies, k=${d.k}): ${why}`)
        checked++
      }
    }),
    { seed: SEED, numRuns: 1000 },
  )
  t.ok(checked > 100, `${checked} sensitive figures attacked`)
})

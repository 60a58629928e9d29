// Retention: no purge ever removes a closed dispensation (or its receipt) before the dispensed retention, whatever
// happened to the prescription after; what was never dispensed still goes. Properties with fast-check, seeded
// (FC_SEED overrides; a failure prints the seed and the path to replay it).
import fc from 'fast-check'
import t from 'tap'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { purgeAt, RETENTION } from '../src/eprescription/rules/retention.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp } from './helpers.ts'

const SEED = Number(process.env.FC_SEED ?? 20_170_917)
const DAY = 86_400_000
const addYears = (d: Date, n: number) => {
  const x = new Date(d)
  x.setUTCFullYear(x.getUTCFullYear() + n)
  return x
}

t.test('purgeAt: never before ten years after the last dispensation, null while live', async (t) => {
  const t0 = Date.UTC(2026, 0, 1)
  const date = fc.integer({ min: 0, max: 20 * 365 }).map((d) => new Date(t0 + d * DAY))
  const state = fc.record({
    status: fc.constantFrom('ready', 'in_progress', 'completed', 'cancelled', 'expired' as const),
    valid_until: date,
    cancelled_at: fc.option(date, { nil: null }),
    completed_at: fc.option(date, { nil: null }),
    lastClosedAt: fc.option(date, { nil: null }),
  })
  await fc.assert(
    fc.property(state, (s) => {
      const st = { ...s, dispensations_closed: s.lastClosedAt ? 1 : 0 }
      const at = purgeAt(st)
      if (s.status === 'ready' || s.status === 'in_progress') return at === null
      if (s.lastClosedAt) return at !== null && at.getTime() >= addYears(s.lastClosedAt, RETENTION.dispensedYears).getTime()
      return at !== null
    }),
    { seed: SEED, numRuns: 2000 },
  )
})

type Step =
  | { kind: 'issue'; renewals: number; durationDays: number }
  | { kind: 'dispense'; which: number; pharmacy: number; close: boolean }
  | { kind: 'release'; which: number }
  | { kind: 'cancel'; which: number }
  | { kind: 'advance'; days: number }
  | { kind: 'jobs' }

const step: fc.Arbitrary<Step> = fc.oneof(
  // Few prescriptions per run, mostly renewable, mostly closed dispensations: the interesting histories (dispensed,
  // then cancelled or expired, then time passing) come often.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('issue' as const), renewals: fc.constantFrom(0, 1, 1, 2), durationDays: fc.integer({ min: 1, max: 20 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('dispense' as const), which: fc.nat(2), pharmacy: fc.nat(1), close: fc.constantFrom(true, true, true, false) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), which: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cancel' as const), which: fc.nat(2) }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), days: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(6, 7, 8, 29, 31, 92, 365, 3650, 3651, 3653)) }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('jobs' as const) }) },
)

t.test('no sequence of events lets a purge remove a closed dispensation before its time', async (t) => {
  const { app, auth, clock } = await testApp(t)
  await importBdpmDirectory(app.db, DEMO_BDPM_DIR, SYSTEM)
  const prescriber = auth('prescriber', ORG.prescriber)
  const pharmacies = [ORG.pharmacyParis, ORG.pharmacyLyon]

  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 3, maxLength: 14 }), async (steps) => {
      // The model: this run's prescriptions, their open holding, and every dispensation that closed.
      const prescriptions: Array<{ id: string; qr: string; held: { org: string; secret: string } | null; cancelledAt: Date | null; dispensed: boolean }> = []
      const closed: Array<{ id: string; seq: number; closedAt: Date }> = []
      const check = async () => {
        for (const c of closed) {
          if (clock.now.getTime() >= addYears(c.closedAt, RETENTION.dispensedYears).getTime()) continue
          const row = await app.db.selectFrom('eprescription_dispensations').select(['receipt', 'status']).where('prescription_id', '=', c.id).where('seq', '=', c.seq).executeTakeFirst()
          if (!row || row.status !== 'closed' || !row.receipt) throw new Error(`dispensation ${c.seq} of ${c.id}, closed ${c.closedAt.toISOString()}, gone at ${clock.now.toISOString()}`)
        }
        // What was never dispensed and was cancelled goes after its week, once the job ran: the rule is not vacuous.
        for (const p of prescriptions) {
          if (p.dispensed || !p.cancelledAt) continue
          const due = p.cancelledAt.getTime() + RETENTION.cancelledDays * DAY
          const row = await app.db.selectFrom('eprescriptions').select('id').where('id', '=', p.id).executeTakeFirst()
          const job = await app.db.selectFrom('jobs').select(['run_at', 'state']).where('singleton_key', '=', p.id).where('queue', '=', 'eprescription.retention').executeTakeFirst()
          if (row && job && job.state !== 'pending') throw new Error(`cancelled ${p.id} kept with its job ${job.state}`)
          if (row && job && job.run_at.getTime() > due) throw new Error(`cancelled ${p.id} scheduled for ${job.run_at.toISOString()}, after ${new Date(due).toISOString()}`)
        }
      }
      for (const s of steps) {
        const p = 'which' in s ? prescriptions[s.which % Math.max(1, prescriptions.length)] : undefined
        if (s.kind === 'issue') {
          const res = await app.inject({
            method: 'POST',
            url: '/v1/eprescriptions',
            headers: prescriber,
            payload: { patient: { familyName: 'PROPRIÉTÉ', givenName: 'Test', birthDate: '1980-01-01' }, lines: [{ cip13: '3400949497294', dosage: '1 par jour', quantity: 1, durationDays: s.durationDays, renewals: s.renewals }] },
          })
          if (res.statusCode !== 201) throw new Error(res.body)
          prescriptions.push({ id: res.json().id, qr: res.json().qrPayload, held: null, cancelledAt: null, dispensed: false })
        } else if (s.kind === 'dispense' && p) {
          const org = p.held?.org ?? pharmacies[s.pharmacy]!
          const pharmacy = auth('pharmacy', org)
          if (!p.held) {
            const res = await app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: pharmacy, payload: { qr: p.qr } })
            if (res.statusCode === 200) p.held = { org, secret: res.json().secret }
            else if (res.statusCode !== 409 && res.statusCode !== 404) throw new Error(`take: ${res.body}`)
          }
          if (p.held) {
            const headers = { ...pharmacy, 'x-eprescription-secret': p.held.secret }
            const rec = await app.inject({ method: 'PUT', url: `/v1/eprescriptions/${p.id}/dispensation/lines/1`, headers, payload: { outcome: 'delivered', cip13: '3400949497294', quantity: 1 } })
            if (rec.statusCode !== 200 && rec.statusCode !== 409) throw new Error(`record: ${rec.body}`)
            if (s.close && rec.statusCode === 200) {
              const res = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/close`, headers })
              if (res.statusCode !== 200) throw new Error(`close: ${res.body}`)
              closed.push({ id: p.id, seq: res.json().claims.dispensation, closedAt: new Date(res.json().claims.closedAt) })
              p.held = null
              p.dispensed = true
            }
          }
        } else if (s.kind === 'release' && p?.held) {
          const res = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/release`, headers: { ...auth('pharmacy', p.held.org), 'x-eprescription-secret': p.held.secret } })
          if (res.statusCode !== 200 && res.statusCode !== 404) throw new Error(`release: ${res.body}`)
          p.held = null
        } else if (s.kind === 'cancel' && p && !p.cancelledAt) {
          const res = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/cancel`, headers: prescriber, payload: { reason: 'propriété' } })
          if (res.statusCode === 200) p.cancelledAt = new Date(res.json().cancelledAt)
        } else if (s.kind === 'advance') {
          clock.advance(s.days * DAY)
        } else if (s.kind === 'jobs') {
          await app.jobs.runDue()
        }
        await check()
      }
      await app.jobs.runDue()
      await check()
    }),
    { seed: SEED, numRuns: Number(process.env.FC_RUNS ?? 40), endOnFailure: true },
  )
  t.pass(`held for every sequence (seed ${SEED})`)
})

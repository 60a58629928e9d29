import type { AddressInfo } from 'node:net'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { pharmacyPseudonym } from '../src/serialization/rules/pseudonyms.ts'
import { ORG, testApp } from './helpers.ts'

const GS = '\x1d'
const BIOGARAN = '3400949497294'
const dm = (serial: string) => `]d2010${BIOGARAN}21${serial}${GS}10LOT-C${GS}17301231`

// Real HTTP, 200 requests in flight at once: on PostgreSQL they run on the pool's connections in parallel and race
// on the same row; on the embedded database they serialize. The outcome must be the same: exactly one success.
t.test('200 concurrent decommissions of one pack: exactly one succeeds', async (t) => {
  const { app, auth, config, database } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  const up = await app.inject({ method: 'POST', url: '/v1/serialization/packs', headers: auth('lab', ORG.labBiogaran), payload: { product: BIOGARAN, batch: 'LOT-C', expiry: '2030-12-31', serials: ['RACE1', 'RACE2'] } })
  t.equal(up.json().created, 2)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const callers = [
    ...[ORG.pharmacyParis, ORG.pharmacyLyon, ORG.pharmacyAjaccio, ORG.pharmacyGuadeloupe].map((org) => ['pharmacy', org] as const),
    ['hospital', ORG.hospital] as const,
    ['wholesaler', ORG.wholesaler] as const,
  ]
  const race = async (serial: string, action: string) => {
    const requests = Array.from({ length: 200 }, (_, i) => {
      const [role, org] = callers[i % callers.length]!
      return fetch(`http://127.0.0.1:${port}/v1/serialization/packs/state`, {
        method: 'POST',
        headers: { ...auth(role, org, `user-${i}`), 'content-type': 'application/json' },
        body: JSON.stringify({ action, dataMatrix: dm(serial) }),
      }).then(async (r) => ({ org, status: r.status, body: (await r.json()) as { code: string; alert: boolean; alertReference?: string; transactionId?: string; pack: { state: string } } }))
    })
    return Promise.all(requests)
  }

  const secret = config.SCAN_PSEUDONYM_SECRET
  for (const [serial, action, state] of [['RACE1', 'supply', 'supplied'], ['RACE2', 'destroy', 'destroyed']] as const) {
    const results = await race(serial, action)
    t.ok(results.every((r) => r.status === 200), `${serial}: every request answered 200`)
    const codes = results.map((r) => r.body.code)
    t.equal(codes.filter((c) => c === 'STATE_CHANGED').length, 1, `${serial}: exactly one success (${database.kind})`)
    const txns = await database.db.selectFrom('pack_transactions').select(['to_state']).where('cip13', '=', BIOGARAN).where('serial', '=', serial).execute()
    t.same(txns, [{ to_state: state }], 'one transaction recorded')

    // The callers come from 6 organisations. The winner's own organisation repeating its change is told the status
    // is already set, without alert (NMVS_NC_PCK_19); every other organisation's attempt on the now inactive pack
    // is ALREADY_INACTIVE with an alert (NMVS_NC_PCK_22), whatever made it inactive: one alert per organisation,
    // however many of its requests race (src/serialization/rules/alerts.ts).
    const winner = results.find((r) => r.body.code === 'STATE_CHANGED')!.org
    const same = results.filter((r) => r.body.code !== 'STATE_CHANGED' && r.org === winner)
    const others = results.filter((r) => r.org !== winner)
    t.ok(same.length > 0 && others.length > 0, 'both kinds of loser took part')
    t.ok(same.every((r) => r.body.code === 'STATUS_ALREADY_SET' && !r.body.alert && !r.body.alertReference), `${serial}: status already set, no alert, for the winner’s own organisation`)
    t.ok(others.every((r) => r.body.code === 'ALREADY_INACTIVE' && r.body.pack.state === state), `${serial}: the others are told it is already inactive, with its state`)
    t.ok(others.every((r) => r.body.alert && r.body.alertReference), `${serial}: an alert for every other organisation’s request`)
    const alerts = await database.db.selectFrom('serial_alerts').select(['reference', 'pharmacy_pseudonym', 'code', 'occurrences']).where('cip13', '=', BIOGARAN).where('serial', '=', serial).execute()
    const otherOrgs = new Set(others.map((r) => r.org))
    t.equal(alerts.length, otherOrgs.size, `${serial}: one alert per other organisation (${otherOrgs.size}), not one per request`)
    t.same(new Set(alerts.map((a) => a.pharmacy_pseudonym)), new Set([...otherOrgs].map((o) => pharmacyPseudonym(secret, o))))
    t.ok(alerts.every((a) => a.code === 'ALREADY_INACTIVE'))
    t.equal(alerts.reduce((n, a) => n + Number(a.occurrences), 0), others.length, 'every attempt counted on its organisation’s alert')
    for (const a of alerts) t.ok(others.filter((r) => pharmacyPseudonym(secret, r.org) === a.pharmacy_pseudonym).every((r) => r.body.alertReference === a.reference), 'each organisation’s requests share its reference')
    const scans = await database.db.selectFrom('serial_scans').select(['code']).where('cip13', '=', BIOGARAN).where('serial', '=', serial).execute()
    t.equal(scans.length, 200, `${serial}: every request logged`)
  }
})

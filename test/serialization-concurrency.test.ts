import type { AddressInfo } from 'node:net'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/bdpm.ts'
import { ORG, testApp } from './helpers.ts'

const GS = '\x1d'
const BIOGARAN = '3400949497294'
const dm = (serial: string) => `]d2010${BIOGARAN}21${serial}${GS}10LOT-C${GS}17301231`

// Real HTTP, 200 requests in flight at once: on PostgreSQL they run on the pool's connections in parallel and race
// on the same row; on the embedded database they serialize. The outcome must be the same: exactly one success.
t.test('200 concurrent decommissions of one pack: exactly one succeeds', async (t) => {
  const { app, auth, database } = await testApp(t)
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

  for (const [serial, action, state] of [['RACE1', 'supply', 'supplied'], ['RACE2', 'destroy', 'destroyed']] as const) {
    const results = await race(serial, action)
    t.ok(results.every((r) => r.status === 200), `${serial}: every request answered 200`)
    const codes = results.map((r) => r.body.code)
    t.equal(codes.filter((c) => c === 'STATE_CHANGED').length, 1, `${serial}: exactly one success (${database.kind})`)
    t.equal(codes.filter((c) => c === 'ALREADY_INACTIVE').length, 199, `${serial}: the others are told it is already inactive`)
    t.ok(results.filter((r) => r.body.code === 'ALREADY_INACTIVE').every((r) => r.body.pack.state === state), 'with the pack’s state')
    const txns = await database.db.selectFrom('pack_transactions').select(['to_state']).where('cip13', '=', BIOGARAN).where('serial', '=', serial).execute()
    t.same(txns, [{ to_state: state }], 'one transaction recorded')

    // "Already dispensed elsewhere": the callers come from 6 organisations. For a SUPPLIED pack, every loser from
    // another organisation than the winner's is told so with an alert; the winner's own organisation (its other
    // users, its retries) never. One open alert per pack and organisation, however many of its requests race.
    const winner = results.find((r) => r.body.code === 'STATE_CHANGED')!.org
    const same = results.filter((r) => r.body.code === 'ALREADY_INACTIVE' && r.org === winner)
    const others = results.filter((r) => r.body.code === 'ALREADY_INACTIVE' && r.org !== winner)
    t.ok(same.length > 0 && others.length > 0, 'both kinds of loser took part')
    t.ok(same.every((r) => !r.body.alert && !r.body.alertReference), `${serial}: no alert for the winner’s own organisation`)
    const alerts = await database.db.selectFrom('serial_alerts').select(['reference', 'org_id', 'code']).where('cip13', '=', BIOGARAN).where('serial', '=', serial).execute()
    if (state === 'supplied') {
      t.ok(others.every((r) => r.body.alert && r.body.alertReference), `${serial}: an alert for every other organisation’s request`)
      const otherOrgs = new Set(others.map((r) => r.org))
      t.equal(alerts.length, otherOrgs.size, `${serial}: one alert per other organisation (${otherOrgs.size}), not one per request`)
      t.same(new Set(alerts.map((a) => a.org_id)), otherOrgs)
      t.ok(alerts.every((a) => a.code === 'ALREADY_DISPENSED_ELSEWHERE'))
      for (const a of alerts) t.ok(others.filter((r) => r.org === a.org_id).every((r) => r.body.alertReference === a.reference), 'each organisation’s requests share its reference')
    } else {
      t.ok(others.every((r) => !r.body.alert), `${serial}: a ${state} pack is not "dispensed": no alert`)
      t.equal(alerts.length, 0)
    }
    const scans = await database.db.selectFrom('serial_scans').select(['code']).where('cip13', '=', BIOGARAN).where('serial', '=', serial).execute()
    t.equal(scans.length, 200, `${serial}: every request logged`)
  }
})

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
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { code: string; pack: { state: string } } }))
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
  }
})

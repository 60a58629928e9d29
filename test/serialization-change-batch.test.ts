import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { Batcher } from '../src/platform/db/batcher.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ChangeBatcher, type ChangeItem } from '../src/serialization/queries/change-batch.ts'
import { readPack } from '../src/serialization/queries/packs.ts'
import type { PackRef } from '../src/serialization/rules/packs.ts'
import type { Scanner } from '../src/serialization/rules/pseudonyms.ts'
import { diagnoseChange } from '../src/serialization/rules/transitions.ts'
import { ORG, testApp } from './helpers.ts'

const BIOGARAN = '3400949497294'
// The batcher stores what it is given: here, readable stand-ins for the pseudonyms the routes compute.
const pharmacy = (org: string): Scanner => ({ role: 'pharmacy', org: `p-${org}`, user: 'u1' })
const now = new Date('2026-11-22T10:00:00Z')
const item = (serial: string, scanner: Scanner, over: Partial<ChangeItem> = {}): ChangeItem => ({
  scanner, cip13: BIOGARAN, serial, batch: 'LOT-B', expiry: '2030-12-31', target: 'supplied', action: 'supply', force: false,
  id: randomUUID(), scanId: randomUUID(), now, today: '2026-11-22', ...over,
})

t.test('Batcher: groups what arrives together, never two items with the same key in a group', async (t) => {
  const groups: string[][] = []
  const b = new Batcher<string, string>(async (items) => (groups.push(items), items.map((x) => x.toUpperCase())), { maxInFlight: 1, maxBatch: 3, key: (x) => x })
  const answers = await Promise.all(['a', 'b', 'a', 'c', 'd'].map((x) => b.submit(x)))
  t.same(answers, ['A', 'B', 'A', 'C', 'D'], 'each caller gets its own result')
  t.ok(groups.every((g) => g.length <= 3 && new Set(g).size === g.length), `groups ${JSON.stringify(groups)}`)
  t.equal(groups.flat().length, 5)
  const failing = new Batcher<number, number>(async () => {
    throw new Error('boom')
  }, { maxInFlight: 2, maxBatch: 10 })
  const r = await Promise.allSettled([failing.submit(1), failing.submit(2)])
  t.ok(r.every((x) => x.status === 'rejected'), 'a failed statement fails each of its callers')
  const short = new Batcher<number, number>(async () => [1], { maxInFlight: 1, maxBatch: 10 })
  const s = await Promise.allSettled([short.submit(1), short.submit(2)])
  t.same(s.map((x) => x.status), ['fulfilled', 'rejected'], 'a missing result is an error, never a hang')
})

t.test('grouped changes: two instances racing on the same packs in opposite orders, each pack changed exactly once', async (t) => {
  const { app, auth, database } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  const serials = Array.from({ length: 300 }, (_, i) => `GRP${String(i).padStart(4, '0')}`)
  const up = await app.inject({ method: 'POST', url: '/v1/serialization/packs', headers: auth('lab', ORG.labBiogaran), payload: { product: BIOGARAN, batch: 'LOT-B', expiry: '2030-12-31', serials } })
  t.equal(up.json().created, 300)
  const a = new ChangeBatcher(database, { maxInFlight: 4, maxBatch: 50 })
  const b = new ChangeBatcher(database, { maxInFlight: 4, maxBatch: 50 })
  const [ra, rb] = await Promise.all([
    Promise.all(serials.map((s) => a.change(item(s, pharmacy(ORG.pharmacyParis))))),
    Promise.all([...serials].reverse().map((s) => b.change(item(s, pharmacy(ORG.pharmacyLyon))))).then((r) => r.reverse()),
  ])
  const winners = serials.map((_, i) => Number(ra[i]!.changed) + Number(rb[i]!.changed))
  t.ok(winners.every((w) => w === 1), `every pack changed by exactly one of the two (${database.kind})`)
  const txns = await database.db.selectFrom('pack_transactions').select(['serial', 'org_pseudonym']).where('cip13', '=', BIOGARAN).where('serial', 'in', serials).execute()
  t.equal(txns.length, 300, 'one transaction per pack')
  const byOrg = (org: string) => txns.filter((x) => x.org_pseudonym === `p-${org}`).length
  t.equal(byOrg(ORG.pharmacyParis), ra.filter((x) => x.changed).length, 'each success has its transaction')
  t.equal(byOrg(ORG.pharmacyLyon), rb.filter((x) => x.changed).length)
  const scans = await database.db.selectFrom('serial_scans').select(['serial']).where('cip13', '=', BIOGARAN).where('code', '=', 'STATE_CHANGED').where('serial', 'in', serials).execute()
  t.equal(scans.length, 300, 'one scan-log row per change')
  const packs = await database.db.selectFrom('packs').select(['state']).where('cip13', '=', BIOGARAN).where('serial', 'in', serials).execute()
  t.ok(packs.every((p) => p.state === 'supplied'))
  // A loser gets the pack as its statement found it: the diagnosis a read after it gives, or, when the other
  // instance's statement changed the pack while this one waited for it, still active (the caller tries again alone).
  const wrong: string[] = []
  for (const [results, org] of [[ra, ORG.pharmacyParis], [rb, ORG.pharmacyLyon]] as const) {
    for (const [i, r] of results.entries()) {
      if (r.changed) continue
      const ref: PackRef = { cip13: BIOGARAN, gtin: `0${BIOGARAN}`, serial: serials[i]!, batch: 'LOT-B', expiry: '2030-12-31' }
      const inStatement = diagnoseChange('supply', ref, r.pack, pharmacy(org))
      const after = diagnoseChange('supply', ref, await readPack(database, ref, '2026-11-22'), pharmacy(org))
      if (inStatement !== null && inStatement !== after) wrong.push(`${serials[i]}: ${inStatement} / ${after}`)
    }
  }
  t.same(wrong, [], 'each loser diagnosed as a read after it would, or told to try again')
})

t.test('grouped changes: an item that breaks the statement fails alone; the others are changed', async (t) => {
  const { app, auth, database } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  await app.inject({ method: 'POST', url: '/v1/serialization/packs', headers: auth('lab', ORG.labBiogaran), payload: { product: BIOGARAN, batch: 'LOT-B', expiry: '2030-12-31', serials: ['OK1', 'OK2', 'OK3'] } })
  const batcher = new ChangeBatcher(database, { maxInFlight: 1, maxBatch: 10 })
  const p = pharmacy(ORG.pharmacyParis)
  const results = await Promise.allSettled([
    batcher.change(item('OK1', p)),
    batcher.change(item('OK2', p, { expiry: 'not a date' })),
    batcher.change(item('OK3', p)),
    batcher.change(item('NOPE', p)),
  ])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
  t.ok(results[0]!.status === 'fulfilled' && results[0]!.value.changed, 'OK1 changed')
  t.ok(results[2]!.status === 'fulfilled' && results[2]!.value.changed, 'OK3 changed')
  t.ok(results[3]!.status === 'fulfilled' && !results[3]!.value.changed && results[3]!.value.pack?.state === null && results[3]!.value.pack.product_known, 'an unknown pack is not changed, and the statement says so (a known product, no such pack)')
  const states = await database.db.selectFrom('packs').select(['serial', 'state']).where('cip13', '=', BIOGARAN).orderBy('serial').execute()
  t.same(states, [{ serial: 'OK1', state: 'supplied' }, { serial: 'OK2', state: 'active' }, { serial: 'OK3', state: 'supplied' }])
})

t.test('bulk state change: distinct packs run together and keep their order; a pack named twice runs in order', async (t) => {
  const { app, auth, database } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  const serials = Array.from({ length: 40 }, (_, i) => `BULK${String(i).padStart(3, '0')}`)
  await app.inject({ method: 'POST', url: '/v1/serialization/packs', headers: auth('lab', ORG.labBiogaran), payload: { product: BIOGARAN, batch: 'LOT-B', expiry: '2030-12-31', serials } })
  const dm = (serial: string) => `]d2010${BIOGARAN}21${serial}\x1d10LOT-B\x1d17301231`
  // Count the grouped statements the bulk call sends.
  let statements = 0
  const prepared = database.prepared.bind(database)
  database.prepared = (name, text, params) => (name === 'serial_change_batch' && statements++, prepared(name, text, params))
  t.teardown(() => (database.prepared = prepared))
  const items = [...serials.map((s) => ({ action: 'supply', dataMatrix: dm(s) })), { action: 'supply', dataMatrix: 'garbage' }, { action: 'destroy', dataMatrix: dm('NOPE') }]
  const res = await app.inject({ method: 'POST', url: '/v1/serialization/packs/state-bulk', headers: auth('pharmacy', ORG.pharmacyParis), payload: { items } })
  t.equal(res.statusCode, 200)
  const codes = res.json().results.map((r: { code: string }) => r.code)
  t.same(codes, [...serials.map(() => 'STATE_CHANGED'), 'INVALID_CODE', 'UNKNOWN_SERIAL'], 'one result per item, in order')
  t.same(res.json().results.slice(0, 40).map((r: { pack: { serial: string } }) => r.pack.serial), serials)
  t.ok(statements < 41, `the 41 readable packs went in fewer statements than items (${statements})`)
  const txns = await database.db.selectFrom('pack_transactions').select(['serial']).where('cip13', '=', BIOGARAN).where('serial', 'in', serials).execute()
  t.equal(txns.length, 40, 'one transaction per pack')

  // Named twice (supply then destroy of the same pack): in order, the second sees the first's change.
  await app.inject({ method: 'POST', url: '/v1/serialization/packs', headers: auth('lab', ORG.labBiogaran), payload: { product: BIOGARAN, batch: 'LOT-B', expiry: '2030-12-31', serials: ['TWICE1', 'TWICE2'] } })
  const twice = await app.inject({
    method: 'POST', url: '/v1/serialization/packs/state-bulk', headers: auth('pharmacy', ORG.pharmacyParis),
    payload: { items: [{ action: 'supply', dataMatrix: dm('TWICE1') }, { action: 'supply', dataMatrix: dm('TWICE2') }, { action: 'destroy', dataMatrix: dm('TWICE1') }] },
  })
  t.same(twice.json().results.map((r: { code: string }) => r.code), ['STATE_CHANGED', 'STATE_CHANGED', 'ALREADY_INACTIVE'])
})

// Pharmacies racing for the same packs: concurrent changes land in one grouped statement, which may name a pack
// several times. Whatever the mix (who, how many, supply or a forced destroy, in any order), each pack is changed
// exactly once, by one of its racers, with one transaction and one scan-log row. Seeded: FC_SEED replays a failure.
t.test('grouped changes: a pack named several times in one statement is changed exactly once', async (t) => {
  const { app, auth, database } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  const batcher = new ChangeBatcher(database, { maxInFlight: 1, maxBatch: 100 })
  const orgs = [ORG.pharmacyParis, ORG.pharmacyLyon, ORG.pharmacyAjaccio, ORG.hospital]
  let round = 0
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ pack: fc.nat(3), org: fc.nat(orgs.length - 1), destroy: fc.boolean() }), { minLength: 1, maxLength: 30 }),
      async (attempts) => {
        const serials = [0, 1, 2, 3].map((k) => `RACE${round}-${k}`)
        round++
        await app.inject({ method: 'POST', url: '/v1/serialization/packs', headers: auth('lab', ORG.labBiogaran), payload: { product: BIOGARAN, batch: 'LOT-B', expiry: '2030-12-31', serials } })
        const results = await Promise.all(
          attempts.map((a) => batcher.change(item(serials[a.pack]!, pharmacy(orgs[a.org]!), a.destroy ? { target: 'destroyed', action: 'destroy', force: true } : {}))),
        )
        const named = new Set(attempts.map((a) => serials[a.pack]!))
        for (const serial of serials) {
          const won = attempts.filter((a, i) => serials[a.pack] === serial && results[i]!.changed).length
          if (won !== (named.has(serial) ? 1 : 0)) return false
        }
        // Each loser's diagnosis, from the pack as the statement returned it, is the one a read after it gives.
        for (const [i, a] of attempts.entries()) {
          const r = results[i]!
          if (r.changed) continue
          const ref: PackRef = { cip13: BIOGARAN, gtin: `0${BIOGARAN}`, serial: serials[a.pack]!, batch: 'LOT-B', expiry: '2030-12-31' }
          const action = a.destroy ? 'destroy' : 'supply'
          const scanner = pharmacy(orgs[a.org]!)
          const inStatement = diagnoseChange(action, ref, r.pack, scanner)
          const after = diagnoseChange(action, ref, await readPack(database, ref, '2026-11-22'), scanner)
          if (inStatement !== after) throw new Error(`${action} by ${scanner.org}: ${inStatement} from the statement, ${after} from a read after it`)
        }
        const txns = await database.db.selectFrom('pack_transactions').select('serial').where('cip13', '=', BIOGARAN).where('serial', 'in', serials).execute()
        const scans = await database.db.selectFrom('serial_scans').select('serial').where('cip13', '=', BIOGARAN).where('code', '=', 'STATE_CHANGED').where('serial', 'in', serials).execute()
        return txns.length === named.size && scans.length === named.size
      },
    ),
    { seed: Number(process.env.FC_SEED ?? 20261206), numRuns: Number(process.env.FC_RUNS ?? 25) },
  )
  t.pass('each pack changed exactly once, whatever the racers; each loser diagnosed from the statement as from a read after it')
})

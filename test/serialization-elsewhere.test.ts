import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { sequence } from '../src/platform/events/sequencer.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/bdpm.ts'
import { pharmacyPseudonym } from '../src/serialization/alerts.ts'
import { ORG, testApp } from './helpers.ts'

// "Already dispensed elsewhere": a pack already supplied (dispensed) that ANOTHER organisation verifies or tries
// to decommission may be a copy of the box (duplicated serial): an alert. The organisation that supplied it
// (its other users, its retries, its re-scans) never raises one.
const GS = '\x1d'
const BIOGARAN = '3400949497294' // lab 412345670
const dm = (serial: string) => `]d2010${BIOGARAN}21${serial}${GS}10LOT-A${GS}17301231`
const SECRET = 'test-scan-pseudonym-secret-0123456789-abcdef'
const REF = /^ALR-\d{4}-\d{6}$/

t.test('already dispensed elsewhere raises an alert, never for the same organisation', async (t) => {
  const { app, auth, database } = await testApp(t, { env: { SCAN_PSEUDONYM_SECRET: SECRET } })
  const db = database.db
  await importBdpmDirectory(db, DEMO_BDPM_DIR, SYSTEM)
  const lab = auth('lab', ORG.labBiogaran, 'qualite')
  const paris = auth('pharmacy', ORG.pharmacyParis, 'alice')
  const parisBob = auth('pharmacy', ORG.pharmacyParis, 'bob')
  const lyon = auth('pharmacy', ORG.pharmacyLyon, 'carla')
  const hospital = auth('hospital', ORG.hospital, 'dora')
  const post = async (url: string, headers: Record<string, string>, payload: object) => {
    const r = await app.inject({ method: 'POST', url: `/v1/serialization${url}`, headers, payload })
    if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode} ${r.body}`)
    return r.json()
  }
  const verify = (serial: string, headers: Record<string, string>) => post('/packs/verify', headers, { dataMatrix: dm(serial) })
  const change = (action: string, serial: string, headers: Record<string, string>, extra: object = {}) => post('/packs/state', headers, { action, dataMatrix: dm(serial), ...extra })
  const alerts = () => db.selectFrom('serial_alerts').select(['reference', 'org_id', 'code', 'serial', 'action', 'status']).orderBy('seq').execute()

  t.equal((await post('/packs', lab, { product: BIOGARAN, batch: 'LOT-A', expiry: '2030-12-31', serials: ['S1', 'S2', 'S3'] })).created, 3)
  const supplied = await change('supply', 'S1', paris)
  t.equal(supplied.code, 'STATE_CHANGED')

  t.test('the supplying organisation: no alert (its users, retries and re-scans)', async (t) => {
    for (const [what, r] of [
      ['verify by the same user', await verify('S1', paris)],
      ['verify by another user of the same pharmacy', await verify('S1', parisBob)],
      ['supply again (retry)', await change('supply', 'S1', paris)],
      ['destroy by another user of the same pharmacy', await change('destroy', 'S1', parisBob)],
    ] as const) {
      t.match(r, { ok: false, code: 'ALREADY_INACTIVE', alert: false, pack: { state: 'supplied' } }, what)
      t.notOk(r.alertReference, `${what}: no alert reference`)
    }
    t.same(await alerts(), [])
  })

  let lyonRef = ''
  t.test('another organisation: an alert, one per organisation while open', async (t) => {
    const v = await verify('S1', lyon)
    t.match(v, { ok: false, code: 'ALREADY_INACTIVE', alert: true, alertReference: REF, pack: { state: 'supplied', dispensable: false } })
    t.match(v.message, /autre établissement/, 'the French message says what happened')
    t.notOk('dispensedElsewhere' in v, 'no internal field in the answer')
    lyonRef = v.alertReference
    const en = (await app.inject({ method: 'POST', url: '/v1/serialization/packs/verify', headers: { ...lyon, 'accept-language': 'en' }, payload: { dataMatrix: dm('S1') } })).json()
    t.match(en, { code: 'ALREADY_INACTIVE', alert: true, alertReference: lyonRef, message: /another organisation/ }, 'a re-scan: the same alert')
    t.match(await change('supply', 'S1', lyon), { code: 'ALREADY_INACTIVE', alert: true, alertReference: lyonRef }, 'its decommission attempt: the same alert')

    const h = await change('supply', 'S1', hospital)
    t.match(h, { code: 'ALREADY_INACTIVE', alert: true, alertReference: REF })
    t.not(h.alertReference, lyonRef, 'another organisation: its own alert')

    const bulk = await post('/packs/verify-bulk', lyon, { packs: [{ dataMatrix: dm('S2') }, { dataMatrix: dm('S1') }] })
    t.same(bulk.results.map((r: { code: string; alert: boolean }) => [r.code, r.alert]), [['PACK_ACTIVE', false], ['ALREADY_INACTIVE', true]])
    t.equal(bulk.summary.alerts, 1)

    const rows = await alerts()
    t.same(rows.map((a) => [a.org_id, a.code, a.serial, a.action]), [
      [ORG.pharmacyLyon, 'ALREADY_DISPENSED_ELSEWHERE', 'S1', 'verify'],
      [ORG.hospital, 'ALREADY_DISPENSED_ELSEWHERE', 'S1', 'supply'],
    ])
    const raised = await db.selectFrom('audit_log').select('object_id').where('action', '=', 'serialization.alert.raised').execute()
    t.equal(raised.length, 2, 'each alert audited once')
  })

  t.test('the lab is told, with a pseudonym, never the pharmacy', async (t) => {
    await sequence(db)
    const feed = (await app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=500', headers: lab })).json().items as Array<{ type: string; sender: string | null; payload: any }>
    const events = feed.filter((e) => e.type === 'serialization.alert')
    t.equal(events.length, 2)
    t.match(events[0]!.payload, { reference: lyonRef, code: 'ALREADY_DISPENSED_ELSEWHERE', serial: 'S1', packState: 'supplied', pharmacy: pharmacyPseudonym(SECRET, ORG.pharmacyLyon) })
    t.equal(events[0]!.sender, null)
    const dump = JSON.stringify(events)
    for (const finess of [ORG.pharmacyParis, ORG.pharmacyLyon, ORG.hospital]) t.notOk(dump.includes(finess), `no FINESS ${finess}`)
  })

  t.test('not for other inactive states; a closed alert lets a new one be raised', async (t) => {
    t.equal((await change('destroy', 'S2', paris)).code, 'STATE_CHANGED')
    const destroyed = await verify('S2', lyon)
    t.match(destroyed, { code: 'ALREADY_INACTIVE', alert: false, pack: { state: 'destroyed' } }, 'destroyed, not dispensed: no alert')
    t.notOk(destroyed.alertReference)

    for (const status of ['under_investigation', 'closed']) {
      const r = await app.inject({ method: 'PUT', url: `/v1/serialization/alerts/${lyonRef}/status`, headers: lab, payload: { status, conclusion: 'scanning_error' } })
      t.equal(r.statusCode, 200, r.body)
    }
    const again = await verify('S1', lyon)
    t.match(again, { alert: true, alertReference: REF })
    t.not(again.alertReference, lyonRef, 'the first is closed: a new alert')
  })

  t.test('after an undo and a new supply, the roles swap', async (t) => {
    t.equal((await change('undo', 'S1', paris, { transactionId: supplied.transactionId })).code, 'STATE_CHANGED')
    t.match(await verify('S1', lyon), { code: 'PACK_ACTIVE', alert: false })
    t.equal((await change('supply', 'S1', lyon)).code, 'STATE_CHANGED')
    t.match(await verify('S1', lyon), { code: 'ALREADY_INACTIVE', alert: false }, 'now Lyon supplied it: no alert for Lyon')
    const p = await verify('S1', paris)
    t.match(p, { code: 'ALREADY_INACTIVE', alert: true, alertReference: REF }, 'and Paris is "elsewhere"')
  })

  t.test('every scan is logged, alerts with their reference', async (t) => {
    const scans = await db.selectFrom('serial_scans').select(['serial', 'code', 'alert_reference', 'pharmacy_pseudonym']).execute()
    // supply S1; 4 same-organisation; lyon ×3, hospital, bulk ×2; destroy S2, verify S2; verify S1 (lyon);
    // undo, verify, supply, verify (lyon), verify (paris)
    t.equal(scans.length, 1 + 4 + 6 + 2 + 1 + 5)
    t.equal(scans.filter((s) => s.alert_reference === lyonRef).length, 4, 'Lyon’s four scans of S1 (verify ×2, supply, bulk) carry its first alert')
    t.notOk(JSON.stringify(scans).includes(ORG.pharmacyLyon), 'no FINESS in the log')
  })
})

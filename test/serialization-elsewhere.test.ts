import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { sequence } from '../src/platform/events/sequencer.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { REPEAT_WINDOW_MS } from '../src/serialization/rules/alerts.ts'
import { pharmacyPseudonym } from '../src/serialization/rules/pseudonyms.ts'
import { ORG, testApp } from './helpers.ts'

// The national system's alert rules on inactive packs (src/serialization/rules/alerts.ts): any decommission attempt
// on a pack that is already inactive raises an alert (NMVS_NC_PCK_22), whatever made it inactive (dispensed,
// destroyed, stolen, exported…), except when the batch or product is recalled, withdrawn or expired (the status
// comes back, no alert) and when the same organisation repeats its own change (NMVS_NC_PCK_19). A verification is
// read-only: it never alerts on an inactive pack.
const GS = '\x1d'
const BIOGARAN = '3400949497294' // lab 412345670
const dm = (serial: string, batch = 'LOT-A') => `]d2010${BIOGARAN}21${serial}${GS}10${batch}${GS}17301231`
const SECRET = 'test-scan-pseudonym-secret-0123456789-abcdef'
const REF = /^ALR-\d{4}-\d{6}$/

t.test('decommission attempts on an inactive pack', async (t) => {
  const { app, auth, database, clock } = await testApp(t, { env: { SCAN_PSEUDONYM_SECRET: SECRET } })
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
  const verify = (serial: string, headers: Record<string, string>, batch?: string) => post('/packs/verify', headers, { dataMatrix: dm(serial, batch) })
  const change = (action: string, serial: string, headers: Record<string, string>, extra: object = {}) => post('/packs/state', headers, { action, dataMatrix: dm(serial), ...extra })
  const alerts = () => db.selectFrom('serial_alerts').select(['reference', 'pharmacy_pseudonym', 'code', 'serial', 'action', 'status', 'occurrences']).orderBy('seq').execute()
  const pLyon = pharmacyPseudonym(SECRET, ORG.pharmacyLyon)

  t.equal((await post('/packs', lab, { product: BIOGARAN, batch: 'LOT-A', expiry: '2030-12-31', serials: ['S1', 'S2', 'S3', 'S4', 'S5', 'S6'] })).created, 6)
  t.equal((await post('/packs', lab, { product: BIOGARAN, batch: 'LOT-R', expiry: '2030-12-31', serials: ['R1'] })).created, 1)
  const supplied = await change('supply', 'S1', paris)
  t.equal(supplied.code, 'STATE_CHANGED')

  t.test('verification is read-only: never an alert on an inactive pack', async (t) => {
    for (const [who, headers] of [['the supplier', paris], ['another pharmacy', lyon], ['a hospital', hospital]] as const) {
      const r = await verify('S1', headers)
      t.match(r, { ok: false, code: 'ALREADY_INACTIVE', alert: false, pack: { state: 'supplied', dispensable: false } }, who)
      t.notOk(r.alertReference)
    }
    t.same(await alerts(), [])
  })

  t.test('the same organisation repeating its own change: status already set, no alert', async (t) => {
    for (const [what, r] of [
      ['supply again (a retry)', await change('supply', 'S1', paris)],
      ['supply again by another user of the same pharmacy', await change('supply', 'S1', parisBob)],
    ] as const) {
      t.match(r, { ok: false, code: 'STATUS_ALREADY_SET', alert: false, pack: { state: 'supplied' } }, what)
      t.notOk(r.alertReference)
    }
    t.same(await alerts(), [])
  })

  let lyonRef = ''
  t.test('any other decommission attempt: ALREADY_INACTIVE with an alert, one per pharmacy and window', async (t) => {
    const l = await change('supply', 'S1', lyon)
    t.match(l, { ok: false, code: 'ALREADY_INACTIVE', alert: true, alertReference: REF, pack: { state: 'supplied' } })
    t.match(l.message, /falsification/, 'the French message says what to do')
    lyonRef = l.alertReference
    const en = (await app.inject({ method: 'POST', url: '/v1/serialization/packs/state', headers: { ...lyon, 'accept-language': 'en' }, payload: { action: 'supply', dataMatrix: dm('S1') } })).json()
    t.match(en, { code: 'ALREADY_INACTIVE', alert: true, alertReference: lyonRef, message: /quarantine/ }, 'a repeat within the window: the same alert')
    const bulk = await post('/packs/state-bulk', lyon, { items: [{ action: 'supply', dataMatrix: dm('S1') }] })
    t.match(bulk.results[0], { code: 'ALREADY_INACTIVE', alert: true, alertReference: lyonRef })
    const h = await change('supply', 'S1', hospital)
    t.match(h, { code: 'ALREADY_INACTIVE', alert: true, alertReference: REF })
    t.not(h.alertReference, lyonRef, 'another organisation: its own alert')
    const d = await change('destroy', 'S1', parisBob)
    t.match(d, { code: 'ALREADY_INACTIVE', alert: true, alertReference: REF }, 'the supplier itself asking for another change: an alert too')

    const rows = await alerts()
    t.same(rows.map((a) => [a.pharmacy_pseudonym, a.code, a.serial, a.action, a.occurrences]), [
      [pLyon, 'ALREADY_INACTIVE', 'S1', 'supply', 3],
      [pharmacyPseudonym(SECRET, ORG.hospital), 'ALREADY_INACTIVE', 'S1', 'supply', 1],
      [pharmacyPseudonym(SECRET, ORG.pharmacyParis), 'ALREADY_INACTIVE', 'S1', 'destroy', 1],
    ], 'three failures of Lyon counted on its one alert')
  })

  t.test('whatever made the pack inactive: destroyed, stolen, exported', async (t) => {
    for (const [serial, action, state] of [['S2', 'destroy', 'destroyed'], ['S3', 'stolen', 'stolen'], ['S4', 'export', 'exported']] as const) {
      t.equal((await change(action, serial, paris)).code, 'STATE_CHANGED')
      t.match(await change('supply', serial, lyon), { code: 'ALREADY_INACTIVE', alert: true, alertReference: REF, pack: { state } }, `${state}, then supplied elsewhere`)
      t.match(await change(action, serial, paris), { code: 'STATUS_ALREADY_SET', alert: false }, `${state}: the same change again by its author`)
    }
  })

  t.test('inactive because the batch is recalled: the status comes back, no alert', async (t) => {
    t.equal((await change('supply', 'R1', paris, { dataMatrix: dm('R1', 'LOT-R') })).code, 'STATE_CHANGED')
    t.equal((await app.inject({ method: 'PUT', url: `/v1/serialization/products/${BIOGARAN}/batches/LOT-R/status`, headers: lab, payload: { status: 'recalled' } })).statusCode, 200)
    const r = await change('supply', 'R1', lyon, { dataMatrix: dm('R1', 'LOT-R') })
    t.match(r, { code: 'BATCH_RECALLED', alert: false })
    t.notOk(r.alertReference)
  })

  t.test('the lab is told, with a pseudonym, never the pharmacy', async (t) => {
    await sequence(db)
    const feed = (await app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=500', headers: lab })).json().items as Array<{ type: string; sender: string | null; payload: any }>
    const events = feed.filter((e) => e.type === 'serialization.alert')
    t.equal(events.length, (await alerts()).length, 'one event per alert, not per repeat')
    t.match(events[0]!.payload, { reference: lyonRef, code: 'ALREADY_INACTIVE', serial: 'S1', packState: 'supplied', pharmacy: pLyon })
    t.equal(events[0]!.sender, null)
    const dump = JSON.stringify(events)
    for (const finess of [ORG.pharmacyParis, ORG.pharmacyLyon, ORG.hospital]) t.notOk(dump.includes(finess), `no FINESS ${finess}`)
  })

  t.test('after the window, or once closed, a new alert', async (t) => {
    clock.advance(REPEAT_WINDOW_MS + 60_000)
    const late = await change('supply', 'S1', lyon)
    t.match(late, { alert: true, alertReference: REF })
    t.not(late.alertReference, lyonRef, 'past the window: a new alert')
    for (const status of ['under_investigation', 'closed']) {
      const r = await app.inject({ method: 'PUT', url: `/v1/serialization/alerts/${late.alertReference}/status`, headers: lab, payload: { status, conclusion: 'scanning_error' } })
      t.equal(r.statusCode, 200, r.body)
    }
    const again = await change('supply', 'S1', lyon)
    t.match(again, { alert: true, alertReference: REF })
    t.not(again.alertReference, late.alertReference, 'the previous one is closed: a new alert')
  })

  t.test('after an undo and a new supply, the roles swap', async (t) => {
    clock.advance(-(REPEAT_WINDOW_MS + 60_000))
    t.equal((await change('undo', 'S1', paris, { transactionId: supplied.transactionId })).code, 'STATE_CHANGED')
    t.equal((await change('supply', 'S1', lyon)).code, 'STATE_CHANGED')
    t.match(await change('supply', 'S1', lyon), { code: 'STATUS_ALREADY_SET', alert: false }, 'now Lyon supplied it')
    t.match(await change('supply', 'S1', paris), { code: 'ALREADY_INACTIVE', alert: true, alertReference: REF }, 'and Paris is "elsewhere"')
  })

  t.test('every scan is logged, repeats with their alert’s reference', async (t) => {
    const scans = await db.selectFrom('serial_scans').select(['serial', 'code', 'alert_reference', 'pharmacy_pseudonym']).execute()
    t.equal(scans.filter((s) => s.alert_reference === lyonRef).length, 3, 'Lyon’s three attempts on S1 carry its first alert')
    t.notOk(JSON.stringify(scans).includes(ORG.pharmacyLyon), 'no FINESS in the log')
  })
})

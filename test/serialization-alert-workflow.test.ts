import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { sequence } from '../src/platform/events/sequencer.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { pharmacyPseudonym } from '../src/serialization/rules/pseudonyms.ts'
import { ORG, sql, testApp } from './helpers.ts'

// What the regulator expects of falsification alerts: ANSM reads them all, a lab suspecting a falsification
// escalates it to ANSM, which closes it; the lab investigates with the pack's history; nothing identifies a
// pharmacy or a user in what serialization stores.
const GS = '\x1d'
const BIOGARAN = '3400949497294' // lab 412345670
const SECRET = 'test-scan-pseudonym-secret-0123456789-abcdef'
const REF = /^ALR-\d{4}-\d{6}$/
const dm = (serial: string, batch = 'Lot-X', prefix = ']d2') => `${prefix}010${BIOGARAN}21${serial}${GS}10${batch}${GS}17301231`

t.test('alert workflow', async (t) => {
  const { app, auth, database } = await testApp(t, { env: { SCAN_PSEUDONYM_SECRET: SECRET } })
  const db = database.db
  await importBdpmDirectory(db, DEMO_BDPM_DIR, SYSTEM)
  const lab = auth('lab', ORG.labBiogaran, 'qualite')
  const otherLab = auth('lab', ORG.labArrow, 'qa')
  const ansm = auth('ansm', ORG.ansm, 'inspectrice')
  const ordre = auth('ordre', ORG.ordre, 'operateur')
  const paris = auth('pharmacy', ORG.pharmacyParis, 'alice')
  const lyon = auth('pharmacy', ORG.pharmacyLyon, 'carla')
  const req = async (method: 'GET' | 'POST' | 'PUT', url: string, headers: Record<string, string>, payload?: object) =>
    app.inject({ method, url: `/v1/serialization${url}`, headers, ...(payload ? { payload } : {}) })
  const json = async (method: 'GET' | 'POST' | 'PUT', url: string, headers: Record<string, string>, payload?: object) => {
    const r = await req(method, url, headers, payload)
    if (r.statusCode >= 300) throw new Error(`${url}: ${r.statusCode} ${r.body}`)
    return r.json()
  }
  const feed = async (headers: Record<string, string>) => {
    await sequence(db)
    return (await app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=500', headers })).json().items as Array<{ type: string; sender: string | null; payload: any }>
  }

  await json('POST', '/packs', lab, { product: BIOGARAN, batch: 'Lot-X', expiry: '2030-12-31', serials: ['AbC123', 'S1', 'S2', 'S3'] })

  t.test('a Caps-Lock-inverted scan without AIM prefix gets the keyboard hint, not an alert', async (t) => {
    const inverted = await json('POST', '/packs/verify', paris, { dataMatrix: dm('aBc123', 'lOT-x', '') })
    t.match(inverted, { ok: false, code: 'INVALID_CODE', alert: false, errors: [{ field: 'dataMatrix', code: 'KEYBOARD_CASE_INVERTED', message: /Verr\. Maj\./ }] })
    t.notOk(inverted.alertReference)
    const change = await json('POST', '/packs/state', paris, { action: 'supply', dataMatrix: dm('aBc123', 'lOT-x', '') })
    t.match(change, { code: 'INVALID_CODE', alert: false }, 'nor on a decommission')
    t.same(await db.selectFrom('serial_alerts').select('reference').execute(), [], 'no alert raised')
    const logged = await db.selectFrom('serial_scans').select(['code']).where('serial', '=', 'aBc123').execute()
    t.same(logged.map((r) => r.code), ['INVALID_CODE', 'INVALID_CODE'], 'the scans are logged as unreadable')
    // With its AIM prefix intact, the scanner was not in Caps Lock: an unknown serial is an unknown serial.
    const real = await json('POST', '/packs/verify', paris, { dataMatrix: dm('aBc123', 'lOT-x') })
    t.match(real, { code: 'BATCH_UNKNOWN', alert: true, alertReference: REF })
  })

  let ref = ''
  t.test('an alert keeps what was scanned; ANSM reads every alert and the figures', async (t) => {
    const scanned = dm('FAKE-1')
    const r = await json('POST', '/packs/verify', lyon, { dataMatrix: scanned })
    t.match(r, { code: 'UNKNOWN_SERIAL', alert: true, alertReference: REF })
    ref = r.alertReference
    const a = await json('GET', `/alerts/${ref}`, ansm)
    t.match(a, { reference: ref, scanned, occurrences: 1, status: 'new', pharmacy: pharmacyPseudonym(SECRET, ORG.pharmacyLyon) })
    t.equal((await json('GET', '/alerts', ansm)).items.length, 2, 'ANSM lists every lab’s alerts')
    t.equal((await json('GET', '/alerts/figures', ansm)).labs[0].alerts, 2)
    t.equal((await req('GET', `/alerts/${ref}`, otherLab)).statusCode, 404)
  })

  t.test('the investigating lab reads the pack’s history, pseudonymised', async (t) => {
    await json('POST', '/packs/state', paris, { action: 'supply', dataMatrix: dm('S1') })
    const s = await json('POST', '/packs/state', lyon, { action: 'supply', dataMatrix: dm('S1') })
    t.match(s, { code: 'ALREADY_INACTIVE', alert: true, alertReference: REF })
    const h = await json('GET', `/alerts/${s.alertReference}/pack-history`, lab)
    t.match(h, { reference: s.alertReference, product: BIOGARAN, serial: 'S1', pack: { batch: 'Lot-X', state: 'supplied' } })
    t.same(h.scans.map((x: { action: string; code: string }) => [x.action, x.code]), [['supply', 'STATE_CHANGED'], ['supply', 'ALREADY_INACTIVE']])
    t.same(h.changes.map((x: { from: string; to: string; organisation: string }) => [x.from, x.to, x.organisation]), [['active', 'supplied', pharmacyPseudonym(SECRET, ORG.pharmacyParis)]])
    const dump = JSON.stringify(h)
    t.notOk(dump.includes(ORG.pharmacyParis) || dump.includes(ORG.pharmacyLyon) || dump.includes('alice') || dump.includes('carla'), 'no FINESS, no user')
    t.equal((await req('GET', `/alerts/${s.alertReference}/pack-history`, otherLab)).statusCode, 404, 'another lab')
    t.equal((await req('GET', `/alerts/${s.alertReference}/pack-history`, lyon)).statusCode, 403, 'not the pharmacy')
    t.equal((await req('GET', `/alerts/${s.alertReference}/pack-history`, ansm)).statusCode, 200)
  })

  t.test('falsification suspected: escalated to ANSM, which decides', async (t) => {
    t.equal((await req('PUT', `/alerts/${ref}/ansm-decision`, ansm, { conclusion: 'no_falsification' })).statusCode, 409, 'not escalated yet')
    await json('PUT', `/alerts/${ref}/status`, lab, { status: 'under_investigation' })
    const esc = await json('PUT', `/alerts/${ref}/status`, lab, { status: 'closed', conclusion: 'falsification_suspected', note: 'Étui différent de l’original.' })
    t.match(esc, { status: 'escalated', conclusion: 'falsification_suspected', closedAt: null })
    t.ok(esc.escalatedAt)
    const toAnsm = (await feed(ansm)).filter((e) => e.type === 'serialization.alert.escalated')
    t.equal(toAnsm.length, 1, 'an event on ANSM’s feed')
    t.match(toAnsm[0]!.payload, { reference: ref, lab: ORG.labBiogaran, code: 'UNKNOWN_SERIAL', note: 'Étui différent de l’original.' })
    t.notOk(JSON.stringify(toAnsm).includes(ORG.pharmacyLyon), 'with the pseudonym only')
    for (const [who, h] of [['the lab', lab], ['the pharmacy', lyon], ['the operator', ordre]] as const) {
      t.notOk((await feed(h)).some((e) => e.type === 'serialization.alert.escalated'), `${who} does not get the escalation`)
    }
    t.equal((await json('GET', '/alerts?status=escalated', ansm)).items.length, 1, 'ANSM finds what waits for it')
    t.equal((await req('PUT', `/alerts/${ref}/status`, lab, { status: 'closed', conclusion: 'other' })).statusCode, 409, 'the lab no longer closes it')
    t.equal((await req('PUT', `/alerts/${ref}/ansm-decision`, lab, { conclusion: 'no_falsification' })).statusCode, 403, 'only ANSM decides')

    const m = await req('POST', `/alerts/${ref}/messages`, ansm, { text: 'Merci d’envoyer la boîte au laboratoire de contrôle.' })
    t.equal(m.statusCode, 201, m.body)
    t.ok((await feed(lab)).some((e) => e.type === 'serialization.alert.question' && e.payload.from === 'ansm'), 'ANSM writes to the lab')

    const closed = await json('PUT', `/alerts/${ref}/ansm-decision`, ansm, { conclusion: 'falsification_confirmed', note: 'Contrefaçon confirmée.' })
    t.match(closed, { status: 'closed', conclusion: 'falsification_suspected', ansmConclusion: 'falsification_confirmed', ansmNote: 'Contrefaçon confirmée.' })
    t.ok(closed.closedAt)
    t.ok((await feed(lyon)).some((e) => e.type === 'serialization.alert.status' && e.payload.reference === ref && e.payload.ansmConclusion === 'falsification_confirmed'), 'the pharmacy learns the outcome')
    t.ok((await feed(lab)).some((e) => e.type === 'serialization.alert.status' && e.payload.reference === ref && e.payload.ansmConclusion === 'falsification_confirmed'), 'and the lab')
    t.equal((await req('PUT', `/alerts/${ref}/ansm-decision`, ansm, { conclusion: 'other' })).statusCode, 409, 'closed is final')
  })

  t.test('no FINESS and no user identifier in any serialization table', async (t) => {
    const tables = ['packs', 'pack_transactions', 'serial_batches', 'serial_products', 'serial_scans', 'serial_alerts', 'serial_alert_messages']
    const scanners = await db.selectFrom('organisations').select('id').where('role', 'in', ['pharmacy', 'hospital', 'wholesaler']).execute()
    for (const table of tables) {
      const rows = (await sql`select * from ${sql.table(table)}`.execute(db)).rows
      t.ok(rows.length > 0 || table === 'serial_products', `${table} has rows`)
      const dump = JSON.stringify(rows)
      const found = scanners.filter((o) => dump.includes(o.id)).map((o) => o.id)
      t.same(found, [], `${table}: no FINESS`)
      for (const user of ['alice', 'carla', 'qualite', 'inspectrice']) t.notOk(dump.includes(user), `${table}: no user ${user}`)
    }
  })
})

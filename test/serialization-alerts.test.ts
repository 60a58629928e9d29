import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { loadConfig } from '../src/platform/config.ts'
import { sequence } from '../src/platform/events/sequencer.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { pharmacyPseudonym, userPseudonym } from '../src/serialization/rules/pseudonyms.ts'
import { ORG, sql, testApp } from './helpers.ts'

const GS = '\x1d'
const BIOGARAN = '3400949497294' // lab 412345670
const EXPIRY = '2030-12-31'
const dm = (serial: string, batch = 'LOT-A', exp = '301231', product = BIOGARAN) => `]d2010${product}21${serial}${GS}10${batch}${GS}17${exp}`
const SECRET = 'test-scan-pseudonym-secret-0123456789-abcdef'
const REF = /^ALR-\d{4}-\d{6}$/

t.test('scan pseudonym configuration', async (t) => {
  const prod = { NODE_ENV: 'production', JWT_JWKS_URL: 'https://idp.example/jwks', JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'portail-dp', RECEIPT_SIGNING_KEY: '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----' }
  t.throws(() => loadConfig(prod), /SCAN_PSEUDONYM_SECRET/, 'required in production')
  t.equal(loadConfig({ ...prod, SCAN_PSEUDONYM_SECRET: SECRET }).SCAN_PSEUDONYM_SECRET, SECRET)
  t.throws(() => loadConfig({ SCAN_PSEUDONYM_SECRET: 'short' }), /SCAN_PSEUDONYM_SECRET/, 'at least 32 characters')
  t.ok(loadConfig({}).SCAN_PSEUDONYM_SECRET.length >= 32, 'a fixed development value otherwise')
})

t.test('serialization alerts and pseudonymised scan log', async (t) => {
  const { app, auth, database } = await testApp(t, { env: { SCAN_PSEUDONYM_SECRET: SECRET } })
  const db = database.db
  await importBdpmDirectory(db, DEMO_BDPM_DIR, SYSTEM)
  const lab = auth('lab', ORG.labBiogaran, 'qualite')
  const otherLab = auth('lab', ORG.labArrow)
  const paris = auth('pharmacy', ORG.pharmacyParis, 'alice')
  const parisBob = auth('pharmacy', ORG.pharmacyParis, 'bob')
  const lyon = auth('pharmacy', ORG.pharmacyLyon, 'carla')
  const ordre = auth('ordre', ORG.ordre, 'inspecteur')
  const req = (method: 'GET' | 'POST' | 'PUT', url: string, headers: Record<string, string>, payload?: unknown) =>
    app.inject({ method, url: `/v1/serialization${url}`, headers, ...(payload !== undefined ? { payload: payload as object } : {}) })
  const verify = async (serial: string, headers = paris, batch = 'LOT-A', exp = '301231') => (await req('POST', '/packs/verify', headers, { dataMatrix: dm(serial, batch, exp) })).json()
  const change = async (action: string, serial: string, headers = paris, extra: object = {}) => (await req('POST', '/packs/state', headers, { action, dataMatrix: dm(serial), ...extra })).json()
  const feed = async (headers: Record<string, string>) => {
    await sequence(db)
    return (await app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=500', headers })).json().items as Array<{ type: string; sender: string | null; subject: { id: string } | null; payload: any }>
  }
  const pParis = pharmacyPseudonym(SECRET, ORG.pharmacyParis)
  const pLyon = pharmacyPseudonym(SECRET, ORG.pharmacyLyon)

  t.equal((await req('POST', '/packs', lab, { product: BIOGARAN, batch: 'LOT-A', expiry: EXPIRY, serials: ['S1', 'S2', 'S3', 'S4', 'S5', 'S6'] })).statusCode, 200)
  t.equal((await req('POST', '/packs', lab, { product: BIOGARAN, batch: 'LOT-R', expiry: EXPIRY, serials: ['R1'] })).statusCode, 200)

  let unknownRef = ''
  let mismatchRef = ''
  let undoRef = ''

  t.test('alerts are raised exactly for the codes flagged alert', async (t) => {
    const ok = await verify('S1')
    t.equal(ok.code, 'PACK_ACTIVE')
    t.notOk('alertReference' in ok)

    const unknown = await verify('NOPE1')
    t.match(unknown, { code: 'UNKNOWN_SERIAL', alert: true, alertReference: REF })
    unknownRef = unknown.alertReference

    const mismatch = await change('supply', 'S2', paris, { dataMatrix: dm('S2', 'LOT-R') })
    t.match(mismatch, { code: 'BATCH_MISMATCH', alert: true, alertReference: REF })
    mismatchRef = mismatch.alertReference
    t.not(mismatchRef, unknownRef, 'unique references')

    const expiry = await verify('S3', lyon, 'LOT-A', '301130')
    t.match(expiry, { code: 'EXPIRY_MISMATCH', alert: true, alertReference: REF })

    const supplied = await change('supply', 'S4')
    t.equal(supplied.code, 'STATE_CHANGED')
    t.notOk(supplied.alertReference)
    const otherUser = await change('undo', 'S4', parisBob, { transactionId: supplied.transactionId })
    t.match(otherUser, { code: 'UNDO_OTHER_USER', alert: true, alertReference: REF })
    undoRef = otherUser.alertReference

    // Not alerts: the organisation that supplied it repeating its change (another of its users: its own retry),
    // status already set, unreadable code, recalled batch. (Decommission attempts by ANOTHER organisation: see
    // serialization-elsewhere.test.ts.)
    const again = await change('supply', 'S4', parisBob)
    t.match(again, { code: 'STATUS_ALREADY_SET', alert: false, pack: { state: 'supplied' } })
    t.notOk(again.alertReference, 'STATUS_ALREADY_SET, same organisation: no alert')
    t.notOk((await change('undo', 'S5', paris, { transactionId: supplied.transactionId })).alertReference, 'STATUS_ALREADY_SET: no alert')
    const invalid = (await req('POST', '/packs/verify', paris, { dataMatrix: 'garbage' })).json()
    t.equal(invalid.code, 'INVALID_CODE')
    await req('PUT', `/products/${BIOGARAN}/batches/LOT-R/status`, lab, { status: 'recalled' })
    const recalled = (await req('POST', '/packs/verify', paris, { dataMatrix: dm('R1', 'LOT-R') })).json()
    t.equal(recalled.code, 'BATCH_RECALLED')
    t.notOk(recalled.alertReference)

    const bulk = (await req('POST', '/packs/verify-bulk', paris, { packs: [{ dataMatrix: dm('S6') }, { dataMatrix: dm('NOPE2') }] })).json()
    t.equal(bulk.summary.alerts, 1)
    t.notOk(bulk.results[0].alertReference)
    t.match(bulk.results[1].alertReference, REF)

    const alerts = await db.selectFrom('serial_alerts').selectAll().orderBy('seq').execute()
    t.same(alerts.map((a) => a.code), ['UNKNOWN_SERIAL', 'BATCH_MISMATCH', 'EXPIRY_MISMATCH', 'UNDO_OTHER_USER', 'UNKNOWN_SERIAL'])
    t.match(alerts[0], { cip13: BIOGARAN, lab_id: ORG.labBiogaran, serial: 'NOPE1', batch: 'LOT-A', expiry: EXPIRY, pharmacy_pseudonym: pParis, user_pseudonym: userPseudonym(SECRET, ORG.pharmacyParis, 'alice'), status: 'new', action: 'verify', scanned: dm('NOPE1'), occurrences: 1 })
    t.match(alerts[3], { pharmacy_pseudonym: pParis, user_pseudonym: userPseudonym(SECRET, ORG.pharmacyParis, 'bob'), action: 'undo' })
    const audited = await db.selectFrom('audit_log').select(['object_id']).where('action', '=', 'serialization.alert.raised').execute()
    t.equal(audited.length, 5, 'each alert audited')
  })

  t.test('the alert reaches only the owning lab, without the FINESS', async (t) => {
    const labFeed = (await feed(lab)).filter((e) => e.type === 'serialization.alert')
    t.equal(labFeed.length, 5)
    const first = labFeed.find((e) => e.subject?.id === unknownRef)!
    t.match(first.payload, { reference: unknownRef, product: BIOGARAN, serial: 'NOPE1', code: 'UNKNOWN_SERIAL', pharmacy: pParis })
    t.equal(first.sender, null, 'no sender: it would be the pharmacy')
    for (const e of labFeed) {
      const s = JSON.stringify(e)
      t.notOk(s.includes(ORG.pharmacyParis) || s.includes(ORG.pharmacyLyon), 'no FINESS in the lab’s event')
      t.notOk(s.includes('alice') || s.includes('bob'), 'no user')
    }
    t.same((await feed(otherLab)).filter((e) => e.type.startsWith('serialization.alert')), [], 'another lab gets nothing')
    t.same((await feed(paris)).filter((e) => e.type === 'serialization.alert'), [], 'the pharmacy is not sent its own alert')
  })

  t.test('who sees which alerts', async (t) => {
    const labList = (await req('GET', '/alerts', lab)).json()
    t.equal(labList.items.length, 5)
    t.equal(labList.items[0].reference > labList.items[4].reference, true, 'newest first')
    t.notOk(JSON.stringify(labList).includes(ORG.pharmacyParis), 'the lab sees pseudonyms only')
    t.same((await req('GET', '/alerts', otherLab)).json().items, [])
    t.equal((await req('GET', `/alerts/${unknownRef}`, otherLab)).statusCode, 404, 'another lab: 404')
    const parisList = (await req('GET', '/alerts', paris)).json()
    t.equal(parisList.items.length, 4, 'the pharmacy sees its own')
    t.ok(parisList.items.every((a: { pharmacy: string }) => a.pharmacy === pParis))
    t.equal((await req('GET', '/alerts', lyon)).json().items.length, 1)
    t.equal((await req('GET', `/alerts/${unknownRef}`, lyon)).statusCode, 404, 'another pharmacy: 404')
    t.equal((await req('GET', '/alerts', ordre)).json().items.length, 5, 'the operator sees all')
    t.equal((await req('GET', `/alerts?pharmacy=${pLyon}`, ordre)).json().items.length, 1)
    const page1 = (await req('GET', '/alerts?limit=2', lab)).json()
    const page2 = (await req('GET', `/alerts?limit=2&cursor=${page1.nextCursor}`, lab)).json()
    const page3 = (await req('GET', `/alerts?limit=2&cursor=${page2.nextCursor}`, lab)).json()
    t.equal(page3.nextCursor, null)
    t.equal(new Set([...page1.items, ...page2.items, ...page3.items].map((a: { reference: string }) => a.reference)).size, 5, 'keyset pages')
    t.equal((await req('GET', '/alerts', auth('ansm', ORG.ansm))).json().items.length, 5, 'ANSM sees all')
  })

  t.test('the lab investigates and closes; question and answer', async (t) => {
    t.equal((await req('PUT', `/alerts/${unknownRef}/status`, lab, { status: 'closed', conclusion: 'other' })).statusCode, 409, 'not new → closed')
    t.equal((await req('PUT', `/alerts/${unknownRef}/status`, otherLab, { status: 'under_investigation' })).statusCode, 404)
    t.equal((await req('PUT', `/alerts/${unknownRef}/status`, paris, { status: 'under_investigation' })).statusCode, 403)
    const inv = await req('PUT', `/alerts/${unknownRef}/status`, lab, { status: 'under_investigation' })
    t.equal(inv.statusCode, 200, inv.body)
    t.equal(inv.json().status, 'under_investigation')

    const q = await req('POST', `/alerts/${unknownRef}/messages`, lab, { text: 'Photo du DataMatrix ?' })
    t.equal(q.statusCode, 201, q.body)
    const question = (await feed(paris)).find((e) => e.type === 'serialization.alert.question')
    t.match(question?.payload, { reference: unknownRef, question: 'Photo du DataMatrix ?' })
    t.notOk((await feed(lyon)).some((e) => e.type === 'serialization.alert.question'), 'only that pharmacy')
    t.equal((await req('POST', `/alerts/${unknownRef}/messages`, lyon, { text: 'x' })).statusCode, 404)
    const a = await req('POST', `/alerts/${unknownRef}/messages`, paris, { text: 'Envoyée par courriel.' })
    t.equal(a.statusCode, 201)
    t.same(a.json().messages.map((m: { author: string }) => m.author), ['lab', 'pharmacy'])
    const answer = (await feed(lab)).find((e) => e.type === 'serialization.alert.answer')!
    t.match(answer.payload, { reference: unknownRef, answer: 'Envoyée par courriel.', pharmacy: pParis })
    t.equal(answer.sender, null)
    t.notOk(JSON.stringify(answer).includes(ORG.pharmacyParis))

    t.equal((await req('PUT', `/alerts/${unknownRef}/status`, lab, { status: 'closed' })).statusCode, 409, 'closing needs a conclusion')
    t.equal((await req('PUT', `/alerts/${unknownRef}/status`, lab, { status: 'closed', conclusion: 'maybe' })).statusCode, 400)
    const closed = await req('PUT', `/alerts/${unknownRef}/status`, lab, { status: 'closed', conclusion: 'scanning_error', note: 'Erreur de saisie.' })
    t.equal(closed.statusCode, 200)
    t.match(closed.json(), { status: 'closed', conclusion: 'scanning_error', conclusionNote: 'Erreur de saisie.' })
    t.ok(closed.json().closedAt)
    t.equal((await req('PUT', `/alerts/${unknownRef}/status`, lab, { status: 'under_investigation' })).statusCode, 409, 'closed is final')
    t.equal((await req('POST', `/alerts/${unknownRef}/messages`, lab, { text: 'encore ?' })).statusCode, 409)
    t.ok((await feed(paris)).some((e) => e.type === 'serialization.alert.status' && e.payload.status === 'closed'), 'the pharmacy learns the outcome')
    const trail = await db.selectFrom('audit_log').select(['action']).where('object_type', '=', 'serial_alert').where('object_id', '=', unknownRef).orderBy('seq').execute()
    t.same(trail.map((x) => x.action), ['serialization.alert.raised', 'serialization.alert.status', 'serialization.alert.question', 'serialization.alert.answer', 'serialization.alert.status'])
  })

  t.test('figures per lab and alert rate per product', async (t) => {
    const res = await req('GET', '/alerts/figures', lab)
    t.equal(res.statusCode, 200, res.body)
    const f = res.json()
    t.match(f.labs, [{ lab: ORG.labBiogaran, alerts: 5, byStatus: { new: 4, closed: 1 }, byConclusion: { scanning_error: 1 }, byCode: { UNKNOWN_SERIAL: 2 } }])
    const p = f.products.find((x: { product: string }) => x.product === BIOGARAN)
    const scans = Number((await db.selectFrom('serial_scans').select((eb) => eb.fn.countAll().as('n')).where('cip13', '=', BIOGARAN).executeTakeFirstOrThrow()).n)
    t.match(p, { alerts: 5, scans })
    t.equal(p.rate, Math.round((5 / scans) * 1e6) / 1e6)
    t.same((await req('GET', '/alerts/figures', otherLab)).json().labs, [])
    t.equal((await req('GET', '/alerts/figures', ordre)).json().labs.length, 1)
    t.equal((await req('GET', '/alerts/figures', paris)).statusCode, 403)
  })

  t.test('the scan log: pseudonymous, keyed by cip13', async (t) => {
    const rows = await db.selectFrom('serial_scans').selectAll().execute()
    // verify S1, NOPE1, supply S2, verify S3 (lyon), supply S4, undo S4 (bob), supply S4 (bob), undo S5, verify R1, bulk ×2; not INVALID_CODE
    t.equal(rows.length, 11)
    const dump = JSON.stringify((await sql`select * from serial_scans`.execute(db)).rows)
    for (const finess of [ORG.pharmacyParis, ORG.pharmacyLyon]) t.notOk(dump.includes(finess), `FINESS ${finess} appears nowhere in the scan log`)
    t.notOk(dump.includes('alice') || dump.includes('bob') || dump.includes('carla'), 'nor a user')
    const byPharmacy = new Set(rows.filter((r) => r.serial !== 'S3').map((r) => r.pharmacy_pseudonym))
    t.same([...byPharmacy], [pParis], 'stable: every Paris scan has the same pseudonym')
    t.equal(rows.find((r) => r.serial === 'S3')!.pharmacy_pseudonym, pLyon)
    t.not(pParis, pLyon, 'differs between pharmacies')
    t.equal(pParis.length, 22)
    t.match(pParis, /^[A-Za-z0-9_-]{22}$/)
    t.not(pharmacyPseudonym('another-secret-another-secret-another', ORG.pharmacyParis), pParis, 'keyed')
    t.ok(rows.find((r) => r.serial === 'NOPE1')!.alert_reference === unknownRef)
    t.ok(rows.find((r) => r.serial === 'S4' && r.action === 'supply' && r.code === 'STATE_CHANGED')!.transaction_id)
    t.ok(mismatchRef && undoRef)
  })

  t.test('only the operator resolves a pseudonym, audited', async (t) => {
    t.equal((await req('POST', `/pseudonyms/${pParis}/resolve`, lab, { reason: unknownRef })).statusCode, 403)
    t.equal((await req('POST', `/pseudonyms/${pParis}/resolve`, paris, { reason: unknownRef })).statusCode, 403)
    const r = await req('POST', `/pseudonyms/${pParis}/resolve`, ordre, { reason: `enquête ${unknownRef}` })
    t.equal(r.statusCode, 200, r.body)
    t.match(r.json(), { pseudonym: pParis, org: ORG.pharmacyParis, role: 'pharmacy' })
    const unknown = await req('POST', `/pseudonyms/${'A'.repeat(22)}/resolve`, ordre, { reason: 'test' })
    t.equal(unknown.statusCode, 404)
    const trail = await db.selectFrom('audit_log').select(['object_id', 'actor_org', 'changes']).where('action', '=', 'serialization.pseudonym.resolved').orderBy('seq').execute()
    t.equal(trail.length, 2, 'every attempt audited')
    t.match(trail[0], { object_id: pParis, actor_org: ORG.ordre, changes: { found: true, org: ORG.pharmacyParis, reason: `enquête ${unknownRef}` } })
    t.match(trail[1], { changes: { found: false, org: null } })
  })
})

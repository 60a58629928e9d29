// The defects reported on the e-prescription flow, each reproduced as its user met it.
import fhirModule from 'fhir'
import { PDFParse } from 'pdf-parse'
import t from 'tap'
import { withCheck } from '../src/eprescription/ids.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp } from './helpers.ts'

const { Fhir } = fhirModule as unknown as { Fhir: new () => { validate(r: unknown): { valid: boolean; messages: Array<{ severity: string; message: string }> } } }

const ROSUVASTATINE_30 = '3400949497294'
const PARACETAMOL_8 = '3400927612343'
const AMOXICILLINE_12 = '3400936128149'
const AMOX_CLAV_8 = '3400938801460'
const DAY = 86_400_000

t.test('e-prescription defects', async (t) => {
  const { app, auth, clock } = await testApp(t)
  await importBdpmDirectory(app.db, DEMO_BDPM_DIR, SYSTEM)
  const prescriber = auth('prescriber', ORG.prescriber)
  const pharmacy = (org: string = ORG.pharmacyParis) => auth('pharmacy', org)
  const issue = async (lines: object[], patient: object = { familyName: 'DUPONT', givenName: 'Marie', birthDate: '1984-05-17' }) => {
    const res = await app.inject({ method: 'POST', url: '/v1/eprescriptions', headers: prescriber, payload: { patient, lines } })
    if (res.statusCode !== 201) throw new Error(`issue: ${res.body}`)
    return res.json() as { id: string; accessCode: string; qrPayload: string }
  }
  const take = async (p: { qrPayload: string }, org: string = ORG.pharmacyParis) => {
    const res = await app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: pharmacy(org), payload: { qr: p.qrPayload } })
    if (res.statusCode !== 200) throw new Error(`take: ${res.body}`)
    return (res.json() as { secret: string }).secret
  }
  const headers = (secret: string, org: string = ORG.pharmacyParis) => ({ ...pharmacy(org), 'x-eprescription-secret': secret })
  const record = (id: string, secret: string, line: number, payload: object, org: string = ORG.pharmacyParis) =>
    app.inject({ method: 'PUT', url: `/v1/eprescriptions/${id}/dispensation/lines/${line}`, headers: headers(secret, org), payload })
  const close = (id: string, secret: string, org: string = ORG.pharmacyParis) => app.inject({ method: 'POST', url: `/v1/eprescriptions/${id}/close`, headers: headers(secret, org) })
  const ROSU_LINE = { cip13: ROSUVASTATINE_30, dosage: '1 comprimé le soir', quantity: 1, durationDays: 30 }
  const AMOX_NS = { substance: 'amoxicilline', strength: '500 mg', form: 'gélule', dosage: '3 par jour', quantity: 1, durationDays: 7, nonSubstitutable: true }

  t.test('any product counted as a substitute: paracetamol on a rosuvastatin line', async (t) => {
    const p = await issue([ROSU_LINE])
    const s = await take(p)
    const res = await record(p.id, s, 1, { outcome: 'delivered', cip13: PARACETAMOL_8, quantity: 1 })
    t.equal(res.statusCode, 400, res.body)
    t.equal(res.json().code, 'EPRESCRIPTION_NOT_A_SUBSTITUTE')
    t.match(res.json().detail, /ligne 1/)
  })

  t.test('a non-substitutable substance line accepts paracetamol or amoxicillin/clavulanic acid', async (t) => {
    const p = await issue([AMOX_NS])
    const s = await take(p)
    for (const cip13 of [PARACETAMOL_8, AMOX_CLAV_8]) {
      const res = await record(p.id, s, 1, { outcome: 'delivered', cip13, quantity: 1 })
      t.equal(res.statusCode, 400, `${cip13}: ${res.body}`)
      t.equal(res.json().code, 'EPRESCRIPTION_NOT_A_SUBSTITUTE', cip13)
    }
  })

  t.test("the client's substitution claim is stored as given", async (t) => {
    const p = await issue([ROSU_LINE])
    const s = await take(p)
    const res = await record(p.id, s, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1, substituted: true })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.json().lines[0].substituted, false, 'the service decides')
  })

  t.test('99 boxes on a 1-box line', async (t) => {
    const p = await issue([ROSU_LINE])
    const s = await take(p)
    const res = await record(p.id, s, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 99 })
    t.equal(res.statusCode, 400, res.body)
    t.equal(res.json().code, 'EPRESCRIPTION_QUANTITY_EXCEEDED')
  })

  t.test('all renewals dispensed the same day', async (t) => {
    const p = await issue([{ ...ROSU_LINE, renewals: 2 }])
    const first = await take(p)
    t.equal((await record(p.id, first, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 })).statusCode, 200)
    t.equal((await close(p.id, first)).statusCode, 200)
    clock.advance(60_000)
    const res = await app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: pharmacy(), payload: { qr: p.qrPayload } })
    t.equal(res.statusCode, 409, res.body)
    t.equal(res.json().code, 'EPRESCRIPTION_RENEWAL_TOO_EARLY')
    t.ok(res.json().notBefore, 'the answer says from when')
  })

  t.test('a pharmacy that released the prescription still reads it with its voided secret', async (t) => {
    const p = await issue([ROSU_LINE], { familyName: 'MARTIN', givenName: 'Paul', birthDate: '1950-01-02' })
    const voided = await take(p, ORG.pharmacyParis)
    t.equal((await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/release`, headers: headers(voided) })).statusCode, 200)
    const lyon = await take(p, ORG.pharmacyLyon)
    await record(p.id, lyon, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1, batch: 'LYONBATCH' }, ORG.pharmacyLyon)
    await close(p.id, lyon, ORG.pharmacyLyon)
    const again = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/release`, headers: headers(voided) })
    t.equal(again.statusCode, 403, again.body)
    t.notMatch(again.body, /MARTIN|1950|LYONBATCH/, 'nothing of the prescription')
  })

  t.test('five wrong codes from anyone lock the rightful holder out', async (t) => {
    const p = await issue([ROSU_LINE])
    for (let i = 0; i < 6; i++) {
      await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/patient/pdf`, headers: { 'x-access-code': withCheck('ZZZZZZZZZZZZZZZZZZZ') }, remoteAddress: '203.0.113.66' })
    }
    const res = await app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: pharmacy(), payload: { qr: p.qrPayload } })
    t.equal(res.statusCode, 200, res.body)
    const patient = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/patient/pdf`, headers: { 'x-access-code': p.accessCode }, remoteAddress: '198.51.100.20' })
    t.equal(patient.statusCode, 200)
  })

  t.test('names outside Latin-1 garbled; a cancelled PDF looks valid', async (t) => {
    const name = { familyName: 'WĄSOWSKI-NGUYỄN', givenName: 'Łukasz Œdipe', birthDate: '1990-02-03' }
    const p = await issue([ROSU_LINE], name)
    const pdf = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/patient/pdf`, headers: { 'x-access-code': p.accessCode } })
    const text = (await new PDFParse({ data: new Uint8Array(pdf.rawPayload) }).getText()).text
    t.match(text, 'Łukasz Œdipe WĄSOWSKI-NGUYỄN')
    await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/cancel`, headers: prescriber, payload: { reason: 'Erreur de dosage' } })
    const cancelled = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/patient/pdf`, headers: { 'x-access-code': p.accessCode } })
    const ctext = (await new PDFParse({ data: new Uint8Array(cancelled.rawPayload) }).getText()).text
    t.match(ctext, /ANNULÉE/)
    t.match(ctext, /Erreur de dosage/)
    t.notOk(cancelled.rawPayload.includes('/Subtype /Image'), 'no QR code')
  })

  t.test('retention purges the dispensations of a prescription cancelled after a dispensation', async (t) => {
    const p = await issue([{ ...ROSU_LINE, renewals: 1 }])
    const s = await take(p)
    await record(p.id, s, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 })
    t.equal((await close(p.id, s)).statusCode, 200)
    t.equal((await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/cancel`, headers: prescriber, payload: {} })).statusCode, 200)
    clock.advance(8 * DAY)
    await app.jobs.runDue()
    const kept = await app.db.selectFrom('eprescription_dispensations').select(['id', 'receipt']).where('prescription_id', '=', p.id).execute()
    t.equal(kept.length, 1, 'the dispensation is kept')
    t.ok(kept[0]?.receipt, 'with its receipt')
  })

  t.test('a non-substitutable line fails FHIR validation', async (t) => {
    const p = await issue([{ ...ROSU_LINE, nonSubstitutable: true }])
    const res = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/fhir`, headers: prescriber })
    const result = new Fhir().validate(res.json())
    t.same(result.messages.filter((m) => m.severity === 'error'), [])
  })

  t.test('access codes and secrets stored in clear', async (t) => {
    const p = await issue([ROSU_LINE])
    const s = await take(p)
    const rows = JSON.stringify([
      await app.db.selectFrom('eprescriptions').selectAll().where('id', '=', p.id).execute(),
      await app.db.selectFrom('eprescription_dispensations').selectAll().where('prescription_id', '=', p.id).execute(),
    ])
    t.notOk(rows.includes(p.accessCode.replaceAll('-', '')), 'no access code in clear')
    t.notOk(rows.includes(s), 'no secret in clear')
  })

  t.test('no list of a prescriber’s prescriptions', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/eprescriptions', headers: prescriber })
    t.equal(res.statusCode, 200, res.body)
  })

  t.test('close with a JSON content type and no body', async (t) => {
    const p = await issue([ROSU_LINE])
    const s = await take(p)
    await record(p.id, s, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 })
    const res = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/close`, headers: { ...headers(s), 'content-type': 'application/json' } })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json().claims, { prescriptionDigest: /^sha-256:/ }, 'the receipt binds the prescription as issued')
  })
})

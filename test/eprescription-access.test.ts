// Who may open a prescription, and what a reader leaves behind: throttling per caller, the operator's alert,
// hashed codes and secrets (existing rows migrated), live holdings, the prescriber's list, the access log,
// the receipt's binding of the prescription as issued, and the patient's PDF.
import { randomBytes, randomUUID } from 'node:crypto'
import { createHash } from 'node:crypto'
import { sql } from 'kysely'
import { PDFParse } from 'pdf-parse'
import t from 'tap'
import { buildApp } from '../src/app.ts'
import { seedDemoOrganisations } from '../src/demo/seed.ts'
import { newAccessCode, newPrescriptionId, qrPayload, withCheck } from '../src/eprescription/ids.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { canonicalJson } from '../src/platform/canonical-json.ts'
import { migrateToLatest } from '../src/platform/db/migrate.ts'
import { signDevToken } from '../src/platform/tokens.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp, testConfig, testDatabase } from './helpers.ts'

const ROSUVASTATINE_30 = '3400949497294'
const PARACETAMOL_8 = '3400927612343'
const LINE = { cip13: ROSUVASTATINE_30, dosage: '1 comprimé le soir', quantity: 1, durationDays: 30 }
const DAY = 86_400_000
const pdfText = async (buf: Buffer) => (await new PDFParse({ data: new Uint8Array(buf) }).getText()).text

t.test('e-prescription access', async (t) => {
  const { app, auth, clock } = await testApp(t)
  await importBdpmDirectory(app.db, DEMO_BDPM_DIR, SYSTEM)
  const prescriber = auth('prescriber', ORG.prescriber)
  const prescriber2 = auth('prescriber', ORG.prescriber2)
  const ordre = auth('ordre', ORG.ordre)
  const pharmacy = (org: string = ORG.pharmacyParis) => auth('pharmacy', org)
  const issue = async (patient = { familyName: 'DUPONT', givenName: 'Marie', birthDate: '1984-05-17' }, lines: object[] = [LINE], headers = prescriber) => {
    const res = await app.inject({ method: 'POST', url: '/v1/eprescriptions', headers, payload: { patient, lines } })
    if (res.statusCode !== 201) throw new Error(res.body)
    return res.json() as { id: string; displayId: string; accessCode: string; qrPayload: string; issuedDigest: string }
  }
  const take = (p: { qrPayload: string }, org: string = ORG.pharmacyParis) => app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: pharmacy(org), payload: { qr: p.qrPayload } })
  const secretOf = async (p: { qrPayload: string }, org: string = ORG.pharmacyParis) => (await take(p, org)).json().secret as string
  const withSecret = (secret: string, org: string = ORG.pharmacyParis) => ({ ...pharmacy(org), 'x-eprescription-secret': secret })
  const pdf = (p: { id: string }, code: string, ip: string) => app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/patient/pdf`, headers: { 'x-access-code': code }, remoteAddress: ip })
  const accessLog = async (p: { id: string; accessCode: string }) =>
    (await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/patient/access-log`, headers: { 'x-access-code': p.accessCode }, remoteAddress: '198.51.100.1' })).json() as Array<{ role: string; action: string; organisation: { id: string } | null }>
  const WRONG = withCheck('ZZZZZZZZZZZZZZZZZZZ')

  t.test('lockout from another caller: a stranger’s wrong codes refuse only the stranger, and alert the operator', async (t) => {
    const p = await issue()
    // Anyone who read the printed ID tries codes from two addresses, then from a pharmacy.
    for (const ip of ['203.0.113.1', '203.0.113.2']) {
      for (let i = 0; i < 7; i++) {
        const res = await pdf(p, WRONG, ip)
        t.equal(res.statusCode, i < 5 ? 404 : 429, `${ip} attempt ${i + 1}`)
      }
    }
    const throttled = await pdf(p, p.accessCode, '203.0.113.1')
    t.equal(throttled.statusCode, 429, 'the guessing address, even with the right code')
    t.ok(Number(throttled.headers['retry-after']) > 0)
    // The rightful holders are not refused: the pharmacy with the QR code, the patient from home.
    t.equal((await take(p)).statusCode, 200, 'the pharmacy holding the QR code')
    t.equal((await pdf(p, p.accessCode, '198.51.100.7')).statusCode, 200, 'the patient')
    for (let i = 0; i < 3; i++) await app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: pharmacy(ORG.pharmacyAjaccio), payload: { id: p.id, accessCode: WRONG } })

    // The operator hears of it, once per window.
    await app.hub.runSequencer()
    const feed = (await app.inject({ method: 'GET', url: '/v1/feed?after=0', headers: ordre })).json()
    const alerts = feed.items.filter((e: { type: string }) => e.type === 'eprescription.access.alert')
    t.equal(alerts.length, 1, 'one alert')
    t.match(alerts[0].payload, { prescriptionId: p.id, displayId: p.displayId, failures: 10, callers: 2, windowMinutes: 15 })
    const history = (await app.inject({ method: 'GET', url: `/v1/audit/entries?objectType=eprescription&objectId=${p.id}`, headers: ordre })).json() as Array<{ action: string }>
    t.ok(history.some((e) => e.action === 'eprescription.access.alert'), 'in the audit trail')
    const pharmacyFeed = (await app.inject({ method: 'GET', url: '/v1/feed?after=0', headers: pharmacy() })).json()
    t.notOk(pharmacyFeed.items.some((e: { type: string }) => e.type === 'eprescription.access.alert'), 'only the operator')
    clock.advance(15 * 60_000 + 1000)
    t.equal((await pdf(p, p.accessCode, '203.0.113.1')).statusCode, 200, 'free again after the window')
  })

  t.test('codes and secrets are stored as keyed hashes; a lost code is renewed, a lost secret too', async (t) => {
    const p = await issue()
    const first = await secretOf(p)
    const row = await app.db.selectFrom('eprescriptions').selectAll().where('id', '=', p.id).executeTakeFirstOrThrow()
    t.match(row.access_code_hash, /^[A-Za-z0-9_-]{43}$/)
    t.notOk(JSON.stringify(row).includes(p.accessCode.replaceAll('-', '')))
    const again = await secretOf(p)
    t.not(again, first, 'the same pharmacy taking it again gets a new secret')
    const stale = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensation`, headers: withSecret(first) })
    t.equal(stale.statusCode, 403)
    t.notMatch(stale.body, /DUPONT|1984/)
    t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensation`, headers: withSecret(again) })).statusCode, 200)
  })

  t.test('a closed or released holding reads nothing', async (t) => {
    const p = await issue({ familyName: 'LEROY', givenName: 'Anne', birthDate: '1961-06-06' }, [{ ...LINE, renewals: 1 }])
    const s = await secretOf(p)
    await app.inject({ method: 'PUT', url: `/v1/eprescriptions/${p.id}/dispensation/lines/1`, headers: withSecret(s), payload: { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1, batch: 'PARISLOT' } })
    const receipt = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/close`, headers: withSecret(s) })
    t.equal(receipt.statusCode, 200)
    for (const [method, url] of [['GET', `/v1/eprescriptions/${p.id}/dispensation`], ['GET', `/v1/eprescriptions/${p.id}/fhir`]] as const) {
      const res = await app.inject({ method, url, headers: withSecret(s) })
      t.equal(res.statusCode, 403, url)
      t.match(res.json(), { code: 'EPRESCRIPTION_SECRET_INVALID', detail: /clôturée/ })
      t.notMatch(res.body, /LEROY|1961|PARISLOT/)
    }
    t.equal((await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/close`, headers: withSecret(s) })).json().jws, receipt.json().jws, 'a retried close still gets its receipt')

    // The receipt binds the prescription as issued: the digest in the view, recomputable from it.
    const view = (await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}`, headers: prescriber })).json()
    t.equal(receipt.json().claims.prescriptionDigest, view.issuedDigest)
    t.equal(view.issuedDigest, p.issuedDigest, 'as answered at issue')
    const issued = {
      id: view.id, issuedAt: view.issuedAt, validUntil: view.validUntil, prescriber: view.prescriber.rpps, patient: view.patient,
      lines: view.lines.map((x: Record<string, unknown>) => ({ line: x.line, cip13: x.cip13, substance: x.substance, strength: x.strength, form: x.form, dosage: x.dosage, quantity: x.quantity, units: x.units, durationDays: x.durationDays, renewals: x.renewals, nonSubstitutable: x.nonSubstitutable })),
    }
    t.equal(`sha-256:${createHash('sha256').update(canonicalJson(issued)).digest('base64url')}`, view.issuedDigest, 'recomputed from what the prescriber sees')
  })

  t.test('every read and write is in the patient’s access log', async (t) => {
    const p = await issue()
    await app.inject({ method: 'GET', url: '/v1/eprescriptions', headers: prescriber })
    await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}`, headers: prescriber })
    await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/fhir`, headers: prescriber })
    const s = await secretOf(p)
    await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensation`, headers: withSecret(s) })
    await app.inject({ method: 'PUT', url: `/v1/eprescriptions/${p.id}/dispensation/lines/1`, headers: withSecret(s), payload: { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 } })
    await app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/close`, headers: withSecret(s) })
    await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}/dispensations/1/receipt`, headers: pharmacy() })
    const log = await accessLog(p)
    t.same(
      log.map((e) => `${e.role}:${e.action}`),
      ['prescriber:issued', 'prescriber:listed', 'prescriber:read', 'prescriber:fhir', 'pharmacy:accepted', 'pharmacy:read', 'pharmacy:line.recorded', 'pharmacy:dispensation.closed', 'pharmacy:receipt', 'patient:access-log'],
    )
  })

  t.test('the prescriber’s list: status, filters, a cursor, only its own', async (t) => {
    const list = (qs: string, headers = prescriber2) => app.inject({ method: 'GET', url: `/v1/eprescriptions${qs}`, headers })
    clock.advance(DAY)
    const from = clock.now.toISOString()
    const a = await issue({ familyName: 'ÉLOI', givenName: 'Jean', birthDate: '1950-01-01' }, [LINE], prescriber2)
    clock.advance(1000)
    const b = await issue({ familyName: 'ELIAS', givenName: 'Sam', birthDate: '1951-01-01' }, [{ ...LINE, renewals: 1 }], prescriber2)
    clock.advance(1000)
    const c = await issue({ familyName: 'MOREAU', givenName: 'Zoé', birthDate: '1952-01-01' }, [LINE], prescriber2)
    await app.inject({ method: 'POST', url: `/v1/eprescriptions/${c.id}/cancel`, headers: prescriber2, payload: { reason: 'doublon' } })
    const sb = await secretOf(b)
    await app.inject({ method: 'PUT', url: `/v1/eprescriptions/${b.id}/dispensation/lines/1`, headers: withSecret(sb), payload: { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 } })
    await app.inject({ method: 'POST', url: `/v1/eprescriptions/${b.id}/close`, headers: withSecret(sb) })

    const all = (await list('')).json()
    t.same(all.items.map((x: { id: string }) => x.id), [c.id, b.id, a.id], 'most recent first, only its own')
    t.match(all.items[1], { status: 'ready', lines: 1, dispensationCount: 1, patient: { familyName: 'ELIAS' }, nextDispensationFrom: /Z$/ })
    t.match(all.items[0], { status: 'cancelled', nextDispensationFrom: null, cancelledAt: /Z$/ })
    t.same((await list('?status=cancelled')).json().items.map((x: { id: string }) => x.id), [c.id])
    t.same((await list('?patient=el')).json().items.map((x: { id: string }) => x.id), [b.id, a.id], 'name prefix, accents and case ignored')
    t.same((await list('?patient=%C3%A9lo')).json().items.map((x: { id: string }) => x.id), [a.id])
    t.same((await list(`?issuedFrom=${encodeURIComponent(from)}&issuedTo=${encodeURIComponent(new Date(Date.parse(from) + 1500).toISOString())}`)).json().items.map((x: { id: string }) => x.id), [b.id, a.id])
    const page1 = (await list('?limit=2')).json()
    t.equal(page1.items.length, 2)
    const page2 = (await list(`?limit=2&cursor=${page1.nextCursor}`)).json()
    t.same([...page1.items, ...page2.items].map((x: { id: string }) => x.id), [c.id, b.id, a.id])
    t.equal(page2.nextCursor, null)
    t.match((await list(`?limit=2&status=ready&cursor=${page1.nextCursor}`)).json(), { code: 'INVALID_CURSOR' }, 'a cursor from other filters')
    t.match((await list('?status=lost')).json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'querystring.status' }] })
    clock.advance(100 * DAY)
    t.same((await list('?status=expired')).json().items.map((x: { id: string }) => x.id), [b.id, a.id], 'ready past validity reads as expired')
    t.same((await list('?status=ready')).json().items, [])
    t.notOk((await list('', prescriber)).json().items.some((x: { id: string }) => [a.id, b.id, c.id].includes(x.id)), 'another prescriber sees none')
    t.equal((await list('', pharmacy())).statusCode, 403)
  })

  t.test('the patient’s PDF: names as given, cancelled and expired ones marked across the page without QR code', async (t) => {
    const p = await issue({ familyName: 'WĄSOWSKI-NGUYỄN', givenName: 'Łukasz Œdipe', birthDate: '1990-02-03' }, [{ ...LINE, dosage: '½ comprimé — le soir' }])
    const valid = await pdf(p, p.accessCode, '198.51.100.2')
    const text = await pdfText(valid.rawPayload)
    t.match(text, 'Patient : Łukasz Œdipe WĄSOWSKI-NGUYỄN, né(e) le 03/02/1990')
    t.match(text, 'Posologie : ½ comprimé — le soir')
    t.match(text, `Code d’accès : ${p.accessCode}`)
    t.ok(valid.rawPayload.includes('/Subtype /Image'), 'the valid one has its QR code')
    t.ok(valid.rawPayload.includes('DejaVuSans'), 'the font is embedded')
    t.notMatch(text, /ANNULÉE|EXPIRÉE/)

    clock.now = new Date('2027-06-15T08:30:00.000Z')
    const c = await issue()
    await app.inject({ method: 'POST', url: `/v1/eprescriptions/${c.id}/cancel`, headers: prescriber, payload: { reason: 'Erreur de posologie' } })
    const cancelled = await pdf(c, c.accessCode, '198.51.100.2')
    const ctext = (await pdfText(cancelled.rawPayload)).replace(/\s+/g, ' ')
    t.match(ctext, /ANNULÉE/)
    t.match(ctext, 'ORDONNANCE ANNULÉE le 15/06/2027 10:30 — motif : Erreur de posologie')
    t.notMatch(ctext, /Code d’accès/, 'no access code printed')
    t.notOk(cancelled.rawPayload.includes('/Subtype /Image'), 'no QR code')

    const e = await issue(undefined, [LINE])
    clock.advance(100 * DAY)
    const expired = await pdf(e, e.accessCode, '198.51.100.2')
    const etext = await pdfText(expired.rawPayload)
    t.match(etext, /EXPIRÉE/)
    t.match(etext, /ORDONNANCE EXPIRÉE le \d\d\/\d\d\/\d{4}/)
    t.notOk(expired.rawPayload.includes('/Subtype /Image'), 'no QR code')
  })

  t.test('substitution is decided, not claimed, on the demo data too', async (t) => {
    const p = await issue()
    const s = await secretOf(p)
    const res = await app.inject({ method: 'PUT', url: `/v1/eprescriptions/${p.id}/dispensation/lines/1`, headers: { ...withSecret(s), 'accept-language': 'en' }, payload: { outcome: 'delivered', cip13: PARACETAMOL_8, quantity: 1, substituted: true } })
    t.match(res.json(), { code: 'EPRESCRIPTION_NOT_A_SUBSTITUTE', detail: 'body.cip13: line 1, CIP13 3400927612343 cannot be delivered: this product is not in the generic group of the prescribed one (group 1313).' })
  })
})

t.test('codes and secrets issued before hashing still open their prescriptions after the migration', async (t) => {
  // The state before codes were hashed.
  const database = await testDatabase(t, { upTo: '0016a_referential_generics_composition' })
  const db = database.db
  // The organisations the rows name, as the schema of that time holds them (the demo seed writes today's columns).
  for (const [id, role] of [[ORG.prescriber, 'prescriber'], [ORG.pharmacyParis, 'pharmacy']] as const) {
    await sql`insert into organisations (id, role, name) values (${id}, ${role}, ${id})`.execute(db)
  }
  const now = new Date()
  const id = newPrescriptionId()
  const code = newAccessCode()
  const held = newPrescriptionId()
  const heldCode = newAccessCode()
  const dispensationId = randomUUID()
  const secret = randomBytes(32).toString('base64url')
  for (const [pid, c, status] of [[id, code, 'ready'], [held, heldCode, 'in_progress']] as const) {
    await sql`insert into eprescriptions (id, prescriber_org, prescriber_user, status, access_code, patient_family_name, patient_given_name, patient_birth_date, issued_at, valid_until, holder_org, updated_at)
      values (${pid}, ${ORG.prescriber}, 'dr', ${status}, ${c}, 'ANCIEN', 'Paul', '1960-01-01', ${now}, ${new Date(now.getTime() + 30 * DAY)}, ${status === 'in_progress' ? ORG.pharmacyParis : null}, ${now})`.execute(db)
    await sql`insert into eprescription_lines (prescription_id, line_no, cip13, label, dosage, quantity, renewals, non_substitutable) values (${pid}, 1, ${ROSUVASTATINE_30}, 'ROSUVASTATINE', '1 le soir', 1, 0, false)`.execute(db)
  }
  await sql`insert into eprescription_dispensations (id, prescription_id, pharmacy_org, pharmacy_user, secret, status, accepted_at) values (${dispensationId}, ${held}, ${ORG.pharmacyParis}, 'ph', ${secret}, 'open', ${now})`.execute(db)

  await migrateToLatest(db)
  await seedDemoOrganisations(db)
  await importBdpmDirectory(db, DEMO_BDPM_DIR, SYSTEM)
  const stored = JSON.stringify(await db.selectFrom('eprescriptions').selectAll().execute()) + JSON.stringify(await db.selectFrom('eprescription_dispensations').selectAll().execute())
  t.notOk(stored.includes(code) || stored.includes(heldCode) || stored.includes(secret), 'nothing left in clear')

  const config = testConfig()
  const app = await buildApp({ config, database, now: () => now, background: 'manual-jobs' })
  t.teardown(async () => {
    await app.close()
    await database.close()
  })
  await app.ready()
  const pharmacy = { authorization: `Bearer ${signDevToken(config, { role: 'pharmacy', org: ORG.pharmacyParis, sub: 'ph' })}` }
  const taken = await app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: pharmacy, payload: { qr: qrPayload(id, code) } })
  t.equal(taken.statusCode, 200, 'the access code printed before the migration')
  const stillHeld = await app.inject({ method: 'GET', url: `/v1/eprescriptions/${held}/dispensation`, headers: { ...pharmacy, 'x-eprescription-secret': secret } })
  t.equal(stillHeld.statusCode, 200, 'the secret given before the migration')
  t.equal((await app.inject({ method: 'GET', url: `/v1/eprescriptions/${held}/patient/pdf`, headers: { 'x-access-code': heldCode } })).statusCode, 200)
  const closed = await app.inject({ method: 'PUT', url: `/v1/eprescriptions/${held}/dispensation/lines/1`, headers: { ...pharmacy, 'x-eprescription-secret': secret }, payload: { outcome: 'delivered', cip13: ROSUVASTATINE_30, quantity: 1 } })
  t.equal(closed.statusCode, 200)
  const receipt = await app.inject({ method: 'POST', url: `/v1/eprescriptions/${held}/close`, headers: { ...pharmacy, 'x-eprescription-secret': secret } })
  t.match(receipt.json().claims, { prescriptionDigest: /^sha-256:/ }, 'an older prescription gets its issued digest at its first close')
})

// The dispensing rules on real BDPM rows (spring 2021 extract): substitution, quantities, renewal windows.
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp } from './helpers.ts'

const EXTRACT = fileURLToPath(new URL('./fixtures/bdpm-2021-extract', import.meta.url))
const CIP = {
  crestor10x30: '3400939169460', // CRESTOR 10 mg, princeps of group 1313
  crestor10x90: '3400939169699',
  accord10x30: '3400930053812', // ROSUVASTATINE ACCORD 10 mg, generic in group 1313
  accord10x90: '3400930053843',
  biogaran10x30: '3400930054703',
  crestor5x30: '3400936985384', // CRESTOR 5 mg: group 1312
  paracetamol: '3400936485464',
  levothyrox30: '3400930065891', // LEVOTHYROX 100 µg, princeps of group 787
  levothyrox90: '3400930121429',
  levoGeneric30: '3400939337555',
  amoxAlmus12: '3400937054393', // AMOXICILLINE 500 mg gélule (group 148), three medicines
  amoxArrow30: '3400958157295',
  amoxBiogaran12: '3400933857042',
  amox1g14: '3400930082188', // AMOXICILLINE 1 g comprimé dispersible
  amoxClav8: '3400934450853', // amoxicillin + clavulanic acid
}
const DAY = 86_400_000

async function setup(t: Test, env: Record<string, string> = {}) {
  const ctx = await testApp(t, { env })
  const report = await importBdpmDirectory(ctx.app.db, EXTRACT, SYSTEM)
  t.same(report.rejected, [])
  const { app, auth } = ctx
  const prescriber = auth('prescriber', ORG.prescriber)
  const issue = async (lines: object[]) => {
    const res = await app.inject({ method: 'POST', url: '/v1/eprescriptions', headers: prescriber, payload: { patient: { familyName: 'MARTIN', givenName: 'Léa', birthDate: '1970-01-01' }, lines } })
    if (res.statusCode !== 201) throw new Error(`issue: ${res.body}`)
    return res.json() as { id: string; qrPayload: string }
  }
  const take = (p: { qrPayload: string }, org: string = ORG.pharmacyParis) => app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: auth('pharmacy', org), payload: { qr: p.qrPayload } })
  const secretOf = async (p: { qrPayload: string }, org: string = ORG.pharmacyParis) => {
    const res = await take(p, org)
    if (res.statusCode !== 200) throw new Error(`take: ${res.body}`)
    return res.json().secret as string
  }
  const headers = (secret: string, org: string = ORG.pharmacyParis) => ({ ...auth('pharmacy', org), 'x-eprescription-secret': secret })
  const record = (p: { id: string }, secret: string, line: number, payload: object) => app.inject({ method: 'PUT', url: `/v1/eprescriptions/${p.id}/dispensation/lines/${line}`, headers: headers(secret), payload })
  const close = (p: { id: string }, secret: string) => app.inject({ method: 'POST', url: `/v1/eprescriptions/${p.id}/close`, headers: headers(secret) })
  const view = async (p: { id: string }) => (await app.inject({ method: 'GET', url: `/v1/eprescriptions/${p.id}`, headers: prescriber })).json()
  return { ...ctx, prescriber, issue, take, secretOf, record, close, view }
}

t.test('substitution table', async (t) => {
  const s = await setup(t)
  const delivered = (cip13: string, quantity = 1, extra: object = {}) => ({ outcome: 'delivered', cip13, quantity, ...extra })

  /** Records one delivery on a fresh prescription of one line; answers the recorded line or the problem. */
  const attempt = async (line: object, payload: object) => {
    const p = await s.issue([line])
    const res = await s.record(p, await s.secretOf(p), 1, payload)
    return res.statusCode === 200 ? { status: 200, line: res.json().lines[0] } : { status: res.statusCode, problem: res.json() }
  }
  const crestor = { cip13: CIP.crestor10x30, dosage: '1 le soir', quantity: 1, durationDays: 30 }
  const levothyrox = { cip13: CIP.levothyrox30, dosage: '1 le matin', quantity: 1, durationDays: 30, nonSubstitutable: true }
  const amox = { substance: 'amoxicilline', strength: '500 mg', form: 'gélule', dosage: '2 gélules matin et soir', units: 24, durationDays: 6 }

  const table: Array<[string, object, object, object]> = [
    // presentation line
    ['the prescribed presentation', crestor, delivered(CIP.crestor10x30), { status: 200, line: { match: 'prescribed', substituted: false, units: 30, quantityReason: null } }],
    ['a generic of the same group', crestor, delivered(CIP.accord10x30, 1, { substituted: false }), { status: 200, line: { match: 'generic-group', substituted: true, units: 30 } }],
    ['another generic of the same group', crestor, delivered(CIP.biogaran10x30), { status: 200, line: { match: 'generic-group', substituted: true } }],
    ['another group (another strength)', crestor, delivered(CIP.crestor5x30), { status: 400, problem: { code: 'EPRESCRIPTION_NOT_A_SUBSTITUTE', line: 1, why: 'other-generic-group', detail: /ligne 1.*groupe 1313/ } }],
    ['an unrelated product', crestor, delivered(CIP.paracetamol), { status: 400, problem: { code: 'EPRESCRIPTION_NOT_A_SUBSTITUTE', why: 'other-generic-group' } }],
    // quantities
    ['a bigger box of the same medicine', crestor, delivered(CIP.crestor10x90), { status: 400, problem: { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED', allowed: 30, delivered: 90, unit: 'units', errors: [{ field: 'body.quantity' }] } }],
    ['… with the pack-size reason', crestor, delivered(CIP.crestor10x90, 1, { quantityReason: 'pack-size' }), { status: 200, line: { match: 'pack-size', substituted: false, units: 90, quantityReason: 'pack-size' } }],
    ['a bigger box of a generic, with the reason', crestor, delivered(CIP.accord10x90, 1, { quantityReason: 'pack-size' }), { status: 200, line: { match: 'generic-group', substituted: true, quantityReason: 'pack-size' } }],
    ['two boxes for one, pack size cannot justify it', crestor, delivered(CIP.accord10x30, 2, { quantityReason: 'pack-size' }), { status: 400, problem: { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED', maxBoxes: 1, detail: /au plus 1 boîte/ } }],
    ['two boxes for one, a unit conversion', crestor, delivered(CIP.accord10x30, 2, { quantityReason: 'unit-conversion' }), { status: 200, line: { units: 60, quantityReason: 'unit-conversion' } }],
    ['99 boxes for one', crestor, delivered(CIP.crestor10x30, 99), { status: 400, problem: { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED', allowed: 30, delivered: 2970 } }],
    ['three boxes of 30 prescribed, one of 90 delivered', { ...crestor, quantity: 3 }, delivered(CIP.crestor10x90), { status: 200, line: { match: 'pack-size', units: 90, quantityReason: null } }],
    ['fewer units than prescribed', { ...crestor, quantity: 3 }, delivered(CIP.crestor10x30), { status: 200, line: { units: 30 } }],
    ['a reason given when none is needed is not recorded', crestor, delivered(CIP.crestor10x30, 1, { quantityReason: 'pack-size' }), { status: 200, line: { quantityReason: null } }],
    // non-substitutable presentation line
    ['non substituable: the prescribed presentation', levothyrox, delivered(CIP.levothyrox30), { status: 200, line: { match: 'prescribed', substituted: false } }],
    ['non substituable: not its generic', levothyrox, delivered(CIP.levoGeneric30), { status: 400, problem: { code: 'EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED', why: 'presentation-only' } }],
    ['non substituable: not another box of it', levothyrox, delivered(CIP.levothyrox90), { status: 400, problem: { code: 'EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED' } }],
    // substance line
    ['substance: a product carrying it at that strength and form', amox, delivered(CIP.amoxAlmus12, 2), { status: 200, line: { match: 'substance', substituted: false, units: 24 } }],
    ['substance: another brand, same strength and form', amox, delivered(CIP.amoxBiogaran12, 2), { status: 200, line: { match: 'substance' } }],
    ['substance: the substance at another strength', amox, delivered(CIP.amox1g14), { status: 400, problem: { code: 'EPRESCRIPTION_NOT_A_SUBSTITUTE', why: 'strength' } }],
    ['substance: with another active substance', amox, delivered(CIP.amoxClav8), { status: 400, problem: { code: 'EPRESCRIPTION_NOT_A_SUBSTITUTE', why: 'other-substances' } }],
    ['substance: another substance', amox, delivered(CIP.paracetamol), { status: 400, problem: { code: 'EPRESCRIPTION_NOT_A_SUBSTITUTE', why: 'substance', detail: /ne contient pas la substance prescrite/ } }],
    ['substance: more units than prescribed', amox, delivered(CIP.amoxArrow30), { status: 400, problem: { code: 'EPRESCRIPTION_QUANTITY_EXCEEDED', allowed: 24, delivered: 30 } }],
    ['substance: the box of 30 for 24, pack size', amox, delivered(CIP.amoxArrow30, 1, { quantityReason: 'pack-size' }), { status: 200, line: { units: 30, quantityReason: 'pack-size' } }],
  ]
  for (const [name, line, payload, expected] of table) t.match(await attempt(line, payload), expected, name)
})

t.test('a non-substitutable substance line keeps to the medicine first delivered; a substitutable one may switch', async (t) => {
  const s = await setup(t)
  const line = { substance: 'amoxicilline', strength: '500 mg', form: 'gélule', dosage: '2 par jour', units: 12, durationDays: 6, renewals: 1 }
  for (const nonSubstitutable of [true, false]) {
    const p = await s.issue([{ ...line, nonSubstitutable }])
    const first = await s.secretOf(p)
    t.equal((await s.record(p, first, 1, { outcome: 'delivered', cip13: CIP.amoxAlmus12, quantity: 1 })).statusCode, 200)
    t.equal((await s.close(p, first)).statusCode, 200)
    s.clock.advance(6 * DAY)
    const second = await s.secretOf(p, ORG.pharmacyLyon)
    const other = await s.app.inject({ method: 'PUT', url: `/v1/eprescriptions/${p.id}/dispensation/lines/1`, headers: { ...s.auth('pharmacy', ORG.pharmacyLyon), 'x-eprescription-secret': second }, payload: { outcome: 'delivered', cip13: CIP.amoxBiogaran12, quantity: 1 } })
    if (nonSubstitutable) {
      t.equal(other.statusCode, 400)
      t.match(other.json(), { code: 'EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED', why: 'same-medicine', detail: /CIS 64338986/ })
      const same = await s.app.inject({ method: 'PUT', url: `/v1/eprescriptions/${p.id}/dispensation/lines/1`, headers: { ...s.auth('pharmacy', ORG.pharmacyLyon), 'x-eprescription-secret': second }, payload: { outcome: 'delivered', cip13: CIP.amoxAlmus12, quantity: 1 } })
      t.match(same.json().lines[0], { match: 'substance', substituted: false })
    } else {
      t.match(other.json().lines[0], { match: 'substance', substituted: true }, 'a switch of brand between renewals is recorded as a substitution')
    }
  }
})

t.test('issuing a substance line that no medicine carries is refused', async (t) => {
  const s = await setup(t)
  const bad = async (line: object, field: string, why: string) => {
    const res = await s.app.inject({ method: 'POST', url: '/v1/eprescriptions', headers: s.prescriber, payload: { patient: { familyName: 'X', givenName: 'Y', birthDate: '1970-01-01' }, lines: [line] } })
    t.equal(res.statusCode, 400)
    t.match(res.json(), { code: 'EPRESCRIPTION_UNKNOWN_SUBSTANCE', errors: [{ field }] }, why)
  }
  await bad({ substance: 'amoxicilline', strength: '750 mg', form: 'gélule', dosage: 'x', units: 10 }, 'body.lines.0.strength', 'no such strength')
  await bad({ substance: 'amoxicilline', strength: '500 mg', form: 'sirop', dosage: 'x', units: 10 }, 'body.lines.0.form', 'no such form')
  await bad({ substance: 'zorglub', strength: '5 mg', form: 'comprimé', dosage: 'x', units: 10 }, 'body.lines.0.substance', 'no such substance')
  const ok = await s.app.inject({ method: 'POST', url: '/v1/eprescriptions', headers: s.prescriber, payload: { patient: { familyName: 'X', givenName: 'Y', birthDate: '1970-01-01' }, lines: [{ substance: 'Amoxicilline + acide clavulanique', strength: '1 g/125 mg', form: 'poudre pour suspension buvable', dosage: 'x', quantity: 1 }] } })
  t.equal(ok.statusCode, 201, 'a combination by its substances and strengths')
  const renewable = await s.app.inject({ method: 'POST', url: '/v1/eprescriptions', headers: s.prescriber, payload: { patient: { familyName: 'X', givenName: 'Y', birthDate: '1970-01-01' }, lines: [{ cip13: CIP.crestor10x30, dosage: 'x', quantity: 1, renewals: 2 }] } })
  t.match(renewable.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.lines.0.durationDays', code: 'required' }] }, 'a renewable line needs its duration')
  const both = await s.app.inject({ method: 'POST', url: '/v1/eprescriptions', headers: s.prescriber, payload: { patient: { familyName: 'X', givenName: 'Y', birthDate: '1970-01-01' }, lines: [{ cip13: CIP.crestor10x30, dosage: 'x', quantity: 1, units: 30 }] } })
  t.match(both.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.lines.0.units', code: 'one-of' }] })
})

t.test('renewal windows at their edges, Paris days, with the injectable clock', async (t) => {
  const s = await setup(t)
  // 10 March 2027, 16:00 in Paris (UTC+1); the window crosses the change to summer time (28 March).
  s.clock.now = new Date('2027-03-10T15:00:00.000Z')
  const p = await s.issue([
    { cip13: CIP.crestor10x30, dosage: '1 le soir', quantity: 1, durationDays: 30, renewals: 2 },
    { cip13: CIP.paracetamol, dosage: 'si douleur', quantity: 1, durationDays: 10, renewals: 0 },
  ])
  t.match(await s.view(p), { nextDispensationFrom: '2027-03-10T15:00:00.000Z', lines: [{ nextDispensationFrom: '2027-03-10T15:00:00.000Z' }, {}] }, 'the first from issue')
  const first = await s.secretOf(p)
  await s.record(p, first, 1, { outcome: 'delivered', cip13: CIP.crestor10x30, quantity: 1 })
  await s.record(p, first, 2, { outcome: 'not_delivered', reason: 'Rupture de stock' })
  t.equal((await s.close(p, first)).statusCode, 200)

  // Dispensed on 10 March (Paris) + 30 days − 5 days of tolerance: from 4 April, 00:00 Paris (UTC+2) = 3 April 22:00 UTC.
  const opens = '2027-04-03T22:00:00.000Z'
  const seen = await s.view(p)
  t.match(seen, { status: 'ready', nextDispensationFrom: '2027-03-10T15:00:00.000Z', lines: [{ nextDispensationFrom: opens, remaining: 2 }, { nextDispensationFrom: '2027-03-10T15:00:00.000Z', remaining: 1 }] }, 'the prescriber sees the next window')

  // Line 2 is still to deliver: the prescription may be taken, but line 1 is refused before its window.
  s.clock.now = new Date(new Date(opens).getTime() - 1)
  const second = await s.secretOf(p)
  const early = await s.record(p, second, 1, { outcome: 'delivered', cip13: CIP.crestor10x30, quantity: 1 })
  t.equal(early.statusCode, 409)
  t.match(early.json(), { code: 'EPRESCRIPTION_RENEWAL_TOO_EARLY', notBefore: opens, line: 1, detail: 'La ligne 1 ne peut pas être délivrée avant le 04/04/2027 (fin du traitement précédent, moins la tolérance).' })
  await s.record(p, second, 2, { outcome: 'delivered', cip13: CIP.paracetamol, quantity: 1 })
  t.equal((await s.close(p, second)).json().prescriptionStatus, 'ready')

  // Nothing left to deliver before the window: taking it is refused, saying from when.
  const refused = await s.take(p)
  t.equal(refused.statusCode, 409)
  t.match(refused.json(), { code: 'EPRESCRIPTION_RENEWAL_TOO_EARLY', notBefore: opens, detail: /Aucune ligne de cette ordonnance ne peut être délivrée avant le 04\/04\/2027/ })
  const en = await s.app.inject({ method: 'POST', url: '/v1/eprescriptions/accept', headers: { ...s.auth('pharmacy', ORG.pharmacyParis), 'accept-language': 'en' }, payload: { qr: p.qrPayload } })
  t.match(en.json().detail, /No line of this prescription can be dispensed before 04\/04\/2027/)

  // At the edge, it opens.
  s.clock.now = new Date(opens)
  const third = await s.secretOf(p)
  t.equal((await s.record(p, third, 1, { outcome: 'delivered', cip13: CIP.crestor10x30, quantity: 1 })).statusCode, 200)
  t.equal((await s.close(p, third)).statusCode, 200)
  t.match(await s.view(p), { lines: [{ remaining: 1, nextDispensationFrom: '2027-04-28T22:00:00.000Z' }, { remaining: 0, nextDispensationFrom: null }] }, 'the next one: 4 April + 25 days')
})

t.test('the tolerance is configurable', async (t) => {
  const s = await setup(t, { EPRESCRIPTION_RENEWAL_TOLERANCE_DAYS: '0' })
  s.clock.now = new Date('2027-01-10T10:00:00.000Z')
  const p = await s.issue([{ cip13: CIP.crestor10x30, dosage: '1 le soir', quantity: 1, durationDays: 30, renewals: 1 }])
  const first = await s.secretOf(p)
  await s.record(p, first, 1, { outcome: 'delivered', cip13: CIP.crestor10x30, quantity: 1 })
  await s.close(p, first)
  t.match(await s.view(p), { nextDispensationFrom: '2027-02-08T23:00:00.000Z' }, '10 January + 30 days, 00:00 Paris (UTC+1)')
})

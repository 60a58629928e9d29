import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

const AMOX = '3400936128149' // Biogaran, MITM J01CA04
const AMOX16 = '3400936128200' // Biogaran, MITM
const ROSU = '3400949497294' // Biogaran, not MITM
const ONDAN = '3400941639524' // Accord (not subscribed)
const UNKNOWN = '3400930000007' // valid check digit, not in the referential

async function setup(t: { teardown(fn: () => unknown): void }) {
  const ctx = await testApp(t)
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  return ctx
}

const count = async (ctx: TestContext, table: 'shortage_signals' | 'audit_log' | 'events') =>
  Number((await ctx.app.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)

async function feed(ctx: TestContext, org: string, role: 'pharmacy' | 'lab' = 'pharmacy') {
  await ctx.app.hub.runSequencer()
  const res = await ctx.app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=100', headers: ctx.auth(role, org) })
  return res.json().items as Array<{ type: string; payload: any }>
}

t.test('pharmacy signals', async (t) => {
  const ctx = await setup(t)
  const { app, auth, clock } = ctx
  const signal = (org: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/shortage-signals', headers: { ...auth('pharmacy', org), ...headers }, payload: body })

  t.test('the 72-hour rule at its boundary, across the spring daylight-saving change (Paris)', async (t) => {
    // Unavailable since Friday 27 March 2026 (a day: 00:00 Paris, UTC+1 = 26 March 23:00 UTC). Clocks go forward
    // on Sunday 29 March: 72 real hours later is Monday 30 March 01:00 Paris (UTC+2) = 29 March 23:00 UTC.
    clock.now = new Date('2026-03-29T22:59:59Z')
    const early = await signal(ORG.pharmacyParis, { code: AMOX, wholesaler: 'OCP', unavailableSince: '2026-03-27' })
    t.equal(early.statusCode, 400)
    t.match(early.headers['content-type'], /application\/problem\+json/)
    t.match(early.json(), { code: 'SIGNAL_TOO_EARLY', eligibleAt: '2026-03-29T23:00:00.000Z', errors: [{ field: 'body.unavailableSince', code: '72h' }] })
    t.match(early.json().detail, /à partir du 30\/03\/2026 à 01:00 \(heure de Paris\)/)
    const en = await signal(ORG.pharmacyParis, { code: AMOX, wholesaler: 'OCP', unavailableSince: '2026-03-27' }, { 'accept-language': 'en' })
    t.match(en.json().detail, /may be signalled from 30\/03\/2026 at 01:00 \(Paris time\)/)
    t.equal(await count(ctx, 'shortage_signals'), 0, 'nothing written')

    clock.now = new Date('2026-03-29T23:00:00Z')
    const ok = await signal(ORG.pharmacyParis, { code: AMOX, wholesaler: 'OCP', unavailableSince: '2026-03-27', lastSupplyDate: '2026-03-20' })
    t.equal(ok.statusCode, 201)
    t.match(ok.json(), { cip13: AMOX, gtin: `0${AMOX}`, status: 'open', unavailableSince: '2026-03-26T23:00:00.000Z', lastSupplyDate: '2026-03-20' })
  })

  t.test('the autumn change: 72 hours from 23 October 00:00 Paris (UTC+2) end at 25 October 23:00 Paris (UTC+1)', async (t) => {
    clock.now = new Date('2026-10-25T21:59:59Z')
    const early = await signal(ORG.pharmacyLyon, { code: AMOX, wholesaler: 'OCP', unavailableSince: '2026-10-23' })
    t.equal(early.statusCode, 400)
    t.match(early.json(), { code: 'SIGNAL_TOO_EARLY', eligibleAt: '2026-10-25T22:00:00.000Z' })
    t.match(early.json().detail, /25\/10\/2026 à 23:00/)
    clock.now = new Date('2026-10-25T22:00:00Z')
    t.equal((await signal(ORG.pharmacyLyon, { code: AMOX, wholesaler: 'OCP', unavailableSince: '2026-10-23' })).statusCode, 201)
  })

  t.test('an instant is counted in real hours; a GTIN-14 names the same presentation', async (t) => {
    clock.now = new Date('2026-11-22T07:59:59Z')
    const early = await signal(ORG.pharmacyAjaccio, { code: `0${ROSU}`, wholesaler: 'CERP', unavailableSince: '2026-11-19T09:00:00+01:00' })
    t.equal(early.statusCode, 400)
    clock.now = new Date('2026-11-22T08:00:00Z')
    const ok = await signal(ORG.pharmacyAjaccio, { code: `0${ROSU}`, wholesaler: 'CERP', unavailableSince: '2026-11-19T09:00:00+01:00' })
    t.equal(ok.statusCode, 201)
    t.equal(ok.json().cip13, ROSU)
  })

  t.test('a second signal on the same presentation returns the open one, nothing else is written', async (t) => {
    clock.now = new Date('2026-11-22T10:00:00Z')
    const first = await signal(ORG.pharmacyGuadeloupe, { code: AMOX16, wholesaler: 'OCP', unavailableSince: '2026-11-15' })
    t.equal(first.statusCode, 201)
    const [signals, audits, events] = [await count(ctx, 'shortage_signals'), await count(ctx, 'audit_log'), await count(ctx, 'events')]
    const again = await signal(ORG.pharmacyGuadeloupe, { code: `0${AMOX16}`, wholesaler: 'Alliance', unavailableSince: '2026-11-18' })
    t.equal(again.statusCode, 200)
    t.equal(again.json().id, first.json().id)
    t.equal(again.json().wholesaler, 'OCP', 'the open signal, unchanged')
    t.same([await count(ctx, 'shortage_signals'), await count(ctx, 'audit_log'), await count(ctx, 'events')], [signals, audits, events])
    // another pharmacy on the same presentation has its own signal
    const other = await signal(ORG.pharmacyParis, { code: AMOX16, wholesaler: 'OCP', unavailableSince: '2026-11-15' })
    t.equal(other.statusCode, 201)
    t.not(other.json().id, first.json().id)
  })

  t.test('a retried request with the same Idempotency-Key is replayed', async (t) => {
    const headers = { 'idempotency-key': 'signal-retry-0001' }
    const body = { code: ONDAN, wholesaler: 'OCP', unavailableSince: '2026-11-10' }
    const a = await signal(ORG.pharmacyLyon, body, headers)
    const b = await signal(ORG.pharmacyLyon, body, headers)
    t.equal(a.statusCode, 201)
    t.equal(b.statusCode, 201)
    t.equal(b.headers['idempotent-replayed'], 'true')
    t.equal(b.json().id, a.json().id)
  })

  t.test('bad CIP13, unknown product, dates out of order: 4xx naming the field, nothing written', async (t) => {
    const before = [await count(ctx, 'shortage_signals'), await count(ctx, 'audit_log')]
    const bad = await signal(ORG.pharmacyParis, { code: '3400936128148', wholesaler: 'OCP', unavailableSince: '2026-11-01' })
    t.equal(bad.statusCode, 400)
    t.match(bad.json(), { code: 'INVALID_IDENTIFIER', errors: [{ field: 'body.code', message: 'clé de contrôle invalide (attendue : 9)' }] })
    const malformed = await signal(ORG.pharmacyParis, { code: '34009', wholesaler: 'OCP', unavailableSince: '2026-11-01' })
    t.match(malformed.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.code' }] })
    const unknown = await signal(ORG.pharmacyParis, { code: UNKNOWN, wholesaler: 'OCP', unavailableSince: '2026-11-01' })
    t.equal(unknown.statusCode, 404)
    t.match(unknown.json(), { code: 'NOT_FOUND', errors: [{ field: 'body.code' }] })
    const order = await signal(ORG.pharmacyParis, { code: ROSU, wholesaler: 'OCP', unavailableSince: '2026-11-01', lastSupplyDate: '2026-11-05' })
    t.equal(order.statusCode, 400)
    t.match(order.json(), { code: 'DATES_OUT_OF_ORDER', errors: [{ field: 'body.lastSupplyDate' }] })
    const future = await signal(ORG.pharmacyParis, { code: ROSU, wholesaler: 'OCP', unavailableSince: '2026-12-01' })
    t.match(future.json(), { code: 'DATES_OUT_OF_ORDER', errors: [{ field: 'body.unavailableSince' }] })
    const missing = await signal(ORG.pharmacyParis, { code: ROSU, unavailableSince: '2026-11-01' })
    t.match(missing.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.wholesaler', code: 'required' }] })
    t.same([await count(ctx, 'shortage_signals'), await count(ctx, 'audit_log')], before)
  })

  t.test('only pharmacies signal', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/v1/shortage-signals', headers: auth('lab', ORG.labBiogaran), payload: { code: ROSU, wholesaler: 'x', unavailableSince: '2026-11-01' } })
    t.equal(res.statusCode, 403)
    t.equal(res.json().code, 'FORBIDDEN_ROLE')
  })

  t.test('close when supplied; another pharmacy sees nothing (404)', async (t) => {
    const created = (await signal(ORG.pharmacyParis, { code: ROSU, wholesaler: 'OCP', unavailableSince: '2026-11-10' })).json()
    const other = auth('pharmacy', ORG.pharmacyLyon)
    t.equal((await app.inject({ method: 'GET', url: `/v1/shortage-signals/${created.id}`, headers: other })).statusCode, 404)
    t.equal((await app.inject({ method: 'POST', url: `/v1/shortage-signals/${created.id}/close`, headers: other, payload: {} })).statusCode, 404)
    t.equal((await app.inject({ method: 'POST', url: `/v1/shortage-signals/${created.id}/renew`, headers: other })).statusCode, 404)
    const lyonList = (await app.inject({ method: 'GET', url: '/v1/shortage-signals', headers: other })).json()
    t.notOk(lyonList.items.some((s: any) => s.id === created.id))
    const parisList = (await app.inject({ method: 'GET', url: '/v1/shortage-signals?status=open', headers: auth('pharmacy', ORG.pharmacyParis) })).json()
    t.ok(parisList.items.some((s: any) => s.id === created.id))

    const closed = await app.inject({ method: 'POST', url: `/v1/shortage-signals/${created.id}/close`, headers: auth('pharmacy', ORG.pharmacyParis), payload: { reason: 'supplied' } })
    t.equal(closed.statusCode, 200)
    t.match(closed.json(), { status: 'closed', closeReason: 'supplied' })
    const again = await app.inject({ method: 'POST', url: `/v1/shortage-signals/${created.id}/close`, headers: auth('pharmacy', ORG.pharmacyParis), payload: {} })
    t.equal(again.statusCode, 409)
    t.equal(again.json().code, 'SIGNAL_NOT_OPEN')
    // closed: a new signal on the same presentation is a new one
    const fresh = await signal(ORG.pharmacyParis, { code: ROSU, wholesaler: 'OCP', unavailableSince: '2026-11-10' })
    t.equal(fresh.statusCode, 201)
    t.not(fresh.json().id, created.id)
  })

  t.test('an open signal lapses after the configured period without renewal (scheduled job)', async (t) => {
    clock.now = new Date('2026-12-01T10:00:00Z')
    const s = (await signal(ORG.pharmacyAjaccio, { code: AMOX, wholesaler: 'OCP', unavailableSince: '2026-11-20' })).json()
    t.equal(s.lapsesAt, '2026-12-31T10:00:00.000Z')
    clock.advance(20 * 86_400_000)
    const renewed = await app.inject({ method: 'POST', url: `/v1/shortage-signals/${s.id}/renew`, headers: auth('pharmacy', ORG.pharmacyAjaccio) })
    t.equal(renewed.statusCode, 200)
    t.equal(renewed.json().lapsesAt, '2027-01-20T10:00:00.000Z')
    clock.advance(11 * 86_400_000) // past the first deadline: the renewal holds
    await app.jobs.runDue()
    const get = () => app.inject({ method: 'GET', url: `/v1/shortage-signals/${s.id}`, headers: auth('pharmacy', ORG.pharmacyAjaccio) })
    t.equal((await get()).json().status, 'open')
    clock.advance(20 * 86_400_000) // past the renewed deadline
    await app.jobs.runDue()
    t.match((await get()).json(), { status: 'lapsed', closeReason: 'lapsed' })
    const items = await feed(ctx, ORG.pharmacyAjaccio)
    t.ok(items.some((i) => i.type === 'shortage.signal_lapsed' && i.payload.signalId === s.id), 'the pharmacy is told on its feed')
  })
})

t.test('automatic responses', async (t) => {
  const ctx = await setup(t)
  const { app, auth, clock } = ctx
  clock.now = new Date('2026-11-22T10:00:00Z')
  const biogaran = auth('lab', ORG.labBiogaran)
  const signal = (org: string, code: string) =>
    app.inject({ method: 'POST', url: '/v1/shortage-signals', headers: auth('pharmacy', org), payload: { code, wholesaler: 'OCP', unavailableSince: '2026-11-15' } })

  t.test('set per presentation by its lab only; another lab or a non-subscribed one is refused', async (t) => {
    const body = { message: 'Retour prévu mi-décembre.', expectedReturn: '2026-12-15', emergencyContact: 'Urgences : 01 00 00 00 00', alternatives: [{ cip13: AMOX16, description: 'Boîte de 16' }] }
    const arrow = await app.inject({ method: 'PUT', url: `/v1/shortage-automatic-responses/${AMOX}`, headers: auth('lab', ORG.labArrow), payload: body })
    t.equal(arrow.statusCode, 404)
    const accord = await app.inject({ method: 'PUT', url: `/v1/shortage-automatic-responses/${ONDAN}`, headers: auth('lab', ORG.labAccord), payload: body })
    t.equal(accord.statusCode, 403)
    t.equal(accord.json().code, 'LAB_NOT_SUBSCRIBED')
    const ok = await app.inject({ method: 'PUT', url: `/v1/shortage-automatic-responses/${AMOX}`, headers: biogaran, payload: body })
    t.equal(ok.statusCode, 200)
    t.match(ok.json(), { scope: 'presentation', cip13: AMOX, lab: { id: ORG.labBiogaran }, message: 'Retour prévu mi-décembre.' })
    const list = (await app.inject({ method: 'GET', url: '/v1/shortage-automatic-responses', headers: auth('lab', ORG.labArrow) })).json()
    t.same(list.items, [], 'another lab does not see it')
  })

  t.test('returned with the signal and published on the pharmacy’s feed only', async (t) => {
    const res = await signal(ORG.pharmacyLyon, AMOX)
    t.equal(res.statusCode, 201)
    t.match(res.json().automaticResponse, { message: 'Retour prévu mi-décembre.', expectedReturn: '2026-12-15', emergencyContact: 'Urgences : 01 00 00 00 00' })
    const lyon = await feed(ctx, ORG.pharmacyLyon)
    const event = lyon.find((i) => i.type === 'shortage.automatic_response')
    t.ok(event, 'on the Lyon feed')
    t.match(event?.payload, { signalId: res.json().id, cip13: AMOX, automaticResponse: { message: 'Retour prévu mi-décembre.' } })
    t.notOk((await feed(ctx, ORG.pharmacyParis)).some((i) => i.type === 'shortage.automatic_response'), 'not on another pharmacy’s feed')
    // no automatic response on a product without one
    const none = await signal(ORG.pharmacyLyon, ROSU)
    t.equal(none.json().automaticResponse, null)
  })

  t.test('a later change reaches pharmacies with an open signal', async (t) => {
    await signal(ORG.pharmacyParis, AMOX)
    const closedOne = (await signal(ORG.pharmacyAjaccio, AMOX)).json()
    await app.inject({ method: 'POST', url: `/v1/shortage-signals/${closedOne.id}/close`, headers: auth('pharmacy', ORG.pharmacyAjaccio), payload: {} })
    const before = (await feed(ctx, ORG.pharmacyAjaccio)).length
    const put = await app.inject({ method: 'PUT', url: `/v1/shortage-automatic-responses/${AMOX}`, headers: biogaran, payload: { message: 'Retour repoussé à janvier.' } })
    t.equal(put.statusCode, 200)
    const paris = (await feed(ctx, ORG.pharmacyParis)).filter((i) => i.type === 'shortage.automatic_response')
    t.equal(paris.at(-1)?.payload.automaticResponse.message, 'Retour repoussé à janvier.')
    t.equal((await feed(ctx, ORG.pharmacyAjaccio)).length, before, 'a closed signal gets nothing')
    const del = await app.inject({ method: 'DELETE', url: `/v1/shortage-automatic-responses/${AMOX}`, headers: auth('lab', ORG.labArrow) })
    t.equal(del.statusCode, 404, 'another lab cannot remove it')
  })

  t.test('threshold event to the lab; the lab view counts, never names, pharmacies', async (t) => {
    const put = await app.inject({ method: 'PUT', url: '/v1/shortage-settings', headers: biogaran, payload: { signalThreshold: 2 } })
    t.equal(put.statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: '/v1/shortage-settings', headers: biogaran })).json().signalThreshold, 2)
    t.equal((await app.inject({ method: 'PUT', url: '/v1/shortage-settings', headers: auth('lab', ORG.labAccord), payload: { signalThreshold: 2 } })).statusCode, 403)
    await signal(ORG.pharmacyParis, AMOX16)
    t.notOk((await feed(ctx, ORG.labBiogaran, 'lab')).some((i) => i.type === 'shortage.signal_threshold_reached'))
    await signal(ORG.pharmacyGuadeloupe, AMOX16)
    const lab = (await feed(ctx, ORG.labBiogaran, 'lab')).filter((i) => i.type === 'shortage.signal_threshold_reached')
    t.equal(lab.length, 1)
    t.same(lab[0]?.payload, { cip13: AMOX16, productName: 'AMOXICILLINE BIOGARAN 500 mg, gélule', openSignals: 2, threshold: 2 })
    t.notOk(JSON.stringify(lab).includes(ORG.pharmacyParis))

    const map = await app.inject({ method: 'GET', url: '/v1/shortage-signals-map?from=2026-11-01&to=2026-11-30', headers: biogaran })
    t.equal(map.statusCode, 200)
    const m = map.json()
    t.same(m.byPresentation.map((p: any) => [p.cip13, p.open]), [[AMOX, 2], [AMOX16, 2], [ROSU, 1]])
    t.same(m.byDepartment, [
      { department: '69', region: '84', open: 2 },
      { department: '75', region: '11', open: 2 },
      { department: '971', region: '01', open: 1 },
    ])
    t.same(m.byRegion.map((r: any) => [r.region, r.open]), [['01', 1], ['11', 2], ['84', 2]])
    t.same(m.overTime, [{ day: '2026-11-22', opened: 6 }])
    for (const org of [ORG.pharmacyParis, ORG.pharmacyLyon, ORG.pharmacyGuadeloupe]) t.notOk(map.body.includes(org), 'no pharmacy identifier')
    const one = (await app.inject({ method: 'GET', url: `/v1/shortage-signals-map?cip13=${AMOX16}`, headers: biogaran })).json()
    t.equal(one.openSignals, 2)
    const other = await app.inject({ method: 'GET', url: `/v1/shortage-signals-map?cip13=${AMOX16}`, headers: auth('lab', ORG.labArrow) })
    t.equal(other.statusCode, 404, 'another lab’s presentation')
    t.equal((await app.inject({ method: 'GET', url: '/v1/shortage-signals-map', headers: auth('lab', ORG.labArrow) })).json().openSignals, 0)
    t.equal((await app.inject({ method: 'GET', url: '/v1/shortage-signals-map', headers: auth('lab', ORG.labAccord) })).statusCode, 403)
    t.equal((await app.inject({ method: 'GET', url: '/v1/shortage-signals-map', headers: auth('pharmacy', ORG.pharmacyParis) })).statusCode, 403)
  })
})

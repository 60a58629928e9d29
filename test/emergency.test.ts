import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { escalate } from '../src/emergency/routes.ts'
import { ESCALATION_QUEUE } from '../src/emergency/service.ts'
import { enqueue } from '../src/platform/jobs.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

const AMOX = '3400936128149' // Biogaran, MITM
const AMOX16 = '3400936128200' // Biogaran, MITM (same medicine)
const ROSU = '3400949497294' // Biogaran, not MITM
const AMOXCLAV = '3400938801460' // Arrow, MITM
const ONDAN = '3400941639524' // Accord (not subscribed), MITM
const HOUR = 3_600_000

type Ctx = TestContext
async function setup(t: { teardown(fn: () => unknown): void }, env: Record<string, string> = {}) {
  const ctx = await testApp(t, { env: { WEBHOOK_ALLOW_PRIVATE: 'true', ...env } })
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  ctx.clock.now = new Date('2026-11-23T09:00:00Z') // Monday 10:00 in Paris
  return ctx
}

const count = async (ctx: Ctx, table: 'emergency_requests' | 'emergency_request_steps' | 'emergency_openings' | 'audit_log' | 'events') =>
  Number((await ctx.app.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)

async function feed(ctx: Ctx, role: 'pharmacy' | 'lab' | 'ordre', org: string) {
  await ctx.app.hub.runSequencer()
  return (await ctx.app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=200', headers: ctx.auth(role, org) })).json().items as Array<{ type: string; payload: any }>
}

async function declare(ctx: Ctx, lab: string, cip13: string, extra: Record<string, unknown> = {}) {
  const res = await ctx.app.inject({
    method: 'POST',
    url: '/v1/shortage-declarations',
    headers: ctx.auth('lab', lab),
    payload: { kind: 'observed', presentations: [cip13], cause: 'production', actualStart: '2026-11-20', ...extra },
  })
  if (res.statusCode !== 201) throw new Error(`declaration failed: ${res.body}`)
  return res.json().id as string
}

const opening = (extra: Record<string, unknown> = {}) => ({ contact: { service: 'Dépannage urgence Biogaran', phone: '+33 1 00 00 00 01', email: 'urgence@biogaran.example' }, openingHours: 'lun.–ven. 9 h–18 h', maxQuantity: 5, ...extra })

t.test('emergency requests', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran, 'bob')
  const arrow = auth('lab', ORG.labArrow)
  const paris = auth('pharmacy', ORG.pharmacyParis, 'claire')
  const lyon = auth('pharmacy', ORG.pharmacyLyon)
  const ordre = auth('ordre', ORG.ordre)
  const open = (cip13: string, body: Record<string, unknown> = opening(), headers = biogaran) => app.inject({ method: 'PUT', url: `/v1/emergency-openings/${cip13}`, headers, payload: body })
  const submit = (body: Record<string, unknown>, headers: Record<string, string> = paris) => app.inject({ method: 'POST', url: '/v1/emergency-requests', headers, payload: body })
  const answer = (id: string, body: Record<string, unknown>, headers = biogaran) => app.inject({ method: 'POST', url: `/v1/emergency-requests/${id}/answer`, headers, payload: body })
  const get = (id: string, headers: Record<string, string>) => app.inject({ method: 'GET', url: `/v1/emergency-requests/${id}`, headers })
  const request = (extra: Record<string, unknown> = {}) => ({ cip13: AMOX, quantity: 2, patientEmergency: true, delivery: { instructions: 'Avant 19 h' }, ...extra })

  await declare(ctx, ORG.labBiogaran, AMOX)

  t.test('the vocabulary is public, French and English', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/emergency-vocabulary' })
    t.equal(res.statusCode, 200)
    t.match(res.json().refusalReasons, [{ code: 'out_of_stock', fr: 'Stock épuisé', en: 'Out of stock' }])
    t.match(res.json().statuses.find((s: any) => s.code === 'received'), { next: [] })
    t.same(res.json().conditions.map((c: any) => c.code), ['mitm_or_niche', 'active_shortage', 'lab_subscribed', 'opened'])
  })

  t.test('a subscribed lab opens its presentation; pharmacies list what is open', async (t) => {
    const res = await open(AMOX)
    t.equal(res.statusCode, 200)
    t.match(res.json(), { cip13: AMOX, gtin: `0${AMOX}`, lab: { id: ORG.labBiogaran, name: 'BIOGARAN' }, open: true, maxQuantity: 5, openingHours: 'lun.–ven. 9 h–18 h', escalationBusinessHours: 4, closedAt: null })
    const list = await app.inject({ method: 'GET', url: '/v1/emergency-openings', headers: paris })
    t.equal(list.statusCode, 200)
    t.same(list.json().items.map((o: any) => o.cip13), [AMOX])
    t.match(list.json().items[0].contact, { service: 'Dépannage urgence Biogaran', phone: '+33 1 00 00 00 01' })
    const filtered = await app.inject({ method: 'GET', url: `/v1/emergency-openings?cip13=${AMOX16}`, headers: paris })
    t.same(filtered.json().items, [], 'filter by product')
    t.equal((await app.inject({ method: 'GET', url: `/v1/emergency-openings?cip13=${AMOX}`, headers: ordre })).json().items.length, 1)
    const audit = await app.db.selectFrom('audit_log').select(['action', 'object_id']).where('object_type', '=', 'emergency-opening').execute()
    t.match(audit, [{ action: 'emergency-opening.opened', object_id: AMOX }])
  })

  t.test('opening: non-subscribed lab refused, another lab’s product 404, bad contact names the field; nothing written', async (t) => {
    const before = [await count(ctx, 'emergency_openings'), await count(ctx, 'audit_log')]
    const accord = await open(ONDAN, opening(), auth('lab', ORG.labAccord))
    t.equal(accord.statusCode, 403)
    t.equal(accord.json().code, 'LAB_NOT_SUBSCRIBED')
    const other = await open(AMOXCLAV)
    t.equal(other.statusCode, 404)
    t.match(other.json(), { code: 'NOT_FOUND', errors: [{ field: 'params.cip13' }] })
    const bad = await open(AMOX16, { contact: { service: 'x', phone: 'call me' } })
    t.equal(bad.statusCode, 400)
    t.match(bad.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.contact.phone' }] })
    const badQty = await open(AMOX16, opening({ maxQuantity: 0 }))
    t.match(badQty.json(), { errors: [{ field: 'body.maxQuantity', code: 'minimum' }] })
    const closeOther = await app.inject({ method: 'DELETE', url: `/v1/emergency-openings/${AMOX}`, headers: arrow })
    t.equal(closeOther.statusCode, 404, 'another lab cannot close it')
    t.same([await count(ctx, 'emergency_openings'), await count(ctx, 'audit_log')], before)
  })

  let id = ''
  t.test('a pharmacy submits; the lab is told at once (feed and webhook)', async (t) => {
    const hook = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: biogaran, payload: { url: 'http://127.0.0.1:9/hook', eventTypes: ['emergency.request_submitted'] } })
    t.equal(hook.statusCode, 201)
    const res = await submit(request())
    t.equal(res.statusCode, 201)
    const r = res.json()
    id = r.id
    t.match(r, {
      cip13: AMOX, quantity: 2, patientEmergency: true, status: 'submitted', version: 1,
      lab: { id: ORG.labBiogaran }, pharmacy: { id: ORG.pharmacyParis, name: 'Pharmacie du Marais' },
      delivery: { name: 'Pharmacie du Marais', city: 'Paris', department: '75', address: null, instructions: 'Avant 19 h' },
      eligibility: { mitm: true, niche: false, labSubscribed: true, declaration: { kind: 'observed', status: 'declared' }, opening: { maxQuantity: 5 } },
      contact: { service: 'Dépannage urgence Biogaran' },
      escalateAt: '2026-11-23T13:00:00.000Z', escalatedAt: null, answer: null,
      allowedTransitions: ['accepted', 'partially_accepted', 'redirected', 'refused', 'cancelled'],
    })
    const labFeed = await feed(ctx, 'lab', ORG.labBiogaran)
    t.match(labFeed.filter((e) => e.type === 'emergency.request_submitted'), [{ payload: { request: { id, quantity: 2 } } }])
    const deliveries = await app.db.selectFrom('webhook_deliveries as d').innerJoin('events as e', 'e.id', 'd.event_id').select(['e.type', 'd.org_id']).where('e.type', '=', 'emergency.request_submitted').execute()
    t.same(deliveries, [{ type: 'emergency.request_submitted', org_id: ORG.labBiogaran }], 'a webhook delivery for the lab')
    t.equal((await feed(ctx, 'lab', ORG.labArrow)).filter((e) => e.type.startsWith('emergency.')).length, 0, 'another lab is not told')
  })

  t.test('bad input names the field and writes nothing; no patient identity is accepted', async (t) => {
    const before = [await count(ctx, 'emergency_requests'), await count(ctx, 'audit_log'), await count(ctx, 'events')]
    const noAttest = await submit(request({ patientEmergency: false }))
    t.equal(noAttest.statusCode, 400)
    t.match(noAttest.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.patientEmergency', code: 'const' }] })
    const missing = await submit({ cip13: AMOX, quantity: 2 })
    t.match(missing.json(), { errors: [{ field: 'body.patientEmergency', code: 'required' }] })
    const patient = await submit(request({ patient: { name: 'Dupont' } }))
    t.match(patient.json(), { errors: [{ field: 'body.patient', code: 'additionalProperties' }] })
    const zero = await submit(request({ quantity: 0 }))
    t.match(zero.json(), { errors: [{ field: 'body.quantity', code: 'minimum' }] })
    const badKey = await submit(request({ cip13: '3400936128140' }))
    t.equal(badKey.statusCode, 400)
    t.match(badKey.json(), { code: 'INVALID_IDENTIFIER', errors: [{ field: 'body.cip13' }] })
    const unknown = await submit(request({ cip13: '3400999999991' }))
    t.equal(unknown.statusCode, 404)
    const en = await app.inject({ method: 'POST', url: '/v1/emergency-requests', headers: { ...paris, 'accept-language': 'en' }, payload: request({ quantity: 6 }) })
    t.equal(en.statusCode, 422)
    t.match(en.json(), { code: 'EMERGENCY_QUANTITY_ABOVE_MAXIMUM', maxQuantity: 5, detail: /at most 5 box/, errors: [{ field: 'body.quantity', code: 'maximum' }] })
    const lab = await submit(request(), biogaran)
    t.equal(lab.statusCode, 403, 'only pharmacies submit')
    t.same([await count(ctx, 'emergency_requests'), await count(ctx, 'audit_log'), await count(ctx, 'events')], before)
  })

  t.test('each eligibility condition is refused on its own, and named', async (t) => {
    const refused = async (body: Record<string, unknown>, condition: string) => {
      const res = await submit(body)
      t.equal(res.statusCode, 422, condition)
      t.equal(res.json().code, 'EMERGENCY_NOT_ELIGIBLE')
      t.same(res.json().failedConditions.map((c: any) => c.condition), [condition], `only ${condition} fails`)
      return res.json()
    }
    const before = await count(ctx, 'emergency_requests')

    // not MITM nor niche: ROSU is declared and opened, but is neither
    await declare(ctx, ORG.labBiogaran, ROSU)
    t.equal((await open(ROSU)).statusCode, 200)
    const notMitm = await refused(request({ cip13: ROSU }), 'mitm_or_niche')
    t.match(notMitm.detail, /ni un MITM ni un produit de niche/)
    // … a niche product is eligible
    const rosuCis = (await app.db.selectFrom('presentations').select('cis').where('cip13', '=', ROSU).executeTakeFirstOrThrow()).cis
    await app.db.updateTable('medicines').set({ niche: true }).where('cis', '=', rosuCis).execute()
    const niche = await submit(request({ cip13: ROSU, quantity: 1 }))
    t.equal(niche.statusCode, 201, 'niche product accepted')
    t.match(niche.json().eligibility, { mitm: false, niche: true })

    // no active shortage: AMOX16 is MITM and opened, without a declaration, then with a draft, then closed
    t.equal((await open(AMOX16)).statusCode, 200)
    await refused(request({ cip13: AMOX16 }), 'active_shortage')
    const draft = await declare(ctx, ORG.labBiogaran, AMOX16, { status: 'draft' })
    await refused(request({ cip13: AMOX16 }), 'active_shortage')
    t.equal((await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${draft}/transitions`, headers: biogaran, payload: { to: 'declared' } })).statusCode, 200)
    const declared = await submit(request({ cip13: AMOX16, quantity: 1 }))
    t.equal(declared.statusCode, 201, 'declared counts as active')
    // Paris may have one pending request per presentation: it cancels this one before asking again.
    t.equal((await app.inject({ method: 'POST', url: `/v1/emergency-requests/${declared.json().id}/cancel`, headers: paris, payload: {} })).statusCode, 200)
    t.equal((await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${draft}/transitions`, headers: biogaran, payload: { to: 'ongoing' } })).statusCode, 200)
    t.equal((await submit(request({ cip13: AMOX16, quantity: 1 }))).statusCode, 201, 'ongoing counts as active')
    t.equal((await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${draft}/transitions`, headers: biogaran, payload: { to: 'resolved' } })).statusCode, 200)
    await refused(request({ cip13: AMOX16 }), 'active_shortage')

    // lab not subscribed (anymore): everything else holds for AMOX
    await app.db.updateTable('lab_subscriptions').set({ subscribed: false }).where('lab_id', '=', ORG.labBiogaran).execute()
    await refused(request(), 'lab_subscribed')
    await app.db.updateTable('lab_subscriptions').set({ subscribed: true }).where('lab_id', '=', ORG.labBiogaran).execute()

    // not opened: AMOXCLAV (Arrow, MITM) declared but never opened; then opened, then closed again
    await declare(ctx, ORG.labArrow, AMOXCLAV)
    await refused(request({ cip13: AMOXCLAV }), 'opened')
    t.equal((await open(AMOXCLAV, opening({ maxQuantity: undefined }), arrow)).statusCode, 200)
    const ok = await submit(request({ cip13: AMOXCLAV, quantity: 50 }))
    t.equal(ok.statusCode, 201, 'no maximum set: any quantity')
    const closed = await app.inject({ method: 'DELETE', url: `/v1/emergency-openings/${AMOXCLAV}`, headers: arrow })
    t.equal(closed.statusCode, 200)
    t.match(closed.json(), { open: false, closedAt: String })
    t.equal((await app.inject({ method: 'GET', url: `/v1/emergency-openings?cip13=${AMOXCLAV}`, headers: paris })).json().items.length, 0, 'closed: not listed')
    t.match((await app.inject({ method: 'GET', url: '/v1/emergency-openings?open=false', headers: arrow })).json().items, [{ cip13: AMOXCLAV, open: false }], 'the lab still sees it')
    await refused(request({ cip13: AMOXCLAV }), 'opened')

    // several conditions at once are all named (ONDAN: Accord not subscribed, no declaration, not opened)
    const many = await submit(request({ cip13: ONDAN }))
    t.same(many.json().failedConditions.map((c: any) => c.condition), ['active_shortage', 'lab_subscribed', 'opened'])
    t.equal(await count(ctx, 'emergency_requests'), before + 4)
  })

  t.test('the request is readable by both sides and the operator; anyone else gets 404', async (t) => {
    for (const h of [paris, biogaran, ordre]) t.equal((await get(id, h)).statusCode, 200)
    t.equal((await get(id, lyon)).statusCode, 404, 'another pharmacy')
    t.equal((await get(id, arrow)).statusCode, 404, 'another lab')
    t.equal((await get('00000000-0000-4000-8000-000000000000', paris)).statusCode, 404)
    t.equal((await get(id, auth('ansm', ORG.ansm))).statusCode, 403)
    const mine = await app.inject({ method: 'GET', url: '/v1/emergency-requests', headers: lyon })
    t.same(mine.json().items, [], 'Lyon sees none of Paris’ requests')
    const labList = await app.inject({ method: 'GET', url: `/v1/emergency-requests?cip13=${AMOX}`, headers: biogaran })
    t.same(labList.json().items.map((r: any) => r.id), [id])
    t.equal((await app.inject({ method: 'GET', url: `/v1/emergency-requests?labId=${ORG.labArrow}`, headers: ordre })).json().items.length, 1)
    // another lab cannot answer, another pharmacy cannot cancel
    t.equal((await answer(id, { decision: 'refused', reason: 'out_of_stock' }, arrow)).statusCode, 404)
    // ... whatever it sends: an invalid answer, or a redirection that would tell whether an organisation is a wholesaler
    t.equal((await answer(id, { decision: 'refused', reason: 'other' }, arrow)).statusCode, 404, 'invalid answer from another lab: 404, not 400')
    t.equal((await answer(id, { decision: 'redirected', redirectTo: { kind: 'wholesaler', name: 'X', organisationId: ORG.pharmacyLyon } }, arrow)).statusCode, 404, 'redirection to a non-wholesaler from another lab: 404')
    t.equal((await answer(id, { decision: 'redirected', redirectTo: { kind: 'wholesaler', name: 'X', organisationId: ORG.wholesaler } }, arrow)).statusCode, 404, 'redirection to a wholesaler from another lab: 404')
    t.equal((await app.inject({ method: 'POST', url: `/v1/emergency-requests/${id}/cancel`, headers: lyon, payload: {} })).statusCode, 404)
    t.equal((await get(id, paris)).json().status, 'submitted')
  })

  t.test('answer details are checked against the decision; nothing written on refusal', async (t) => {
    const before = [await count(ctx, 'emergency_request_steps'), await count(ctx, 'audit_log')]
    t.match((await answer(id, { decision: 'accepted', shippingChannel: 'express_carrier' })).json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.expectedDelivery', code: 'required' }] })
    t.match((await answer(id, { decision: 'accepted', quantity: 1, shippingChannel: 'express_carrier', expectedDelivery: '2026-11-24T10:00:00Z' })).json(), { errors: [{ field: 'body.quantity' }] })
    t.match((await answer(id, { decision: 'partially_accepted', quantity: 2, shippingChannel: 'express_carrier', expectedDelivery: '2026-11-24T10:00:00Z' })).json(), { errors: [{ field: 'body.quantity' }] })
    t.match((await answer(id, { decision: 'accepted', shippingChannel: 'postal', expectedDelivery: '2026-11-01T10:00:00Z' })).json(), { errors: [{ field: 'body.expectedDelivery', code: 'order' }] })
    t.match((await answer(id, { decision: 'accepted', shippingChannel: 'postal', expectedDelivery: 'tomorrow' })).json(), { errors: [{ field: 'body.expectedDelivery', code: 'format' }] })
    t.match((await answer(id, { decision: 'refused', reason: 'other' })).json(), { errors: [{ field: 'body.comment', code: 'required' }] })
    t.match((await answer(id, { decision: 'refused', reason: 'sold_out' })).json(), { errors: [{ field: 'body.reason', code: 'enum' }] })
    t.match((await answer(id, { decision: 'refused', reason: 'out_of_stock', quantity: 1 })).json(), { errors: [{ field: 'body.quantity', code: 'not_allowed' }] })
    t.match((await answer(id, { decision: 'redirected' })).json(), { errors: [{ field: 'body.redirectTo', code: 'required' }] })
    t.match((await answer(id, { decision: 'redirected', redirectTo: { kind: 'wholesaler', name: 'X', organisationId: ORG.pharmacyLyon } })).json(), { errors: [{ field: 'body.redirectTo.organisationId' }] })
    t.same([await count(ctx, 'emergency_request_steps'), await count(ctx, 'audit_log')], before)
  })

  t.test('accepted, then receipt confirmed; every step kept; illegal steps 409 with allowed transitions', async (t) => {
    const res = await answer(id, { decision: 'accepted', shippingChannel: 'express_carrier', expectedDelivery: '2026-11-24T10:00:00Z' })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { status: 'accepted', version: 2, answer: { decision: 'accepted', quantity: 2, shippingChannel: 'express_carrier', expectedDelivery: '2026-11-24T10:00:00.000Z', answeredBy: 'bob' }, answeredAt: ctx.clock.now.toISOString(), allowedTransitions: ['received', 'cancelled'] })
    const pharmacyFeed = await feed(ctx, 'pharmacy', ORG.pharmacyParis)
    t.match(pharmacyFeed.filter((e) => e.type === 'emergency.request_answered'), [{ payload: { request: { id, status: 'accepted' } } }])
    const again = await answer(id, { decision: 'refused', reason: 'out_of_stock' })
    t.equal(again.statusCode, 409)
    t.match(again.json(), { code: 'EMERGENCY_INVALID_TRANSITION', currentStatus: 'accepted', allowedTransitions: ['received', 'cancelled'] })
    ctx.clock.advance(HOUR)
    const received = await app.inject({ method: 'POST', url: `/v1/emergency-requests/${id}/receipt`, headers: paris, payload: { receivedQuantity: 2 } })
    t.equal(received.statusCode, 200)
    t.match(received.json(), { status: 'received', closedAt: String, allowedTransitions: [] })
    const cancel = await app.inject({ method: 'POST', url: `/v1/emergency-requests/${id}/cancel`, headers: paris, payload: {} })
    t.equal(cancel.statusCode, 409)
    t.match(cancel.json(), { allowedTransitions: [] })
    t.match((await feed(ctx, 'lab', ORG.labBiogaran)).filter((e) => e.type === 'emergency.request_received'), [{ payload: { request: { id } } }])
    for (const h of [paris, biogaran, ordre]) {
      const history = (await get(id, h)).json().history
      t.match(history, [
        { seq: 1, action: 'submitted', status: 'submitted', actor: { role: 'pharmacy', org: ORG.pharmacyParis, user: 'claire' }, details: { quantity: 2 } },
        { seq: 2, action: 'accepted', status: 'accepted', actor: { role: 'lab', org: ORG.labBiogaran, user: 'bob' }, details: { shippingChannel: 'express_carrier' } },
        { seq: 3, action: 'received', status: 'received', actor: { role: 'pharmacy' }, details: { receivedQuantity: 2, previousStatus: 'accepted' } },
      ])
      t.equal(history.length, 3)
    }
    const audit = await app.db.selectFrom('audit_log').select('action').where('object_id', '=', id).orderBy('seq').execute()
    t.same(audit.map((a) => a.action), ['emergency-request.submitted', 'emergency-request.accepted', 'emergency-request.received'])
  })

  t.test('partially accepted, redirected, refused, cancelled: each with its history', async (t) => {
    const partial = (await submit(request({ quantity: 4 }))).json().id
    const p = await answer(partial, { decision: 'partially_accepted', quantity: 1, shippingChannel: 'lab_courier', expectedDelivery: '2026-11-24T12:00:00Z', comment: 'Stock limité' })
    t.match(p.json(), { status: 'partially_accepted', answer: { quantity: 1, shippingChannel: 'lab_courier', shippingChannelLabel: { fr: 'Coursier du laboratoire' }, comment: 'Stock limité' } })
    t.equal((await app.inject({ method: 'POST', url: `/v1/emergency-requests/${partial}/receipt`, headers: paris, payload: {} })).statusCode, 200)

    const redirected = (await submit(request({ quantity: 1 }))).json().id
    const r = await answer(redirected, { decision: 'redirected', redirectTo: { kind: 'wholesaler', name: 'Répartition Île-de-France', organisationId: ORG.wholesaler, contact: '+33 1 00 00 00 70', details: 'Stock dédié dépannage' } })
    t.equal(r.statusCode, 200)
    t.match(r.json(), { status: 'redirected', answer: { redirectTo: { kind: 'wholesaler', organisationId: ORG.wholesaler, details: 'Stock dédié dépannage' } }, allowedTransitions: ['received', 'cancelled'] })

    const refused = (await submit(request({ quantity: 1 }))).json().id
    const f = await app.inject({ method: 'POST', url: `/v1/emergency-requests/${refused}/answer`, headers: { ...biogaran, 'accept-language': 'en' }, payload: { decision: 'refused', reason: 'out_of_stock', comment: 'Aucun stock avant le 15/12' } })
    t.match(f.json(), { status: 'refused', closedAt: String, answer: { reason: 'out_of_stock', reasonLabel: { fr: 'Stock épuisé', en: 'Out of stock' }, comment: 'Aucun stock avant le 15/12' }, allowedTransitions: [] })
    const confirmRefused = await app.inject({ method: 'POST', url: `/v1/emergency-requests/${refused}/receipt`, headers: { ...paris, 'accept-language': 'en' }, payload: {} })
    t.equal(confirmRefused.statusCode, 409)
    t.match(confirmRefused.json(), { code: 'EMERGENCY_INVALID_TRANSITION', currentStatus: 'refused', allowedTransitions: [], detail: /"refused": "received" is not allowed/ })

    const cancelled = (await submit(request({ quantity: 1 }))).json().id
    const c = await app.inject({ method: 'POST', url: `/v1/emergency-requests/${cancelled}/cancel`, headers: paris, payload: { reason: 'Obtenu auprès du grossiste' } })
    t.match(c.json(), { status: 'cancelled', closedAt: String })
    const late = await answer(cancelled, { decision: 'accepted', shippingChannel: 'postal', expectedDelivery: '2026-11-25T10:00:00Z' })
    t.equal(late.statusCode, 409)
    t.match(late.json(), { currentStatus: 'cancelled', allowedTransitions: [] })
    t.match((await feed(ctx, 'lab', ORG.labBiogaran)).filter((e) => e.type === 'emergency.request_cancelled' && e.payload.request.id === cancelled), [{ payload: { request: { id: cancelled } } }])

    for (const [rid, actions] of [[partial, ['submitted', 'partially_accepted', 'received']], [redirected, ['submitted', 'redirected']], [refused, ['submitted', 'refused']], [cancelled, ['submitted', 'cancelled']]] as const) {
      t.same((await get(rid, ordre)).json().history.map((s: any) => s.action), actions)
    }
  })

  t.test('two answers racing: exactly one wins', async (t) => {
    const rid = (await submit(request({ quantity: 1 }))).json().id
    const results = await Promise.all([
      answer(rid, { decision: 'accepted', shippingChannel: 'postal', expectedDelivery: '2026-11-25T10:00:00Z' }),
      answer(rid, { decision: 'refused', reason: 'out_of_stock' }),
      answer(rid, { decision: 'redirected', redirectTo: { kind: 'depot', name: 'CSP' } }),
    ])
    t.same(results.map((r) => r.statusCode).sort(), [200, 409, 409])
    t.equal((await get(rid, ordre)).json().history.length, 2)
    const rid2 = (await submit(request({ quantity: 1 }))).json().id
    const cancels = await Promise.all([1, 2, 3].map(() => app.inject({ method: 'POST', url: `/v1/emergency-requests/${rid2}/cancel`, headers: paris, payload: {} })))
    t.same(cancels.map((r) => r.statusCode).sort(), [200, 409, 409])
    t.same((await get(rid2, ordre)).json().history.map((s: any) => s.action), ['submitted', 'cancelled'])
  })
})

t.test('escalation after the delay, in Paris business hours, only once', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran)
  const paris = auth('pharmacy', ORG.pharmacyParis)
  const ordre = auth('ordre', ORG.ordre)
  await declare(ctx, ORG.labBiogaran, AMOX)
  await declare(ctx, ORG.labBiogaran, AMOX16)
  t.equal((await app.inject({ method: 'PUT', url: `/v1/emergency-openings/${AMOX}`, headers: biogaran, payload: opening() })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: `/v1/emergency-openings/${AMOX16}`, headers: biogaran, payload: opening({ escalationBusinessHours: 1 }) })).statusCode, 200)
  const submit = async (cip13: string, headers = paris) => (await app.inject({ method: 'POST', url: '/v1/emergency-requests', headers, payload: { cip13, quantity: 1, patientEmergency: true } })).json()

  // Friday 16:00 Paris: 2 business hours that day, 2 on Monday → Monday 11:00 Paris (10:00Z).
  ctx.clock.now = new Date('2026-11-27T15:00:00Z')
  const slow = await submit(AMOX)
  t.equal(slow.escalateAt, '2026-11-30T10:00:00.000Z')
  const answered = await submit(AMOX, auth('pharmacy', ORG.pharmacyLyon)) // Paris has one pending already
  const quick = await submit(AMOX16) // 1 business hour: Friday 17:00 Paris
  t.equal(quick.escalateAt, '2026-11-27T16:00:00.000Z')
  t.equal((await app.inject({ method: 'POST', url: `/v1/emergency-requests/${answered.id}/answer`, headers: biogaran, payload: { decision: 'refused', reason: 'out_of_stock' } })).statusCode, 200)

  const escalatedEvents = async () => (await feed(ctx, 'lab', ORG.labBiogaran)).filter((e) => e.type === 'emergency.request_escalated')

  ctx.clock.advance(HOUR - 1) // just before Friday 17:00 Paris
  await app.jobs.runDue()
  t.equal((await escalatedEvents()).length, 0, 'nothing before the delay')

  ctx.clock.advance(1)
  await app.jobs.runDue()
  let events = await escalatedEvents()
  t.same(events.map((e) => e.payload.request.id), [quick.id], 'the 1-hour opening escalates first')

  // The weekend does not count: Saturday evening, nothing more.
  ctx.clock.now = new Date('2026-11-28T20:00:00Z')
  await app.jobs.runDue()
  t.equal((await escalatedEvents()).length, 1)

  ctx.clock.now = new Date('2026-11-30T10:00:00Z')
  await app.jobs.runDue()
  ctx.clock.advance(5 * HOUR)
  await app.jobs.runDue()
  await app.jobs.runDue()
  // A duplicate job (e.g. enqueued twice, or run again after a crash) finds the request escalated and does nothing.
  await escalate(app, slow.id, ctx.clock.now)
  await enqueue(app.db, ESCALATION_QUEUE, { requestId: quick.id }, { runAt: ctx.clock.now })
  await app.jobs.runDue()
  events = await escalatedEvents()
  t.same(events.map((e) => e.payload.request.id).sort(), [quick.id, slow.id].sort(), 'fired once each; never for the answered request')

  const got = (await app.inject({ method: 'GET', url: `/v1/emergency-requests/${slow.id}`, headers: ordre })).json()
  t.match(got, { status: 'submitted', escalatedAt: '2026-11-30T10:00:00.000Z' })
  t.same(got.history.map((s: any) => s.action), ['submitted', 'escalated'])
  t.match(got.history[1], { actor: { role: null, org: null, user: 'system' }, details: { escalateAt: '2026-11-30T10:00:00.000Z' } })
  const watch = await app.inject({ method: 'GET', url: '/v1/emergency-requests?escalated=true&status=submitted', headers: ordre })
  t.same(watch.json().items.map((r: any) => r.id).sort(), [quick.id, slow.id].sort(), 'the operator lists escalated, unanswered requests')
  t.equal((await feed(ctx, 'ordre', ORG.ordre)).filter((e) => e.type === 'emergency.request_escalated').length, 2, 'the operator is told too')
  t.equal((await feed(ctx, 'pharmacy', ORG.pharmacyParis)).filter((e) => e.type === 'emergency.request_escalated').length, 0)
  const answeredNow = (await app.inject({ method: 'GET', url: `/v1/emergency-requests/${answered.id}`, headers: ordre })).json()
  t.equal(answeredNow.escalatedAt, null)

  // Answering after escalation is still possible.
  const late = await app.inject({ method: 'POST', url: `/v1/emergency-requests/${slow.id}/answer`, headers: biogaran, payload: { decision: 'accepted', shippingChannel: 'express_carrier', expectedDelivery: '2026-12-01T10:00:00Z' } })
  t.equal(late.statusCode, 200)
})

t.test('plugin option sets the default delay', async (t) => {
  const ctx = await setup(t, { EMERGENCY_ESCALATION_BUSINESS_HOURS: '9' })
  const biogaran = ctx.auth('lab', ORG.labBiogaran)
  await declare(ctx, ORG.labBiogaran, AMOX)
  const o = await ctx.app.inject({ method: 'PUT', url: `/v1/emergency-openings/${AMOX}`, headers: biogaran, payload: opening() })
  t.equal(o.json().escalationBusinessHours, 9)
  const r = (await ctx.app.inject({ method: 'POST', url: '/v1/emergency-requests', headers: ctx.auth('pharmacy', ORG.pharmacyParis), payload: { cip13: AMOX, quantity: 1, patientEmergency: true } })).json()
  t.equal(r.escalateAt, '2026-11-24T09:00:00.000Z', 'Monday 10:00 + 9 business hours = Tuesday 10:00 Paris')
})

t.test('per-lab figures', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran)
  const paris = auth('pharmacy', ORG.pharmacyParis)
  await declare(ctx, ORG.labBiogaran, AMOX)
  await app.inject({ method: 'PUT', url: `/v1/emergency-openings/${AMOX}`, headers: biogaran, payload: opening() })
  const submit = async (headers = paris) => (await app.inject({ method: 'POST', url: '/v1/emergency-requests', headers, payload: { cip13: AMOX, quantity: 2, patientEmergency: true } })).json().id as string
  const answerIn = async (rid: string, minutes: number, body: Record<string, unknown>) => {
    ctx.clock.advance(minutes * 60_000)
    const res = await app.inject({ method: 'POST', url: `/v1/emergency-requests/${rid}/answer`, headers: biogaran, payload: body })
    if (res.statusCode !== 200) throw new Error(res.body)
  }
  const ship = { shippingChannel: 'postal', expectedDelivery: '2026-11-30T10:00:00Z' }
  await answerIn(await submit(), 30, { decision: 'accepted', ...ship })
  await answerIn(await submit(), 60, { decision: 'partially_accepted', quantity: 1, ...ship })
  await answerIn(await submit(), 120, { decision: 'refused', reason: 'out_of_stock' })
  await answerIn(await submit(), 10, { decision: 'redirected', redirectTo: { kind: 'depot', name: 'CSP' } })
  await submit(auth('pharmacy', ORG.pharmacyLyon)) // unanswered (Paris could not send another while it is pending)
  ctx.clock.advance(60_000)
  const cancelled = await submit()
  await app.inject({ method: 'POST', url: `/v1/emergency-requests/${cancelled}/cancel`, headers: paris, payload: {} })

  // pagination: most recent first, no duplicates, cursor bound to its filters
  const page1 = (await app.inject({ method: 'GET', url: '/v1/emergency-requests?limit=4', headers: paris })).json()
  t.equal(page1.items.length, 4)
  const page2 = (await app.inject({ method: 'GET', url: `/v1/emergency-requests?limit=4&cursor=${page1.nextCursor}`, headers: paris })).json()
  t.equal(page2.items.length, 1)
  t.equal(page2.nextCursor, null)
  t.equal(new Set([...page1.items, ...page2.items].map((r: any) => r.id)).size, 5)
  t.equal(page1.items[0].id, cancelled, 'most recent first')
  const wrong = await app.inject({ method: 'GET', url: `/v1/emergency-requests?limit=4&status=submitted&cursor=${page1.nextCursor}`, headers: paris })
  t.equal(wrong.json().code, 'INVALID_CURSOR')
  t.equal((await app.inject({ method: 'GET', url: '/v1/emergency-requests?cursor=%%%', headers: paris })).json().code, 'INVALID_CURSOR')
  t.match((await app.inject({ method: 'GET', url: '/v1/emergency-requests/not-a-uuid', headers: paris })).json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'params.id' }] })

  const res = await app.inject({ method: 'GET', url: '/v1/emergency-statistics?from=2026-11-23&to=2026-11-23', headers: biogaran })
  t.equal(res.statusCode, 200)
  t.same(res.json(), {
    lab: { id: ORG.labBiogaran, name: 'BIOGARAN' }, from: '2026-11-23', to: '2026-11-23',
    received: 6, answered: 4, byDecision: { accepted: 1, partially_accepted: 1, redirected: 1, refused: 1 },
    cancelledBeforeAnswer: 1, escalated: 0, medianMinutesToAnswer: 45, acceptanceRate: 0.5,
  })
  const def = await app.inject({ method: 'GET', url: '/v1/emergency-statistics', headers: biogaran })
  t.match(def.json(), { to: '2026-11-23', from: '2026-10-25', received: 6 })
  const empty = await app.inject({ method: 'GET', url: '/v1/emergency-statistics?from=2026-11-24&to=2026-11-30', headers: biogaran })
  t.match(empty.json(), { received: 0, answered: 0, medianMinutesToAnswer: null, acceptanceRate: null })
  const ordre = auth('ordre', ORG.ordre)
  t.match((await app.inject({ method: 'GET', url: `/v1/emergency-statistics?labId=${ORG.labBiogaran}&from=2026-11-01&to=2026-11-30`, headers: ordre })).json(), { received: 6 })
  t.match((await app.inject({ method: 'GET', url: '/v1/emergency-statistics', headers: ordre })).json(), { lab: null, received: 6, byLab: [{ lab: { id: ORG.labBiogaran }, received: 6 }] }, 'without labId: the national figures')
  t.equal((await app.inject({ method: 'GET', url: `/v1/emergency-statistics?labId=${ORG.labArrow}`, headers: biogaran })).statusCode, 404, 'a lab reads only its own')
  t.equal((await app.inject({ method: 'GET', url: '/v1/emergency-statistics', headers: paris })).statusCode, 403)
  t.match((await app.inject({ method: 'GET', url: '/v1/emergency-statistics?from=2026-11-30&to=2026-11-01', headers: biogaran })).json(), { errors: [{ field: 'querystring.from' }] })
  t.equal((await app.inject({ method: 'GET', url: '/v1/emergency-statistics', headers: auth('lab', ORG.labAccord) })).statusCode, 403)
})

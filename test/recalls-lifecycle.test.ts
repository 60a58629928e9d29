// Discarding a draft, cancelling a scheduled broadcast, a recipient's own acknowledgement history.
import t from 'tap'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

const AMOX = '3400936128149' // Biogaran
const ROSU = '3400949497294' // Biogaran
const HOUR = 3_600_000
const PHARMACY_REUNION = '974100060'

async function setup(t: { teardown(fn: () => unknown): void }) {
  const ctx = await testApp(t)
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  ctx.clock.now = new Date('2026-11-22T10:00:00Z')
  return ctx
}

async function feed(ctx: TestContext, role: 'pharmacy' | 'ansm' | 'lab', org: string) {
  await ctx.app.hub.runSequencer()
  const res = await ctx.app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=100', headers: ctx.auth(role, org) })
  return res.json().items as Array<{ type: string; payload: any }>
}
const blocks = async (ctx: TestContext, recallId: string) =>
  (await ctx.app.db.selectFrom('dispensation_blocks').select(['cip13', 'batch', 'state']).where('recall_id', '=', recallId).orderBy('batch').execute()).map((b) => `${b.cip13}/${b.batch}/${b.state}`)
const broadcasts = async (ctx: TestContext, id: string) =>
  (await ctx.app.db.selectFrom('events').select('type').where('subject_id', '=', id).where('type', 'in', ['recall.broadcast', 'recall.updated']).execute()).length

const draft = (extra: Record<string, unknown> = {}) => ({
  title: 'Rappel de lots d’Amoxicilline Biogaran 1 g',
  reason: 'Défaut d’étanchéité de l’opercule constaté sur deux lots',
  message: 'Mettez en quarantaine les boîtes des lots concernés et retournez-les à votre grossiste.',
  action: 'quarantine_return',
  recipients: { categories: ['pharmacy'], regions: ['11'], departments: ['2A'] },
  contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 01' }],
  batches: [{ cip13: AMOX, batch: 'L2411A', expiry: '2027-06-30' }],
  blockDispensation: true,
  ...extra,
})

t.test('discarding a draft', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran, 'alice')
  const arrow = auth('lab', ORG.labArrow)
  const ansm = auth('ansm', ORG.ansm, 'eva')
  const paris = auth('pharmacy', ORG.pharmacyParis)
  const create = async (extra: Record<string, unknown> = {}) => {
    const res = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft(extra) })
    t.equal(res.statusCode, 201, res.body)
    return res.json() as { id: string; reference: string }
  }
  const post = (id: string, action: string, headers: Record<string, string>, payload: Record<string, unknown> = {}) =>
    app.inject({ method: 'POST', url: `/v1/recalls/${id}/${action}`, headers, payload })
  const queue = async () => (await app.inject({ method: 'GET', url: '/v1/recall-review-queue', headers: ansm })).json().items.map((i: any) => `${i.reference} v${i.version}`)

  const a = await create()
  const b = await create()
  const c = await create()

  t.test('a draft: another lab gets 404 and nothing changes; the owner discards it', async (t) => {
    const other = await post(a.id, 'discard', arrow, { reason: 'pas le mien' })
    t.equal(other.statusCode, 404)
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${a.id}`, headers: biogaran })).json().status, 'draft', 'unchanged')
    t.equal((await post(a.id, 'discard', ansm)).statusCode, 403, 'ANSM does not discard a lab’s draft')
    const res = await post(a.id, 'discard', { ...biogaran, 'idempotency-key': 'discard-a-0001' }, { reason: 'Doublon' })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { reference: 'R-2026-0001', status: 'discarded', versionStatus: 'discarded', liveVersion: null, allowedActions: [] })
    const replay = await post(a.id, 'discard', { ...biogaran, 'idempotency-key': 'discard-a-0001' }, { reason: 'Doublon' })
    t.equal(replay.statusCode, 200, 'a retry with the same key replays the answer')
    t.equal(replay.headers['idempotent-replayed'], 'true')
    t.same((await feed(ctx, 'ansm', ORG.ansm)).map((e) => e.type), [], 'ANSM never saw it: nothing on its feed')
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${a.id}`, headers: ansm })).statusCode, 404, 'ANSM never saw it')
  })

  t.test('submitted: the lab withdraws it from ANSM’s review queue; ANSM is told and still reads it', async (t) => {
    t.equal((await post(b.id, 'submit', biogaran)).statusCode, 200)
    t.same(await queue(), ['R-2026-0002 v1'])
    const res = await post(b.id, 'discard', biogaran)
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'discarded', allowedActions: [] })
    t.same(await queue(), [], 'left ANSM’s queue')
    t.match((await feed(ctx, 'ansm', ORG.ansm)).map((e) => [e.type, e.payload.reference, e.payload.withdrawn]), [['recall.submitted', 'R-2026-0002'], ['recall.discarded', 'R-2026-0002', true]])
    t.match((await app.inject({ method: 'GET', url: `/v1/recalls/${b.id}`, headers: ansm })).json(), { status: 'discarded', versionStatus: 'discarded' })
    const history = (await app.inject({ method: 'GET', url: `/v1/recalls/${b.id}/history`, headers: ansm })).json()
    t.same(history.thread.map((m: any) => m.kind), ['created', 'submitted', 'discarded'])
    t.match(history.thread[2], { author: { role: 'lab', org: ORG.labBiogaran, user: 'alice' }, text: null })
    t.same(history.versions.map((v: any) => v.status), ['discarded'])
  })

  t.test('changes requested: the owner discards it with a reason kept in the history', async (t) => {
    await post(c.id, 'submit', biogaran)
    t.equal((await post(c.id, 'request-changes', ansm, { comment: 'Précisez les lots.' })).statusCode, 200)
    const res = await post(c.id, 'discard', biogaran, { reason: 'Lot finalement conforme.' })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'discarded', allowedActions: [] })
    const history = (await app.inject({ method: 'GET', url: `/v1/recalls/${c.id}/history`, headers: biogaran })).json()
    t.match(history.thread.at(-1), { kind: 'discarded', text: 'Lot finalement conforme.' })
    const audit = await app.db.selectFrom('audit_log').select(['action']).where('object_id', '=', c.id).orderBy('seq').execute()
    t.equal(audit.at(-1)?.action, 'recall.discarded')
  })

  t.test('after discard every action is refused with 409 and no allowed action (French, or English)', async (t) => {
    for (const [method, action, headers, payload] of [
      ['PATCH', '', biogaran, { title: 'Je reprends ce brouillon' }],
      ['POST', 'submit', biogaran, {}],
      ['POST', 'discard', biogaran, {}],
      ['POST', 'close', biogaran, {}],
      ['POST', 'cancel-schedule', biogaran, { reason: 'test' }],
      ['POST', 'approve', ansm, {}],
      ['POST', 'reject', ansm, { comment: 'non' }],
    ] as const) {
      const res = await app.inject({ method, url: `/v1/recalls/${c.id}${action ? `/${action}` : ''}`, headers, payload })
      t.equal(res.statusCode, 409, `${method} ${action}`)
      t.match(res.json(), { code: 'RECALL_INVALID_TRANSITION', allowedActions: [], currentStatus: 'discarded' })
    }
    const fr = await post(c.id, 'submit', biogaran)
    t.match(fr.json().detail, 'est à l’état « discarded »')
    const en = await post(c.id, 'submit', { ...biogaran, 'accept-language': 'en' })
    t.match(en.json(), { title: 'Action not allowed in this state', detail: /is "discarded".*allowed actions: none/ })
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${c.id}`, headers: biogaran })).json().status, 'discarded', 'still discarded')
  })

  t.test('lists leave discarded drafts out unless asked; references are never reused', async (t) => {
    const mine = (await app.inject({ method: 'GET', url: '/v1/recalls', headers: biogaran })).json().items
    t.same(mine, [], 'all three discarded: the default list is empty')
    const discarded = (await app.inject({ method: 'GET', url: '/v1/recalls?status=discarded', headers: biogaran })).json().items
    t.same(discarded.map((r: any) => r.reference).sort(), ['R-2026-0001', 'R-2026-0002', 'R-2026-0003'])
    t.same((await app.inject({ method: 'GET', url: '/v1/recalls?status=discarded', headers: ansm })).json().items.map((r: any) => r.reference).sort(), ['R-2026-0002', 'R-2026-0003'], 'ANSM: the ones it saw')
    const next = await create()
    t.equal(next.reference, 'R-2026-0004', 'the next draft gets the next number')
    t.equal(Number((await app.db.selectFrom('recalls').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n), 4, 'no row deleted')
  })

  t.test('once broadcast a recall cannot be discarded; a correction draft can, leaving the broadcast version in force', async (t) => {
    const d = await create({ batches: [{ cip13: ROSU, batch: 'R7' }] })
    await post(d.id, 'submit', biogaran)
    t.equal((await post(d.id, 'approve', ansm)).statusCode, 200)
    t.same(await blocks(ctx, d.id), [`${ROSU}/R7/active`])
    const refused = await post(d.id, 'discard', biogaran)
    t.equal(refused.statusCode, 409)
    t.same(refused.json().allowedActions, ['edit', 'close'])

    const fix = await app.inject({ method: 'PATCH', url: `/v1/recalls/${d.id}`, headers: biogaran, payload: { batches: [{ cip13: ROSU, batch: 'R8' }], title: 'Rappel corrigé' } })
    t.match(fix.json(), { version: 2, versionStatus: 'draft', liveVersion: 1, allowedActions: ['edit', 'submit', 'discard', 'close'] })
    const res = await post(d.id, 'discard', biogaran, { reason: 'Correction inutile' })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'broadcast', version: 1, versionStatus: 'broadcast', liveVersion: 1, allowedActions: ['edit', 'close'], batches: [{ batch: 'R7' }] })
    t.not(res.json().title, 'Rappel corrigé', 'the lab sees the version in force again')
    t.same(await blocks(ctx, d.id), [`${ROSU}/R7/active`], 'blocks untouched')
    t.match((await app.inject({ method: 'GET', url: `/v1/recalls/${d.id}`, headers: paris })).json(), { version: 1, batches: [{ batch: 'R7' }] })
    const versions = (await app.inject({ method: 'GET', url: `/v1/recalls/${d.id}/history`, headers: biogaran })).json().versions
    t.same(versions.map((v: any) => v.status), ['broadcast', 'discarded'])
    t.equal((await app.inject({ method: 'GET', url: '/v1/recalls', headers: biogaran })).json().items.some((r: any) => r.id === d.id), true, 'still listed')

    // Another correction (version 3), submitted then withdrawn: it leaves the queue, the recall stays in force.
    const again = await app.inject({ method: 'PATCH', url: `/v1/recalls/${d.id}`, headers: biogaran, payload: { title: 'Deuxième correction' } })
    t.match(again.json(), { version: 3, versionStatus: 'draft' })
    await post(d.id, 'submit', biogaran)
    t.same(await queue(), [`${d.reference} v3`])
    t.match((await post(d.id, 'discard', biogaran)).json(), { status: 'broadcast', version: 1, liveVersion: 1 })
    t.same(await queue(), [])
    t.match((await feed(ctx, 'ansm', ORG.ansm)).at(-1), { type: 'recall.discarded', payload: { version: 3, revision: true, withdrawn: true } })
    t.equal(await broadcasts(ctx, d.id), 1, 'nothing broadcast again')
    t.equal((await post(d.id, 'close', biogaran)).statusCode, 200, 'closing still works')
  })

  t.test('an alert is discarded the same way', async (t) => {
    const res = await app.inject({
      method: 'POST', url: '/v1/alerts', headers: biogaran,
      payload: { title: 'Information de sécurité', reason: 'Pharmacovigilance', message: 'Message de l’alerte.', recipients: { categories: ['pharmacy'] }, contacts: [{ name: 'PV' }] },
    })
    const id = res.json().id
    t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/discard`, headers: biogaran })).statusCode, 404, 'an alert is not a recall')
    const out = await app.inject({ method: 'POST', url: `/v1/alerts/${id}/discard`, headers: biogaran })
    t.equal(out.statusCode, 200, out.body)
    t.match(out.json(), { reference: 'A-2026-0001', status: 'discarded', allowedActions: [] })
    t.same((await app.inject({ method: 'GET', url: '/v1/alerts', headers: biogaran })).json().items, [])
  })
})

t.test('cancelling a scheduled broadcast', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran, 'alice')
  const arrow = auth('lab', ORG.labArrow)
  const ansm = auth('ansm', ORG.ansm, 'eva')
  const reunion = auth('pharmacy', PHARMACY_REUNION)
  const post = (action: string, headers: Record<string, string>, payload: Record<string, unknown> = {}) =>
    app.inject({ method: 'POST', url: `/v1/recalls/${id}/${action}`, headers, payload })
  const res = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft({ scheduledAt: '2026-11-22T14:00:00Z', recipients: { categories: ['pharmacy'], regions: ['04'] }, batches: [{ cip13: ROSU, batch: 'R1' }] }) })
  const id: string = res.json().id

  t.test('approved for later: only cancel-schedule is allowed; others and bad input are refused', async (t) => {
    await post('submit', biogaran)
    const ok = await post('approve', ansm)
    t.match(ok.json(), { status: 'approved', versionStatus: 'approved', allowedActions: ['cancel-schedule'] })
    const discard = await post('discard', biogaran)
    t.equal(discard.statusCode, 409)
    t.same(discard.json().allowedActions, ['cancel-schedule'])
    t.equal((await post('cancel-schedule', arrow, { reason: 'x' })).statusCode, 404, 'another lab')
    t.equal((await post('cancel-schedule', reunion, { reason: 'x' })).statusCode, 403, 'a pharmacy')
    const noReason = await post('cancel-schedule', { ...biogaran, 'accept-language': 'en' })
    t.equal(noReason.statusCode, 400)
    t.match(noReason.json().errors[0], { field: /reason/ })
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: biogaran })).json().status, 'approved', 'unchanged')
  })

  t.test('the lab cancels: back to draft, who and why in the history, ANSM told; the due job broadcasts nothing', async (t) => {
    const res = await post('cancel-schedule', biogaran, { reason: 'Le lot R1 n’est finalement pas concerné.' })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'draft', versionStatus: 'draft', liveVersion: null, allowedActions: ['edit', 'submit', 'discard'] })
    const history = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/history`, headers: ansm })).json()
    t.same(history.thread.map((m: any) => m.kind), ['created', 'submitted', 'approved', 'scheduled', 'schedule_cancelled'])
    t.match(history.thread.at(-1), { text: 'Le lot R1 n’est finalement pas concerné.', author: { role: 'lab', org: ORG.labBiogaran, user: 'alice' } })
    t.match((await feed(ctx, 'ansm', ORG.ansm)).at(-1), { type: 'recall.schedule_cancelled', payload: { reason: 'Le lot R1 n’est finalement pas concerné.', by: 'lab' } })
    ctx.clock.advance(4 * HOUR + 1000)
    t.ok((await app.jobs.runDue()) >= 1, 'the queued broadcast ran')
    t.equal(await broadcasts(ctx, id), 0, 'no broadcast event')
    t.same(await feed(ctx, 'pharmacy', PHARMACY_REUNION), [], 'nothing reached the pharmacy')
    t.same(await blocks(ctx, id), [], 'nothing blocked')
    t.match((await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: biogaran })).json(), { status: 'draft', liveVersion: null })
  })

  t.test('the lab edits and resubmits; ANSM may cancel too; a stale job never broadcasts early', async (t) => {
    const edit = await app.inject({ method: 'PATCH', url: `/v1/recalls/${id}`, headers: biogaran, payload: { scheduledAt: '2026-11-23T10:00:00Z' } })
    t.equal(edit.statusCode, 200, edit.body)
    t.equal((await post('submit', biogaran)).statusCode, 200)
    t.equal((await post('approve', ansm)).json().status, 'approved')
    const byAnsm = await post('cancel-schedule', ansm, { reason: 'Attendre la contre-analyse.' })
    t.equal(byAnsm.statusCode, 200, byAnsm.body)
    t.match(byAnsm.json(), { status: 'draft' })
    t.match((await feed(ctx, 'lab', ORG.labBiogaran)).at(-1), { type: 'recall.schedule_cancelled', payload: { by: 'ansm', reason: 'Attendre la contre-analyse.' } })
    // Rescheduled two hours later and approved again: the job queued for 10:00 must not broadcast.
    await app.inject({ method: 'PATCH', url: `/v1/recalls/${id}`, headers: biogaran, payload: { scheduledAt: '2026-11-23T12:00:00Z' } })
    await post('submit', biogaran)
    t.equal((await post('approve', ansm)).json().status, 'approved')
    ctx.clock.now = new Date('2026-11-23T10:00:01Z')
    await app.jobs.runDue()
    t.equal(await broadcasts(ctx, id), 0, 'not at the cancelled time')
    t.same(await blocks(ctx, id), [])
    ctx.clock.now = new Date('2026-11-23T12:00:01Z')
    await app.jobs.runDue()
    t.equal(await broadcasts(ctx, id), 1, 'broadcast once, at the new time')
    t.match((await feed(ctx, 'pharmacy', PHARMACY_REUNION)).map((e) => e.type), ['recall.broadcast'])
    t.same(await blocks(ctx, id), [`${ROSU}/R1/active`])
  })

  t.test('once broadcast, cancel is refused with 409 (close instead)', async (t) => {
    const res = await post('cancel-schedule', biogaran, { reason: 'trop tard' })
    t.equal(res.statusCode, 409)
    t.same(res.json().allowedActions, ['edit', 'close'])
    const en = await post('cancel-schedule', { ...ansm, 'accept-language': 'en' }, { reason: 'too late' })
    t.match(en.json().detail, /action "cancel-schedule" is not allowed; allowed actions: edit, close/)
    t.equal(await broadcasts(ctx, id), 1)
  })
})

t.test('a recipient reads its own acknowledgement history', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran)
  const ansm = auth('ansm', ORG.ansm)
  const paris = auth('pharmacy', ORG.pharmacyParis, 'marie')
  const ajaccio = auth('pharmacy', ORG.pharmacyAjaccio, 'paul')
  const lyon = auth('pharmacy', ORG.pharmacyLyon)
  const res = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft() })
  const id: string = res.json().id
  await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: biogaran })
  t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/approve`, headers: ansm })).statusCode, 200)
  const url = `/v1/recalls/${id}/acknowledgement`
  const get = (headers: Record<string, string>) => app.inject({ method: 'GET', url, headers })

  t.test('a recipient that never acknowledged: current null, empty history', async (t) => {
    const res = await get(paris)
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), { id, reference: 'R-2026-0001', current: null, history: [] })
  })

  t.test('two acknowledgements: a history of two, oldest first, with what, when and who', async (t) => {
    t.equal((await app.inject({ method: 'PUT', url, headers: paris, payload: { status: 'done', quarantined: 12 } })).statusCode, 200)
    ctx.clock.advance(HOUR)
    t.equal((await app.inject({ method: 'PUT', url, headers: paris, payload: { status: 'done', quarantined: 8, returned: 4, comment: 'recompté' } })).statusCode, 200)
    await app.inject({ method: 'PUT', url, headers: paris, payload: { status: 'read' } }) // changes nothing after done
    const body = (await get(paris)).json()
    t.match(body.current, { status: 'done', quarantined: 8, returned: 4, changes: 2 })
    t.same(body.history, [
      { seq: 1, status: 'done', quarantined: 12, returned: 0, destroyed: 0, noStock: false, comment: null, version: 1, acknowledgedAt: '2026-11-22T10:00:00.000Z', by: { org: ORG.pharmacyParis, user: 'marie' }, source: 'recipient', signedBy: null, signedOn: null },
      { seq: 2, status: 'done', quarantined: 8, returned: 4, destroyed: 0, noStock: false, comment: 'recompté', version: 1, acknowledgedAt: '2026-11-22T11:00:00.000Z', by: { org: ORG.pharmacyParis, user: 'marie' }, source: 'recipient', signedBy: null, signedOn: null },
    ])
  })

  t.test('another recipient sees only its own; anyone else gets 404 (English too)', async (t) => {
    t.same((await get(ajaccio)).json().history, [], 'Ajaccio does not see Paris’s')
    await app.inject({ method: 'PUT', url, headers: ajaccio, payload: { status: 'read' } })
    const own = (await get(ajaccio)).json()
    t.match(own.history, [{ seq: 1, status: 'read', by: { org: ORG.pharmacyAjaccio, user: 'paul' } }])
    t.equal(own.history.length, 1)
    const notAddressed = await get(lyon)
    t.equal(notAddressed.statusCode, 404, 'a pharmacy the recall was not addressed to')
    t.match(notAddressed.json().detail, 'introuvable')
    const en = await get({ ...lyon, 'accept-language': 'en' })
    t.match(en.json(), { status: 404, detail: `Recall ${id} was not found.` })
    t.equal((await get(biogaran)).statusCode, 404, 'the lab uses coverage and recipients instead')
    t.equal((await get(ansm)).statusCode, 404, 'ANSM too')
    t.equal((await app.inject({ method: 'GET', url: `/v1/alerts/${id}/acknowledgement`, headers: paris })).statusCode, 404, 'a recall is not an alert')
  })

  t.test('still readable after closing', async (t) => {
    t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/close`, headers: biogaran })).statusCode, 200)
    t.equal((await get(paris)).json().history.length, 2)
  })

  t.test('the alert equivalent', async (t) => {
    const res = await app.inject({
      method: 'POST', url: '/v1/alerts', headers: biogaran,
      payload: { title: 'Information de sécurité', reason: 'Pharmacovigilance', message: 'Message de l’alerte.', recipients: { categories: ['pharmacy'], regions: ['11'] }, contacts: [{ name: 'PV' }] },
    })
    const alertId = res.json().id
    await app.inject({ method: 'POST', url: `/v1/alerts/${alertId}/submit`, headers: biogaran })
    t.equal((await app.inject({ method: 'POST', url: `/v1/alerts/${alertId}/approve`, headers: ansm })).statusCode, 200)
    t.equal((await app.inject({ method: 'PUT', url: `/v1/alerts/${alertId}/acknowledgement`, headers: paris, payload: { status: 'read' } })).statusCode, 200)
    const own = (await app.inject({ method: 'GET', url: `/v1/alerts/${alertId}/acknowledgement`, headers: paris })).json()
    t.match(own, { reference: 'A-2026-0001', current: { status: 'read', changes: 1 }, history: [{ seq: 1, status: 'read' }] })
    t.equal((await app.inject({ method: 'GET', url: `/v1/alerts/${alertId}/acknowledgement`, headers: ajaccio })).statusCode, 404, 'Corsica not targeted')
  })
})

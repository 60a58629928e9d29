import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

const AMOX = '3400936128149' // Biogaran
const ROSU = '3400949497294' // Biogaran
const AMOXCLAV = '3400938801460' // Arrow
const HOUR = 3_600_000

async function setup(t: { teardown(fn: () => unknown): void }) {
  const ctx = await testApp(t)
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  ctx.clock.now = new Date('2026-11-22T10:00:00Z')
  return ctx
}

async function feed(ctx: TestContext, role: 'pharmacy' | 'wholesaler' | 'hospital' | 'ansm' | 'lab', org: string) {
  await ctx.app.hub.runSequencer()
  const res = await ctx.app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=100', headers: ctx.auth(role, org) })
  return res.json().items as Array<{ type: string; payload: any; eventId?: string; id?: string }>
}
const count = async (ctx: TestContext, table: 'recalls' | 'recall_versions' | 'recall_ack_history' | 'events') =>
  Number((await ctx.app.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
const blocks = async (ctx: TestContext, recallId: string) =>
  (await ctx.app.db.selectFrom('dispensation_blocks').select(['cip13', 'batch', 'state']).where('recall_id', '=', recallId).orderBy('batch').execute()).map((b) => `${b.cip13}/${b.batch}/${b.state}`)

const draft = (extra: Record<string, unknown> = {}) => ({
  title: 'Rappel de lots d’Amoxicilline Biogaran 1 g',
  reason: 'Défaut d’étanchéité de l’opercule constaté sur deux lots',
  message: 'Mettez en quarantaine les boîtes des lots concernés et retournez-les à votre grossiste.',
  action: 'quarantine_return',
  recipients: { categories: ['pharmacy', 'wholesaler', 'hospital'], regions: ['11'], departments: ['2A'] },
  contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 01' }],
  batches: [
    { cip13: AMOX, batch: 'L2411A', expiry: '2027-06-30' },
    { cip13: AMOX, batch: 'l2411b', expiry: '2027-07-31' },
  ],
  blockDispensation: true,
  ...extra,
})

t.test('a batch recall from draft to report', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran, 'alice')
  const arrow = auth('lab', ORG.labArrow, 'bob')
  const ansm = auth('ansm', ORG.ansm, 'eva')
  const paris = auth('pharmacy', ORG.pharmacyParis)
  const lyon = auth('pharmacy', ORG.pharmacyLyon)
  const ajaccio = auth('pharmacy', ORG.pharmacyAjaccio)
  const hospital = auth('hospital', ORG.hospital)
  let id = ''

  t.test('a lab drafts a recall of its own batches; it gets a reference', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft() })
    t.equal(res.statusCode, 201, res.body)
    const r = res.json()
    id = r.id
    t.match(r, { reference: 'R-2026-0001', status: 'draft', version: 1, versionStatus: 'draft', liveVersion: null, allowedActions: ['edit', 'submit'], blockDispensation: true })
    t.same(r.batches.map((b: any) => b.batch), ['L2411A', 'L2411B'], 'batch numbers are upper-cased')
    t.ok(r.batches[0].name, 'product name from the referential')
    t.same(r.reminderDelaysHours, [24, 72], 'default reminder delays')
  })

  t.test('another lab’s product is refused as not found, naming it, and nothing is created', async (t) => {
    const before = await count(ctx, 'recalls')
    const res = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft({ batches: [{ cip13: AMOX, batch: 'X1' }, { cip13: AMOXCLAV, batch: 'X2' }] }) })
    t.equal(res.statusCode, 404)
    t.equal(res.json().errors[0].field, 'body.batches.1.cip13')
    t.match(res.json().detail, AMOXCLAV)
    t.equal(await count(ctx, 'recalls'), before)
  })

  t.test('bad input is refused naming the field, and nothing changes', async (t) => {
    const before = await count(ctx, 'recalls')
    const region = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft({ recipients: { categories: ['pharmacy'], regions: ['99'] } }) })
    t.equal(region.statusCode, 400)
    t.equal(region.json().errors[0].field, 'body.recipients.regions.0')
    const noBatch = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft({ batches: [] }) })
    t.equal(noBatch.statusCode, 400)
    t.match(noBatch.json().errors[0].field, /batches/)
    const dup = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft({ batches: [{ cip13: AMOX, batch: 'A1' }, { cip13: AMOX, batch: 'a1' }] }) })
    t.equal(dup.statusCode, 400)
    t.equal(dup.json().errors[0].field, 'body.batches.1.batch')
    const past = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft({ scheduledAt: '2026-11-21T10:00:00Z' }) })
    t.equal(past.statusCode, 400)
    t.equal(past.json().errors[0].field, 'body.scheduledAt')
    const en = await app.inject({ method: 'POST', url: '/v1/recalls', headers: { ...biogaran, 'accept-language': 'en' }, payload: draft({ action: 'burn' }) })
    t.equal(en.statusCode, 400)
    t.match(en.json().errors[0].field, /action/)
    t.equal(await count(ctx, 'recalls'), before)
  })

  t.test('other tenants get 404 on every route; ANSM does not see a draft', async (t) => {
    for (const [method, url, payload] of [
      ['GET', `/v1/recalls/${id}`, undefined],
      ['PATCH', `/v1/recalls/${id}`, { title: 'Piraté par un autre labo' }],
      ['POST', `/v1/recalls/${id}/submit`, {}],
      ['POST', `/v1/recalls/${id}/comments`, { text: 'bonjour' }],
      ['GET', `/v1/recalls/${id}/history`, undefined],
      ['GET', `/v1/recalls/${id}/coverage`, undefined],
      ['GET', `/v1/recalls/${id}/recipients`, undefined],
      ['POST', `/v1/recalls/${id}/close`, {}],
      ['GET', `/v1/recalls/${id}/report`, undefined],
    ] as const) {
      const res = await app.inject({ method, url, headers: arrow, ...(payload ? { payload } : {}) })
      t.equal(res.statusCode, 404, `${method} ${url}`)
    }
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: ansm })).statusCode, 404)
    t.same((await app.inject({ method: 'GET', url: '/v1/recalls', headers: arrow })).json().items, [])
    t.equal((await app.inject({ method: 'GET', url: '/v1/recalls', headers: biogaran })).json().items.length, 1)
  })

  t.test('ANSM cannot approve before submission: 409 naming the allowed actions', async (t) => {
    const lab = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/close`, headers: biogaran })
    t.equal(lab.statusCode, 409)
    t.same(lab.json().allowedActions, ['edit', 'submit', 'discard'])
    t.equal(lab.json().code, 'RECALL_INVALID_TRANSITION')
    t.match(lab.json().detail, 'edit, submit')
  })

  t.test('the lab submits; ANSM sees it in its queue; nothing reaches any recipient', async (t) => {
    const res = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: biogaran })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'submitted', allowedActions: ['approve', 'request-changes', 'reject'] })
    const queue = await app.inject({ method: 'GET', url: '/v1/recall-review-queue', headers: ansm })
    t.match(queue.json().items, [{ id, kind: 'recall', reference: 'R-2026-0001', version: 1, revision: false }])
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: ansm })).statusCode, 200)
    t.match((await feed(ctx, 'ansm', ORG.ansm)).map((e) => e.type), ['recall.submitted'])
    t.same(await feed(ctx, 'pharmacy', ORG.pharmacyParis), [], 'no event for a pharmacy before approval')
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: paris })).statusCode, 404)
    t.same(await blocks(ctx, id), [], 'nothing blocked before approval')
    const again = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: biogaran })
    t.equal(again.statusCode, 409)
    const edit = await app.inject({ method: 'PATCH', url: `/v1/recalls/${id}`, headers: biogaran, payload: { title: 'Changé pendant la revue' } })
    t.equal(edit.statusCode, 409, 'no edit while ANSM reviews')
  })

  t.test('ANSM asks for changes with a comment; the lab answers, edits and resubmits', async (t) => {
    const noComment = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/request-changes`, headers: ansm, payload: {} })
    t.equal(noComment.statusCode, 400)
    t.equal(noComment.json().errors[0].field, 'body.comment')
    const lab = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/approve`, headers: biogaran })
    t.equal(lab.statusCode, 403, 'a lab cannot approve')
    const res = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/request-changes`, headers: ansm, payload: { comment: 'Précisez le grossiste à qui retourner les boîtes.' } })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { status: 'changes_requested', allowedActions: ['edit', 'submit'] })
    t.match((await feed(ctx, 'lab', ORG.labBiogaran)).map((e) => e.type), ['recall.reviewed'])
    const comment = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/comments`, headers: biogaran, payload: { text: 'Entendu, nous précisons.' } })
    t.equal(comment.statusCode, 201)
    const edit = await app.inject({ method: 'PATCH', url: `/v1/recalls/${id}`, headers: biogaran, payload: { message: 'Mettez en quarantaine les boîtes et retournez-les à votre grossiste habituel, qui les renverra au laboratoire.' } })
    t.equal(edit.statusCode, 200)
    t.equal(edit.json().version, 1, 'editing a version under review changes does not make a new version')
    t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: biogaran })).statusCode, 200)
    const history = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/history`, headers: ansm })).json()
    t.same(history.thread.map((m: any) => m.kind), ['created', 'submitted', 'changes_requested', 'comment', 'edited', 'submitted'])
    t.match(history.thread[2], { text: 'Précisez le grossiste à qui retourner les boîtes.', author: { role: 'ansm', org: 'ANSM', user: 'eva' } })
    t.match(history.thread[3], { text: 'Entendu, nous précisons.', author: { role: 'lab', org: ORG.labBiogaran, user: 'alice' } })
    t.same(await feed(ctx, 'pharmacy', ORG.pharmacyParis), [], 'still nothing for pharmacies')
  })

  let eventId = ''
  t.test('ANSM approves: broadcast to exactly the targeted organisations, batches blocked', async (t) => {
    const res = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/approve`, headers: ansm, payload: { comment: 'Validé.' } })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'broadcast', liveVersion: 1, versionStatus: 'broadcast', allowedActions: ['edit', 'close'] })
    const recipients = await app.db.selectFrom('recall_recipients').select('org_id').where('recall_id', '=', id).orderBy('org_id').execute()
    // Île-de-France (region 11: Paris 75, Nanterre 92) and Corse-du-Sud (2A); not Lyon, Marseille, overseas.
    t.same(recipients.map((r) => r.org_id), [ORG.pharmacyAjaccio, ORG.pharmacyParis, ORG.hospital, ORG.wholesaler].sort())
    const parisFeed = await feed(ctx, 'pharmacy', ORG.pharmacyParis)
    t.match(parisFeed, [{ type: 'recall.broadcast', payload: { reference: 'R-2026-0001', version: 1, batches: [{ batch: 'L2411A' }, { batch: 'L2411B' }], blockDispensation: true } }])
    eventId = parisFeed[0]!.eventId ?? parisFeed[0]!.id ?? ''
    t.same(await feed(ctx, 'pharmacy', ORG.pharmacyLyon), [], 'Lyon is not targeted')
    t.same(await feed(ctx, 'pharmacy', ORG.pharmacyGuadeloupe), [], 'Guadeloupe is not targeted')
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: lyon })).statusCode, 404)
    t.same(await blocks(ctx, id), [`${AMOX}/L2411A/active`, `${AMOX}/L2411B/active`])
    const view = await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: paris })
    t.match(view.json(), { reference: 'R-2026-0001', version: 1, acknowledgement: null, allowedActions: [] })
    t.equal((await app.inject({ method: 'GET', url: '/v1/recall-review-queue', headers: ansm })).json().items.length, 0)
  })

  t.test('the fax-only wholesaler and hospital get a real PDF notice', async (t) => {
    await app.jobs.runDue()
    const faxed = await app.db.selectFrom('event_deliveries as d').innerJoin('recall_recipients as r', 'r.last_event_id', 'd.event_id').select(['d.org_id', 'd.fax_status', 'd.event_id']).where('r.recall_id', '=', id).whereRef('r.org_id', '=', 'd.org_id').where('d.fax', '=', true).orderBy('d.org_id').execute()
    t.same(faxed.map((f) => [f.org_id, f.fax_status]), [[ORG.hospital, 'sent'], [ORG.wholesaler, 'sent']])
    const pdf = await readFile(path.join(ctx.config.FAX_SPOOL_DIR, `${faxed[1]!.event_id}-${ORG.wholesaler}.pdf`))
    t.equal(pdf.subarray(0, 5).toString(), '%PDF-')
    t.ok(pdf.length > 1000)
    const coverage = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/coverage`, headers: biogaran })).json()
    t.match(coverage.faxes, { sent: 2 })
  })

  t.test('recipients acknowledge; the same acknowledgement twice is one record, a change keeps history', async (t) => {
    const url = `/v1/recalls/${id}/acknowledgement`
    const first = await app.inject({ method: 'PUT', url, headers: paris, payload: { status: 'done', quarantined: 12 } })
    t.equal(first.statusCode, 200, first.body)
    t.match(first.json(), { status: 'done', quarantined: 12, returned: 0, noStock: false, changes: 1 })
    const same = await app.inject({ method: 'PUT', url, headers: paris, payload: { status: 'done', quarantined: 12 } })
    t.match(same.json(), { changes: 1 })
    t.equal(await count(ctx, 'recall_ack_history'), 1)
    const changed = await app.inject({ method: 'PUT', url, headers: paris, payload: { status: 'done', quarantined: 8, returned: 4 } })
    t.match(changed.json(), { quarantined: 8, returned: 4, changes: 2 })
    const racing = await Promise.all([1, 2, 3].map(() => app.inject({ method: 'PUT', url, headers: paris, payload: { status: 'done', quarantined: 8, returned: 4 } })))
    t.same(racing.map((r) => r.json().changes), [2, 2, 2], 'the same acknowledgement racing is still one record')
    const read = await app.inject({ method: 'PUT', url, headers: paris, payload: { status: 'read' } })
    t.match(read.json(), { status: 'done', quarantined: 8, changes: 2 }, 'read after done changes nothing')
    t.equal(await count(ctx, 'recall_ack_history'), 2)
    const bad = await app.inject({ method: 'PUT', url, headers: ajaccio, payload: { status: 'read', quarantined: 3 } })
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().errors[0].field, 'body.status')
    const bad2 = await app.inject({ method: 'PUT', url, headers: ajaccio, payload: { status: 'done', noStock: true, returned: 2 } })
    t.equal(bad2.statusCode, 400)
    t.equal(bad2.json().errors[0].field, 'body.noStock')
    t.equal((await app.inject({ method: 'PUT', url, headers: ajaccio, payload: { status: 'read' } })).statusCode, 200)
    t.equal((await app.inject({ method: 'PUT', url, headers: hospital, payload: { status: 'done', noStock: true } })).statusCode, 200)
    const notAddressed = await app.inject({ method: 'PUT', url, headers: lyon, payload: { status: 'read' } })
    t.equal(notAddressed.statusCode, 404, 'a pharmacy acknowledges only a recall addressed to it')
    t.equal((await app.inject({ method: 'PUT', url, headers: biogaran, payload: { status: 'read' } })).statusCode, 403)
    const ev = await app.db.selectFrom('event_deliveries').select(['acked_at']).where('org_id', '=', ORG.pharmacyParis).where('event_id', '=', eventId).executeTakeFirstOrThrow()
    t.ok(ev.acked_at, 'the platform delivery is acknowledged too')
  })

  t.test('the lab and ANSM see coverage by category and department, and who is not acting', async (t) => {
    for (const h of [biogaran, ansm]) {
      const c = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/coverage`, headers: h })).json()
      t.match(c, { recipients: 4, acknowledged: 3, done: 2, read: 3, quantities: { quarantined: 8, returned: 4, destroyed: 0, noStock: 1 } })
      t.match(c.byCategory, [{ category: 'hospital', recipients: 1, done: 1 }, { category: 'pharmacy', recipients: 2, done: 1, read: 2 }, { category: 'wholesaler', recipients: 1, done: 0 }])
      t.match(c.byDepartment, [{ department: '2A', region: '94', recipients: 1, read: 1, done: 0 }, { department: '75', region: '11', recipients: 2, done: 2 }, { department: '92', recipients: 1 }])
    }
    const lagging = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/recipients?status=not_acting`, headers: ansm })).json()
    t.same(lagging.items.map((i: any) => i.org.id), [ORG.pharmacyAjaccio, ORG.wholesaler])
    const page = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/recipients?limit=3`, headers: biogaran })).json()
    t.equal(page.items.length, 3)
    const next = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/recipients?limit=3&cursor=${page.nextCursor}`, headers: biogaran })).json()
    t.equal(next.items.length, 1)
    t.equal(next.nextCursor, null)
  })

  t.test('reminders go out after the configured delays, once each, to those not acting', async (t) => {
    t.equal(await app.jobs.runDue(), 0, 'nothing due yet')
    ctx.clock.advance(24 * HOUR + 1000)
    t.ok((await app.jobs.runDue()) >= 1, 'the first reminder (and its fax) ran')
    const reminded = await app.db.selectFrom('recall_recipients').select(['org_id', 'reminders']).where('recall_id', '=', id).orderBy('org_id').execute()
    t.same(Object.fromEntries(reminded.map((r) => [r.org_id, r.reminders])), { [ORG.pharmacyAjaccio]: 1, [ORG.pharmacyParis]: 0, [ORG.hospital]: 0, [ORG.wholesaler]: 1 })
    t.match((await feed(ctx, 'pharmacy', ORG.pharmacyAjaccio)).map((e) => e.type), ['recall.broadcast', 'recall.reminder'])
    t.same((await feed(ctx, 'pharmacy', ORG.pharmacyParis)).map((e) => e.type), ['recall.broadcast'], 'no reminder for who acted')
    ctx.clock.advance(HOUR)
    t.equal(await app.jobs.runDue(), 0, 'fires once')
    t.equal((await feed(ctx, 'pharmacy', ORG.pharmacyAjaccio)).length, 2, 'still one reminder')
    ctx.clock.advance(48 * HOUR)
    t.equal(await app.jobs.runDue() >= 1, true)
    const again = await app.db.selectFrom('recall_recipients').select('reminders').where('recall_id', '=', id).where('org_id', '=', ORG.pharmacyAjaccio).executeTakeFirstOrThrow()
    t.equal(again.reminders, 2)
  })

  t.test('a correction after broadcast is a new version; the broadcast one stays in force until approved', async (t) => {
    const res = await app.inject({ method: 'PATCH', url: `/v1/recalls/${id}`, headers: biogaran, payload: { batches: [{ cip13: AMOX, batch: 'L2411A', expiry: '2027-06-30' }] } })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'broadcast', version: 2, versionStatus: 'draft', liveVersion: 1, allowedActions: ['edit', 'submit', 'discard', 'close'] })
    t.match((await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: paris })).json(), { version: 1, batches: [{ batch: 'L2411A' }, { batch: 'L2411B' }] })
    const seenByAnsm = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: ansm })).json()
    t.equal(seenByAnsm.batches.length, 2, 'ANSM does not see a correction before it is submitted')
    t.same((await app.inject({ method: 'GET', url: `/v1/recalls/${id}/history`, headers: ansm })).json().versions.map((v: any) => v.version), [1])
    t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: biogaran })).statusCode, 200)
    t.match((await app.inject({ method: 'GET', url: '/v1/recall-review-queue', headers: ansm })).json().items, [{ id, version: 2, revision: true }])
    t.same(await blocks(ctx, id), [`${AMOX}/L2411A/active`, `${AMOX}/L2411B/active`], 'unchanged before approval')
    const ok = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/approve`, headers: ansm })
    t.equal(ok.statusCode, 200, ok.body)
    t.match(ok.json(), { version: 2, liveVersion: 2, versionStatus: 'broadcast' })
    t.same(await blocks(ctx, id), [`${AMOX}/L2411A/active`], 'the removed batch is unblocked, the other stays')
    const view = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: paris })).json()
    t.match(view, { version: 2, acknowledgement: { status: 'done', quarantined: 8, returned: 4 } }, 'what the recipient did carries over')
    t.match((await feed(ctx, 'pharmacy', ORG.pharmacyParis)).map((e) => e.type), ['recall.broadcast', 'recall.updated'])
    const history = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/history`, headers: biogaran })).json()
    t.same(history.versions.map((v: any) => v.status), ['superseded', 'broadcast'])
  })

  t.test('closing unblocks, makes the report (matching the acknowledgements) and sends it to ANSM', async (t) => {
    t.equal((await app.inject({ method: 'PUT', url: `/v1/recalls/${id}/acknowledgement`, headers: ajaccio, payload: { status: 'done', destroyed: 5 } })).statusCode, 200)
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report`, headers: biogaran })).statusCode, 404, 'no report before closing')
    t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/close`, headers: ansm })).statusCode, 403)
    const res = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/close`, headers: biogaran, payload: { reason: 'Lots récupérés' } })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'closed', allowedActions: [] })
    t.same(await blocks(ctx, id), [], 'closing unblocks')
    const report = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report`, headers: ansm })).json()
    // From the acknowledgements: Paris 8 quarantined + 4 returned, Ajaccio 5 destroyed, hospital no stock.
    const acks = await app.db.selectFrom('recall_recipients').select(['ack_status', 'ack']).where('recall_id', '=', id).execute()
    const done = acks.filter((a) => a.ack_status === 'done')
    t.match(report, {
      reference: 'R-2026-0001',
      finalVersion: 2,
      coverage: { recipients: 4, done: done.length, acknowledged: acks.filter((a) => a.ack_status).length },
      quantities: {
        quarantined: done.reduce((n, a) => n + a.ack!.quarantined, 0),
        returned: done.reduce((n, a) => n + a.ack!.returned, 0),
        destroyed: done.reduce((n, a) => n + a.ack!.destroyed, 0),
        noStock: done.filter((a) => a.ack!.noStock).length,
      },
    })
    t.same(report.quantities, { quarantined: 8, returned: 4, destroyed: 5, noStock: 1 })
    t.same(report.notActing.map((o: any) => o.id), [ORG.wholesaler])
    t.same(report.timeline.map((e: any) => e.event), ['created', 'submitted', 'changes_requested', 'edited', 'submitted', 'approved', 'broadcast', 'reminder', 'reminder', 'revision', 'submitted', 'approved', 'broadcast', 'closed'])
    const ansmFeed = await feed(ctx, 'ansm', ORG.ansm)
    t.match(ansmFeed.find((e) => e.type === 'recall.report'), { payload: { reference: 'R-2026-0001', quantities: { quarantined: 8 } } })
    const pdf = await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report/pdf`, headers: biogaran })
    t.equal(pdf.statusCode, 200)
    t.equal(pdf.headers['content-type'], 'application/pdf')
    t.equal(pdf.rawPayload.subarray(0, 5).toString(), '%PDF-')
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report/pdf`, headers: arrow })).statusCode, 404)
    t.match((await feed(ctx, 'pharmacy', ORG.pharmacyParis)).map((e) => e.type), ['recall.broadcast', 'recall.updated', 'recall.closed'])
    const late = await app.inject({ method: 'PUT', url: `/v1/recalls/${id}/acknowledgement`, headers: paris, payload: { status: 'done', quarantined: 1 } })
    t.equal(late.statusCode, 409)
    const again = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/close`, headers: biogaran })
    t.equal(again.statusCode, 409)
    t.same(again.json().allowedActions, [])
  })
})

t.test('scheduled broadcast, rejection, references, a recall without blocking', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran)
  const ansm = auth('ansm', ORG.ansm)
  const create = async (extra: Record<string, unknown>) => {
    const res = await app.inject({ method: 'POST', url: '/v1/recalls', headers: biogaran, payload: draft(extra) })
    t.equal(res.statusCode, 201, 'created')
    return res.json()
  }

  t.test('a recall approved before its scheduled time goes out at that time, by the job', async (t) => {
    const r = await create({ scheduledAt: '2026-11-22T14:00:00Z', recipients: { categories: ['pharmacy'], regions: ['04'] }, batches: [{ cip13: ROSU, batch: 'R1' }] })
    t.equal(r.reference, 'R-2026-0001')
    await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/submit`, headers: biogaran })
    const ok = await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/approve`, headers: ansm })
    t.match(ok.json(), { status: 'approved', versionStatus: 'approved', liveVersion: null, allowedActions: [] })
    t.same(await feed(ctx, 'pharmacy', '974100060'), [], 'not before its time')
    t.same(await blocks(ctx, r.id), [])
    ctx.clock.advance(3 * HOUR)
    await app.jobs.runDue()
    t.same(await blocks(ctx, r.id), [], 'not yet')
    ctx.clock.advance(HOUR + 1000)
    await app.jobs.runDue()
    t.match((await feed(ctx, 'pharmacy', '974100060')).map((e) => e.type), ['recall.broadcast'], 'overseas pharmacy of La Réunion reached')
    t.same(await feed(ctx, 'pharmacy', ORG.pharmacyGuadeloupe), [])
    t.same(await blocks(ctx, r.id), [`${ROSU}/R1/active`])
    t.match((await app.inject({ method: 'GET', url: `/v1/recalls/${r.id}`, headers: biogaran })).json(), { status: 'broadcast', liveVersion: 1 })
  })

  t.test('a rejected first version ends the recall', async (t) => {
    const r = await create({ blockDispensation: false })
    t.equal(r.reference, 'R-2026-0002', 'gapless references')
    await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/submit`, headers: biogaran })
    const res = await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/reject`, headers: ansm, payload: { comment: 'Ce lot n’est pas concerné par le défaut.' } })
    t.match(res.json(), { status: 'rejected', allowedActions: [] })
    const approve = await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/approve`, headers: ansm })
    t.equal(approve.statusCode, 409)
    t.same(approve.json().allowedActions, [])
    t.same(await feed(ctx, 'pharmacy', ORG.pharmacyParis), [])
  })

  t.test('without blockDispensation nothing is blocked, and ANSM lists recalls it has seen', async (t) => {
    const r = await create({ blockDispensation: false, recipients: { categories: ['pharmacy'] } })
    await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/submit`, headers: biogaran })
    const ok = await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/approve`, headers: ansm })
    t.equal(ok.statusCode, 200, ok.body)
    t.same(await blocks(ctx, r.id), [])
    const recipients = await app.db.selectFrom('recall_recipients').select('org_id').where('recall_id', '=', r.id).execute()
    t.equal(recipients.length, 6, 'all of France: every demo pharmacy, overseas included')
    const list = (await app.inject({ method: 'GET', url: '/v1/recalls?limit=2', headers: ansm })).json()
    t.equal(list.items.length, 2)
    const rest = (await app.inject({ method: 'GET', url: `/v1/recalls?limit=2&cursor=${list.nextCursor}`, headers: ansm })).json()
    t.equal(rest.items.length, 1)
    const mine = (await app.inject({ method: 'GET', url: '/v1/recalls', headers: auth('pharmacy', ORG.pharmacyLyon) })).json()
    t.same(mine.items.map((i: any) => i.id), [r.id], 'a pharmacy lists the recalls addressed to it')
  })

  t.test('a fax that keeps failing is retried, then flagged for a paper letter', async (t) => {
    await app.db.updateTable('organisations').set({ fax: ' ' }).where('id', '=', ORG.wholesaler).execute() // unusable number
    const r = await create({ blockDispensation: false, recipients: { categories: ['wholesaler'] }, reminderDelaysHours: [] })
    await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/submit`, headers: biogaran })
    t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/approve`, headers: ansm })).statusCode, 200)
    const status = async () => (await app.inject({ method: 'GET', url: `/v1/recalls/${r.id}/coverage`, headers: biogaran })).json().faxes
    await app.jobs.runDue()
    t.match(await status(), { failed: 1, paperLetter: 0 }, 'first attempt failed, will retry')
    // Retried over about eight hours (FAX_RETRY_MINUTES), then given up for a paper letter.
    for (let i = 0; i < 16; i++) {
      ctx.clock.advance(HOUR)
      await app.jobs.runDue()
    }
    t.match(await status(), { failed: 0, paperLetter: 1 })
    const lagging = (await app.inject({ method: 'GET', url: `/v1/recalls/${r.id}/recipients?status=unreached`, headers: ansm })).json()
    t.match(lagging.items, [{ org: { id: ORG.wholesaler }, reached: false, fax: 'paper_letter' }])
  })

  t.test('two approvals racing: one broadcast', async (t) => {
    const r = await create({ blockDispensation: false, recipients: { categories: ['hospital'] } })
    await app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/submit`, headers: biogaran })
    const [a, b] = await Promise.all([
      app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/approve`, headers: ansm }),
      app.inject({ method: 'POST', url: `/v1/recalls/${r.id}/approve`, headers: ansm }),
    ])
    t.same([a.statusCode, b.statusCode].sort(), [200, 409])
    const events = await app.db.selectFrom('events').select('id').where('subject_id', '=', r.id).where('type', '=', 'recall.broadcast').execute()
    t.equal(events.length, 1)
  })
})

// Records that someone signs or audits: acknowledgements that never lose quantities, the report (bilan) across
// corrections, review rounds that keep every submitted content.
import fc from 'fast-check'
import { PDFParse } from 'pdf-parse'
import t from 'tap'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, sql, testApp, type TestContext } from './helpers.ts'

const AMOX = '3400936128149' // Biogaran
const MINUTE = 60_000
const HOUR = 60 * MINUTE

async function setup(t: { teardown(fn: () => unknown): void }) {
  const ctx = await testApp(t)
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  ctx.clock.now = new Date('2026-11-22T10:00:00Z')
  return ctx
}

async function feed(ctx: TestContext, role: 'pharmacy' | 'ansm' | 'lab' | 'wholesaler', org: string) {
  await ctx.app.hub.runSequencer()
  const res = await ctx.app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=200', headers: ctx.auth(role, org) })
  return res.json().items as Array<{ type: string; payload: any }>
}

const pdfText = async (pdf: Buffer) => {
  const r = await new PDFParse({ data: new Uint8Array(pdf) }).getText()
  return r.text.replace(/\s+/g, ' ')
}

const draft = (extra: Record<string, unknown> = {}) => ({
  title: 'Rappel de lots d’Amoxicilline Biogaran 1 g',
  reason: 'Défaut d’étanchéité de l’opercule constaté sur deux lots',
  message: 'Mettez en quarantaine les boîtes des lots concernés et retournez-les à votre grossiste.',
  action: 'quarantine_return',
  // Île-de-France: the Paris pharmacy, the Nanterre wholesaler, the Saint-Antoine hospital pharmacy.
  recipients: { categories: ['pharmacy', 'wholesaler', 'hospital'], regions: ['11'] },
  contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 01' }],
  batches: [
    { cip13: AMOX, batch: 'L2411A', expiry: '2027-06-30' },
    { cip13: AMOX, batch: 'L2411B', expiry: '2027-07-31' },
  ],
  blockDispensation: true,
  reminderDelaysHours: [],
  ...extra,
})

/** A recall drafted, submitted and approved (broadcast), as the lab's quality staff and ANSM would do it. */
async function broadcastRecall(ctx: TestContext, extra: Record<string, unknown> = {}) {
  const { app, auth } = ctx
  const lab = auth('lab', ORG.labBiogaran, 'alice')
  const ansm = auth('ansm', ORG.ansm, 'eva')
  const created = await app.inject({ method: 'POST', url: '/v1/recalls', headers: lab, payload: draft(extra) })
  if (created.statusCode !== 201) throw new Error(created.body)
  const id = created.json().id as string
  for (const [headers, action] of [[lab, 'submit'], [ansm, 'approve']] as const) {
    const res = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/${action}`, headers, payload: {} })
    if (res.statusCode !== 200) throw new Error(res.body)
  }
  return id
}

t.test('acknowledgements never lose reported quantities', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const paris = auth('pharmacy', ORG.pharmacyParis, 'marie')
  const id = await broadcastRecall(ctx)
  const url = `/v1/recalls/${id}/acknowledgement`
  const put = (payload: Record<string, unknown>, headers: Record<string, string> = paris) => app.inject({ method: 'PUT', url, headers, payload })

  t.test('a bare "done" after quantities is refused, naming the field; the quantities stay', async (t) => {
    t.equal((await put({ status: 'done', quarantined: 8, returned: 4 })).statusCode, 200)
    const bare = await put({ status: 'done' })
    t.equal(bare.statusCode, 400, bare.body)
    t.equal(bare.json().code, 'VALIDATION_FAILED')
    t.equal(bare.json().errors[0].field, 'body.quarantined')
    t.match(bare.json().errors[0].message, /quantités|noStock/)
    const en = await put({ status: 'done' }, { ...paris, 'accept-language': 'en' })
    t.match(en.json().errors[0].message, /quantities|noStock/)
    const mine = (await app.inject({ method: 'GET', url, headers: paris })).json()
    t.match(mine.current, { status: 'done', quarantined: 8, returned: 4, changes: 1 })
    const coverage = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/coverage`, headers: auth('lab', ORG.labBiogaran) })).json()
    t.match(coverage.quantities, { quarantined: 8, returned: 4 })
  })

  t.test('quantities all zero without noStock say nothing: refused naming noStock', async (t) => {
    const zero = await put({ status: 'done', quarantined: 0, returned: 0, destroyed: 0 })
    t.equal(zero.statusCode, 400)
    t.equal(zero.json().errors[0].field, 'body.noStock')
    t.equal((await put({ status: 'done', noStock: true }, auth('hospital', ORG.hospital))).statusCode, 200, 'none in stock is an answer')
  })

  t.test('the lab and ANSM read any recipient’s acknowledgement history; other tenants get 404', async (t) => {
    t.equal((await put({ status: 'done', quarantined: 6, returned: 6 })).statusCode, 200)
    const path = `/v1/recalls/${id}/recipients/${ORG.pharmacyParis}/acknowledgement`
    for (const headers of [auth('lab', ORG.labBiogaran), auth('ansm', ORG.ansm)]) {
      const res = await app.inject({ method: 'GET', url: path, headers })
      t.equal(res.statusCode, 200, res.body)
      t.match(res.json(), { current: { quarantined: 6, returned: 6, changes: 2 } })
      t.same(res.json().history.map((h: any) => [h.seq, h.quarantined, h.returned, h.by.user]), [[1, 8, 4, 'marie'], [2, 6, 6, 'marie']])
    }
    for (const headers of [auth('lab', ORG.labArrow), auth('pharmacy', ORG.pharmacyParis), auth('pharmacy', ORG.pharmacyLyon), auth('wholesaler', ORG.wholesaler)]) {
      const res = await app.inject({ method: 'GET', url: path, headers })
      t.ok([403, 404].includes(res.statusCode), `${res.statusCode} for another tenant`)
    }
    const notRecipient = await app.inject({ method: 'GET', url: `/v1/recalls/${id}/recipients/${ORG.pharmacyLyon}/acknowledgement`, headers: auth('lab', ORG.labBiogaran) })
    t.equal(notRecipient.statusCode, 404, 'Lyon was not addressed')
  })
})

t.test('property: whatever the order of acknowledgements, the current one and the coverage hold every quantity reported last', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const recipients = [
    { org: ORG.pharmacyParis, headers: auth('pharmacy', ORG.pharmacyParis) },
    { org: ORG.wholesaler, headers: auth('wholesaler', ORG.wholesaler) },
    { org: ORG.hospital, headers: auth('hospital', ORG.hospital) },
  ]
  const qty = fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined })
  const ack = fc.record(
    { who: fc.integer({ min: 0, max: 2 }), status: fc.constantFrom('read', 'done'), quarantined: qty, returned: qty, destroyed: qty, noStock: fc.option(fc.boolean(), { nil: undefined }) },
    { requiredKeys: ['who', 'status'] },
  )
  const seed = 1808
  await fc.assert(
    fc.asyncProperty(fc.array(ack, { minLength: 1, maxLength: 8 }), async (acks) => {
      const id = await broadcastRecall(ctx, { blockDispensation: false })
      // The model: what each recipient reported last (status and quantities), and how many distinct reports.
      const model = new Map<string, { status: string; q: number; r: number; d: number; noStock: boolean; changes: number }>()
      for (const a of acks) {
        const { who, status, ...rest } = a
        const body = Object.fromEntries(Object.entries({ status, ...rest }).filter(([, v]) => v !== undefined))
        const res = await app.inject({ method: 'PUT', url: `/v1/recalls/${id}/acknowledgement`, headers: recipients[who]!.headers, payload: body })
        const q = a.quarantined ?? 0, r = a.returned ?? 0, d = a.destroyed ?? 0, noStock = a.noStock ?? false
        const anyQuantityGiven = a.quarantined !== undefined || a.returned !== undefined || a.destroyed !== undefined
        const valid =
          status === 'read' ? q + r + d === 0 && !noStock : noStock ? q + r + d === 0 : anyQuantityGiven && q + r + d > 0
        if (!valid) {
          if (res.statusCode !== 400) throw new Error(`expected 400 for ${JSON.stringify(body)}, got ${res.statusCode} ${res.body}`)
          continue
        }
        if (res.statusCode !== 200) throw new Error(`expected 200 for ${JSON.stringify(body)}, got ${res.statusCode} ${res.body}`)
        const prev = model.get(recipients[who]!.org)
        if (prev?.status === 'done' && status === 'read') continue
        const next = { status, q, r, d, noStock, changes: prev?.changes ?? 0 }
        const same = prev && prev.status === status && prev.q === q && prev.r === r && prev.d === d && prev.noStock === noStock
        if (!same) next.changes++
        model.set(recipients[who]!.org, next)
      }
      const coverage = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/coverage`, headers: auth('lab', ORG.labBiogaran) })).json()
      const done = [...model.values()].filter((m) => m.status === 'done')
      const expected = {
        quarantined: done.reduce((n, m) => n + m.q, 0),
        returned: done.reduce((n, m) => n + m.r, 0),
        destroyed: done.reduce((n, m) => n + m.d, 0),
        noStock: done.filter((m) => m.noStock).length,
      }
      if (JSON.stringify(coverage.quantities) !== JSON.stringify(expected)) throw new Error(`coverage ${JSON.stringify(coverage.quantities)} ≠ model ${JSON.stringify(expected)}`)
      for (const rcp of recipients) {
        const mine = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/acknowledgement`, headers: rcp.headers })).json()
        const m = model.get(rcp.org)
        if (!m) {
          if (mine.current !== null) throw new Error('an acknowledgement appeared from nowhere')
          continue
        }
        if (mine.current.status !== m.status || mine.current.changes !== m.changes || mine.history.length !== m.changes) throw new Error(`${rcp.org}: ${JSON.stringify(mine)} ≠ ${JSON.stringify(m)}`)
        if (mine.current.status === 'done' && !mine.current.noStock && mine.current.quarantined + mine.current.returned + mine.current.destroyed === 0) throw new Error('a done without anything reported')
      }
    }),
    { seed, numRuns: 25, endOnFailure: true },
  ).catch((err) => {
    throw new Error(`property failed (seed ${seed}): ${err.message} — ${err.cause?.message ?? ''}`)
  })
  t.pass(`25 random sequences of acknowledgements (seed ${seed})`)
})

t.test('the report across a correction that removes a batch', async (t) => {
  const ctx = await setup(t)
  const { app, auth, clock } = ctx
  const lab = auth('lab', ORG.labBiogaran, 'alice')
  const ansm = auth('ansm', ORG.ansm, 'eva')
  const paris = auth('pharmacy', ORG.pharmacyParis, 'marie')
  const hospital = auth('hospital', ORG.hospital)
  const wholesaler = auth('wholesaler', ORG.wholesaler)
  const id = await broadcastRecall(ctx)
  const ack = (headers: Record<string, string>, payload: Record<string, unknown>) => app.inject({ method: 'PUT', url: `/v1/recalls/${id}/acknowledgement`, headers, payload })

  clock.advance(HOUR)
  t.equal((await ack(paris, { status: 'done', quarantined: 8, returned: 4 })).statusCode, 200)
  t.equal((await ack(hospital, { status: 'done', noStock: true })).statusCode, 200)
  // Version 2 removes L2411B.
  clock.advance(HOUR)
  const patch = await app.inject({ method: 'PATCH', url: `/v1/recalls/${id}`, headers: lab, payload: { batches: [{ cip13: AMOX, batch: 'L2411A', expiry: '2027-06-30' }] } })
  t.equal(patch.statusCode, 200, patch.body)
  t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: lab })).statusCode, 200)
  clock.advance(HOUR)
  t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/approve`, headers: ansm })).statusCode, 200)
  const v2At = clock.now.toISOString()
  clock.advance(HOUR)
  t.equal((await ack(wholesaler, { status: 'done', returned: 20, destroyed: 1 })).statusCode, 200)
  clock.advance(HOUR)
  const closedAt = clock.now.toISOString()
  const close = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/close`, headers: lab, payload: { reason: 'Tous les lots ont été récupérés' } })
  t.equal(close.statusCode, 200, close.body)

  const report = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report`, headers: ansm })).json()

  t.test('closure reason and date', async (t) => {
    t.match(report.closure, { at: closedAt, reason: 'Tous les lots ont été récupérés', by: { role: 'lab', org: ORG.labBiogaran, user: 'alice' } })
    const closed = (await feed(ctx, 'pharmacy', ORG.pharmacyParis)).find((e) => e.type === 'recall.closed')
    t.match(closed?.payload, { closureReason: 'Tous les lots ont été récupérés', closedAt })
  })

  t.test('every batch ever recalled, with what happened to it', async (t) => {
    t.match(report.batches, [
      { cip13: AMOX, batch: 'L2411A', expiry: '2027-06-30', versions: [1, 2], status: 'recalled', removedInVersion: null, removedAt: null, blocked: true },
      { cip13: AMOX, batch: 'L2411B', expiry: '2027-07-31', versions: [1], status: 'removed', removedInVersion: 2, removedAt: v2At, blocked: true },
    ])
    t.equal(report.batches.length, 2)
    t.ok(report.batches[0].name, 'the product name')
  })

  t.test('the quantities are those acknowledged, before and after the correction', async (t) => {
    const rows = await app.db.selectFrom('recall_recipients').select(['org_id', 'ack_status', 'ack']).where('recall_id', '=', id).orderBy('org_id').execute()
    const done = rows.filter((r) => r.ack_status === 'done')
    t.same(report.quantities, {
      quarantined: done.reduce((n, r) => n + r.ack!.quarantined, 0),
      returned: done.reduce((n, r) => n + r.ack!.returned, 0),
      destroyed: done.reduce((n, r) => n + r.ack!.destroyed, 0),
      noStock: done.filter((r) => r.ack!.noStock).length,
    })
    t.same(report.quantities, { quarantined: 8, returned: 24, destroyed: 1, noStock: 1 })
    t.same(
      report.acknowledgements.map((a: any) => [a.org.id, a.quarantined, a.returned, a.destroyed, a.noStock, a.version]),
      [[ORG.pharmacyParis, 8, 4, 0, false, 1], [ORG.hospital, 0, 0, 0, true, 1], [ORG.wholesaler, 0, 20, 1, false, 2]].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    )
    t.match(report.byCategory.find((c: any) => c.category === 'wholesaler'), { quantities: { returned: 20, destroyed: 1 } })
  })

  t.test('labels in French by default, in English when asked; no raw code', async (t) => {
    t.match(report.byCategory.find((c: any) => c.category === 'pharmacy'), { label: 'Officines' })
    const en = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report`, headers: { ...ansm, 'accept-language': 'en' } })).json()
    t.match(en.byCategory.find((c: any) => c.category === 'pharmacy'), { label: 'Community pharmacies' })
    t.match(en.batches.find((b: any) => b.batch === 'L2411B'), { statusLabel: /removed in version 2/i })

    const fr = await pdfText((await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report/pdf`, headers: ansm })).rawPayload)
    t.match(fr, 'Tous les lots ont été récupérés')
    t.match(fr, /L2411B.*retiré.*version 2/)
    t.match(fr, 'Officines : 1 destinataire,')
    t.match(fr, 'Destinataires : 3')
    t.notMatch(fr, /\b1 destinataires\b/)
    t.notMatch(fr, /\b(pharmacy|wholesaler|hospital)\b/, 'no category code in the French report')
    const english = await pdfText((await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report/pdf`, headers: { ...ansm, 'accept-language': 'en' } })).rawPayload)
    t.match(english, 'Batch recall report R-2026-0001')
    t.match(english, 'Community pharmacies: 1 recipient,')
    t.notMatch(english, /\b1 recipients\b/)
    t.notMatch(english, /• (pharmacy|wholesaler|hospital)\b/, 'no category code in the English report')
    t.notMatch(english, /\(\w+, (pharmacy|wholesaler|hospital),/, 'no role code in the English lists')
    t.notMatch(english, /Officines|destinataire/, 'no French left in the English report')
  })
})

t.test('review rounds keep every submitted content, what changed and the exchanges', async (t) => {
  const ctx = await setup(t)
  const { app, auth, clock } = ctx
  const lab = auth('lab', ORG.labBiogaran, 'alice')
  const ansm = auth('ansm', ORG.ansm, 'eva')
  const post = (id: string, action: string, headers: Record<string, string>, payload: Record<string, unknown> = {}) =>
    app.inject({ method: 'POST', url: `/v1/recalls/${id}/${action}`, headers, payload })
  const created = await app.inject({ method: 'POST', url: '/v1/recalls', headers: lab, payload: draft() })
  const id = created.json().id
  const firstMessage = draft().message
  const secondMessage = 'Mettez en quarantaine les boîtes et retournez-les à votre grossiste habituel, qui les renverra au laboratoire.'

  clock.advance(MINUTE)
  t.equal((await post(id, 'submit', lab)).statusCode, 200)
  clock.advance(MINUTE)
  t.equal((await post(id, 'request-changes', ansm, { comment: 'Précisez à qui retourner les boîtes.' })).statusCode, 200)
  clock.advance(MINUTE)
  t.equal((await post(id, 'comments', lab, { text: 'Entendu.' })).statusCode, 201)
  clock.advance(MINUTE)
  const edit = await app.inject({ method: 'PATCH', url: `/v1/recalls/${id}`, headers: lab, payload: { message: secondMessage, recipients: { categories: ['pharmacy', 'wholesaler'], regions: ['11', '93'] } } })
  t.equal(edit.statusCode, 200)
  clock.advance(MINUTE)
  t.equal((await post(id, 'submit', lab)).statusCode, 200)

  t.test('a version’s decision never precedes its latest submission', async (t) => {
    const history = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/history`, headers: ansm })).json()
    const v = history.versions[0]
    t.ok(v.decidedAt === null || v.decidedAt >= v.submittedAt, `decidedAt ${v.decidedAt} ≥ submittedAt ${v.submittedAt}`)
  })

  clock.advance(MINUTE)
  t.equal((await post(id, 'approve', ansm, { comment: 'Validé.' })).statusCode, 200)

  t.test('each round keeps its content, its diff with the previous round and its exchanges', async (t) => {
    for (const headers of [lab, ansm]) {
      const history = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/history`, headers })).json()
      const [v1] = history.versions
      t.ok(v1.decidedAt >= v1.submittedAt)
      t.equal(v1.rounds.length, 2)
      const [r1, r2] = v1.rounds
      t.match(r1, { round: 1, content: { message: firstMessage }, decision: 'changes_requested', comment: 'Précisez à qui retourner les boîtes.', changes: [] })
      t.match(r2, { round: 2, content: { message: secondMessage }, decision: 'approved', comment: 'Validé.', comparedWith: { version: 1, round: 1 } })
      t.same(r2.changes.map((c: any) => `${c.field}:${c.change}`).sort(), ['message:changed', 'recipients.categories:removed', 'recipients.regions:added'].sort())
      t.match(r2.changes.find((c: any) => c.field === 'message'), { before: firstMessage, after: secondMessage })
      t.match(r2.changes.find((c: any) => c.field === 'recipients.regions'), { after: '93' })
      t.match(r2.changes.find((c: any) => c.field === 'recipients.categories'), { before: 'hospital' })
      t.ok(r1.submittedAt < r1.decidedAt && r1.decidedAt < r2.submittedAt && r2.submittedAt < r2.decidedAt, 'timestamps in order')
      t.same(r1.exchanges.map((e: any) => e.kind), ['submitted', 'changes_requested', 'comment', 'edited'])
      t.same(r2.exchanges.map((e: any) => e.kind), ['submitted', 'approved', 'broadcast'])
      const edited = history.thread.find((e: any) => e.kind === 'edited')
      t.ok(edited.changes.some((c: any) => c.field === 'message' && c.before === firstMessage && c.after === secondMessage), 'the edit says what changed')
    }
  })

  t.test('a correction’s first round is compared with the version in force', async (t) => {
    clock.advance(HOUR)
    t.equal((await app.inject({ method: 'PATCH', url: `/v1/recalls/${id}`, headers: lab, payload: { batches: [{ cip13: AMOX, batch: 'L2411A', expiry: '2027-08-31' }] } })).statusCode, 200)
    t.equal((await post(id, 'submit', lab)).statusCode, 200)
    const history = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/history`, headers: ansm })).json()
    const v2 = history.versions[1]
    t.match(v2.rounds, [{ round: 1, comparedWith: { version: 1, round: 2 }, decision: null }])
    t.same(v2.rounds[0].changes.map((c: any) => `${c.field}:${c.change}`).sort(), ['batches.expiry:changed', 'batches:removed'])
    const revision = history.thread.find((e: any) => e.kind === 'revision')
    t.same(revision.changes, v2.rounds[0].changes, 'the revision entry says what it changes')
  })
})

t.test('property: whatever the order of review actions, every round keeps what was submitted and times stay in order', async (t) => {
  const ctx = await setup(t)
  const { app, auth, clock } = ctx
  const lab = auth('lab', ORG.labBiogaran, 'alice')
  const ansm = auth('ansm', ORG.ansm, 'eva')
  const messages = ['Mettez en quarantaine les boîtes.', 'Retournez les boîtes à votre grossiste.', 'Détruisez les boîtes sur place.']
  // Weighted so that sequences often get through several rounds and corrections (terminal actions are rare).
  const simple = (kind: 'submit' | 'request-changes' | 'approve' | 'reject' | 'discard' | 'comment' | 'close', weight: number) => ({ arbitrary: fc.constant({ kind }), weight })
  const action = fc.oneof(
    { arbitrary: fc.record({ kind: fc.constant('edit' as const), message: fc.constantFrom(...messages), region: fc.constantFrom('11', '93', '84') }), weight: 4 },
    simple('submit', 5), simple('request-changes', 3), simple('approve', 3), simple('comment', 1), simple('reject', 1), simple('discard', 1), simple('close', 1),
  )
  const seed = 4242
  let rounds = 0
  let corrections = 0
  await fc.assert(
    fc.asyncProperty(fc.array(action, { minLength: 4, maxLength: 16 }), async (actions) => {
      const created = await app.inject({ method: 'POST', url: '/v1/recalls', headers: lab, payload: draft({ blockDispensation: false, message: messages[0] }) })
      const id = created.json().id as string
      // What each successful submission sent, per version, in order.
      const submitted = new Map<number, Array<{ message: string; regions: string[] }>>()
      for (const a of actions) {
        clock.advance(MINUTE)
        let res
        if (a.kind === 'edit') {
          res = await app.inject({ method: 'PATCH', url: `/v1/recalls/${id}`, headers: lab, payload: { message: a.message, recipients: { categories: ['pharmacy'], regions: [a.region] } } })
        } else if (a.kind === 'submit') {
          const before = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: lab })).json()
          res = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: lab })
          if (res.statusCode === 200) submitted.set(before.version, [...(submitted.get(before.version) ?? []), { message: before.message, regions: before.recipients.regions }])
        } else if (a.kind === 'comment') {
          res = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/comments`, headers: lab, payload: { text: 'Précision.' } })
        } else if (a.kind === 'discard' || a.kind === 'close') {
          res = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/${a.kind}`, headers: lab, payload: { reason: 'Test' } })
        } else {
          res = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/${a.kind}`, headers: ansm, payload: { comment: 'Décision.' } })
        }
        // 409: not allowed in that state; 404: ANSM does not see a recall never submitted.
        const ansmAction = ['request-changes', 'approve', 'reject'].includes(a.kind)
        if (![200, 201, 409, ...(ansmAction ? [404] : [])].includes(res.statusCode)) throw new Error(`${a.kind}: ${res.statusCode} ${res.body}`)
      }
      const history = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/history`, headers: lab })).json()
      for (const v of history.versions) {
        rounds += v.rounds.length
        if (v.version > 1 && v.rounds.length) corrections++
        const sent = submitted.get(v.version) ?? []
        if (v.rounds.length !== sent.length) throw new Error(`version ${v.version}: ${v.rounds.length} rounds for ${sent.length} submissions`)
        v.rounds.forEach((r: any, i: number) => {
          if (r.round !== i + 1) throw new Error('rounds numbered 1, 2…')
          if (r.content.message !== sent[i]!.message || JSON.stringify(r.content.recipients.regions) !== JSON.stringify(sent[i]!.regions)) throw new Error(`round ${r.round} does not hold what was submitted`)
          if (r.decidedAt && r.decidedAt < r.submittedAt) throw new Error('a decision before its submission')
          const next = v.rounds[i + 1]
          if (next && (!r.decidedAt || r.decidedAt > next.submittedAt)) throw new Error('a round submitted again before the previous one was decided')
          const previous = i > 0 ? v.rounds[i - 1].content : null
          if (previous && (previous.message !== r.content.message) !== r.changes.some((c: any) => c.field === 'message')) throw new Error('the diff misses or invents a message change')
        })
        if (v.decidedAt && v.submittedAt && v.decidedAt < v.submittedAt) throw new Error(`version ${v.version}: decidedAt ${v.decidedAt} < submittedAt ${v.submittedAt}`)
        if (v.rounds.length && v.submittedAt !== v.rounds.at(-1).submittedAt) throw new Error('the version’s submittedAt is its last round’s')
      }
    }),
    { seed, numRuns: 25, endOnFailure: true },
  ).catch((err) => {
    throw new Error(`property failed (seed ${seed}): ${err.message} — ${err.cause?.message ?? ''}`)
  })
  t.ok(rounds >= 20 && corrections >= 1, `25 random sequences of review actions (seed ${seed}): ${rounds} rounds, ${corrections} corrections submitted`)
})

t.test('alerts share the acknowledgement records: history for the lab, read receipts sent back on paper', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const lab = auth('lab', ORG.labBiogaran, 'alice')
  const created = await app.inject({
    method: 'POST', url: '/v1/alerts', headers: lab,
    payload: {
      title: 'Information de sécurité : nouvelle contre-indication', reason: 'Nouvelles données de pharmacovigilance', message: 'Vérifiez les traitements en cours avant de délivrer.',
      recipients: { categories: ['pharmacy', 'hospital'], regions: ['11'] }, contacts: [{ name: 'Pharmacovigilance', email: 'pv@biogaran.example' }],
    },
  })
  const id = created.json().id
  t.equal((await app.inject({ method: 'POST', url: `/v1/alerts/${id}/submit`, headers: lab })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: `/v1/alerts/${id}/approve`, headers: auth('ansm', ORG.ansm) })).statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: `/v1/alerts/${id}/acknowledgement`, headers: auth('pharmacy', ORG.pharmacyParis, 'marie'), payload: { status: 'read' } })).statusCode, 200)
  const history = await app.inject({ method: 'GET', url: `/v1/alerts/${id}/recipients/${ORG.pharmacyParis}/acknowledgement`, headers: lab })
  t.equal(history.statusCode, 200)
  t.match(history.json().history, [{ seq: 1, status: 'read', source: 'recipient', by: { org: ORG.pharmacyParis, user: 'marie' } }])
  t.equal((await app.inject({ method: 'GET', url: `/v1/alerts/${id}/recipients/${ORG.pharmacyParis}/acknowledgement`, headers: auth('lab', ORG.labArrow) })).statusCode, 404)
  const paper = { source: 'fax', signedBy: 'Dr Roux, pharmacien gérant', signedOn: '2026-11-22' }
  const done = await app.inject({ method: 'PUT', url: `/v1/alerts/${id}/recipients/${ORG.hospital}/acknowledgement`, headers: lab, payload: { status: 'done', noStock: true, ...paper } })
  t.equal(done.statusCode, 400, 'an alert is only read')
  const read = await app.inject({ method: 'PUT', url: `/v1/alerts/${id}/recipients/${ORG.hospital}/acknowledgement`, headers: lab, payload: { status: 'read', ...paper } })
  t.equal(read.statusCode, 200, read.body)
  const coverage = (await app.inject({ method: 'GET', url: `/v1/alerts/${id}/coverage`, headers: lab })).json()
  t.match(coverage, { read: 2, acknowledged: 2 })
})

t.test('a report made before it held the closure and every batch is completed on reading', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const lab = auth('lab', ORG.labBiogaran, 'alice')
  const id = await broadcastRecall(ctx)
  t.equal((await app.inject({ method: 'PUT', url: `/v1/recalls/${id}/acknowledgement`, headers: auth('pharmacy', ORG.pharmacyParis), payload: { status: 'done', quarantined: 3 } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/close`, headers: lab, payload: { reason: 'Lots récupérés' } })).statusCode, 200)
  // The shape stored by the earlier code: no closure, no acknowledgements, the final version's batches only.
  await sql`update recall_reports set report = (report - 'closure' - 'acknowledgements' - 'acknowledgementsTotal' - 'notActingTotal')
              || jsonb_build_object('batches', jsonb_build_array(jsonb_build_object('cip13', ${AMOX}::text, 'batch', 'L2411A', 'expiry', '2027-06-30')))
            where recall_id = ${id}::uuid`.execute(app.db)
  const res = await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report`, headers: lab })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.json(), {
    closure: { reason: 'Lots récupérés', by: { org: ORG.labBiogaran, user: 'alice' } },
    batches: [{ batch: 'L2411A', status: 'recalled', versions: [1] }, { batch: 'L2411B', status: 'recalled' }],
    acknowledgements: [{ org: { id: ORG.pharmacyParis }, quarantined: 3 }],
    acknowledgementsTotal: 1,
  })
  t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${id}/report/pdf`, headers: lab })).statusCode, 200)
})

import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { STATUSES, TRANSITIONS } from '../src/shortages/schemas.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

const AMOX = '3400936128149' // Biogaran, MITM J01CA04
const AMOX16 = '3400936128200' // Biogaran, MITM
const ROSU = '3400949497294' // Biogaran, not MITM
const ROSU90 = '3400949497355' // Biogaran
const IBU = ['3400936843127', '3400936843295'] // Biogaran
const LEVO = ['3400927901836', '3400927902086'] // Biogaran
const AMOXCLAV = '3400938801460' // Arrow, MITM
const ONDAN = '3400941639524' // Accord (not subscribed)

async function setup(t: { teardown(fn: () => unknown): void }) {
  const ctx = await testApp(t)
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  ctx.clock.now = new Date('2026-11-22T10:00:00Z')
  return ctx
}
const count = async (ctx: TestContext, table: 'shortage_declarations' | 'shortage_declaration_versions' | 'audit_log') =>
  Number((await ctx.app.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
async function feed(ctx: TestContext, org: string) {
  await ctx.app.hub.runSequencer()
  return (await ctx.app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=100', headers: ctx.auth('pharmacy', org) })).json().items as Array<{ type: string; payload: any }>
}

const anticipated = (presentations: string[], extra: Record<string, unknown> = {}) => ({
  kind: 'anticipated',
  presentations,
  cause: 'raw_material',
  anticipatedStart: '2026-12-01',
  estimatedEnd: '2027-01-15',
  stockCoverageDays: 21,
  allocation: { inPlace: true, details: '80 % des ventes 2025' },
  alternatives: [{ cip13: AMOX16, description: 'Boîte de 16' }],
  advice: 'Privilégier les boîtes de 16.',
  ...extra,
})

t.test('lab declarations', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran, 'alice')
  const declare = (body: Record<string, unknown>, headers: Record<string, string> = biogaran) => app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers, payload: body })

  t.test('the causes, kinds and lifecycle are public, in French and English', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/shortage-vocabulary' })
    t.equal(res.statusCode, 200)
    t.match(res.json().causes, [{ code: 'production', fr: 'Problème de production', en: 'Production problem' }])
    t.equal(res.json().causes.length, 7)
    t.match(res.json().statuses.find((s: any) => s.code === 'ongoing'), { next: ['resolved', 'discontinued'] })
  })

  let id = ''
  t.test('a subscribed lab declares on its own presentation; MITM comes from the referential', async (t) => {
    const res = await declare(anticipated([AMOX]))
    t.equal(res.statusCode, 201)
    const d = res.json()
    id = d.id
    t.match(d, {
      lab: { id: ORG.labBiogaran, name: 'BIOGARAN' }, kind: 'anticipated', status: 'declared', version: 1, mitm: true, atc: 'J01CA04',
      presentations: [{ cip13: AMOX, gtin: `0${AMOX}`, name: 'AMOXICILLINE BIOGARAN 500 mg, gélule' }],
      cause: { code: 'raw_material', fr: 'Difficulté d’approvisionnement en matière première', en: 'Raw material shortage' },
      allocation: { inPlace: true }, allowedTransitions: ['ongoing', 'resolved', 'avoided', 'discontinued'],
    })
    const typed = await declare(anticipated([ROSU], { mitm: true }))
    t.equal(typed.statusCode, 400, 'the lab cannot type MITM')
    t.match(typed.json(), { errors: [{ field: 'body.mitm', code: 'additionalProperties' }] })
    const plain = await declare(anticipated([ROSU]))
    t.equal(plain.json().mitm, false)
    t.equal((await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${plain.json().id}/transitions`, headers: biogaran, payload: { to: 'avoided' } })).statusCode, 200)
  })

  t.test('one open declaration per presentation', async (t) => {
    const res = await declare(anticipated([AMOX]))
    t.equal(res.statusCode, 409)
    t.match(res.json(), { code: 'PRESENTATION_ALREADY_DECLARED', declarationId: id })
  })

  t.test('non-subscribed lab refused; another lab’s product answers 404; nothing written', async (t) => {
    const before = [await count(ctx, 'shortage_declarations'), await count(ctx, 'audit_log')]
    const accord = await declare(anticipated([ONDAN]), auth('lab', ORG.labAccord))
    t.equal(accord.statusCode, 403)
    t.equal(accord.json().code, 'LAB_NOT_SUBSCRIBED')
    const other = await declare(anticipated([ROSU90, AMOXCLAV]))
    t.equal(other.statusCode, 404)
    t.match(other.json(), { code: 'NOT_FOUND', errors: [{ field: 'body.presentations.1' }] })
    t.same([await count(ctx, 'shortage_declarations'), await count(ctx, 'audit_log')], before)
  })

  t.test('bad CIP13, unknown product, unknown cause, dates out of order: 4xx naming the field, nothing written', async (t) => {
    const before = [await count(ctx, 'shortage_declarations'), await count(ctx, 'shortage_declaration_versions'), await count(ctx, 'audit_log')]
    const bad = await declare(anticipated([ROSU90, '3400949497356']))
    t.equal(bad.statusCode, 400)
    t.match(bad.json(), { code: 'INVALID_IDENTIFIER', errors: [{ field: 'body.presentations.1' }] })
    const unknown = await declare(anticipated(['3400930000007']))
    t.equal(unknown.statusCode, 404)
    t.match(unknown.json(), { errors: [{ field: 'body.presentations.0' }] })
    const cause = await declare(anticipated([ROSU90], { cause: 'martians' }))
    t.equal(cause.statusCode, 400)
    t.match(cause.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body.cause', code: 'enum' }] })
    const order = await declare(anticipated([ROSU90], { estimatedEnd: '2026-11-30' }))
    t.equal(order.statusCode, 400)
    t.match(order.json(), { code: 'DATES_OUT_OF_ORDER', errors: [{ field: 'body.estimatedEnd' }] })
    const en = await declare(anticipated([ROSU90], { estimatedEnd: '2026-11-30' }), { ...biogaran, 'accept-language': 'en' })
    t.match(en.json().detail, /body.estimatedEnd: 2026-11-30 is before the start/)
    const other = await declare(anticipated([ROSU90], { cause: 'other' }))
    t.match(other.json(), { errors: [{ field: 'body.causeText', code: 'required' }] })
    const noStart = await declare({ kind: 'observed', presentations: [ROSU90], cause: 'production' })
    t.match(noStart.json(), { errors: [{ field: 'body.actualStart', code: 'required' }] })
    const unknownEnd = await declare(anticipated([ROSU90], { estimatedEndUnknown: true }))
    t.match(unknownEnd.json(), { code: 'DATES_OUT_OF_ORDER', errors: [{ field: 'body.estimatedEnd' }] })
    t.same([await count(ctx, 'shortage_declarations'), await count(ctx, 'shortage_declaration_versions'), await count(ctx, 'audit_log')], before)
  })

  t.test('updates are versions; the history shows each and who made it; another lab gets 404 everywhere', async (t) => {
    const patch = await app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${id}`, headers: biogaran, payload: { estimatedEnd: '2027-02-01', expectedVersion: 1, reason: 'Lot retardé' } })
    t.equal(patch.statusCode, 200)
    t.match(patch.json(), { version: 2, estimatedEnd: '2027-02-01' })
    const stale = await app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${id}`, headers: biogaran, payload: { advice: 'x', expectedVersion: 1 } })
    t.equal(stale.statusCode, 409)
    t.match(stale.json(), { code: 'VERSION_MISMATCH', currentVersion: 2 })
    const badDates = await app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${id}`, headers: biogaran, payload: { estimatedEnd: '2026-01-01' } })
    t.match(badDates.json(), { code: 'DATES_OUT_OF_ORDER', errors: [{ field: 'body.estimatedEnd' }] })
    ctx.clock.now = new Date('2026-12-03T10:00:00Z') // an actual date is never in the future
    const ongoing = await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${id}/transitions`, headers: auth('lab', ORG.labBiogaran, 'bob'), payload: { to: 'ongoing', date: '2026-12-03' } })
    t.match(ongoing.json(), { version: 3, status: 'ongoing', actualStart: '2026-12-03' })

    const history = await app.inject({ method: 'GET', url: `/v1/shortage-declarations/${id}/history`, headers: biogaran })
    t.equal(history.statusCode, 200)
    const versions = history.json().versions
    t.same(versions.map((v: any) => [v.version, v.status, v.action, v.actor.user]), [
      [1, 'declared', 'created', 'alice'],
      [2, 'declared', 'updated', 'alice'],
      [3, 'ongoing', 'transition:ongoing', 'bob'],
    ])
    t.same(versions[1].changes.estimatedEnd, ['2027-01-15', '2027-02-01'])
    t.equal(versions[1].reason, 'Lot retardé')
    t.equal(versions[0].snapshot.estimatedEnd, '2027-01-15', 'each version keeps its content')
    const ansm = await app.inject({ method: 'GET', url: `/v1/shortage-declarations/${id}/history`, headers: auth('ansm', ORG.ansm) })
    t.equal(ansm.json().versions.length, 3, 'ANSM reads any history')
    const audit = await app.inject({ method: 'GET', url: `/v1/audit/entries?objectType=shortage-declaration&objectId=${id}`, headers: auth('ordre', ORG.ordre) })
    t.equal(audit.statusCode, 200)
    t.same(audit.json().map((e: any) => e.action), ['shortage-declaration.created', 'shortage-declaration.updated', 'shortage-declaration.transition:ongoing'], 'audited')

    const arrow = auth('lab', ORG.labArrow)
    const tries = [
      { method: 'GET', url: `/v1/shortage-declarations/${id}` },
      { method: 'GET', url: `/v1/shortage-declarations/${id}/history` },
      { method: 'PATCH', url: `/v1/shortage-declarations/${id}`, payload: { advice: 'x' } },
      { method: 'POST', url: `/v1/shortage-declarations/${id}/transitions`, payload: { to: 'resolved' } },
      { method: 'PUT', url: `/v1/shortage-declarations/${id}/automatic-response`, payload: { message: 'x' } },
    ] as const
    for (const r of tries) {
      const res = await app.inject({ ...r, headers: arrow })
      t.equal(res.statusCode, 404, `${r.method} ${r.url}`)
    }
    const list = (await app.inject({ method: 'GET', url: '/v1/shortage-declarations', headers: arrow })).json()
    t.same(list.items, [])
    const mine = (await app.inject({ method: 'GET', url: `/v1/shortage-declarations?cip13=${AMOX}`, headers: biogaran })).json()
    t.same(mine.items.map((d: any) => d.id), [id])
    t.equal((await app.inject({ method: 'GET', url: `/v1/shortage-declarations/${id}`, headers: auth('pharmacy', ORG.pharmacyParis) })).statusCode, 403)
  })

  t.test('every lifecycle transition, legal and illegal', async (t) => {
    const pool = [ROSU90, ...IBU, ...LEVO]
    ctx.clock.now = new Date('2026-12-10T10:00:00Z') // the actual dates below are not in the future
    const paths: Record<string, string[]> = {
      draft: [], declared: ['declared'], ongoing: ['declared', 'ongoing'], resolved: ['declared', 'resolved'], avoided: ['declared', 'avoided'], discontinued: ['declared', 'discontinued'],
    }
    let n = 0
    for (const from of STATUSES) {
      for (const to of STATUSES.filter((s) => s !== 'draft')) {
        const cip13 = pool[n++ % pool.length]!
        const created = await declare(anticipated([cip13], { status: 'draft', alternatives: [] }))
        t.equal(created.statusCode, 201, `create for ${from} → ${to}`)
        const did = created.json().id
        const move = (target: string) => app.inject({ method: 'POST', url: `/v1/shortage-declarations/${did}/transitions`, headers: biogaran, payload: { to: target, date: '2026-12-10' } })
        for (const step of paths[from]!) t.equal((await move(step)).statusCode, 200, `reach ${from}`)
        const res = await move(to)
        if (TRANSITIONS[from].includes(to)) {
          t.equal(res.statusCode, 200, `${from} → ${to} allowed`)
          t.equal(res.json().status, to)
        } else {
          t.equal(res.statusCode, 409, `${from} → ${to} refused`)
          t.match(res.json(), { code: 'INVALID_TRANSITION', allowedTransitions: TRANSITIONS[from], currentStatus: from })
        }
        // free the presentation for the next round
        const status = (await app.inject({ method: 'GET', url: `/v1/shortage-declarations/${did}`, headers: biogaran })).json().status
        if (status === 'draft') await move('declared')
        if (status === 'draft' || status === 'declared') await move('avoided')
        if (status === 'ongoing') await move('resolved')
      }
    }
    const closed = await app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${id}`, headers: biogaran, payload: { advice: 'x' } })
    t.equal(closed.statusCode, 200, 'an ongoing one can still be updated')
  })

  t.test('a closed declaration cannot be updated; resolving before the start is refused', async (t) => {
    const early = await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${id}/transitions`, headers: biogaran, payload: { to: 'resolved', date: '2026-12-01' } })
    t.equal(early.statusCode, 400)
    t.match(early.json(), { code: 'DATES_OUT_OF_ORDER', errors: [{ field: 'body.date' }] })
    ctx.clock.now = new Date('2027-01-10T10:00:00Z')
    const ok = await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${id}/transitions`, headers: biogaran, payload: { to: 'resolved', date: '2027-01-10' } })
    t.match(ok.json(), { status: 'resolved', actualEnd: '2027-01-10', allowedTransitions: [] })
    const patch = await app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${id}`, headers: biogaran, payload: { advice: 'x' } })
    t.equal(patch.statusCode, 409)
    t.equal(patch.json().code, 'DECLARATION_CLOSED')
  })
})

t.test('lab updates reach pharmacies with an open signal, and not others', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran)
  const signal = (org: string, code: string) =>
    app.inject({ method: 'POST', url: '/v1/shortage-signals', headers: auth('pharmacy', org), payload: { code, wholesaler: 'OCP', unavailableSince: '2026-11-15' } })
  const paris = (await signal(ORG.pharmacyParis, AMOX)).json()
  const lyon = (await signal(ORG.pharmacyLyon, AMOX)).json()
  await app.inject({ method: 'POST', url: `/v1/shortage-signals/${lyon.id}/close`, headers: auth('pharmacy', ORG.pharmacyLyon), payload: {} })
  await signal(ORG.pharmacyAjaccio, ROSU)

  const created = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: anticipated([AMOX, AMOX16]) })
  const id = created.json().id
  const response = await app.inject({ method: 'PUT', url: `/v1/shortage-declarations/${id}/automatic-response`, headers: biogaran, payload: { message: 'Réponse de la déclaration', allocationRules: 'Contingentement' } })
  t.equal(response.statusCode, 200)
  await app.inject({ method: 'PUT', url: `/v1/shortage-automatic-responses/${AMOX}`, headers: biogaran, payload: { message: 'Réponse de la présentation' } })
  await app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${id}`, headers: biogaran, payload: { estimatedEnd: '2027-03-01' } })
  ctx.clock.now = new Date('2027-01-20T10:00:00Z') // actual dates are not in the future
  await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${id}/transitions`, headers: biogaran, payload: { to: 'ongoing', date: '2026-12-01' } })
  await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${id}/transitions`, headers: biogaran, payload: { to: 'resolved', date: '2027-01-20' } })

  const parisFeed = (await feed(ctx, ORG.pharmacyParis)).filter((i) => i.type.startsWith('shortage.declaration'))
  t.same(parisFeed.map((i) => [i.type, i.payload.declaration.version, i.payload.declaration.status]), [
    ['shortage.declaration_updated', 1, 'declared'],
    ['shortage.declaration_updated', 2, 'declared'],
    ['shortage.declaration_updated', 3, 'ongoing'],
    ['shortage.declaration_closed', 4, 'resolved'],
  ])
  t.equal(parisFeed[1]!.payload.automaticResponse.message, 'Réponse de la déclaration', 'the declaration’s response takes precedence')
  t.same(parisFeed[0]!.payload.presentations, [AMOX, AMOX16])
  t.notOk((await feed(ctx, ORG.pharmacyLyon)).some((i) => i.type.startsWith('shortage.declaration')), 'a closed signal gets nothing')
  t.notOk((await feed(ctx, ORG.pharmacyAjaccio)).some((i) => i.type.startsWith('shortage.declaration')), 'a signal on another presentation gets nothing')
  t.equal(paris.status, 'open')

  // a new signal while a declaration is open is answered with it
  const created2 = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: anticipated([AMOX]) })
  await app.inject({ method: 'PUT', url: `/v1/shortage-declarations/${created2.json().id}/automatic-response`, headers: biogaran, payload: { message: 'Nouvelle réponse' } })
  const answered = (await signal(ORG.pharmacyGuadeloupe, AMOX)).json()
  t.match(answered, { automaticResponse: { scope: 'declaration', message: 'Nouvelle réponse' }, declaration: { id: created2.json().id, status: 'declared' } })
  const drafts = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: anticipated([ROSU], { status: 'draft' }) })
  t.equal(drafts.statusCode, 201)
  const before = (await feed(ctx, ORG.pharmacyAjaccio)).length
  await app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${drafts.json().id}`, headers: biogaran, payload: { advice: 'brouillon' } })
  t.equal((await feed(ctx, ORG.pharmacyAjaccio)).length, before, 'a draft is not published')
  const ajaccio = (await app.inject({ method: 'GET', url: '/v1/shortage-signals', headers: auth('pharmacy', ORG.pharmacyAjaccio) })).json().items[0]
  t.equal(ajaccio.declaration, null, 'nor shown with a signal')
})

import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

const AMOX = '3400936128149'
const ROSU = '3400949497294'
const IBU = '3400936843127'
const DAY = 86_400_000

// Pharmacies by department, beyond the demo ones (750100010 Paris, 690100020 Lyon, 130100030 Marseille,
// 2A0100040 Ajaccio, 971100050 Pointe-à-Pitre).
const PHARMACIES: Record<string, string[]> = {
  '75': [ORG.pharmacyParis, '750200011', '750200029'],
  '69': [ORG.pharmacyLyon, '690200011', '690200029', '690200037'],
  '13': ['130100030', '130200011'],
  '2A': [ORG.pharmacyAjaccio],
  '971': [ORG.pharmacyGuadeloupe, '971200011', '971200029'],
}

async function setup(t: { teardown(fn: () => unknown): void }) {
  const ctx = await testApp(t)
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  const demo = new Set(Object.values(ORG) as string[])
  for (const [department, ids] of Object.entries(PHARMACIES)) {
    for (const id of ids.filter((i) => !demo.has(i) && i !== '130100030')) {
      await ctx.database.db.insertInto('organisations').values({ id, role: 'pharmacy', name: `Pharmacie ${id}`, department, region: null, updated_at: new Date() }).execute()
    }
  }
  ctx.clock.now = new Date('2026-11-18T10:00:00Z') // Wednesday of 2026-W47
  return ctx
}

async function declare(ctx: TestContext, campaignId: string, pharmacy: string, items: Array<[string, number]>) {
  const res = await ctx.app.inject({ method: 'POST', url: `/v1/stock-campaigns/${campaignId}/declarations/bulk`, headers: ctx.auth('pharmacy', pharmacy), payload: { items: items.map(([cip13, quantity]) => ({ cip13, quantity })) } })
  if (res.statusCode !== 200) throw new Error(res.body)
}

t.test('weekly aggregates by department and product', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const ordre = auth('ordre', ORG.ordre)
  const ministry = auth('ministry', ORG.ministry)
  const id = (await app.inject({ method: 'POST', url: '/v1/stock-campaigns', headers: ordre, payload: { name: 'Grippe 2026', products: [AMOX, ROSU, IBU], startDate: '2026-11-16', endDate: '2027-03-31' } })).json().id

  // AMOX: 75 → 10+20+30 (3 pharmacies), 69 → 4×5 (4), 2A → 7 (1), 971 → 3×100 (3)
  // ROSU: 13 → 4+5 (2) only
  // IBU: 75 → 3×1 (3), 13 → 2×2 (2), 2A → 1 (1)
  const [p75a, p75b, p75c] = PHARMACIES['75']!
  await declare(ctx, id, p75a!, [[AMOX, 999], [IBU, 1]])
  await declare(ctx, id, p75a!, [[AMOX, 10]]) // replaces 999: counted once
  await declare(ctx, id, p75b!, [[AMOX, 20], [IBU, 1]])
  await declare(ctx, id, p75c!, [[AMOX, 30], [IBU, 1]])
  for (const p of PHARMACIES['69']!) await declare(ctx, id, p, [[AMOX, 5]])
  await declare(ctx, id, ORG.pharmacyAjaccio, [[AMOX, 7], [IBU, 1]])
  for (const p of PHARMACIES['971']!) await declare(ctx, id, p, [[AMOX, 100]])
  await declare(ctx, id, '130100030', [[ROSU, 4], [IBU, 2]])
  await declare(ctx, id, '130200011', [[ROSU, 5], [IBU, 2]])

  const get = (url: string, headers = ministry) => app.inject({ method: 'GET', url, headers })

  t.test('the week in progress is not published', async (t) => {
    const res = await get(`/v1/stock-campaigns/${id}/aggregates`)
    t.equal(res.statusCode, 200)
    t.same(res.json().weeks, [])
    const week = await get(`/v1/stock-campaigns/${id}/aggregates?week=2026-W47`)
    t.equal(week.statusCode, 400)
    t.match(week.json(), { errors: [{ field: 'querystring.week', code: 'not_published', message: /2026-11-23/ }] })
  })

  let published: any
  t.test('once the week has ended: totals and pharmacy counts, small cells suppressed', async (t) => {
    ctx.clock.now = new Date('2026-11-22T23:00:00Z') // Monday 23 November 00:00 Paris
    const res = await get(`/v1/stock-campaigns/${id}/aggregates?week=2026-W47`)
    t.equal(res.statusCode, 200)
    published = res.json()
    t.match(published, { campaignId: id, name: 'Grippe 2026', minPharmacies: 3, weeks: [{ week: '2026-W47', monday: '2026-11-16' }] })
    const [amox, rosu, ibu] = published.weeks[0].products
    t.match(amox, { cip13: AMOX, name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', national: { totalQuantity: 387, pharmacies: 11, suppressed: false } })
    t.same(amox.departments, [
      { department: '2A', region: '94', totalQuantity: null, pharmacies: null, suppressed: true, reason: 'below_threshold' },
      { department: '69', region: '84', totalQuantity: 20, pharmacies: 4, suppressed: false, reason: null },
      { department: '75', region: '11', totalQuantity: null, pharmacies: null, suppressed: true, reason: 'complementary' },
      { department: '971', region: '01', totalQuantity: 300, pharmacies: 3, suppressed: false, reason: null },
    ], 'Corsica (2A) and Guadeloupe (971) are departments of their own')
    t.match(rosu, { cip13: ROSU, national: { totalQuantity: null, pharmacies: null, suppressed: true }, departments: [{ department: '13', suppressed: true, totalQuantity: null }] })
    t.match(ibu, { national: { totalQuantity: 8, pharmacies: 6 }, departments: [{ department: '13', suppressed: true, reason: 'below_threshold' }, { department: '2A', suppressed: true, reason: 'below_threshold' }, { department: '75', totalQuantity: 3, pharmacies: 3 }] })
  })

  t.test('the subtraction attack: national total minus the published departments recovers no small cell', async (t) => {
    for (const product of published.weeks[0].products) {
      const hidden = product.departments.filter((d: any) => d.suppressed)
      if (hidden.length === 0) continue
      if (product.national.suppressed) {
        t.equal(product.national.totalQuantity, null, `${product.cip13}: nothing to subtract from`)
        continue
      }
      const shown = product.departments.filter((d: any) => !d.suppressed).reduce((n: number, d: any) => n + d.totalQuantity, 0)
      const remainder = product.national.totalQuantity - shown
      const remainderPharmacies = product.national.pharmacies - product.departments.filter((d: any) => !d.suppressed).reduce((n: number, d: any) => n + d.pharmacies, 0)
      t.ok(hidden.length >= 2, `${product.cip13}: the remainder mixes ${hidden.length} departments`)
      t.ok(remainderPharmacies >= 3, `${product.cip13}: and ${remainderPharmacies} pharmacies`)
    }
    const amox = published.weeks[0].products[0]
    const remainder = amox.national.totalQuantity - 20 - 300
    t.equal(remainder, 67)
    t.not(remainder, 7, 'the Ajaccio pharmacy’s 7 boxes cannot be isolated')
  })

  t.test('CSV for the ministry: UTF-8 with BOM, French columns, suppressed figures empty', async (t) => {
    const res = await get(`/v1/stock-campaigns/${id}/aggregates.csv?week=2026-W47`)
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /text\/csv; charset=utf-8/)
    t.ok(res.rawPayload.subarray(0, 3).equals(Buffer.from([0xef, 0xbb, 0xbf])), 'byte-order mark')
    const lines = res.body.replace(/^\uFEFF/, '').trim().split('\n')
    t.equal(lines[0], 'Semaine;Lundi;Département;Région;Code CIP13;Produit;Quantité totale;Nombre d’officines déclarantes;Secret statistique')
    t.ok(lines.includes(`2026-W47;2026-11-16;2A;94;${AMOX};AMOXICILLINE BIOGARAN 500 mg, gélule;;;secret (moins de pharmacies que le seuil)`))
    t.ok(lines.includes(`2026-W47;2026-11-16;75;11;${AMOX};AMOXICILLINE BIOGARAN 500 mg, gélule;;;secret complémentaire`))
    t.ok(lines.includes(`2026-W47;2026-11-16;971;01;${AMOX};AMOXICILLINE BIOGARAN 500 mg, gélule;300;3;`))
    t.ok(lines.includes(`2026-W47;2026-11-16;France entière;;${AMOX};AMOXICILLINE BIOGARAN 500 mg, gélule;387;11;`))
    t.notOk(res.body.includes(';7;'), 'no small figure leaks')
  })

  t.test('only the ministry and the operator read aggregates', async (t) => {
    t.equal((await get(`/v1/stock-campaigns/${id}/aggregates`, ordre)).statusCode, 200)
    for (const headers of [auth('pharmacy', ORG.pharmacyParis), auth('lab', ORG.labBiogaran), auth('ansm', ORG.ansm), auth('wholesaler', ORG.wholesaler)]) {
      const json = await get(`/v1/stock-campaigns/${id}/aggregates`, headers)
      t.equal(json.statusCode, 403)
      t.equal(json.json().code, 'FORBIDDEN_ROLE')
      t.equal((await get(`/v1/stock-campaigns/${id}/aggregates.csv`, headers)).statusCode, 403)
    }
    t.equal((await get('/v1/stock-campaigns/00000000-0000-4000-8000-000000000000/aggregates')).statusCode, 404)
    t.match((await get(`/v1/stock-campaigns/${id}/aggregates?week=2026-47`)).json(), { errors: [{ field: 'querystring.week', code: 'pattern' }] })
  })
})

t.test('retention: raw declarations past retention are purged by the scheduled job; aggregates stay', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const ordre = auth('ordre', ORG.ordre)
  const ministry = auth('ministry', ORG.ministry)
  const create = async (body: Record<string, unknown>) => (await app.inject({ method: 'POST', url: '/v1/stock-campaigns', headers: ordre, payload: { products: [AMOX, IBU], startDate: '2026-11-01', endDate: '2026-11-29', ...body } })).json().id as string
  const shortId = await create({ name: 'Court', retentionDays: 14 })
  const longId = await create({ name: 'Long' }) // default retention: 183 days

  // week 47, with replacements (history rows)
  for (const p of PHARMACIES['75']!) await declare(ctx, shortId, p, [[AMOX, 1], [IBU, 2]])
  for (const p of PHARMACIES['75']!) await declare(ctx, shortId, p, [[AMOX, 10]])
  for (const p of PHARMACIES['75']!) await declare(ctx, longId, p, [[AMOX, 5]])
  // week 48
  ctx.clock.now = new Date('2026-11-25T10:00:00Z')
  for (const p of PHARMACIES['69']!) await declare(ctx, shortId, p, [[AMOX, 3]])
  await declare(ctx, shortId, ORG.pharmacyLyon, [[AMOX, 4]])

  const rows = async (campaignId: string, week?: string) => {
    let q = app.db.selectFrom('stock_declarations').select('id').where('campaign_id', '=', campaignId)
    if (week) q = q.where('week', '=', week)
    const ids = (await q.execute()).map((r) => r.id)
    const history = ids.length ? Number((await app.db.selectFrom('stock_declaration_history').select((eb) => eb.fn.countAll().as('n')).where('declaration_id', 'in', ids).executeTakeFirstOrThrow()).n) : 0
    return { declarations: ids.length, history }
  }
  t.same(await rows(shortId, '2026-11-16'), { declarations: 6, history: 3 })
  t.same(await rows(shortId, '2026-11-23'), { declarations: 4, history: 1 })
  const someW47 = (await app.db.selectFrom('stock_declarations').select('id').where('campaign_id', '=', shortId).where('week', '=', '2026-11-16').executeTakeFirstOrThrow()).id

  ctx.clock.now = new Date('2026-11-30T09:00:00Z') // the campaign is over: both weeks published
  const aggregates = async () => (await app.inject({ method: 'GET', url: `/v1/stock-campaigns/${shortId}/aggregates`, headers: ministry })).json()
  const before = await aggregates()
  t.same(before.weeks.map((w: any) => w.week), ['2026-W47', '2026-W48'])
  t.match(before.weeks[0].products[0], { cip13: AMOX, national: { totalQuantity: 30, pharmacies: 3 } })
  const csvBefore = (await app.inject({ method: 'GET', url: `/v1/stock-campaigns/${shortId}/aggregates.csv`, headers: ministry })).body

  // Week 47 ends Monday 23 November 00:00 Paris; 14 days later: Monday 7 December 00:00 Paris = 6 December 23:00 UTC.
  ctx.clock.now = new Date('2026-12-06T22:59:59Z')
  await app.jobs.runDue()
  t.same(await rows(shortId, '2026-11-16'), { declarations: 6, history: 3 }, 'one second before the deadline nothing is purged')

  ctx.clock.now = new Date('2026-12-06T23:00:00Z')
  await app.jobs.runDue()
  t.same(await rows(shortId, '2026-11-16'), { declarations: 0, history: 0 }, 'week 47 is purged with its history')
  t.same(await rows(shortId, '2026-11-23'), { declarations: 4, history: 1 }, 'week 48 is not yet past retention')
  t.same(await rows(longId), { declarations: 3, history: 0 }, 'another campaign keeps its own retention')
  const audit = await app.db.selectFrom('audit_log').selectAll().where('action', '=', 'stock-campaign.raw-data-purged').execute()
  t.equal(audit.length, 1)
  t.match(audit[0], { object_id: shortId, actor_user: 'stock-retention', changes: { declarations: 6, history: 3, weeks: ['2026-W47'], retentionDays: 14 } })
  t.same(await aggregates(), before, 'aggregates are unchanged')
  t.equal((await app.inject({ method: 'GET', url: `/v1/stock-declarations/${someW47}`, headers: ordre })).statusCode, 404, 'the raw declaration is gone')

  ctx.clock.advance(DAY)
  await app.jobs.runDue()
  t.equal((await app.db.selectFrom('audit_log').select('seq').where('action', '=', 'stock-campaign.raw-data-purged').execute()).length, 1, 'nothing more to purge, nothing recorded')

  ctx.clock.now = new Date('2026-12-13T23:00:00Z') // week 48 + 14 days
  await app.jobs.runDue()
  t.same(await rows(shortId), { declarations: 0, history: 0 })
  t.same(await rows(longId), { declarations: 3, history: 0 })
  t.match((await app.db.selectFrom('audit_log').selectAll().where('action', '=', 'stock-campaign.raw-data-purged').orderBy('seq').execute())[1], { changes: { declarations: 4, history: 1, weeks: ['2026-W48'] } })
  t.same(await aggregates(), before, 'aggregates still unchanged')
  t.equal((await app.inject({ method: 'GET', url: `/v1/stock-campaigns/${shortId}/aggregates.csv`, headers: ministry })).body, csvBefore)
  const pending = await app.db.selectFrom('jobs').select(['state', 'payload']).where('queue', '=', 'stock.retention').where('state', '=', 'pending').execute()
  t.same(pending.map((j) => (j.payload as any).campaignId), [longId], 'the short campaign’s job is finished; the long one waits for its deadline')

  // the long campaign: 183 days after its week 47 ended
  ctx.clock.now = new Date('2027-05-24T22:00:00Z')
  await app.jobs.runDue()
  t.same(await rows(longId), { declarations: 0, history: 0 })
})

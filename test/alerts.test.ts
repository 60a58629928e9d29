import t from 'tap'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

const HOUR = 3_600_000
const PHARMACY_MARSEILLE = '130100030'
const PHARMACY_REUNION = '974100060'

async function feed(ctx: TestContext, role: 'pharmacy' | 'hospital' | 'ansm' | 'lab', org: string) {
  await ctx.app.hub.runSequencer()
  return (await ctx.app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=100', headers: ctx.auth(role, org) })).json().items as Array<{ id: string; type: string; payload: any }>
}

const alert = (extra: Record<string, unknown> = {}) => ({
  title: 'Information de sécurité : nouvelle contre-indication',
  reason: 'Nouvelles données de pharmacovigilance',
  message: 'Ne plus délivrer chez l’enfant de moins de 6 ans sans avis médical.',
  recipients: { categories: ['pharmacy', 'hospital'], regions: ['93', '04'] },
  contacts: [{ name: 'Pharmacovigilance', email: 'pv@biogaran.example' }],
  ...extra,
})

t.test('a public-health alert: same pipeline, no batches, no blocking, read tracking', async (t) => {
  const ctx = await testApp(t)
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  ctx.clock.now = new Date('2026-11-22T10:00:00Z')
  const { app, auth } = ctx
  const biogaran = auth('lab', ORG.labBiogaran, 'alice')
  const arrow = auth('lab', ORG.labArrow)
  const ansm = auth('ansm', ORG.ansm, 'eva')
  const marseille = auth('pharmacy', PHARMACY_MARSEILLE)
  const reunion = auth('pharmacy', PHARMACY_REUNION)
  const paris = auth('pharmacy', ORG.pharmacyParis)
  let id = ''

  t.test('a lab drafts an alert; batches, blocking and departments are not part of an alert', async (t) => {
    for (const [extra, field] of [
      [{ batches: [{ cip13: '3400936128149', batch: 'L1' }] }, 'body.batches'],
      [{ blockDispensation: true }, 'body.blockDispensation'],
      [{ recipients: { categories: ['pharmacy'], departments: ['75'] } }, 'body.recipients.departments'],
      [{ recipients: { categories: [] } }, 'body.recipients.categories'],
    ] as const) {
      const res = await app.inject({ method: 'POST', url: '/v1/alerts', headers: biogaran, payload: alert(extra) })
      t.equal(res.statusCode, 400, field)
      t.match(res.json().errors[0].field, field)
    }
    t.equal(Number((await app.db.selectFrom('recalls').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n), 0, 'nothing created')
    const res = await app.inject({ method: 'POST', url: '/v1/alerts', headers: biogaran, payload: alert() })
    t.equal(res.statusCode, 201)
    id = res.json().id
    t.match(res.json(), { reference: 'A-2026-0001', status: 'draft', recipients: { categories: ['pharmacy', 'hospital'], regions: ['93', '04'] } })
    t.notOk('batches' in res.json())
    t.notOk('blockDispensation' in res.json())
    t.equal((await app.inject({ method: 'GET', url: `/v1/recalls/${id}`, headers: biogaran })).statusCode, 404, 'an alert is not a recall')
  })

  t.test('another lab gets 404 on every alert route', async (t) => {
    for (const [method, url] of [
      ['GET', `/v1/alerts/${id}`], ['PATCH', `/v1/alerts/${id}`], ['POST', `/v1/alerts/${id}/submit`], ['POST', `/v1/alerts/${id}/comments`],
      ['GET', `/v1/alerts/${id}/history`], ['GET', `/v1/alerts/${id}/coverage`], ['GET', `/v1/alerts/${id}/recipients`], ['POST', `/v1/alerts/${id}/close`], ['GET', `/v1/alerts/${id}/report`],
    ] as const) {
      const payload = method === 'PATCH' ? { title: 'Autre titre' } : url.endsWith('comments') ? { text: 'x' } : {}
      t.equal((await app.inject({ method, url, headers: arrow, payload })).statusCode, 404, `${method} ${url}`)
    }
  })

  t.test('ANSM validates it from the same queue as recalls; nothing is sent before', async (t) => {
    t.equal((await app.inject({ method: 'POST', url: `/v1/alerts/${id}/submit`, headers: biogaran })).statusCode, 200)
    t.match((await app.inject({ method: 'GET', url: '/v1/recall-review-queue', headers: ansm })).json().items, [{ id, kind: 'alert', reference: 'A-2026-0001' }])
    t.same(await feed(ctx, 'pharmacy', PHARMACY_MARSEILLE), [])
    const changes = await app.inject({ method: 'POST', url: `/v1/alerts/${id}/request-changes`, headers: ansm, payload: { comment: 'Citez le RCP modifié.' } })
    t.match(changes.json(), { status: 'changes_requested' })
    t.equal((await app.inject({ method: 'PATCH', url: `/v1/alerts/${id}`, headers: biogaran, payload: { message: 'Conformément au RCP modifié, ne plus délivrer chez l’enfant de moins de 6 ans sans avis médical.' } })).statusCode, 200)
    t.equal((await app.inject({ method: 'POST', url: `/v1/alerts/${id}/submit`, headers: biogaran })).statusCode, 200)
    t.same(await feed(ctx, 'pharmacy', PHARMACY_MARSEILLE), [])
    const ok = await app.inject({ method: 'POST', url: `/v1/alerts/${id}/approve`, headers: ansm })
    t.equal(ok.statusCode, 200)
    t.match(ok.json(), { status: 'broadcast', liveVersion: 1 })
    const history = (await app.inject({ method: 'GET', url: `/v1/alerts/${id}/history`, headers: biogaran })).json()
    t.match(history.thread.find((m: any) => m.kind === 'changes_requested'), { text: 'Citez le RCP modifié.', author: { org: 'ANSM' } })
  })

  t.test('it reaches exactly the pharmacies and hospitals of the chosen regions; nothing is blocked', async (t) => {
    const recipients = await app.db.selectFrom('recall_recipients').select('org_id').where('recall_id', '=', id).orderBy('org_id').execute()
    t.same(recipients.map((r) => r.org_id), [PHARMACY_MARSEILLE, PHARMACY_REUNION])
    t.match((await feed(ctx, 'pharmacy', PHARMACY_MARSEILLE)).map((e) => e.type), ['alert.broadcast'])
    t.same(await feed(ctx, 'pharmacy', ORG.pharmacyParis), [])
    t.same(await feed(ctx, 'hospital', ORG.hospital), [], 'the Paris hospital is outside the regions')
    t.equal((await app.inject({ method: 'GET', url: `/v1/alerts/${id}`, headers: paris })).statusCode, 404)
    t.equal((await app.inject({ method: 'PUT', url: `/v1/alerts/${id}/acknowledgement`, headers: paris, payload: { status: 'read' } })).statusCode, 404)
    const blocked = await app.db.selectFrom('dispensation_blocks').select('cip13').where('recall_id', '=', id).execute()
    t.same(blocked, [])
  })

  t.test('recipients acknowledge reading (idempotent); a feed read counts as read', async (t) => {
    const done = await app.inject({ method: 'PUT', url: `/v1/alerts/${id}/acknowledgement`, headers: marseille, payload: { status: 'done' } })
    t.equal(done.statusCode, 400)
    t.equal(done.json().errors[0].field, 'body.status')
    const read = await app.inject({ method: 'PUT', url: `/v1/alerts/${id}/acknowledgement`, headers: marseille, payload: { status: 'read' } })
    t.match(read.json(), { status: 'read', changes: 1 })
    const again = await app.inject({ method: 'PUT', url: `/v1/alerts/${id}/acknowledgement`, headers: marseille, payload: { status: 'read' } })
    t.match(again.json(), { status: 'read', changes: 1 })
    const cov = (await app.inject({ method: 'GET', url: `/v1/alerts/${id}/coverage`, headers: ansm })).json()
    t.match(cov, { recipients: 2, read: 1, acknowledged: 1, byDepartment: [{ department: '13', read: 1 }, { department: '974', read: 0 }] })
    const unread = (await app.inject({ method: 'GET', url: `/v1/alerts/${id}/recipients?status=unread`, headers: biogaran })).json()
    t.same(unread.items.map((i: any) => i.org.id), [PHARMACY_REUNION])
  })

  t.test('a reminder goes to who has not read, once', async (t) => {
    ctx.clock.advance(24 * HOUR + 1000)
    await app.jobs.runDue()
    t.same((await feed(ctx, 'pharmacy', PHARMACY_REUNION)).map((e) => e.type), ['alert.broadcast', 'alert.reminder'])
    t.same((await feed(ctx, 'pharmacy', PHARMACY_MARSEILLE)).map((e) => e.type), ['alert.broadcast'])
    const events = await feed(ctx, 'pharmacy', PHARMACY_REUNION)
    const r = await app.inject({ method: 'POST', url: '/v1/feed/read', headers: reunion, payload: { eventIds: [events[0]!.id] } })
    t.equal(r.statusCode, 200)
    const cov = (await app.inject({ method: 'GET', url: `/v1/alerts/${id}/coverage`, headers: biogaran })).json()
    t.match(cov, { read: 2, acknowledged: 1 })
    ctx.clock.advance(48 * HOUR)
    await app.jobs.runDue()
    t.equal((await feed(ctx, 'pharmacy', PHARMACY_REUNION)).length, 2, 'no second reminder: everyone has read')
  })

  t.test('the lab closes it; the report goes to ANSM', async (t) => {
    const res = await app.inject({ method: 'POST', url: `/v1/alerts/${id}/close`, headers: biogaran })
    t.equal(res.statusCode, 200)
    const report = (await app.inject({ method: 'GET', url: `/v1/alerts/${id}/report`, headers: ansm })).json()
    t.match(report, { kind: 'alert', reference: 'A-2026-0001', coverage: { recipients: 2, read: 2, acknowledged: 1 }, notActing: [] })
    t.match((await feed(ctx, 'ansm', ORG.ansm)).map((e) => e.type), ['alert.submitted', 'alert.submitted', 'alert.report'])
    const pdf = await app.inject({ method: 'GET', url: `/v1/alerts/${id}/report/pdf`, headers: biogaran })
    t.equal(pdf.rawPayload.subarray(0, 5).toString(), '%PDF-')
    const recall = await app.inject({
      method: 'POST', url: '/v1/recalls', headers: biogaran,
      payload: { ...alert(), action: 'destroy', batches: [{ cip13: '3400936128149', batch: 'B1' }], blockDispensation: false, recipients: { categories: ['pharmacy'] } },
    })
    t.equal(recall.json().reference, 'R-2026-0001', 'recalls and alerts are numbered separately')
  })
})

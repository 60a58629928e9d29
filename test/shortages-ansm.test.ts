import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp } from './helpers.ts'

const AMOX = '3400936128149' // Biogaran, MITM J01CA04
const AMOX16 = '3400936128200' // Biogaran, MITM J01CA04
const ROSU = '3400949497294' // Biogaran, not MITM
const AMOXCLAV = '3400938801460' // Arrow, MITM J01CR02
const OMEP = '3400935804266' // Viatris, MITM A02BC01

async function setup(t: { teardown(fn: () => unknown): void }) {
  const ctx = await testApp(t)
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  ctx.clock.now = new Date('2026-11-22T10:00:00Z')
  return ctx
}
const decl = (presentations: string[], extra: Record<string, unknown> = {}) => ({
  kind: 'observed', presentations, cause: 'raw_material', actualStart: '2026-11-02', estimatedEnd: '2026-12-20', ...extra,
})

t.test('ANSM pull of MITM shortages', async (t) => {
  const ctx = await setup(t)
  const { app, auth } = ctx
  const ansm = auth('ansm', ORG.ansm)
  const create = async (lab: string, body: Record<string, unknown>) => {
    const res = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: auth('lab', lab), payload: body })
    t.equal(res.statusCode, 201)
    return res.json().id as string
  }
  const patch = (lab: string, id: string, body: Record<string, unknown>) => app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${id}`, headers: auth('lab', lab), payload: body })
  const pull = async (qs: string) => {
    const res = await app.inject({ method: 'GET', url: `/v1/ansm/mitm-shortages?${qs}`, headers: ansm })
    t.equal(res.statusCode, 200, qs)
    return res.json() as { items: Array<{ id: string; version: number; versions: Array<{ version: number }> }>; nextCursor: string; hasMore: boolean }
  }

  const a = await create(ORG.labBiogaran, decl([AMOX]))
  const b = await create(ORG.labArrow, decl([AMOXCLAV], { causeText: 'Fournisseur de principe actif défaillant' }))
  const c = await create(ORG.labViatris, decl([OMEP]))
  const notMitm = await create(ORG.labBiogaran, decl([ROSU]))
  const draft = await create(ORG.labBiogaran, decl([AMOX16], { status: 'draft' }))

  let saved = ''
  t.test('an update between two pages is seen exactly once; non-MITM and drafts never', async (t) => {
    const page1 = await pull('limit=2')
    t.same(page1.items.map((i) => i.id), [a, b])
    t.equal(page1.hasMore, true)
    t.same(page1.items[0]!.versions.map((v) => v.version), [1], 'first pull: full history')
    // between the pages: one declaration not yet read, one already read
    t.equal((await patch(ORG.labViatris, c, { stockCoverageDays: 3 })).statusCode, 200)
    t.equal((await patch(ORG.labBiogaran, a, { stockCoverageDays: 5 })).statusCode, 200)
    const page2 = await pull(`limit=2&cursor=${page1.nextCursor}`)
    t.same(page2.items.map((i) => [i.id, i.version]), [[c, 2], [a, 2]])
    t.equal(page2.hasMore, false)
    const all = [...page1.items, ...page2.items]
    t.equal(all.filter((i) => i.id === c).length, 1, 'the unread one is read once, at its new version')
    t.same(all.filter((i) => i.id === a).map((i) => i.version), [1, 2], 'the update of a read one is read once more')
    t.notOk(all.some((i) => i.id === notMitm || i.id === draft))
    const empty = await pull(`limit=2&cursor=${page2.nextCursor}`)
    t.same(empty.items, [])
    t.equal(empty.nextCursor, page2.nextCursor, 'nothing new: the same cursor')
    saved = page2.nextCursor
  })

  t.test('the next pull carries what changed since, with the versions made since', async (t) => {
    await patch(ORG.labArrow, b, { advice: 'Orienter vers une autre présentation' })
    await patch(ORG.labArrow, b, { stockCoverageDays: 10 })
    await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${c}/transitions`, headers: auth('lab', ORG.labViatris), payload: { to: 'resolved', date: '2026-11-22' } })
    const next = await pull(`limit=2&cursor=${saved}`)
    t.same(next.items.map((i) => [i.id, i.version]), [[b, 3], [c, 3]])
    t.same(next.items[0]!.versions.map((v) => v.version), [2, 3], 'both versions made since the last pull')
    t.equal((next.items[1] as any).status, 'resolved')
  })

  t.test('filters; a cursor from other filters is refused; only ANSM', async (t) => {
    t.same((await pull(`labId=${ORG.labArrow}`)).items.map((i) => i.id), [b])
    t.same((await pull('atc=a02')).items.map((i) => i.id), [c])
    t.same((await pull('status=resolved')).items.map((i) => i.id), [c])
    t.same((await pull('startFrom=2026-11-03')).items, [])
    const page = await pull('limit=1')
    const wrong = await app.inject({ method: 'GET', url: `/v1/ansm/mitm-shortages?labId=${ORG.labArrow}&cursor=${page.nextCursor}`, headers: ansm })
    t.equal(wrong.statusCode, 400)
    t.equal(wrong.json().code, 'INVALID_CURSOR')
    const order = await app.inject({ method: 'GET', url: '/v1/ansm/mitm-shortages?startFrom=2026-12-01&startTo=2026-11-01', headers: ansm })
    t.match(order.json(), { code: 'DATES_OUT_OF_ORDER', errors: [{ field: 'querystring.startTo' }] })
    for (const h of [auth('lab', ORG.labBiogaran), auth('pharmacy', ORG.pharmacyParis)]) {
      t.equal((await app.inject({ method: 'GET', url: '/v1/ansm/mitm-shortages', headers: h })).statusCode, 403)
      t.equal((await app.inject({ method: 'GET', url: '/v1/ansm/mitm-shortages.csv', headers: h })).statusCode, 403)
    }
    t.equal((await app.inject({ method: 'GET', url: `/v1/shortage-declarations/${draft}`, headers: ansm })).statusCode, 404, 'ANSM does not see drafts')
    t.equal((await app.inject({ method: 'GET', url: `/v1/shortage-declarations/${notMitm}`, headers: ansm })).statusCode, 200, 'ANSM reads any declaration')
  })

  t.test('CSV opens in a spreadsheet: BOM, French columns, accents', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/ansm/mitm-shortages.csv', headers: ansm })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/csv; charset=utf-8/)
    t.match(res.headers['content-disposition'], /attachment; filename="ruptures-mitm.csv"/)
    t.equal(res.headers['x-has-more'], 'false')
    t.ok(res.headers['x-next-cursor'])
    const raw = res.rawPayload
    t.same([...raw.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 byte-order mark')
    const lines = raw.subarray(3).toString('utf8').trim().split(/\r?\n/)
    t.equal(
      lines[0],
      'Identifiant;Version;Laboratoire (SIREN);Laboratoire;Présentations (CIP13);Dénomination;Classe ATC;Nature;Statut;Cause;Précision sur la cause;Début prévu;Début constaté;Fin estimée;Fin réelle;Couverture de stock (jours);Contingentement;Alternatives;Conseils aux pharmaciens;Déclarée le;Mise à jour le',
    )
    t.equal(lines.length, 4, 'header + the three MITM declarations')
    const arrow = lines.find((l) => l.startsWith(b))!
    t.match(arrow, /Rupture constatée;En cours|Rupture constatée;Déclarée/)
    t.match(arrow, /Difficulté d’approvisionnement en matière première;Fournisseur de principe actif défaillant/)
    t.match(arrow, /AMOXICILLINE\/ACIDE CLAVULANIQUE ARROW/)
  })
})

t.test('statistics', async (t) => {
  const ctx = await setup(t)
  const { app, auth, clock } = ctx
  const signal = (org: string, code: string) =>
    app.inject({ method: 'POST', url: '/v1/shortage-signals', headers: auth('pharmacy', org), payload: { code, wholesaler: 'OCP', unavailableSince: '2026-11-15' } })
  // Four pharmacies on a non-MITM product, one alone on a MITM product.
  for (const org of [ORG.pharmacyParis, ORG.pharmacyLyon, ORG.pharmacyAjaccio, '130100030']) t.equal((await signal(org, ROSU)).statusCode, 201)
  t.equal((await signal(ORG.pharmacyGuadeloupe, AMOX)).statusCode, 201)
  const biogaran = auth('lab', ORG.labBiogaran)
  const d = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: decl([AMOX]) })
  clock.advance(3_600_000)
  await app.inject({ method: 'PUT', url: `/v1/shortage-automatic-responses/${ROSU}`, headers: biogaran, payload: { message: 'Retour en décembre' } })
  await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${d.json().id}/transitions`, headers: biogaran, payload: { to: 'resolved', date: '2026-11-22' } })

  t.test('public figures: no token, cacheable, no group small enough to identify a pharmacy', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/public/shortage-statistics?year=2026' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['cache-control'], /public, max-age=300/)
    const s = res.json()
    t.equal(s.minPharmacies, 3)
    t.equal(s.averageDurationDays, 20)
    // The MITM figure and the J figure stand for one pharmacy each: withheld. The three breakdowns add up to the
    // same total, so the November total (5) is withheld too: with it, byMitm.true = 5 − byMitm.false would be 1.
    t.same(s.byMitm, [
      { mitm: false, declarations: 0, signals: 4, suppressed: false },
      { mitm: true, declarations: 1, signals: null, suppressed: true },
    ])
    t.same(s.byAtc.map((c: any) => [c.atc, c.signals, c.suppressed]), [['?', 4, false], ['J', null, true]])
    const nov = s.byMonth.find((m: any) => m.month === '2026-11')
    t.same(nov, { month: '2026-11', declarations: 1, signals: null, suppressed: true }, 'the total that would give the MITM figure by subtraction')
    t.same(s.byMonth.find((m: any) => m.month === '2026-01'), { month: '2026-01', declarations: 0, signals: 0, suppressed: false })
    t.notOk(res.body.includes(ORG.pharmacyGuadeloupe))
    // every published signal figure has at least 3 distinct pharmacies behind it
    const rows = await app.db.selectFrom('shortage_signals').select(['pharmacy_id', 'cip13']).execute()
    t.ok(new Set(rows.map((r) => r.pharmacy_id)).size >= 3)
  })

  t.test('per lab: declarations, durations, signals, time to first response; quarterly summary', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/shortage-statistics', headers: biogaran })
    t.equal(res.statusCode, 200)
    t.match(res.json(), {
      declarations: { total: 1, byKind: { observed: 1 }, byStatus: { resolved: 1 } },
      averageDurationDays: 20,
      signals: { received: 5, open: 5, answered: 5 },
      averageTimeToFirstResponseHours: 0.8, // four signals answered after an hour, one at once
    })
    const arrow = (await app.inject({ method: 'GET', url: '/v1/shortage-statistics', headers: auth('lab', ORG.labArrow) })).json()
    t.match(arrow, { declarations: { total: 0 }, signals: { received: 0 } }, 'another lab sees only its own')
    t.equal((await app.inject({ method: 'GET', url: '/v1/shortage-statistics', headers: auth('lab', ORG.labAccord) })).statusCode, 403)
    const q = await app.inject({ method: 'GET', url: '/v1/shortage-statistics/quarterly?year=2026&quarter=4', headers: biogaran })
    t.equal(q.statusCode, 200)
    t.same(q.json().products, [
      { cip13: AMOX, name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', lab: { id: ORG.labBiogaran, name: 'BIOGARAN' }, declarations: 1, shortageDays: 21, signals: 1 },
      { cip13: ROSU, name: 'ROSUVASTATINE BIOGARAN 10 mg, comprimé pelliculé', lab: { id: ORG.labBiogaran, name: 'BIOGARAN' }, declarations: 0, shortageDays: 0, signals: 4 },
    ])
  })
})

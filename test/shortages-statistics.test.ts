import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { AVAILABILITY_FILE, importActor } from '../src/shortages/rules/availability-file.ts'
import { importAvailability } from '../src/shortages/use-cases/availability-import.ts'
import { ORG, testApp } from './helpers.ts'

const AMOX = '3400936128149' // CIS 61000017, Biogaran, MITM J01CA04: a supply tension in the demo BDPM file (from 2 Nov 2026)
const ROSU = '3400949497294' // CIS 60002283, Biogaran, not MITM
const IBU = '3400936843127' // CIS 64000015, Biogaran, not MITM
const OMEP = '3400935804266' // CIS 62000011, Viatris, MITM A02BC01

t.test('quarterly and lab statistics', async (t) => {
  const ctx = await testApp(t)
  const { app, auth, clock } = ctx
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  clock.now = new Date('2026-11-20T08:00:00Z')
  await importAvailability(app.db, await readFile(path.join(DEMO_BDPM_DIR, AVAILABILITY_FILE)), { now: clock.now, actor: importActor('test'), file: AVAILABILITY_FILE, partial: false })
  const biogaran = auth('lab', ORG.labBiogaran)
  const ansm = auth('ansm', ORG.ansm)
  const post = async (url: string, headers: Record<string, string>, payload: unknown) => {
    const res = await app.inject({ method: 'POST', url, headers, payload: payload as Record<string, unknown> })
    t.ok(res.statusCode < 300, `${url}: ${res.statusCode} ${res.body.slice(0, 200)}`)
    return res.json()
  }
  // A risk that materialised: anticipated from 15 October, ongoing on 20 November, resolved on 29 November.
  const ibu = await post('/v1/shortage-declarations', biogaran, { kind: 'anticipated', presentations: [IBU], cause: 'production', anticipatedStart: '2026-10-15', estimatedEndUnknown: true })
  await post(`/v1/shortage-declarations/${ibu.id}/transitions`, biogaran, { to: 'ongoing', date: '2026-11-20' })
  clock.now = new Date('2026-11-30T08:00:00Z')
  await post(`/v1/shortage-declarations/${ibu.id}/transitions`, biogaran, { to: 'resolved', date: '2026-11-29' })
  // An observed shortage since 1 December, still open.
  clock.now = new Date('2026-12-01T08:00:00Z')
  const rosu = await post('/v1/shortage-declarations', biogaran, { kind: 'observed', presentations: [ROSU], cause: 'demand_increase', actualStart: '2026-12-01', estimatedEnd: '2027-01-31' })
  await post('/v1/shortage-declarations', biogaran, { kind: 'observed', presentations: ['3400949497355'], cause: 'production', actualStart: '2026-12-01', status: 'draft' })
  await post('/v1/shortage-declarations', auth('lab', ORG.labViatris), { kind: 'observed', presentations: [OMEP], cause: 'quality_defect', actualStart: '2026-11-25' })
  // Asked on 6 December.
  clock.now = new Date('2026-12-06T10:00:00Z')
  await post('/v1/shortage-signals', auth('pharmacy', ORG.pharmacyParis), { code: ROSU, wholesaler: 'OCP', unavailableSince: '2026-12-02' })

  const quarterly = async (qs: string, headers = biogaran) => app.inject({ method: 'GET', url: `/v1/shortage-statistics/quarterly?${qs}`, headers })

  t.test('shortage days: observed shortages only, and only up to today', async (t) => {
    const res = await quarterly('year=2026&quarter=4')
    t.equal(res.statusCode, 200)
    const byCip = Object.fromEntries(res.json().products.map((p: any) => [p.cip13, p]))
    t.equal(byCip[ROSU].shortageDays, 6, 'open since 1 December, asked on 6 December: 6 days, not 31')
    t.equal(byCip[AMOX].shortageDays, 0, 'a BDPM supply tension is a risk, not a shortage: 0 days, not 60')
    t.equal(byCip[AMOX].declarations, 1, 'the tension is still a declaration of the quarter')
    t.equal(byCip[IBU].shortageDays, 10, 'a risk counts from the day it materialised (20 to 29 November)')
    t.equal(byCip[ROSU].signals, 1)
    t.equal(byCip[OMEP], undefined, 'another lab’s product is not in Biogaran’s summary')
    t.equal(res.json().through, '2026-12-06')
    const future = await quarterly('year=2027&quarter=1')
    t.same(future.json().products, [], 'a quarter that has not started counts nothing')
  })

  t.test('ANSM reads every lab’s quarterly summary; a lab only its own', async (t) => {
    const one = await quarterly(`year=2026&quarter=4&labId=${ORG.labBiogaran}`, ansm)
    t.equal(one.statusCode, 200)
    t.same(one.json().lab, { id: ORG.labBiogaran, name: 'BIOGARAN' })
    t.same(one.json().products.map((p: any) => p.cip13).sort(), [AMOX, '3400936128200', IBU, ROSU].sort())
    const all = await quarterly('year=2026&quarter=4', ansm)
    t.equal(all.json().lab, null)
    t.match(all.json().products.find((p: any) => p.cip13 === OMEP), { lab: { id: ORG.labViatris }, shortageDays: 12 })
    t.equal((await quarterly(`year=2026&quarter=4&labId=${ORG.labViatris}`)).statusCode, 404, 'a lab asking for another lab')
    t.equal((await quarterly('year=2026&quarter=4&labId=999999999', ansm)).statusCode, 404, 'an unknown lab')
    t.equal((await quarterly('year=2026&quarter=4', auth('pharmacy', ORG.pharmacyParis))).statusCode, 403)
  })

  t.test('lab statistics over a period', async (t) => {
    const get = (qs: string, headers = biogaran) => app.inject({ method: 'GET', url: `/v1/shortage-statistics?${qs}`, headers })
    const all = (await get('')).json()
    t.match(all, { from: null, to: null, declarations: { total: 4, byStatus: { draft: 1, resolved: 1, declared: 2 } } })
    const december = await get('from=2026-12-01&to=2026-12-31')
    t.equal(december.statusCode, 200)
    t.match(december.json(), { from: '2026-12-01', to: '2026-12-31', declarations: { total: 3, byKind: { anticipated: 1, observed: 2 } }, signals: { received: 1 }, averageDurationDays: null })
    const november = (await get('from=2026-11-01&to=2026-11-30')).json()
    t.match(november, { declarations: { total: 2 }, averageDurationDays: 9, signals: { received: 0 } }, 'the tension and the risk that ended on 29 November')
    const bad = await get('from=2026-12-31&to=2026-12-01')
    t.equal(bad.statusCode, 400)
    t.match(bad.json(), { errors: [{ field: 'querystring.to' }] })
    const viaAnsm = await get(`from=2026-12-01&to=2026-12-31&labId=${ORG.labBiogaran}`, ansm)
    t.same(viaAnsm.json().declarations, december.json().declarations, 'ANSM reads a lab’s figures')
    t.equal((await get('', ansm)).statusCode, 400, 'ANSM names the lab')
  })

  t.test('ANSM lists and searches every declaration, MITM or not, never a draft', async (t) => {
    const list = async (qs: string) => {
      const res = await app.inject({ method: 'GET', url: `/v1/shortage-declarations?${qs}`, headers: ansm })
      t.equal(res.statusCode, 200, qs)
      return res.json()
    }
    const everything = await list('limit=50')
    t.equal(everything.items.length, 5, 'the import’s two, IBU, ROSU and Viatris’s; not the draft')
    t.ok(everything.items.some((d: any) => d.id === rosu.id && d.mitm === false), 'not only MITM')
    t.same((await list('q=rosuva')).items.map((d: any) => d.id), [rosu.id])
    t.same((await list(`labId=${ORG.labViatris}`)).items.map((d: any) => d.presentations[0].cip13), [OMEP])
    t.equal((await list('mitm=true')).items.length, 3, 'AMOX, ONDANSETRON (imported), OMEPRAZOLE')
    t.equal((await list('atc=J01')).items.length, 1)
    t.equal((await list('kind=anticipated&status=declared')).items.length, 1)
    const page = await list('limit=2')
    const next = await list(`limit=2&cursor=${page.nextCursor}`)
    t.equal(new Set([...page.items, ...next.items].map((d: any) => d.id)).size, 4)
    const wrong = await app.inject({ method: 'GET', url: `/v1/shortage-declarations?labId=${ORG.labViatris}&cursor=${page.nextCursor}`, headers: ansm })
    t.equal(wrong.json().code, 'INVALID_CURSOR')
    const labOwn = await app.inject({ method: 'GET', url: `/v1/shortage-declarations?labId=${ORG.labViatris}`, headers: biogaran })
    t.equal(labOwn.statusCode, 404, 'a lab lists only its own: another lab is answered as unknown')
  })
})

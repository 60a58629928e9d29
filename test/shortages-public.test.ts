import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { AVAILABILITY_FILE, importActor } from '../src/shortages/rules/availability-file.ts'
import { importAvailability } from '../src/shortages/use-cases/availability-import.ts'
import { ORG, testApp } from './helpers.ts'

const AMOX = '3400936128149' // CIS 61000017, Biogaran, MITM J01CA04: a supply tension in the demo BDPM file
const ROSU = '3400949497294' // CIS 60002283, Biogaran, not MITM, no BDPM line
const IBU = '3400936843127' // CIS 64000015, Biogaran
const OMEP = '3400935804266' // CIS 62000011, Viatris, MITM A02BC01: "remise à disposition" in the BDPM file
const ONDAN = '3400941639524' // CIS 63000019, Accord: a shortage in the BDPM file

t.test('the public shortage list', async (t) => {
  const ctx = await testApp(t)
  const { app, auth, clock } = ctx
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  clock.now = new Date('2026-11-20T08:00:00Z')
  await importAvailability(app.db, await readFile(path.join(DEMO_BDPM_DIR, AVAILABILITY_FILE)), { now: clock.now, actor: importActor('test'), file: AVAILABILITY_FILE, partial: false })
  await app.db.updateTable('availability').set({ updated_at: new Date('2026-11-20T06:00:00Z') }).execute()
  const biogaran = auth('lab', ORG.labBiogaran)
  const viatris = auth('lab', ORG.labViatris)
  const send = async (method: 'POST' | 'PATCH', url: string, headers: Record<string, string>, payload: Record<string, unknown>) => {
    const res = await app.inject({ method, url, headers, payload })
    t.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body.slice(0, 300)}`)
    return res.json()
  }
  clock.now = new Date('2026-11-25T09:00:00Z')
  const rosu = await send('POST', '/v1/shortage-declarations', biogaran, {
    kind: 'observed', presentations: [ROSU], cause: 'raw_material', actualStart: '2026-11-24', estimatedEnd: '2027-01-15',
    allocation: { inPlace: true, details: '80 % des ventes' }, alternatives: [{ description: 'Boîte de 90' }], advice: 'Orienter vers la boîte de 90.',
  })
  const draft = await send('POST', '/v1/shortage-declarations', biogaran, { kind: 'observed', presentations: [IBU], cause: 'production', actualStart: '2026-11-24', status: 'draft' })
  const omep = await send('POST', '/v1/shortage-declarations', viatris, { kind: 'discontinuation', presentations: [OMEP], cause: 'regulatory', anticipatedStart: '2027-03-01', estimatedEndUnknown: true })
  clock.now = new Date('2026-11-28T09:00:00Z')
  await send('POST', '/v1/shortage-signals', auth('pharmacy', ORG.pharmacyParis), { code: ROSU, wholesaler: 'OCP', unavailableSince: '2026-11-24' })
  const list = async (qs = '', headers: Record<string, string> = {}) => app.inject({ method: 'GET', url: `/v1/public/shortages${qs ? `?${qs}` : ''}`, headers })

  t.test('no token; every declared shortage and discontinuation with what the public needs; no draft, no pharmacy', async (t) => {
    const res = await list()
    t.equal(res.statusCode, 200)
    t.match(res.headers['cache-control'], /^public, max-age=300/)
    t.ok(res.headers.etag, 'an ETag')
    const items = res.json().items as any[]
    t.same(items.map((d) => d.id).sort(), [rosu.id, omep.id, ...items.filter((d) => d.source === 'bdpm').map((d: any) => d.id)].sort())
    t.equal(items.filter((d) => d.source === 'bdpm').length, 2, 'the BDPM file’s tension and shortage')
    t.notOk(items.some((d) => d.id === draft.id), 'a draft is never published')
    t.equal(items[0].id, omep.id, 'most recently changed first')
    const r = items.find((d) => d.id === rosu.id)
    t.same(r, {
      id: rosu.id, version: 1, kind: 'observed', kindLabel: { fr: 'Rupture constatée', en: 'Observed shortage' }, status: 'declared', statusLabel: { fr: 'Déclarée', en: 'Declared' },
      lab: { id: ORG.labBiogaran, name: 'BIOGARAN' },
      presentations: [{ cip13: ROSU, gtin: `0${ROSU}`, name: 'ROSUVASTATINE BIOGARAN 10 mg, comprimé pelliculé', label: r.presentations[0].label }],
      atc: null, mitm: false, cause: { code: 'raw_material', fr: 'Difficulté d’approvisionnement en matière première', en: 'Raw material shortage' }, causeText: null,
      anticipatedStart: null, actualStart: '2026-11-24', estimatedEnd: '2027-01-15', estimatedEndUnknown: false, actualEnd: null,
      allocation: { inPlace: true, details: '80 % des ventes' }, alternatives: [{ description: 'Boîte de 90' }], advice: 'Orienter vers la boîte de 90.',
      source: 'lab', declaredAt: '2026-11-25T09:00:00.000Z', updatedAt: '2026-11-25T09:00:00.000Z', closedAt: null,
    })
    t.match(items.find((d) => d.id === omep.id), { kind: 'discontinuation', kindLabel: { fr: 'Arrêt de commercialisation' }, mitm: true, atc: 'A02BC01', lab: { id: ORG.labViatris } })
    for (const id of Object.values(ORG).filter((o) => /^\d{2}\d{7}$|^2A/.test(o) && o.length === 9 && !o.startsWith('3') && !o.startsWith('4') && !o.startsWith('5') && !o.startsWith('6'))) {
      t.notOk(res.body.includes(id), `no pharmacy identifier (${id})`)
    }
    t.notOk(/automaticResponse|signal|pharmac(y|ie)/i.test(JSON.stringify(items.map(({ advice: _a, ...d }: any) => d))), 'no signal, response or pharmacy field')
  })

  t.test('ETag: 304 while nothing changes, a new one after a change', async (t) => {
    const first = await list()
    const again = await list('', { 'if-none-match': first.headers.etag as string })
    t.equal(again.statusCode, 304)
    t.equal(again.body, '')
    await send('PATCH', `/v1/shortage-declarations/${rosu.id}`, biogaran, { estimatedEnd: '2027-02-01' })
    const changed = await list('', { 'if-none-match': first.headers.etag as string })
    t.equal(changed.statusCode, 200)
    t.not(changed.headers.etag, first.headers.etag)
    t.equal(changed.json().items[0].id, rosu.id, 'the change comes first')
  })

  t.test('filters', async (t) => {
    const ids = async (qs: string) => {
      const res = await list(qs)
      t.equal(res.statusCode, 200, qs)
      return (res.json().items as any[]).map((d) => d.id)
    }
    t.same(await ids(`cip13=${ROSU}`), [rosu.id])
    t.same(await ids(`cip13=0${ROSU}`), [rosu.id], 'a GTIN-14 too')
    t.same(await ids(`labId=${ORG.labViatris}`), [omep.id])
    t.same(await ids('atc=a02'), [omep.id])
    t.same(await ids('kind=discontinuation'), [omep.id])
    t.same(await ids('q=rosuvastatine'), [rosu.id])
    t.equal((await ids('mitm=true')).length, 3, 'AMOX, ONDANSETRON, OMEPRAZOLE')
    t.equal((await ids('status=ongoing')).length, 1, 'the BDPM shortage')
    t.same(await ids('updatedSince=2026-11-28T00:00:00Z'), [rosu.id], 'changed since')
    t.equal((await list('status=draft')).statusCode, 400, 'not a status one can ask for')
  })

  t.test('a cursor walks the whole list once; it is bound to its filters', async (t) => {
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const res = await list(`limit=1${cursor ? `&cursor=${cursor}` : ''}`)
      const page = res.json()
      seen.push(...page.items.map((d: any) => d.id))
      cursor = page.nextCursor
    } while (cursor)
    t.equal(seen.length, 4)
    t.equal(new Set(seen).size, 4)
    const first = (await list('limit=1')).json()
    const wrong = await list(`limit=1&mitm=true&cursor=${first.nextCursor}`)
    t.equal(wrong.statusCode, 400)
    t.equal(wrong.json().code, 'INVALID_CURSOR')
    t.equal((await list('limit=0')).statusCode, 400)
  })

  t.test('CSV for spreadsheets', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/public/shortages.csv' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/csv; charset=utf-8/)
    t.match(res.headers['cache-control'], /^public/)
    t.ok(res.headers.etag)
    t.same([...res.rawPayload.subarray(0, 3)], [0xef, 0xbb, 0xbf])
    const lines = res.rawPayload.subarray(3).toString('utf8').trim().split(/\r?\n/)
    t.equal(lines[0], 'Identifiant;Version;Nature;Statut;Laboratoire (SIREN);Laboratoire;Présentations (CIP13);Dénomination;Classe ATC;MITM;Cause;Précision sur la cause;Début prévu;Début constaté;Fin estimée;Fin réelle;Contingentement;Alternatives;Conseils aux pharmaciens;Source;Déclarée le;Mise à jour le')
    t.equal(lines.length, 5)
    t.match(lines.find((l) => l.startsWith(rosu.id)), /;Rupture constatée;Déclarée;412345670;BIOGARAN;3400949497294;ROSUVASTATINE BIOGARAN 10 mg, comprimé pelliculé;;non;Difficulté d’approvisionnement en matière première;/)
    t.equal(res.headers['x-next-cursor'], undefined, 'everything in one file')
    const paged = await app.inject({ method: 'GET', url: '/v1/public/shortages.csv?limit=2' })
    t.equal(paged.rawPayload.subarray(3).toString('utf8').trim().split(/\r?\n/).length, 3)
    t.ok(paged.headers['x-next-cursor'])
    const next = await app.inject({ method: 'GET', url: `/v1/public/shortages.csv?limit=2&cursor=${paged.headers['x-next-cursor']}` })
    t.equal(next.rawPayload.subarray(3).toString('utf8').trim().split(/\r?\n/).length, 3)
    const again = await app.inject({ method: 'GET', url: '/v1/public/shortages.csv', headers: { 'if-none-match': res.headers.etag as string } })
    t.equal(again.statusCode, 304)
  })

  t.test('the causes referential the schema points to exists', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/shortage-causes' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['cache-control'], /^public/)
    const items = res.json().items
    t.same(items.map((c: any) => c.code), ['production', 'quality_defect', 'raw_material', 'demand_increase', 'regulatory', 'distribution', 'other'])
    t.match(items[2], { fr: 'Difficulté d’approvisionnement en matière première', en: 'Raw material shortage' })
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
    t.ok(doc.paths['/v1/shortage-causes']?.get, 'the route the DeclarationInput schema names is in the contract')
    t.match(doc.components.schemas.ShortageDeclarationInput.properties.cause.description, /GET \/v1\/shortage-causes/)
  })

  t.test('a product’s availability reflects the lab’s declaration, not only the BDPM file', async (t) => {
    const product = async (cip13: string) => (await app.inject({ method: 'GET', url: `/v1/products/${cip13}`, headers: auth('pharmacy', ORG.pharmacyParis) })).json().availability
    t.match(await product(ROSU), { status: 'shortage', statusCode: 1, label: 'Rupture de stock', startDate: '2026-11-24', plannedEndDate: '2027-02-01', source: 'declaration', declarationId: rosu.id, scope: 'presentation' }, 'no BDPM line: the lab’s shortage')
    t.match(await product(OMEP), { status: 'discontinued', statusCode: 3, startDate: '2027-03-01', source: 'declaration', declarationId: omep.id }, 'the lab’s discontinuation over the BDPM “remise à disposition”')
    t.match(await product(AMOX), { status: 'supply-tension', source: 'bdpm', declarationId: null }, 'an import the lab has not touched: the BDPM line itself')
    // The lab takes the imported tension over: it becomes a shortage.
    const imported = (await app.inject({ method: 'GET', url: `/v1/shortage-declarations?cip13=${AMOX}`, headers: biogaran })).json().items[0]
    clock.now = new Date('2026-12-01T09:00:00Z')
    await send('POST', `/v1/shortage-declarations/${imported.id}/transitions`, biogaran, { to: 'ongoing', date: '2026-12-01' })
    t.match(await product(AMOX), { status: 'shortage', startDate: '2026-12-01', source: 'declaration', declarationId: imported.id })
    // Resolved by the lab after the BDPM line was updated: available again, though the file still says tension.
    await send('POST', `/v1/shortage-declarations/${imported.id}/transitions`, biogaran, { to: 'resolved', date: '2026-12-01' })
    t.match(await product(AMOX), { status: 'available-again', statusCode: 4, returnDate: '2026-12-01', source: 'declaration' })
    await send('POST', `/v1/shortage-declarations/${rosu.id}/transitions`, biogaran, { to: 'resolved', date: '2026-12-01' })
    t.equal(await product(ROSU), null, 'resolved, and no BDPM line to contradict: nothing to report')
    const medicine = (await app.inject({ method: 'GET', url: '/v1/medicines/62000011', headers: auth('pharmacy', ORG.pharmacyParis) })).json()
    t.match(medicine.presentations.find((p: any) => p.cip13 === OMEP).availability, { status: 'discontinued', source: 'declaration' })
    const search = (await app.inject({ method: 'GET', url: '/v1/products?q=omeprazole', headers: auth('pharmacy', ORG.pharmacyParis) })).json()
    t.match(search.items.find((p: any) => p.cip13 === OMEP).availability, { status: 'discontinued', source: 'declaration' })
    t.match(await product(ONDAN), { status: 'shortage', source: 'bdpm' })
  })
})

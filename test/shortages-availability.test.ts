import { readFileSync } from 'node:fs'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { importActor, parseAvailability } from '../src/shortages/rules/availability-file.ts'
import { importAvailability } from '../src/shortages/use-cases/availability-import.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

// Fixture files in the real format (Windows-1252, tab-separated, CRLF, no header) on the demo referential.
const fixture = (day: string) => readFileSync(new URL(`./fixtures/availability/${day}/CIS_CIP_Dispo_Spec.txt`, import.meta.url))
const DAY1 = fixture('day1')
const DAY2 = fixture('day2')

const AMOX = '3400936128149' // CIS 61000017, Biogaran, MITM
const AMOX16 = '3400936128200' // CIS 61000017, named by its own line
const IBU = ['3400936843127', '3400936843295'] as const // CIS 64000015, Biogaran
const LEVO = ['3400927901836', '3400927902086'] as const // CIS 64000022, Biogaran
const ROSU = ['3400949497294', '3400949497355'] as const // CIS 60002283, Biogaran
const AMOXCLAV = ['3400938801460', '3400938801521'] as const // CIS 61000024, Arrow, MITM
const CEFIXIME = '3400939153278' // CIS 61000055, Arrow (its other presentation is withdrawn)
const PARACETAMOL = ['3400927612343', '3400927612404'] as const // CIS 61000031, Arrow
const ONDAN = '3400941639524' // CIS 63000019, Accord (not subscribed)

type Count = 'shortage_declarations' | 'shortage_declaration_versions' | 'shortage_bdpm_lines' | 'events' | 'shortage_declaration_items'
const count = async (ctx: TestContext, table: Count) => Number((await ctx.app.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
const snapshot = async (ctx: TestContext) => {
  const out: Record<string, number> = {}
  for (const table of ['shortage_declarations', 'shortage_declaration_versions', 'shortage_bdpm_lines', 'events', 'shortage_declaration_items'] as const) out[table] = await count(ctx, table)
  const items = await ctx.app.db.selectFrom('shortage_declaration_items').select(['declaration_id', 'cip13', 'active']).orderBy('declaration_id').orderBy('cip13').execute()
  const decl = await ctx.app.db.selectFrom('shortage_declarations').select(['id', 'version', 'status', 'change_seq']).orderBy('id').execute()
  return { ...out, items: JSON.stringify(items), decl: JSON.stringify(decl) }
}
/** The declaration holding a presentation (open first, else the latest). */
async function declarationOf(ctx: TestContext, cip13: string) {
  const row = await ctx.app.db
    .selectFrom('shortage_declaration_items as i')
    .innerJoin('shortage_declarations as d', 'd.id', 'i.declaration_id')
    .select(['d.id', 'd.lab_id', 'd.source', 'd.status'])
    .where('i.cip13', '=', cip13)
    .orderBy('i.active', 'desc')
    .orderBy('d.created_at', 'desc')
    .orderBy('d.change_seq', 'desc')
    .executeTakeFirst()
  return row ?? null
}
const read = async (ctx: TestContext, id: string, lab: string) => (await ctx.app.inject({ method: 'GET', url: `/v1/shortage-declarations/${id}`, headers: ctx.auth('lab', lab) })).json()
const history = async (ctx: TestContext, id: string, lab: string) => (await ctx.app.inject({ method: 'GET', url: `/v1/shortage-declarations/${id}/history`, headers: ctx.auth('lab', lab) })).json().versions as any[]
async function feed(ctx: TestContext, org: string) {
  await ctx.app.hub.runSequencer()
  return (await ctx.app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=100', headers: ctx.auth('pharmacy', org) })).json().items as Array<{ type: string; payload: any }>
}

t.test('the file is read in its real format', async (t) => {
  const rejected: Array<{ line: number; reason: string }> = []
  const { lines, read } = parseAvailability(DAY1, (line, _cis, _cip, reason) => rejected.push({ line, reason }))
  t.equal(read, 16, 'the blank line is not counted')
  t.equal(lines.length, 14)
  t.match(lines.find((l) => l.cis === '61000055'), { cip13: '', code: 3, label: 'Arrêt de commercialisation', start: '2026-11-01' }, 'Windows-1252 accents decoded')
  t.match(lines.find((l) => l.cis === '62000011'), { code: 4, start: '2026-10-01', updatedOn: '2026-10-20', returned: '2026-10-18', link: null })
  t.match(lines.find((l) => l.cis === '60002283' && l.cip13 === ''), { no: 17, code: 2 }, 'stray spaces trimmed')
  t.same(rejected, [
    { line: 13, reason: 'date de début invalide « 31/02/2026 » (attendue : JJ/MM/AAAA)' },
    { line: 14, reason: '8 colonnes attendues, 3 trouvées' },
  ])
})

t.test('availability import', async (t) => {
  const ctx = await testApp(t)
  const { app, auth, clock } = ctx
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  clock.now = new Date('2026-11-22T10:00:00Z')
  const run = (buf: Buffer) => importAvailability(app.db, buf, { now: app.now() })

  // Before the import: Biogaran declares itself on one ibuprofen box and on both levothyroxine boxes;
  // a pharmacy has an open signal on the amoxicillin/clavulanic acid sachets.
  const biogaran = auth('lab', ORG.labBiogaran)
  const own = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: { kind: 'observed', presentations: [IBU[0]], cause: 'production', actualStart: '2026-11-15' } })
  t.equal(own.statusCode, 201)
  const ownLevo = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: { kind: 'observed', presentations: LEVO, cause: 'production', actualStart: '2026-11-16' } })
  t.equal(ownLevo.statusCode, 201)
  const signal = await app.inject({ method: 'POST', url: '/v1/shortage-signals', headers: auth('pharmacy', ORG.pharmacyParis), payload: { code: AMOXCLAV[0], wholesaler: 'OCP', unavailableSince: '2026-11-10' } })
  t.equal(signal.statusCode, 201)

  const ids = { amox: '', amox16: '', ibu: '', cefixime: '', paracetamol: '', ondan: '', amoxclav: '', rosu: '' }

  t.test('day 1: the file seeds declarations owned by the holder lab', async (t) => {
    const r = await run(DAY1)
    t.match(r, { read: 16, created: 8, updated: 0, resolved: 0, unchanged: 0, ignored: 1 })
    t.same(r.skipped, [{ line: 4, cis: '64000022', cip13: null, reason: `présentation(s) couverte(s) par une autre déclaration en cours (${ownLevo.json().id})` }])
    t.same(r.rejected.map((x) => [x.line, x.reason]), [
      [8, 'CIS inconnu 99999998 (absent du référentiel : importez d’abord les fichiers BDPM)'],
      [9, 'CIP13 inconnu 3400930000014'],
      [10, 'CIP13 3400936128149 : présentation du CIS 61000017, pas du CIS 60002283'],
      [12, 'titulaire « LABORATOIRES DU LÉMAN » du CIS 65000018 associé à aucun laboratoire (PUT /v1/lab-holders/{titulaire})'],
      [13, 'date de début invalide « 31/02/2026 » (attendue : JJ/MM/AAAA)'],
      [14, '8 colonnes attendues, 3 trouvées'],
    ])

    // Rupture on the whole CIS: every presentation but the one its own line names.
    const amox = (await declarationOf(ctx, AMOX))!
    t.match(amox, { lab_id: ORG.labBiogaran, source: 'bdpm', status: 'ongoing' })
    ids.amox = amox.id
    const d = await read(ctx, amox.id, ORG.labBiogaran)
    t.match(d, {
      kind: 'observed', status: 'ongoing', version: 1, mitm: true, atc: 'J01CA04', actualStart: '2026-11-10', estimatedEnd: null, estimatedEndUnknown: true,
      cause: { code: 'other' }, causeText: 'Statut publié dans la base de données publique des médicaments (ANSM) : Rupture de stock', advice: null,
    })
    t.same(d.presentations.map((p: any) => p.cip13), [AMOX], 'the presentation named by its own line is left to that line')
    const h = await history(ctx, amox.id, ORG.labBiogaran)
    t.match(h, [{ version: 1, action: 'created', status: 'ongoing', actor: { role: null, org: null, user: 'bdpm-availability' }, reason: 'Import BDPM : Rupture de stock (ligne 1)' }])

    // Tension → anticipated shortage, declared.
    ids.amox16 = (await declarationOf(ctx, AMOX16))!.id
    t.match(await read(ctx, ids.amox16, ORG.labBiogaran), { kind: 'anticipated', status: 'declared', anticipatedStart: '2026-11-05', actualStart: null, presentations: [{ cip13: AMOX16 }] })

    // The lab's own declaration keeps its presentation; the imported one covers the rest.
    const ibu = (await declarationOf(ctx, IBU[1]))!
    ids.ibu = ibu.id
    t.match(await read(ctx, ibu.id, ORG.labBiogaran), { kind: 'anticipated', presentations: [{ cip13: IBU[1] }] })
    t.match(await read(ctx, own.json().id, ORG.labBiogaran), { version: 1, presentations: [{ cip13: IBU[0] }], cause: { code: 'production' } }, 'the lab declaration is untouched')
    t.match(await read(ctx, ownLevo.json().id, ORG.labBiogaran), { version: 1, status: 'declared' })

    // Arrêt reached: discontinued (closed) on the presentations still marketed; arrêt announced: declared.
    const cef = (await declarationOf(ctx, CEFIXIME))!
    ids.cefixime = cef.id
    t.match(await read(ctx, cef.id, ORG.labArrow), { kind: 'discontinuation', status: 'discontinued', anticipatedStart: '2026-11-01', actualEnd: '2026-11-01', presentations: [{ cip13: CEFIXIME }] })
    const para = (await declarationOf(ctx, PARACETAMOL[0]))!
    ids.paracetamol = para.id
    const p = await read(ctx, para.id, ORG.labArrow)
    t.match(p, { kind: 'discontinuation', status: 'declared', anticipatedStart: '2027-01-15', actualEnd: null })
    t.same(p.presentations.map((x: any) => x.cip13), PARACETAMOL)

    // A lab that has not subscribed still gets the country's situation on its products (read by pharmacies and ANSM).
    const ondan = (await declarationOf(ctx, ONDAN))!
    t.match(ondan, { lab_id: ORG.labAccord, source: 'bdpm', status: 'ongoing' })
    ids.ondan = ondan.id

    // The ANSM link becomes the advice; the pharmacy with an open signal hears about it.
    const clav = (await declarationOf(ctx, AMOXCLAV[0]))!
    ids.amoxclav = clav.id
    const c = await read(ctx, clav.id, ORG.labArrow)
    t.match(c, { kind: 'observed', status: 'ongoing', mitm: true, advice: 'Information de l’ANSM : https://ansm.sante.fr/disponibilites-des-produits-de-sante/medicaments/amoxicilline-acide-clavulanique-arrow' })
    t.same(c.presentations.map((x: any) => x.cip13), AMOXCLAV)
    const events = await feed(ctx, ORG.pharmacyParis)
    t.match(events.filter((e) => e.type === 'shortage.declaration_updated'), [{ payload: { presentations: AMOXCLAV, declaration: { id: clav.id, kind: 'observed', status: 'ongoing' } } }])
    t.equal((await feed(ctx, ORG.pharmacyLyon)).filter((e) => e.type.startsWith('shortage.')).length, 0, 'a pharmacy without a signal gets nothing')

    ids.rosu = (await declarationOf(ctx, ROSU[0]))!.id
    t.equal((await declarationOf(ctx, '3400935804266')), null, 'a remise à disposition with nothing open creates nothing')

    // Tenancy stays in the queries: another lab does not see it.
    t.equal((await app.inject({ method: 'GET', url: `/v1/shortage-declarations/${ids.amox}`, headers: auth('lab', ORG.labArrow) })).statusCode, 404)
  })

  t.test('the same file again changes nothing', async (t) => {
    const before = await snapshot(ctx)
    const r = await run(DAY1)
    t.match(r, { created: 0, updated: 0, resolved: 0, unchanged: 8, ignored: 1, changes: [] })
    t.equal(r.skipped.length, 1)
    t.equal(r.rejected.length, 6)
    t.same(await snapshot(ctx), before)
  })

  t.test('a declaration the lab changed is the lab’s: the import leaves it alone', async (t) => {
    const res = await app.inject({ method: 'PATCH', url: `/v1/shortage-declarations/${ids.rosu}`, headers: biogaran, payload: { advice: 'Dispensez la boîte de 90.' } })
    t.equal(res.statusCode, 200)
    t.equal(res.json().version, 2)
  })

  t.test('day 2: updates, lifecycle, reconciliation', async (t) => {
    clock.now = new Date('2026-11-23T09:00:00Z')
    const r = await run(DAY2)
    t.match(r, { read: 9, created: 1, updated: 1, resolved: 3, unchanged: 2, ignored: 1 })
    t.same(r.rejected.map((x) => [x.line, x.reason]), [[5, 'date de début invalide « 15/13/2027 » (attendue : JJ/MM/AAAA)']])
    t.same(r.skipped.map((x) => x.line), [3, 9], 'levothyroxine still the lab’s; rosuvastatin taken over by the lab')

    // Tension → rupture: the same declaration moves on (declared → ongoing), a new version by the import.
    const amox16 = await read(ctx, ids.amox16, ORG.labBiogaran)
    t.match(amox16, { id: ids.amox16, version: 2, kind: 'observed', status: 'ongoing', anticipatedStart: '2026-11-05', actualStart: '2026-11-21' })
    t.match(await history(ctx, ids.amox16, ORG.labBiogaran), [{ version: 1 }, { version: 2, action: 'transition:ongoing', actor: { user: 'bdpm-availability' }, changes: { kind: ['anticipated', 'observed'] } }])
    t.match(await read(ctx, ids.amox, ORG.labBiogaran), { version: 1 }, 'an unchanged line makes no version (the 6th date alone changed)')

    // Rupture → tension is not a legal move (ongoing → declared): resolved, and a new declaration.
    const ondanOld = await app.db.selectFrom('shortage_declarations').select(['status', 'actual_end']).where('id', '=', ids.ondan).executeTakeFirstOrThrow()
    t.same(ondanOld, { status: 'resolved', actual_end: '2026-11-23' })
    const ondanNew = (await declarationOf(ctx, ONDAN))!
    t.not(ondanNew.id, ids.ondan)
    t.match(ondanNew, { status: 'declared', source: 'bdpm' })

    // Line gone: resolved today; the lab's own declaration on the other box untouched.
    t.match(await read(ctx, ids.ibu, ORG.labBiogaran), { status: 'resolved', actualEnd: '2026-11-23', version: 2 })
    t.match(await history(ctx, ids.ibu, ORG.labBiogaran), [{}, { action: 'transition:resolved', reason: 'Import BDPM : absente du fichier de disponibilité de la BDPM' }])
    t.match(await read(ctx, own.json().id, ORG.labBiogaran), { status: 'declared', version: 1 })

    // Remise à disposition: resolved on the return date; the signalling pharmacy is told.
    t.match(await read(ctx, ids.amoxclav, ORG.labArrow), { status: 'resolved', actualEnd: '2026-11-20', allowedTransitions: [] })
    const events = await feed(ctx, ORG.pharmacyParis)
    t.match(events.filter((e) => e.type === 'shortage.declaration_closed'), [{ payload: { declaration: { id: ids.amoxclav, status: 'resolved' } } }])

    // A line rejected for a typo keeps its declaration open; the lab's takeover is kept.
    t.match(await read(ctx, ids.paracetamol, ORG.labArrow), { status: 'declared', version: 1 })
    t.match(await read(ctx, ids.rosu, ORG.labBiogaran), { version: 2, kind: 'anticipated', advice: 'Dispensez la boîte de 90.' })
    t.match(await read(ctx, ids.cefixime, ORG.labArrow), { status: 'discontinued', version: 1 })

    // Presentations freed by closing are declarable by their lab again.
    const again = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: { kind: 'observed', presentations: [IBU[1]], cause: 'production', actualStart: '2026-11-23' } })
    t.equal(again.statusCode, 201)
  })

  t.test('day 2 again changes nothing', async (t) => {
    const before = await snapshot(ctx)
    const r = await run(DAY2)
    t.match(r, { created: 0, updated: 0, resolved: 0, unchanged: 5, ignored: 1, changes: [] })
    t.same(await snapshot(ctx), before)
  })

  t.test('an announced arrêt becomes effective on its date; a line back after leaving the file is a new declaration', async (t) => {
    clock.now = new Date('2027-01-16T09:00:00Z')
    const line = (...f: string[]) => f.join('\t')
    const file = Buffer.from(
      [
        line('61000031', '', '3', 'Arrêt de commercialisation', '15/01/2027', '16/01/2027', '', ''),
        line('64000015', '', '2', "Tension d'approvisionnement", '12/11/2026', '21/11/2026', '', ''),
        '',
      ].join('\r\n'),
      'latin1',
    )
    const r = await run(file)
    t.match(r, { created: 0, updated: 1, resolved: 3 }, 'both amoxicillin lines and the ondansetron line left the file')
    t.match(await read(ctx, ids.paracetamol, ORG.labArrow), { status: 'discontinued', actualEnd: '2027-01-15', version: 2 })
    t.match(await history(ctx, ids.paracetamol, ORG.labArrow), [{}, { action: 'transition:discontinued' }])
    // The ibuprofen line came back, but both boxes are now under the lab's own declarations: not forced on them.
    t.same(r.skipped.map((s) => s.cis), ['64000015'])
    t.equal((await declarationOf(ctx, IBU[1]))!.source, 'lab')
    t.match(await read(ctx, ids.amox, ORG.labBiogaran), { status: 'resolved', actualEnd: '2027-01-16' })

    // The amoxicillin line is back, identical to day 1: a new declaration (its earlier one was resolved when it left).
    const back = await run(Buffer.from(`${line('61000017', '', '1', 'Rupture de stock', '10/11/2026', '20/11/2026', '', '')}\r\n`, 'latin1'))
    t.match(back, { created: 1, updated: 0, resolved: 0 }, 'the paracetamol arrêt left the file too: already closed, nothing to do')
    const amox = (await declarationOf(ctx, AMOX))!
    t.not(amox.id, ids.amox)
    t.match(amox, { status: 'ongoing', source: 'bdpm' })
  })

  t.test('a partial file, or one with no usable line, resolves nothing it does not list', async (t) => {
    const before = await snapshot(ctx)
    const junk = await run(Buffer.from('99999998\t\t1\tRupture de stock\t10/11/2026\t20/11/2026\t\t\r\n', 'latin1'))
    t.match(junk, { reconciled: false, resolved: 0, rejected: [{ line: 1 }] })
    const partial = await importAvailability(app.db, Buffer.from('62000011\t\t4\tRemise à disposition\t01/10/2026\t20/10/2026\t18/10/2026\t\r\n', 'latin1'), { now: app.now(), partial: true })
    t.match(partial, { reconciled: false, resolved: 0, ignored: 1 })
    t.same(await snapshot(ctx), before)
    t.equal((await declarationOf(ctx, AMOX))!.status, 'ongoing')
    // A line naming a presentation that an imported declaration left untouched by this run still holds: skipped,
    // never a failed import.
    const named = await importAvailability(app.db, Buffer.from(`61000017\t${AMOX}\t2\tTension d'approvisionnement\t20/01/2027\t20/01/2027\t\t\r\n`, 'latin1'), { now: app.now(), partial: true })
    t.match(named, { created: 0, skipped: [{ line: 1, cip13: AMOX }] })
    t.same(await snapshot(ctx), before)
  })

  t.test('the import runs only as its own system actor', async (t) => {
    const before = await snapshot(ctx)
    await t.rejects(importAvailability(app.db, DAY2, { now: app.now(), actor: { role: 'lab', org: ORG.labArrow, user: 'x' } }))
    t.same(await snapshot(ctx), before)
    t.equal(importActor('alice').user, 'bdpm-availability:alice')
  })
})

// The duplicate signal path answers from one prepared statement (src/shortages/queries/signals.ts,
// openSignalWithAnswer): it must say exactly what reading the signal says (the general path: signalQuery +
// answerFor), whatever the lab has set.
t.test('a repeated signal answers exactly as the signal read does', async (t) => {
  const ctx = await testApp(t)
  const { app, auth, clock } = ctx
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  clock.now = new Date('2026-11-22T10:00:00Z')
  const pharmacy = auth('pharmacy', ORG.pharmacyParis)
  const biogaran = auth('lab', ORG.labBiogaran)
  const signal = (code: string) => app.inject({ method: 'POST', url: '/v1/shortage-signals', headers: pharmacy, payload: { code, wholesaler: 'OCP', unavailableSince: '2026-11-10' } })
  const same = async (code: string, expect: { response: string | null; declaration: string | null }, what: string) => {
    const dup = await signal(code)
    t.equal(dup.statusCode, 200, what)
    const read = await app.inject({ method: 'GET', url: `/v1/shortage-signals/${dup.json().id}`, headers: pharmacy })
    t.same(dup.json(), read.json(), what)
    t.equal(dup.json().automaticResponse?.scope ?? null, expect.response, `${what}: automatic response`)
    t.equal(dup.json().declaration?.status ?? null, expect.declaration, `${what}: declaration`)
  }
  t.equal((await signal(AMOX)).statusCode, 201)
  await same(AMOX, { response: null, declaration: null }, 'nothing set')
  t.equal((await app.inject({ method: 'PUT', url: `/v1/shortage-automatic-responses/${AMOX}`, headers: biogaran, payload: { message: 'Retour prévu mi-décembre.', expectedReturn: '2026-12-15', alternatives: [{ cip13: AMOX16, description: 'Boîte de 16' }] } })).statusCode, 200)
  await same(AMOX, { response: 'presentation', declaration: null }, 'a presentation response')
  const draft = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: biogaran, payload: { kind: 'observed', presentations: [AMOX], cause: 'production', actualStart: '2026-11-10', status: 'draft' } })
  t.equal(draft.statusCode, 201)
  await same(AMOX, { response: 'presentation', declaration: null }, 'a draft is not shown')
  t.equal((await app.inject({ method: 'POST', url: `/v1/shortage-declarations/${draft.json().id}/transitions`, headers: biogaran, payload: { to: 'declared' } })).statusCode, 200)
  await same(AMOX, { response: 'presentation', declaration: 'declared' }, 'a declaration')
  t.equal((await app.inject({ method: 'PUT', url: `/v1/shortage-declarations/${draft.json().id}/automatic-response`, headers: biogaran, payload: { message: 'Contingentement en place.', allocationRules: '80 %', emergencyContact: '01 02 03 04 05' } })).statusCode, 200)
  await same(AMOX, { response: 'declaration', declaration: 'declared' }, 'the declaration’s response takes precedence')

  // Responses that must not be given: from a lab that has not subscribed, or from a lab that does not exploit the product.
  const row = (lab: string, cip13: string) => ({ id: crypto.randomUUID(), lab_id: lab, cip13, declaration_id: null, message: 'x', expected_return: null, alternatives: '[]', emergency_contact: null, allocation_rules: null, updated_at: clock.now, updated_by: null })
  await app.db.insertInto('shortage_automatic_responses').values([row(ORG.labAccord, ONDAN), row(ORG.labArrow, ROSU[0])]).execute()
  t.equal((await signal(ONDAN)).statusCode, 201)
  await same(ONDAN, { response: null, declaration: null }, 'a lab that has not subscribed')
  t.equal((await signal(ROSU[0])).statusCode, 201)
  await same(ROSU[0], { response: null, declaration: null }, 'another lab than the product’s')
})

// Generic groups, composition and prescription conditions: the import, the routes that show them, and the
// whole spring 2021 BDPM loaded twice.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import iconv from 'iconv-lite'
import t from 'tap'
import { seedDemoOrganisations } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { type BdpmBuffers, importBdpm, importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { matchSubstance, parseStrength, unitsOfLabel } from '../src/referential/rules/medicine-facts.ts'
import { productFacts } from '../src/referential/use-cases/medicine-facts.ts'
import { ORG, testApp, testDatabase } from './helpers.ts'

const ACTOR = { ...SYSTEM, user: 'test-import' }
const cp1252 = (lines: string[]) => iconv.encode(`${lines.join('\r\n')}\r\n`, 'win1252')
const row = (...fields: string[]) => fields.join('\t')
const EXTRACT = fileURLToPath(new URL('./fixtures/bdpm-2021-extract', import.meta.url))

const med = (cis: string, name: string) => row(cis, name, 'comprimé', 'orale', 'Autorisation active', 'Procédure nationale', 'Commercialisée', '01/01/2001', '', '', ' BIOGARAN', 'Non')
const MEDICINES = [med('60000011', 'ALPHA 10 mg, comprimé'), med('60000028', 'BETA 10 mg, comprimé'), med('60000035', 'GAMMA 5 mg, comprimé')]
const files = (over: Partial<Record<'genericGroups' | 'composition' | 'conditions', string[]>>): BdpmBuffers => ({
  medicines: cp1252(MEDICINES),
  ...(over.genericGroups ? { genericGroups: cp1252(over.genericGroups) } : {}),
  ...(over.composition ? { composition: cp1252(over.composition) } : {}),
  ...(over.conditions ? { conditions: cp1252(over.conditions) } : {}),
})

t.test('units per box and strengths, read from BDPM text', async (t) => {
  const cases: Array<[string, number | null]> = [
    ['plaquette(s) thermoformée(s) PVC aluminium de 30 comprimé(s)', 30],
    ['3 plaquette(s) thermoformée(s) polyamide aluminium PVC-Aluminium de 10 comprimé(s)', 30],
    ['60 plaquette(s) thermoformée(s) PVC polyéthylène PVDC aluminium unidose(s) de 1 comprimé(s)', 60],
    ['8 sachet(s)-dose(s) papier aluminium polyéthylène de 1,566 g', 8],
    ['20 récipient(s) unidose(s) polyéthylène basse densité (PEBD) de 2 ml', 20],
    ['plaquette(s) thermoformée(s) PVC-Aluminium de 30  comprimé(s)', 30],
    ['1 flacon(s) en verre de 20 ml', null],
    ['1 tube(s) aluminium de 50 g', null],
    ['5 flacon(s) de poudre en verre - 5 seringue(s) préremplie(s) de 1 ml de solvant en verre avec 2 aiguille(s)', null],
  ]
  for (const [label, units] of cases) t.equal(unitsOfLabel(label), units, label)
  t.same(parseStrength('500,00 mg'), { value: 500, unit: 'MG' })
  t.same(parseStrength('0,5 g'), { value: 500, unit: 'MG' })
  t.same(parseStrength('100 microgrammes'), { value: 0.1, unit: 'MG' })
  t.same(parseStrength('1 000 000 UI'), { value: 1_000_000, unit: 'UI' })
  t.equal(parseStrength('entre 562,2 mg et 615,6 mg'), null)
})

t.test('matching a substance, strength and form against a composition', async (t) => {
  const amox = (element: string, form: string, ft: string) => ({
    form,
    components: [
      { element, linkNo: 1, nature: 'FT' as const, substanceCode: '05248', substance: 'AMOXICILLINE ANHYDRE', searchSubstance: 'AMOXICILLINE ANHYDRE', dosage: ft },
      { element, linkNo: 1, nature: 'SA' as const, substanceCode: '28165', substance: 'AMOXICILLINE TRIHYDRATÉE', searchSubstance: 'AMOXICILLINE TRIHYDRATEE', dosage: null },
    ],
  })
  const spec = { substance: 'amoxicilline', strength: '500 mg', form: 'gélule' }
  t.match(matchSubstance(amox('gélule', 'gélule', '500,00 mg'), spec), { ok: true, substanceCodes: ['05248'] }, 'the salt and the fraction carry the substance')
  t.match(matchSubstance(amox('gélule', 'gélule', '1 g'), spec), { ok: false, why: 'strength' })
  t.match(matchSubstance(amox('comprimé', 'comprimé dispersible', '500 mg'), spec), { ok: false, why: 'form' })
  t.match(matchSubstance(amox('comprimé', 'comprimé pelliculé', '500 mg'), { ...spec, form: 'comprimé' }), { ok: true }, '"comprimé" covers "comprimé pelliculé"')
  t.match(matchSubstance(amox('comprimé', 'comprimé effervescent', '500 mg'), { ...spec, form: 'comprimé' }), { ok: false, why: 'form' }, 'not an effervescent one')
  const withClav = amox('poudre', 'poudre pour suspension buvable', '1 g')
  withClav.components.push({ element: 'poudre', linkNo: 2, nature: 'FT', substanceCode: '93286', substance: 'ACIDE CLAVULANIQUE', searchSubstance: 'ACIDE CLAVULANIQUE', dosage: '125 mg' })
  t.match(matchSubstance(withClav, { substance: 'amoxicilline', strength: '1 g', form: 'poudre pour suspension buvable' }), { ok: false, why: 'other-substances' })
  t.match(matchSubstance(withClav, { substance: 'amoxicilline + acide clavulanique', strength: '1 g/125 mg', form: 'poudre pour suspension buvable' }), { ok: true, substanceCodes: ['05248', '93286'] })
  t.match(matchSubstance({ form: 'comprimé', components: [] }, spec), { ok: false, why: 'composition-unknown' })
})

t.test('generic groups, composition and conditions: import, report, idempotency, removal', async (t) => {
  const { db } = await testDatabase(t)
  await seedDemoOrganisations(db)
  const GENER = [
    row('1313', 'ALPHA 10 mg - BETA 10 mg', '60000011', '0', '1'),
    row('1313', 'ALPHA 10 mg - BETA 10 mg', '60000028', '1', '2'),
    row('1313', 'ALPHA 10 mg - BETA 10 mg', '69999999', '1', '3'), // withdrawn: kept, counted
    row('1312', 'GAMMA 5 mg', '60000035', '0', ''),
    row('1312', 'AUTRE LIBELLÉ', '60000011', '1', '2'),
    row('x12', 'GROUPE', '60000011', '1', '1'),
    row('1314', 'DELTA', '60000011', '3', '1'),
    row('1313', 'ALPHA 10 mg - BETA 10 mg', '60000028', '1', '4'),
  ]
  const COMPO = [
    row('60000011', 'comprimé', '33207', 'ALPHAZINE', '10 mg', 'un comprimé', 'SA', '1'),
    row('60000028', 'comprimé', '26727', 'ALPHAZINE CALCIQUE', '10,40 mg', 'un comprimé', 'SA', '1'),
    row('60000028', 'comprimé', '33207', 'ALPHAZINE', '10 mg', 'un comprimé', 'FT', '1'),
    row('60000035', 'comprimé', '11111', 'GAMMAZINE', '5 mg', 'un comprimé', 'SA', '1'),
    row('60000035', 'comprimé', '22222', 'DELTAZINE', '5 mg', 'un comprimé', 'XX', '2'),
    row('69999999', 'comprimé', '11111', 'GAMMAZINE', '5 mg', 'un comprimé', 'SA', '1'),
  ]
  const CPD = [row('60000011', 'liste I'), row('60000028', 'liste II'), row('60000028', 'liste II'), row('69999999', 'liste I')]
  const first = await importBdpm(db, files({ genericGroups: GENER, composition: COMPO, conditions: CPD }), ACTOR)
  t.same(first.files, ['CIS_bdpm.txt', 'CIS_GENER_bdpm.txt', 'CIS_COMPO_bdpm.txt', 'CIS_CPD_bdpm.txt'])
  t.match(first.genericGroups, { read: 8, inserted: 4, rejected: 4 })
  t.equal(first.genericMembersWithoutMedicine, 1)
  t.match(first.composition, { read: 6, inserted: 3, rejected: 3 })
  t.match(first.conditions, { read: 4, inserted: 2, rejected: 2 })
  t.same(
    first.rejected.map((r) => `${r.file}:${r.line} ${r.reason}`),
    [
      'CIS_GENER_bdpm.txt:5 libellé différent pour le groupe 1312 (ligne 4)',
      'CIS_GENER_bdpm.txt:6 identifiant de groupe invalide « x12 » (nombre attendu)',
      'CIS_GENER_bdpm.txt:7 type de générique invalide « 3 » (attendu : 0, 1, 2 ou 4)',
      'CIS_GENER_bdpm.txt:8 CIS 60000028 en double dans le groupe 1313 (déjà ligne 2)',
      'CIS_COMPO_bdpm.txt:5 nature du composant invalide « XX » (attendue : SA ou FT)',
      'CIS_COMPO_bdpm.txt:6 CIS inconnu 69999999',
      'CIS_COMPO_bdpm.txt:4 composition du CIS 60000035 non mise à jour : sa ligne 5 est rejetée',
      'CIS_CPD_bdpm.txt:3 condition en double pour le CIS 60000028 (déjà ligne 2)',
      'CIS_CPD_bdpm.txt:4 CIS inconnu 69999999',
    ],
    'each rejected line with its reason',
  )

  const again = await importBdpm(db, files({ genericGroups: GENER, composition: COMPO, conditions: CPD }), ACTOR)
  t.match(again.genericGroups, { inserted: 0, updated: 0, unchanged: 4, removed: 0 })
  t.match(again.composition, { inserted: 0, updated: 0, unchanged: 3, removed: 0 })
  t.match(again.conditions, { inserted: 0, unchanged: 2, removed: 0 })
  const count = async (table: 'generic_group_members' | 'medicine_components' | 'prescription_conditions') => Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
  t.same([await count('generic_group_members'), await count('medicine_components'), await count('prescription_conditions')], [4, 3, 2], 'nothing duplicated')

  // The files are complete lists: what they no longer publish goes; a changed dosage replaces the medicine's composition.
  const later = await importBdpm(
    db,
    files({
      genericGroups: [GENER[0]!, GENER[1]!],
      composition: [COMPO[0]!.replace('10 mg', '12 mg'), COMPO[1]!, COMPO[2]!],
      conditions: [CPD[0]!],
    }),
    ACTOR,
  )
  t.match(later.genericGroups, { unchanged: 2, removed: 2 })
  t.match(later.composition, { updated: 1, unchanged: 2, removed: 0 })
  t.match(later.conditions, { unchanged: 1, removed: 1 })
  t.same(await db.selectFrom('generic_groups').select('id').orderBy('id').execute(), [{ id: 1313 }], 'a group left empty goes too')
  const [facts] = [await productFacts(db, [])]
  t.equal(facts.size, 0)
})

t.test('the product and medicine routes show groups, composition and conditions; a group lists its members', async (t) => {
  const { app, auth } = await testApp(t)
  const report = await importBdpmDirectory(app.db, EXTRACT, ACTOR)
  t.same(report.rejected, [])
  const pharmacy = auth('pharmacy', ORG.pharmacyParis)
  const product = (await app.inject({ method: 'GET', url: '/v1/products/3400930053812', headers: pharmacy })).json()
  t.match(product, {
    cis: '69414886',
    genericGroups: [{ id: 1313, type: 'generic', typeCode: 1, label: /CRESTOR 10 mg/ }],
    composition: [
      { element: 'comprimé', link: 1, nature: 'active-substance', substanceCode: '26727', substance: 'ROSUVASTATINE CALCIQUE', dosage: null },
      { element: 'comprimé', link: 1, nature: 'therapeutic-fraction', substanceCode: '33207', substance: 'ROSUVASTATINE', dosage: '10 mg', dosageReference: 'un comprimé' },
    ],
    prescriptionConditions: ['liste I'],
  })
  const medicine = (await app.inject({ method: 'GET', url: '/v1/medicines/68479386', headers: pharmacy })).json()
  t.match(medicine, { genericGroups: [{ id: 1313, type: 'princeps', typeCode: 0 }], composition: [{ substance: 'ROSUVASTATINE CALCIQUE' }, { substance: 'ROSUVASTATINE' }] })
  const search = (await app.inject({ method: 'GET', url: '/v1/products?q=rosuvastatine', headers: pharmacy })).json()
  t.ok(search.items.length === 6 && search.items.every((p: { composition: unknown[] }) => p.composition.length === 2), 'every product of a search carries its composition')
  const group = await app.inject({ method: 'GET', url: '/v1/generic-groups/1313', headers: pharmacy })
  t.equal(group.statusCode, 200)
  t.match(group.json(), { id: 1313, members: [{ cis: '68479386', type: 'princeps', name: /CRESTOR/ }, { cis: '69414886', type: 'generic' }, {}, {}] })
  t.equal((await app.inject({ method: 'GET', url: '/v1/generic-groups/999999', headers: pharmacy })).statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: '/v1/generic-groups/abc', headers: pharmacy })).statusCode, 400)
})

// The whole country's referential: with the data beside the repository (as the machines have it), or skipped.
const BDPM_2021 = [path.join(fileURLToPath(new URL('..', import.meta.url)), '../shared/data/bdpm-2021'), path.join(fileURLToPath(new URL('..', import.meta.url)), '../../shared/data/bdpm-2021')].find((d) => existsSync(d))
t.test('the complete spring 2021 BDPM loads, twice, with its real inconsistencies reported', { skip: BDPM_2021 ? false : 'the BDPM 2021 folder is not beside the repository' }, async (t) => {
  const { db } = await testDatabase(t)
  await seedDemoOrganisations(db)
  const started = performance.now()
  const first = await importBdpmDirectory(db, BDPM_2021!, ACTOR)
  const firstMs = performance.now() - started
  t.match(first, {
    medicines: { read: 15_112, inserted: 15_112, rejected: 0 },
    presentations: { read: 20_567, inserted: 20_561, rejected: 6 },
    genericGroups: { read: 9_604, inserted: 9_604, rejected: 0 },
    composition: { read: 29_717, inserted: 29_717, rejected: 0 },
    conditions: { read: 22_220, inserted: 22_220, rejected: 0 },
  })
  t.equal(first.rejected.filter((r) => /CIS inconnu/.test(r.reason)).length, 6, 'the six presentations of unknown medicines')
  t.equal(first.genericMembersWithoutMedicine, 1968, 'withdrawn medicines stay in the répertoire (1,953 of them, some in several groups)')
  const second = await importBdpmDirectory(db, BDPM_2021!, ACTOR)
  t.match(second, { medicines: { unchanged: 15_112 }, presentations: { unchanged: 20_561 }, genericGroups: { unchanged: 9_604 }, composition: { unchanged: 29_717 }, conditions: { unchanged: 22_220 } })
  t.comment(`first import ${(firstMs / 1000).toFixed(1)} s, second ${((performance.now() - started - firstMs) / 1000).toFixed(1)} s, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`)
})

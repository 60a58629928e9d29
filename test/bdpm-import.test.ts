import { fileURLToPath } from 'node:url'
import iconv from 'iconv-lite'
import { sql } from 'kysely'
import t from 'tap'
import { seedDemoOrganisations } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { type BdpmBuffers, importBdpm, importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { decodeBdpm, parseDate, parsePrice } from '../src/referential/rules/bdpm-format.ts'
import { searchName } from '../src/referential/rules/search-name.ts'
import { ORG, testDatabase } from './helpers.ts'

/** Bytes exactly as the BDPM publishes them: Windows-1252, CRLF, tabs, no header. */
const cp1252 = (lines: string[]) => iconv.encode(`${lines.join('\r\n')}\r\n`, 'win1252')
const row = (...fields: string[]) => fields.join('\t')
const ACTOR = { ...SYSTEM, user: 'test-import' }

const med = (cis: string, name: string, date: string, holder: string, monitoring = 'Non') =>
  row(cis, name, 'forme', 'orale', 'Autorisation active', 'Procédure nationale', 'Commercialisée', date, '', '', holder, monitoring)
const pres = (cis: string, cip7: string, cip13: string, rate: string, price: string, date = '14/10/2003') =>
  row(cis, cip7, 'plaquette(s) thermoformée(s) PVC aluminium de 12 gélule(s)', 'Présentation active', 'Déclaration de commercialisation', date, cip13, 'non', rate, price, '', '', '')

const MEDICINES = [
  med('60000011', 'AMOXICILLINE BIOGARAN 500 mg, gélule', '02/07/2003', ' BIOGARAN'),
  med('60000028', 'PARACÉTAMOL ARROW 1000 mg, comprimé', '11/01/2010', '  arrow   generiques '),
  '',
  med('60000035', 'CRÈME LÉMAN, crème', '', ' LABORATOIRES DU LÉMAN', 'Oui'),
  row('60000042', 'TRONQUÉE', 'forme', 'orale', 'Autorisation active', 'Procédure nationale', 'Commercialisée', '01/01/2001', ''),
  med('6000004', 'CIS COURT', '01/01/2001', ' BIOGARAN'),
  med('60000059', 'DATE IMPOSSIBLE', '31/02/2020', ' BIOGARAN'),
]
const PRESENTATIONS = [
  pres('60000011', '3612814', '3400936128149', '65%', '2,06'),
  pres('60000011', '3612820', '3400936128200', '65 %', '2,75'),
  pres('60000028', '2761234', '3400927612343', '', ''),
  pres('60000028', '3401230', '3400934012308', '65%', '1,00'),
  pres('69999999', '3000000', '3400930000007', '65%', '1,00'),
  pres('60000059', '3000001', '3400930000014', '65%', '1,00'),
  pres(' 60000035 ', '5000001', '3400950000018', '100%', '1,034,87'),
]
const MITM = [row('60000011', 'j01ca04', 'AMOXICILLINE BIOGARAN 500 mg, gélule', ''), row('69999999', 'A02BC01', 'INCONNU', '')]
const AVAILABILITY = [
  row('60000011', '', '2', "Tension d'approvisionnement", '02/11/2026', '15/12/2026', '', ''),
  row('60000028', '3400927612343', '1', 'Rupture de stock', '10/11/2026', '', '', ''),
  row('60000028', '', '5', 'Inconnu', '10/11/2026', '', '', ''),
]
const files = (over: Partial<Record<keyof BdpmBuffers, string[]>> = {}): BdpmBuffers => ({
  medicines: cp1252(over.medicines ?? MEDICINES),
  presentations: cp1252(over.presentations ?? PRESENTATIONS),
  mitm: cp1252(over.mitm ?? MITM),
  availability: cp1252(over.availability ?? AVAILABILITY),
})

t.test('parsing helpers', async (t) => {
  t.equal(parseDate('16/03/2011'), '2011-03-16')
  t.equal(parseDate(''), null)
  t.equal(parseDate('31/02/2020'), undefined)
  t.equal(parseDate('2011-03-16'), undefined)
  t.equal(parsePrice('24,34'), '24.34')
  t.equal(parsePrice('5'), '5.00')
  t.equal(parsePrice('1,034,87'), '1034.87')
  t.equal(parsePrice('1 034,87'), '1034.87')
  t.equal(parsePrice('24,345'), undefined)
  t.equal(parsePrice(''), null)
  t.equal(searchName('Paracétamol Crème œil'), 'PARACETAMOL CREME ŒIL')
  // The published encoding, and a file re-saved as UTF-8 by an editor, read the same.
  t.equal(decodeBdpm(Buffer.from([0x67, 0xe9, 0x6c, 0x75, 0x6c, 0x65])), 'gélule')
  t.equal(decodeBdpm(Buffer.from('gélule', 'utf8')), 'gélule')
})

t.test('BDPM import', async (t) => {
  const { db } = await testDatabase(t)
  await seedDemoOrganisations(db)
  const first = await importBdpm(db, files(), ACTOR)

  t.test('counts per file, blank lines not counted', async (t) => {
    t.match(first.medicines, { read: 6, inserted: 3, updated: 0, unchanged: 0, rejected: 3 })
    t.match(first.presentations, { read: 7, inserted: 4, updated: 0, unchanged: 0, rejected: 3 })
    t.match(first.mitm, { read: 2, inserted: 1, rejected: 1 })
    t.match(first.availability, { read: 3, inserted: 2, rejected: 1, removed: 0 })
    t.same(first.files, ['CIS_bdpm.txt', 'CIS_CIP_bdpm.txt', 'CIS_MITM.txt', 'CIS_CIP_Dispo_Spec.txt'])
  })

  t.test('every rejected line with its file, 1-based line number (blank lines counted) and reason', async (t) => {
    t.same(first.rejected, [
      { file: 'CIS_bdpm.txt', line: 5, reason: '12 colonnes attendues, 9 trouvées' },
      { file: 'CIS_bdpm.txt', line: 6, reason: 'CIS « 6000004 » : un CIS compte 8 chiffres' },
      { file: 'CIS_bdpm.txt', line: 7, reason: 'date d’autorisation invalide « 31/02/2020 » (attendue : JJ/MM/AAAA)' },
      { file: 'CIS_CIP_bdpm.txt', line: 4, reason: 'CIP13 3400934012308 : clé de contrôle invalide (attendue : 3)' },
      { file: 'CIS_CIP_bdpm.txt', line: 5, reason: 'CIS inconnu 69999999' },
      { file: 'CIS_CIP_bdpm.txt', line: 6, reason: 'CIS inconnu 60000059 (sa ligne de CIS_bdpm.txt a été rejetée)' },
      { file: 'CIS_MITM.txt', line: 2, reason: 'CIS inconnu 69999999' },
      { file: 'CIS_CIP_Dispo_Spec.txt', line: 3, reason: 'code de statut invalide « 5 » (attendu : 1, 2, 3 ou 4)' },
    ])
  })

  t.test('Windows-1252 accents, CRLF and stray spaces are read right', async (t) => {
    const rows = await db.selectFrom('medicines').selectAll().orderBy('cis').execute()
    t.same(
      rows.map((m) => [m.cis, m.name, m.search_name, m.holder, m.authorisation_date, m.enhanced_monitoring]),
      [
        ['60000011', 'AMOXICILLINE BIOGARAN 500 mg, gélule', 'AMOXICILLINE BIOGARAN 500 MG, GELULE', 'BIOGARAN', '2003-07-02', false],
        ['60000028', 'PARACÉTAMOL ARROW 1000 mg, comprimé', 'PARACETAMOL ARROW 1000 MG, COMPRIME', 'ARROW GENERIQUES', '2010-01-11', false],
        // 'Oui' is the last field of a CRLF line: read without the carriage return
        ['60000035', 'CRÈME LÉMAN, crème', 'CREME LEMAN, CREME', 'LABORATOIRES DU LÉMAN', null, true],
      ],
    )
    const p = await db.selectFrom('presentations').selectAll().orderBy('cip13').execute()
    t.same(
      p.map((x) => [x.cip13, x.cis, x.cip7, x.reimbursement_rate, x.price_eur === null ? null : Number(x.price_eur), x.declaration_date, x.hospital_approved, x.label]),
      [
        ['3400927612343', '60000028', '2761234', null, null, '2003-10-14', false, 'plaquette(s) thermoformée(s) PVC aluminium de 12 gélule(s)'],
        ['3400936128149', '60000011', '3612814', '65%', 2.06, '2003-10-14', false, 'plaquette(s) thermoformée(s) PVC aluminium de 12 gélule(s)'],
        ['3400936128200', '60000011', '3612820', '65%', 2.75, '2003-10-14', false, 'plaquette(s) thermoformée(s) PVC aluminium de 12 gélule(s)'],
        ['3400950000018', '60000035', '5000001', '100%', 1034.87, '2003-10-14', false, 'plaquette(s) thermoformée(s) PVC aluminium de 12 gélule(s)'],
      ],
    )
  })

  t.test('holders map to labs by name; an unknown holder maps to none and is reported', async (t) => {
    const labs = await db.selectFrom('medicines').select(['cis', 'lab_id']).orderBy('cis').execute()
    t.same(labs, [
      { cis: '60000011', lab_id: ORG.labBiogaran },
      { cis: '60000028', lab_id: ORG.labArrow },
      { cis: '60000035', lab_id: null },
    ])
    const mapping = await db.selectFrom('lab_holders').select(['holder', 'lab_id']).orderBy('holder').execute()
    t.same(mapping, [
      { holder: 'ARROW GENERIQUES', lab_id: ORG.labArrow },
      { holder: 'BIOGARAN', lab_id: ORG.labBiogaran },
    ])
    t.equal(first.medicinesWithoutLab, 1)
    t.same(first.unmappedHolders, [{ holder: 'LABORATOIRES DU LÉMAN', medicines: 1 }])
  })

  t.test('MITM flag and ATC code; availability per CIS and per CIP13', async (t) => {
    const mitm = await db.selectFrom('medicines').select(['cis', 'mitm', 'atc']).orderBy('cis').execute()
    t.same(mitm, [
      { cis: '60000011', mitm: true, atc: 'J01CA04' },
      { cis: '60000028', mitm: false, atc: null },
      { cis: '60000035', mitm: false, atc: null },
    ])
    const a = await db.selectFrom('availability').select(['cis', 'cip13', 'status_code', 'status_label', 'start_date', 'planned_end_date']).orderBy('cis').execute()
    t.same(a, [
      { cis: '60000011', cip13: null, status_code: 2, status_label: "Tension d'approvisionnement", start_date: '2026-11-02', planned_end_date: '2026-12-15' },
      { cis: '60000028', cip13: '3400927612343', status_code: 1, status_label: 'Rupture de stock', start_date: '2026-11-10', planned_end_date: null },
    ])
  })

  t.test('one audit entry per run, with the counts', async (t) => {
    const entries = await db.selectFrom('audit_log').selectAll().where('object_type', '=', 'bdpm-import').execute()
    t.equal(entries.length, 1)
    t.match(entries[0], { action: 'bdpm.imported', object_id: first.at, actor_user: 'test-import', changes: { medicines: { inserted: 3, rejected: 3 }, presentations: { inserted: 4 }, medicinesWithoutLab: 1 } })
  })

  t.test('a second import of the same files changes nothing and duplicates nothing', async (t) => {
    const again = await importBdpm(db, files(), ACTOR)
    t.match(again.medicines, { read: 6, inserted: 0, updated: 0, unchanged: 3, rejected: 3 })
    t.match(again.presentations, { inserted: 0, updated: 0, unchanged: 4, rejected: 3 })
    t.match(again.mitm, { inserted: 0, updated: 0, unchanged: 1 })
    t.match(again.availability, { inserted: 0, updated: 0, unchanged: 2, removed: 0 })
    const count = async (table: 'medicines' | 'presentations' | 'availability' | 'lab_holders') =>
      Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)
    t.same([await count('medicines'), await count('presentations'), await count('availability'), await count('lab_holders')], [3, 4, 2, 2])
  })

  t.test('a changed line updates its row; a status no longer published is removed', async (t) => {
    const presentations = [...PRESENTATIONS]
    presentations[0] = pres('60000011', '3612814', '3400936128149', '65%', '2,10')
    const r = await importBdpm(db, files({ presentations, availability: [row('60000011', '', '2', "Tension d'approvisionnement", '02/11/2026', '31/12/2026', '', '')] }), ACTOR)
    t.match(r.presentations, { inserted: 0, updated: 1, unchanged: 3 })
    t.match(r.availability, { read: 1, inserted: 0, updated: 1, unchanged: 0, removed: 1 })
    const p = await db.selectFrom('presentations').select('price_eur').where('cip13', '=', '3400936128149').executeTakeFirstOrThrow()
    t.equal(Number(p.price_eur), 2.1)
    const a = await db.selectFrom('availability').select(['cis', 'planned_end_date']).execute()
    t.same(a, [{ cis: '60000011', planned_end_date: '2026-12-31' }])
  })

  t.test('an operator’s holder mapping is followed by the next import', async (t) => {
    await db.insertInto('lab_holders').values({ holder: 'LABORATOIRES DU LÉMAN', lab_id: ORG.labAccord, updated_at: new Date() }).execute()
    const r = await importBdpm(db, { medicines: cp1252(MEDICINES) }, ACTOR)
    t.match(r.medicines, { inserted: 0, updated: 1, unchanged: 2 })
    t.equal(r.medicinesWithoutLab, 0)
    const m = await db.selectFrom('medicines').select('lab_id').where('cis', '=', '60000035').executeTakeFirstOrThrow()
    t.equal(m.lab_id, ORG.labAccord)
  })

  t.test('wrong column counts in every file; duplicates rejected', async (t) => {
    const r = await importBdpm(
      db,
      {
        presentations: cp1252([PRESENTATIONS[0]!, row('60000011', '3612814'), PRESENTATIONS[0]!]),
        mitm: cp1252([row('60000011')]),
        availability: cp1252([row('60000011', '', '2')]),
      },
      ACTOR,
    )
    t.same(r.rejected, [
      { file: 'CIS_CIP_bdpm.txt', line: 2, reason: '13 colonnes attendues, 2 trouvées' },
      { file: 'CIS_CIP_bdpm.txt', line: 3, reason: 'CIP13 3400936128149 en double (déjà ligne 1)' },
      { file: 'CIS_MITM.txt', line: 1, reason: '4 colonnes attendues, 1 trouvée' },
      { file: 'CIS_CIP_Dispo_Spec.txt', line: 1, reason: '8 colonnes attendues, 3 trouvées' },
    ])
  })
})

t.test('the demo fixture imports cleanly from its folder', async (t) => {
  const { db } = await testDatabase(t)
  await seedDemoOrganisations(db)
  const dir = fileURLToPath(new URL('../scripts/fixtures/bdpm-demo', import.meta.url))
  const r = await importBdpmDirectory(db, dir, ACTOR)
  t.same(r.rejected, [])
  t.match(r, {
    medicines: { read: 15, inserted: 15 },
    presentations: { read: 30, inserted: 30 },
    mitm: { read: 8, inserted: 8 },
    availability: { read: 3, inserted: 3 },
    medicinesWithoutLab: 1,
    unmappedHolders: [{ holder: 'LABORATOIRES DU LÉMAN', medicines: 1 }],
  })
  const p = await db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['m.lab_id', 'p.price_eur'])
    .where('p.cip13', '=', '3400949497294')
    .executeTakeFirstOrThrow()
  t.same([p.lab_id, Number(p.price_eur)], [ORG.labBiogaran, 24.34])
  await t.rejects(importBdpmDirectory(db, `${dir}-missing`, ACTOR), /Dossier introuvable/)
})

t.test('the import is all or nothing', async (t) => {
  const { db } = await testDatabase(t)
  // A failure at the last step (availability) must leave no medicine nor presentation behind.
  await sql`create function fail_insert() returns trigger language plpgsql as $$ begin raise exception 'boom'; end $$`.execute(db)
  await sql`create trigger availability_fail before insert on availability for each row execute function fail_insert()`.execute(db)
  await t.rejects(importBdpm(db, files(), ACTOR), /boom/)
  const n = await db.selectFrom('medicines').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()
  t.equal(Number(n.n), 0)
  const audits = await db.selectFrom('audit_log').select('seq').where('object_type', '=', 'bdpm-import').execute()
  t.equal(audits.length, 0)
})

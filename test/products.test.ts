import iconv from 'iconv-lite'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { importBdpm } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp } from './helpers.ts'

const cp1252 = (lines: string[]) => iconv.encode(`${lines.join('\r\n')}\r\n`, 'win1252')
const row = (...fields: string[]) => fields.join('\t')
const med = (cis: string, name: string, holder: string, routes = 'orale') =>
  row(cis, name, 'comprimé', routes, 'Autorisation active', 'Procédure nationale', 'Commercialisée', '16/03/2011', '', '', holder, 'Non')
const pres = (cis: string, cip7: string, cip13: string, price = '2,06', rate = '65%') =>
  row(cis, cip7, `boîte ${cip7}`, 'Présentation active', 'Déclaration de commercialisation', '16/03/2011', cip13, 'non', rate, price, '', '', '')

// Six medicines, ten presentations; one holder (LÉMAN) maps to no lab.
const FIXTURE = {
  medicines: cp1252([
    med('60000011', 'AMOXICILLINE BIOGARAN 500 mg, gélule', ' BIOGARAN'),
    med('60000028', 'AMOXICILLINE/ACIDE CLAVULANIQUE ARROW 1 g/125 mg, poudre', ' ARROW GENERIQUES'),
    med('60002283', 'ROSUVASTATINE BIOGARAN 10 mg, comprimé pelliculé', ' BIOGARAN'),
    med('60000035', 'CÉFIXIME ÉVOLUTION 200 mg, comprimé pelliculé', ' LABORATOIRES DU LÉMAN'),
    med('60000042', 'OMEPRAZOLE VIATRIS 20 mg, gélule gastro-résistante', ' VIATRIS SANTE'),
    med('60000059', 'PARACETAMOL ARROW 1000 mg, comprimé', ' ARROW GENERIQUES', 'orale;rectale'),
  ]),
  presentations: cp1252([
    pres('60000011', '3612814', '3400936128149'),
    pres('60000011', '3612820', '3400936128200'),
    pres('60000028', '3880146', '3400938801460'),
    pres('60000028', '3880152', '3400938801521'),
    pres('60002283', '4949729', '3400949497294', '24,34', '100%'),
    pres('60002283', '4949735', '3400949497355'),
    pres('60000035', '3915327', '3400939153278'),
    pres('60000042', '3580426', '3400935804266'),
    pres('60000042', '3580432', '3400935804327'),
    pres('60000059', '2761234', '3400927612343'),
  ]),
  mitm: cp1252([row('60000011', 'J01CA04', 'x', ''), row('60000028', 'J01CR02', 'x', ''), row('60000035', 'J01DD08', 'x', ''), row('60000042', 'A02BC01', 'x', '')]),
  availability: cp1252([
    row('60000011', '', '2', "Tension d'approvisionnement", '02/11/2026', '15/12/2026', '', ''),
    row('60000011', '3400936128200', '1', 'Rupture de stock', '10/11/2026', '', '', 'https://ansm.example/1'),
  ]),
}
const ALL = ['3400927612343', '3400935804266', '3400935804327', '3400936128149', '3400936128200', '3400938801460', '3400938801521', '3400939153278', '3400949497294', '3400949497355']

t.test('products', async (t) => {
  const { app, auth, database } = await testApp(t)
  const report = await importBdpm(database.db, FIXTURE, SYSTEM)
  t.same(report.rejected, [])
  const pharmacy = auth('pharmacy', ORG.pharmacyParis)
  const ordre = auth('ordre', ORG.ordre)
  const get = (url: string, headers: Record<string, string> = pharmacy) => app.inject({ method: 'GET', url, headers })
  const search = async (qs: string) => {
    const res = await get(`/v1/products?${qs}`)
    t.equal(res.statusCode, 200, qs)
    return (res.json().items as Array<{ cip13: string }>).map((i) => i.cip13).sort()
  }

  t.test('a token is required', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/products/3400949497294' })
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'UNAUTHENTICATED')
  })

  t.test('look-up by CIP13 returns the whole product', async (t) => {
    const res = await get('/v1/products/3400949497294')
    t.equal(res.statusCode, 200)
    t.same(res.json(), {
      cip13: '3400949497294', gtin: '03400949497294', cip7: '4949729', cis: '60002283',
      name: 'ROSUVASTATINE BIOGARAN 10 mg, comprimé pelliculé', label: 'boîte 4949729', form: 'comprimé', routes: ['orale'],
      atc: null, mitm: false, niche: false, enhancedMonitoring: false, lab: { id: ORG.labBiogaran, name: 'BIOGARAN' }, holder: 'BIOGARAN',
      marketing: {
        medicineState: 'Commercialisée', authorisationStatus: 'Autorisation active', presentationState: 'Déclaration de commercialisation',
        administrativeStatus: 'Présentation active', declarationDate: '2011-03-16',
      },
      availability: null, priceEur: 24.34, reimbursementRate: '100%', hospitalApproved: false,
      genericGroups: [], composition: [], prescriptionConditions: [],
    })
  })

  t.test('every role may read the referential', async (t) => {
    for (const [role, org] of [['lab', ORG.labAccord], ['prescriber', ORG.prescriber], ['ministry', ORG.ministry], ['hospital', ORG.hospital]] as const) {
      t.equal((await get('/v1/products/3400949497294', auth(role, org))).statusCode, 200, role)
    }
  })

  t.test('look-up by GTIN-14 and by CIP7 finds the same product', async (t) => {
    for (const code of ['03400949497294', '4949729']) {
      const res = await get(`/v1/products/${code}`)
      t.equal(res.statusCode, 200, code)
      t.equal(res.json().cip13, '3400949497294', code)
    }
  })

  t.test('a wrong check digit is refused naming the field and the expected digit', async (t) => {
    for (const code of ['3400949497295', '03400949497295']) {
      const res = await get(`/v1/products/${code}`)
      t.equal(res.statusCode, 400, code)
      t.match(res.json(), { code: 'INVALID_IDENTIFIER', detail: 'params.code : clé de contrôle invalide (attendue : 4)', errors: [{ field: 'params.code', message: 'clé de contrôle invalide (attendue : 4)' }] })
      t.match(res.headers['content-type'], /application\/problem\+json/)
    }
    const en = await get('/v1/products/3400949497295', { ...pharmacy, 'accept-language': 'en' })
    t.match(en.json(), { code: 'INVALID_IDENTIFIER', detail: 'params.code: invalid check digit (expected 4)', errors: [{ field: 'params.code', message: 'invalid check digit (expected 4)' }] })
    const gtin = await get('/v1/products/13400949497294')
    t.equal(gtin.statusCode, 400)
    t.equal(gtin.json().errors[0].field, 'params.code')
    const malformed = await get('/v1/products/34009-49497')
    t.equal(malformed.statusCode, 400)
    t.match(malformed.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'params.code' }] })
  })

  t.test('an unknown product answers 404, in French or English', async (t) => {
    const res = await get('/v1/products/3400930000007')
    t.equal(res.statusCode, 404)
    t.match(res.json(), { code: 'NOT_FOUND', detail: 'Le produit 3400930000007 est introuvable.' })
    const en = await get('/v1/products/9999999', { ...pharmacy, 'accept-language': 'en-GB,en;q=0.9' })
    t.equal(en.statusCode, 404)
    t.equal(en.json().detail, 'Product 9999999 was not found.')
  })

  t.test('a CIS on the product route points to the medicine route', async (t) => {
    const res = await get('/v1/products/60002283')
    t.equal(res.statusCode, 400)
    t.match(res.json(), { code: 'PRODUCT_CODE_IS_CIS', medicine: '/v1/medicines/60002283', errors: [{ field: 'params.code', code: 'cis' }] })
    t.match(res.json().detail, /60002283 est un CIS/)
  })

  t.test('availability: a presentation’s own status wins over its medicine’s', async (t) => {
    const whole = await get('/v1/products/3400936128149')
    t.same(whole.json().availability, {
      status: 'supply-tension', statusCode: 2, label: "Tension d'approvisionnement", startDate: '2026-11-02', plannedEndDate: '2026-12-15', returnDate: null, link: null, scope: 'medicine', source: 'bdpm', declarationId: null,
    })
    const own = await get('/v1/products/3400936128200')
    t.same(own.json().availability, {
      status: 'shortage', statusCode: 1, label: 'Rupture de stock', startDate: '2026-11-10', plannedEndDate: null, returnDate: null, link: 'https://ansm.example/1', scope: 'presentation', source: 'bdpm', declarationId: null,
    })
    t.match(own.json(), { mitm: true, atc: 'J01CA04' })
  })

  t.test('a medicine with its presentations', async (t) => {
    const res = await get('/v1/medicines/60000011')
    t.equal(res.statusCode, 200)
    const m = res.json()
    t.match(m, { cis: '60000011', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', mitm: true, atc: 'J01CA04', lab: { id: ORG.labBiogaran, name: 'BIOGARAN' }, availability: { statusCode: 2, scope: 'medicine' } })
    t.same(m.presentations.map((p: { cip13: string; availability: { statusCode: number } | null }) => [p.cip13, p.availability?.statusCode ?? null]), [
      ['3400936128149', null],
      ['3400936128200', 1],
    ])
    t.same((await get('/v1/medicines/60000059')).json().routes, ['orale', 'rectale'])
    t.equal((await get('/v1/medicines/69999999')).statusCode, 404)
    t.equal((await get('/v1/medicines/6000001')).statusCode, 400)
  })

  t.test('search by name ignores case and accents; by code, exact', async (t) => {
    t.same(await search('q=cefixime%20evolution'), ['3400939153278'])
    t.same(await search(`q=${encodeURIComponent('Céfixime ÉVOLUTION')}`), ['3400939153278'])
    t.same(await search('q=amoxicilline'), ['3400936128149', '3400936128200', '3400938801460', '3400938801521'])
    t.same(await search('q=amox%20biog'), ['3400936128149', '3400936128200'])
    t.same(await search('q=3400949497294'), ['3400949497294'])
    t.same(await search('q=03400949497294'), ['3400949497294'])
    t.same(await search('q=4949729'), ['3400949497294'])
    t.same(await search('q=60002283'), ['3400949497294', '3400949497355'])
    t.same(await search('q=100%25'), [], 'LIKE wildcards are literal')
  })

  t.test('search by ATC prefix, MITM flag and lab', async (t) => {
    t.same(await search('atc=J01'), ['3400936128149', '3400936128200', '3400938801460', '3400938801521', '3400939153278'])
    t.same(await search('atc=j01ca04'), ['3400936128149', '3400936128200'])
    t.same(await search('mitm=true'), ['3400935804266', '3400935804327', '3400936128149', '3400936128200', '3400938801460', '3400938801521', '3400939153278'])
    t.same(await search('mitm=false'), ['3400927612343', '3400949497294', '3400949497355'])
    t.same(await search(`labId=${ORG.labArrow}`), ['3400927612343', '3400938801460', '3400938801521'])
    t.same(await search(`labId=${ORG.labArrow}&mitm=true`), ['3400938801460', '3400938801521'])
    t.equal((await get('/v1/products?atc=J1')).statusCode, 400)
  })

  t.test('pagination walks every product once, in the same order as one big page', async (t) => {
    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const res = await get(`/v1/products?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
      t.equal(res.statusCode, 200)
      const body = res.json() as { items: Array<{ cip13: string }>; nextCursor: string | null }
      seen.push(...body.items.map((i) => i.cip13))
      cursor = body.nextCursor
      pages++
    } while (cursor && pages < 10)
    t.equal(pages, 4)
    t.equal(new Set(seen).size, seen.length, 'no duplicates')
    t.same([...seen].sort(), ALL)
    const one = await get('/v1/products?limit=200')
    t.same(seen, one.json().items.map((i: { cip13: string }) => i.cip13))
    t.equal(one.json().nextCursor, null)
  })

  t.test('a cursor from another search is refused', async (t) => {
    const first = await get('/v1/products?q=amoxicilline&limit=1')
    const cursor = first.json().nextCursor
    t.type(cursor, 'string')
    const next = await get(`/v1/products?q=amoxicilline&limit=1&cursor=${cursor}`)
    t.equal(next.statusCode, 200)
    const other = await get(`/v1/products?atc=J01&limit=1&cursor=${cursor}`)
    t.equal(other.statusCode, 400)
    t.equal(other.json().code, 'INVALID_CURSOR')
    t.equal((await get('/v1/products?cursor=not-a-cursor')).json().code, 'INVALID_CURSOR')
  })

  t.test('operator corrections of a medicine', async (t) => {
    const refused = await app.inject({ method: 'PATCH', url: '/v1/medicines/60000035', headers: pharmacy, payload: { niche: true } })
    t.equal(refused.statusCode, 403)
    t.equal(refused.json().code, 'FORBIDDEN_ROLE')

    const res = await app.inject({
      method: 'PATCH',
      url: '/v1/medicines/60000035',
      headers: { ...ordre, 'idempotency-key': 'patch-60000035-1', 'x-request-id': 'req-patch-1' },
      payload: { labId: ORG.labViatris, niche: true, reason: 'Exploitant confirmé' },
    })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { cis: '60000035', niche: true, lab: { id: ORG.labViatris, name: 'VIATRIS SANTE' } })
    const replay = await app.inject({
      method: 'PATCH',
      url: '/v1/medicines/60000035',
      headers: { ...ordre, 'idempotency-key': 'patch-60000035-1' },
      payload: { labId: ORG.labViatris, niche: true, reason: 'Exploitant confirmé' },
    })
    t.equal(replay.headers['idempotent-replayed'], 'true')

    const history = await get('/v1/audit/entries?objectType=medicine&objectId=60000035', ordre)
    t.equal(history.statusCode, 200)
    t.equal(history.json().length, 1, 'one entry: the replay changed nothing')
    t.match(history.json()[0], {
      action: 'medicine.updated',
      actor: { role: 'ordre', org: ORG.ordre },
      requestId: 'req-patch-1',
      changes: { labId: [null, ORG.labViatris], niche: [false, true], reason: 'Exploitant confirmé' },
    })
    t.match((await get('/v1/products/3400939153278')).json(), { niche: true, lab: { id: ORG.labViatris } })

    const notALab = await app.inject({ method: 'PATCH', url: '/v1/medicines/60000035', headers: ordre, payload: { labId: ORG.pharmacyParis } })
    t.equal(notALab.statusCode, 400)
    t.match(notALab.json(), { code: 'UNKNOWN_LAB', errors: [{ field: 'body.labId' }], detail: `body.labId : ${ORG.pharmacyParis} n’est pas un laboratoire enregistré sur le service.` })
    const en = await app.inject({ method: 'PATCH', url: '/v1/medicines/60000035', headers: { ...ordre, 'accept-language': 'en' }, payload: { labId: '999999999' } })
    t.equal(en.json().detail, 'body.labId: 999999999 is not a lab registered on the service.')
    t.equal((await app.inject({ method: 'PATCH', url: '/v1/medicines/69999999', headers: ordre, payload: { niche: true } })).statusCode, 404)
    t.equal((await app.inject({ method: 'PATCH', url: '/v1/medicines/60000035', headers: ordre, payload: {} })).statusCode, 400)
    t.equal((await app.inject({ method: 'PATCH', url: '/v1/medicines/60000035', headers: ordre, payload: { atc: 'nope' } })).statusCode, 400)
  })

  t.test('the operator maps a holder to a lab: every medicine of that holder follows', async (t) => {
    const before = await get('/v1/lab-holders?unmapped=true', ordre)
    t.equal(before.statusCode, 200)
    t.same(before.json().items, [])
    // Undo the per-medicine correction above: the holder has no lab again.
    await app.inject({ method: 'PATCH', url: '/v1/medicines/60000035', headers: ordre, payload: { labId: null } })
    t.same((await get('/v1/lab-holders?unmapped=true', ordre)).json().items, [{ holder: 'LABORATOIRES DU LÉMAN', lab: null, medicines: 1, medicinesWithoutLab: 1 }])

    const url = `/v1/lab-holders/${encodeURIComponent('  laboratoires  du léman ')}`
    t.equal((await app.inject({ method: 'PUT', url, headers: pharmacy, payload: { labId: ORG.labAccord } })).statusCode, 403)
    const res = await app.inject({ method: 'PUT', url, headers: ordre, payload: { labId: ORG.labAccord, reason: 'Exploitant indiqué par l’ANSM' } })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { holder: 'LABORATOIRES DU LÉMAN', lab: { id: ORG.labAccord, name: 'ACCORD HEALTHCARE FRANCE' }, medicines: 1, medicinesWithoutLab: 0 })
    t.match((await get('/v1/products/3400939153278')).json(), { lab: { id: ORG.labAccord } })
    const history = await get(`/v1/audit/entries?objectType=lab-holder&objectId=${encodeURIComponent('LABORATOIRES DU LÉMAN')}`, ordre)
    t.match(history.json(), [{ action: 'lab-holder.mapped', changes: { labId: [null, ORG.labAccord], medicinesReassigned: 1 } }])

    // The next import follows the mapping.
    const again = await importBdpm(database.db, { medicines: FIXTURE.medicines }, SYSTEM)
    t.equal(again.medicinesWithoutLab, 0)
    t.match((await get('/v1/products/3400939153278')).json(), { lab: { id: ORG.labAccord } })
    const unknown = await app.inject({ method: 'PUT', url, headers: ordre, payload: { labId: '999999999' } })
    t.equal(unknown.json().code, 'UNKNOWN_LAB')
  })
})

import t from 'tap'
import { ORG, testApp } from './helpers.ts'

t.test('organisations and subscriptions', async (t) => {
  const { app, auth } = await testApp(t)
  const ordre = auth('ordre', ORG.ordre)
  const post = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/organisations', headers: ordre, payload })

  t.test('identifiers are checked against the role', async (t) => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ id: '301234564', role: 'lab', name: 'Lab' }, /clé de Luhn du SIREN/],
      [{ id: '10001234566', role: 'prescriber', name: 'Dr X' }, /clé de Luhn du RPPS/],
      [{ id: '3012345', role: 'lab', name: 'Lab' }, /9 chiffres/],
      [{ id: '2C0100040', role: 'pharmacy', name: 'P' }, /2A\/2B pour la Corse/],
      [{ id: '990100040', role: 'pharmacy', name: 'P' }, /département .* inconnu/],
      [{ id: 'ansm', role: 'ansm', name: 'A' }, /majuscules/],
    ]
    for (const [payload, reason] of cases) {
      const res = await post(payload)
      t.equal(res.statusCode, 400, JSON.stringify(payload))
      t.equal(res.json().code, 'INVALID_IDENTIFIER')
      t.match(res.json().detail, reason)
      t.equal(res.json().errors[0].field, 'body.id')
    }
  })

  t.test('FINESS gives the department and region: Corsica and overseas', async (t) => {
    const corsica = await post({ id: '2B0100110', role: 'pharmacy', name: 'Pharmacie de Bastia' })
    t.equal(corsica.statusCode, 201)
    t.match(corsica.json(), { department: '2B', region: '94', regionName: 'Corse' })
    const reunion = await post({ id: '974100120', role: 'hospital', name: 'PUI CHU Réunion' })
    t.match(reunion.json(), { department: '974', region: '04', regionName: 'La Réunion' })
    const mayotte = await post({ id: '976100130', role: 'pharmacy', name: 'Pharmacie de Mamoudzou' })
    t.match(mayotte.json(), { department: '976', region: '06' })
  })

  t.test('a duplicate is a conflict', async (t) => {
    const res = await post({ id: ORG.pharmacyParis, role: 'pharmacy', name: 'Doublon' })
    t.equal(res.statusCode, 409)
    t.equal(res.json().code, 'CONFLICT')
  })

  t.test('only the operator writes', async (t) => {
    for (const [role, org] of [['pharmacy', ORG.pharmacyParis], ['lab', ORG.labArrow], ['ansm', ORG.ansm], ['ministry', ORG.ministry]] as const) {
      const res = await app.inject({ method: 'POST', url: '/v1/organisations', headers: auth(role, org), payload: { id: '330100990', role: 'pharmacy', name: 'X' } })
      t.equal(res.statusCode, 403, role)
      const patch = await app.inject({ method: 'PATCH', url: `/v1/organisations/${org}`, headers: auth(role, org), payload: { name: 'X' } })
      t.equal(patch.statusCode, 403, `${role} cannot rename itself`)
    }
  })

  t.test('tenancy: another organisation answers 404, not data', async (t) => {
    const own = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.pharmacyParis}`, headers: auth('pharmacy', ORG.pharmacyParis) })
    t.equal(own.statusCode, 200)
    for (const [role, org] of [['pharmacy', ORG.pharmacyParis], ['lab', ORG.labArrow], ['prescriber', ORG.prescriber]] as const) {
      const other = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.pharmacyLyon}`, headers: auth(role, org) })
      t.equal(other.statusCode, 404, role)
      t.notMatch(other.body, /Terreaux/)
    }
    const asAnsm = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.pharmacyLyon}`, headers: auth('ansm', ORG.ansm) })
    t.equal(asAnsm.statusCode, 200)
  })

  t.test('listing with filters and cursor pagination', async (t) => {
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const url: string = `/v1/organisations?role=pharmacy&limit=2${cursor ? `&cursor=${cursor}` : ''}`
      const res = await app.inject({ method: 'GET', url, headers: ordre })
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.ok(body.items.length <= 2)
      seen.push(...body.items.map((o: any) => o.id))
      cursor = body.nextCursor
    } while (cursor)
    t.equal(new Set(seen).size, seen.length, 'no duplicates')
    t.ok(seen.includes(ORG.pharmacyAjaccio) && seen.includes(ORG.pharmacyGuadeloupe))
    t.ok(seen.every((id) => !id.startsWith('3')), 'only pharmacies')
    const first = await app.inject({ method: 'GET', url: '/v1/organisations?role=pharmacy&limit=1', headers: ordre })
    const wrong = await app.inject({ method: 'GET', url: `/v1/organisations?role=lab&cursor=${first.json().nextCursor}`, headers: ordre })
    t.equal(wrong.statusCode, 400)
    t.equal(wrong.json().code, 'INVALID_CURSOR')
    const corsica = await app.inject({ method: 'GET', url: '/v1/organisations?region=94', headers: ordre })
    t.ok(corsica.json().items.every((o: any) => o.region === '94'))
    const q = await app.inject({ method: 'GET', url: '/v1/organisations?q=citadelle', headers: ordre })
    t.same(q.json().items.map((o: any) => o.id), [ORG.pharmacyAjaccio])
  })

  t.test('lab subscriptions', async (t) => {
    const me = await app.inject({ method: 'GET', url: '/v1/organisations/me', headers: auth('lab', ORG.labAccord) })
    t.match(me.json().subscription, { subscribed: false })
    const put = await app.inject({ method: 'PUT', url: `/v1/organisations/${ORG.labAccord}/subscription`, headers: ordre, payload: { subscribed: true, since: '2026-11-01T00:00:00Z' } })
    t.equal(put.statusCode, 200)
    t.same(put.json().subscription, { subscribed: true, since: '2026-11-01T00:00:00.000Z' })
    const notLab = await app.inject({ method: 'PUT', url: `/v1/organisations/${ORG.pharmacyParis}/subscription`, headers: ordre, payload: { subscribed: true } })
    t.equal(notLab.statusCode, 409)
    const unknown = await app.inject({ method: 'PUT', url: '/v1/organisations/999999999/subscription', headers: ordre, payload: { subscribed: true } })
    t.equal(unknown.statusCode, 404)
    const history = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.labAccord}/history`, headers: auth('lab', ORG.labAccord) })
    t.match(history.json().at(-1), { action: 'lab.subscribed', changes: { subscribed: [false, true] } })
  })

  t.test('a patch that changes nothing writes nothing', async (t) => {
    const before = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.pharmacyParis}/history`, headers: ordre })
    const res = await app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.pharmacyParis}`, headers: ordre, payload: { name: 'Pharmacie du Marais' } })
    t.equal(res.statusCode, 200)
    const after = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.pharmacyParis}/history`, headers: ordre })
    t.equal(after.json().length, before.json().length)
    const empty = await app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.pharmacyParis}`, headers: ordre, payload: {} })
    t.equal(empty.statusCode, 400)
  })
})

import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp } from './helpers.ts'

const AMOX = '3400936128149' // Biogaran, MITM
const AMOX16 = '3400936128200' // Biogaran, MITM
const AMOXCLAV = '3400938801460' // Arrow, MITM
const OMEP = '3400935804266' // Viatris, MITM

const contact = { service: 'Dépannage urgence', phone: '+33 1 00 00 00 01' }
const WEEK = [1, 2, 3, 4, 5]

t.test('emergency requests: one pending request per presentation, national figures, the lab’s declared hours', async (t) => {
  const ctx = await testApp(t)
  const { app, auth, clock } = ctx
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  clock.now = new Date('2026-11-23T09:00:00Z') // Monday 10:00 in Paris
  const biogaran = auth('lab', ORG.labBiogaran)
  const arrow = auth('lab', ORG.labArrow)
  const viatris = auth('lab', ORG.labViatris)
  const paris = auth('pharmacy', ORG.pharmacyParis)
  const lyon = auth('pharmacy', ORG.pharmacyLyon)
  const ordre = auth('ordre', ORG.ordre)
  for (const [lab, cip13] of [[biogaran, AMOX], [biogaran, AMOX16], [arrow, AMOXCLAV], [viatris, OMEP]] as const) {
    const d = await app.inject({ method: 'POST', url: '/v1/shortage-declarations', headers: lab, payload: { kind: 'observed', presentations: [cip13], cause: 'production', actualStart: '2026-11-20' } })
    t.equal(d.statusCode, 201)
  }
  const open = (cip13: string, headers: Record<string, string>, extra: Record<string, unknown> = {}) =>
    app.inject({ method: 'PUT', url: `/v1/emergency-openings/${cip13}`, headers, payload: { contact, ...extra } })
  for (const [cip13, lab] of [[AMOX, biogaran], [AMOX16, biogaran], [AMOXCLAV, arrow]] as const) t.equal((await open(cip13, lab)).statusCode, 200)
  const submit = (cip13: string, headers: Record<string, string>, extra: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/emergency-requests', headers: { ...headers, ...extra }, payload: { cip13, quantity: 1, patientEmergency: true } })

  t.test('a second request for the same presentation while one is pending: 409 with the pending one', async (t) => {
    const first = await submit(AMOX, paris, { 'idempotency-key': 'emergency-first-0001' })
    t.equal(first.statusCode, 201)
    const again = await submit(AMOX, paris)
    t.equal(again.statusCode, 409)
    t.match(again.headers['content-type'], /application\/problem\+json/)
    t.match(again.json(), { code: 'EMERGENCY_REQUEST_PENDING', pendingRequest: { id: first.json().id, status: 'submitted', cip13: AMOX } })
    const en = await app.inject({ method: 'POST', url: '/v1/emergency-requests', headers: { ...paris, 'accept-language': 'en' }, payload: { cip13: `0${AMOX}`, quantity: 3, patientEmergency: true } })
    t.equal(en.statusCode, 409, 'the GTIN-14 names the same presentation')
    t.match(en.json().detail, /already/)
    const replay = await submit(AMOX, paris, { 'idempotency-key': 'emergency-first-0001' })
    t.equal(replay.statusCode, 201, 'a retry of the first request with its key is replayed, not refused')
    t.equal(replay.json().id, first.json().id)
    t.equal((await submit(AMOX, lyon)).statusCode, 201, 'another pharmacy may ask')
    t.equal((await submit(AMOX16, paris)).statusCode, 201, 'another presentation may be asked')
    // Once answered, the request is no longer pending: a new need is a new request.
    const answered = await app.inject({ method: 'POST', url: `/v1/emergency-requests/${first.json().id}/answer`, headers: biogaran, payload: { decision: 'refused', reason: 'out_of_stock' } })
    t.equal(answered.statusCode, 200)
    t.equal((await submit(AMOX, paris)).statusCode, 201)
  })

  t.test('a race of concurrent submissions: exactly one 201, the others 409 with it, never 500', async (t) => {
    const results = await Promise.all(Array.from({ length: 6 }, () => submit(AMOXCLAV, lyon)))
    const statuses = results.map((r) => r.statusCode).sort()
    t.same(statuses, [201, 409, 409, 409, 409, 409], JSON.stringify(results.map((r) => [r.statusCode, r.json().code])))
    const winner = results.find((r) => r.statusCode === 201)!.json().id
    for (const r of results.filter((x) => x.statusCode === 409)) t.equal(r.json().pendingRequest.id, winner)
    const rows = await app.db.selectFrom('emergency_requests').select('id').where('pharmacy_id', '=', ORG.pharmacyLyon).where('cip13', '=', AMOXCLAV).execute()
    t.equal(rows.length, 1)
  })

  t.test('the operator’s national figures need no labId', async (t) => {
    const stats = (qs: string, headers: Record<string, string>) => app.inject({ method: 'GET', url: `/v1/emergency-statistics?${qs}`, headers })
    const national = await stats('from=2026-11-01&to=2026-11-30', ordre)
    t.equal(national.statusCode, 200)
    const n = national.json()
    t.match(n, { lab: null, received: 5, answered: 1, byDecision: { refused: 1 } })
    t.same(n.byLab.map((l: any) => [l.lab.id, l.received]), [[ORG.labBiogaran, 4], [ORG.labArrow, 1]], 'per lab, most requests first')
    t.match(n.byLab[0], { answered: 1, escalated: 0, acceptanceRate: 0 })
    const one = await stats(`from=2026-11-01&to=2026-11-30&labId=${ORG.labArrow}`, ordre)
    t.match(one.json(), { lab: { id: ORG.labArrow }, received: 1 })
    t.equal(one.json().byLab, undefined)
    const own = await stats('from=2026-11-01&to=2026-11-30', biogaran)
    t.match(own.json(), { lab: { id: ORG.labBiogaran }, received: 4 })
    t.equal(own.json().byLab, undefined, 'a lab never sees the other labs')
    t.equal((await stats('', auth('pharmacy', ORG.pharmacyParis))).statusCode, 403)
  })

  t.test('the escalation clock follows the hours the lab declared', async (t) => {
    // Viatris's emergency service answers every day, around the clock, holidays included.
    const allDay = await open(OMEP, viatris, { openingHours: '24 h/24, 7 j/7', escalationBusinessHours: 4, serviceHours: { slots: [{ days: [1, 2, 3, 4, 5, 6, 7], from: '00:00', to: '24:00' }], publicHolidays: 'open' } })
    t.equal(allDay.statusCode, 200, allDay.body)
    t.same(allDay.json().serviceHours, { slots: [{ days: [1, 2, 3, 4, 5, 6, 7], from: '00:00', to: '24:00' }], publicHolidays: 'open' })
    clock.now = new Date('2026-11-28T21:00:00Z') // Saturday 22:00 in Paris
    const night = await submit(OMEP, paris)
    t.equal(night.statusCode, 201)
    t.equal(night.json().escalateAt, '2026-11-29T01:00:00.000Z', 'four hours later, on a Sunday night')
    // Biogaran: mornings and afternoons on weekdays, Saturday mornings.
    const split = { slots: [{ days: WEEK, from: '08:00', to: '12:00' }, { days: WEEK, from: '14:00', to: '17:00' }, { days: [6], from: '09:00', to: '12:00' }] }
    const o = await open(AMOX16, biogaran, { escalationBusinessHours: 4, serviceHours: split })
    t.equal(o.statusCode, 200, o.body)
    t.match(o.json(), { serviceHours: { ...split, publicHolidays: 'closed' }, escalationBusinessHours: 4 })
    clock.now = new Date('2026-11-27T15:00:00Z') // Friday 16:00 in Paris
    const friday = await submit(AMOX16, lyon)
    t.equal(friday.statusCode, 201, friday.body)
    t.equal(friday.json().escalateAt, '2026-11-28T11:00:00.000Z', 'one hour on Friday afternoon, three on Saturday morning: Saturday 12:00')
    clock.now = new Date('2026-11-30T10:30:00Z') // Monday 11:30 in Paris
    const lunch = await submit(AMOX, lyon)
    t.equal(lunch.statusCode, 409, 'Lyon’s earlier AMOX request is still pending')
    await app.inject({ method: 'POST', url: `/v1/emergency-requests/${lunch.json().pendingRequest.id}/cancel`, headers: lyon, payload: {} })
    t.equal((await open(AMOX, biogaran, { escalationBusinessHours: 2, serviceHours: split })).statusCode, 200)
    const late = await submit(AMOX, lyon)
    t.equal(late.json().escalateAt, '2026-11-30T14:30:00.000Z', 'half an hour before lunch, an hour and a half after: 15:30')
    // Without declared hours: office hours, as before.
    t.equal((await open(AMOX, biogaran, { escalationBusinessHours: 2 })).json().serviceHours, null)
  })

  t.test('declared hours that make no sense are refused, naming the field', async (t) => {
    const bad = async (serviceHours: unknown, field: string) => {
      const res = await open(AMOX, biogaran, { serviceHours })
      t.equal(res.statusCode, 400, JSON.stringify(serviceHours))
      t.match(res.json(), { errors: [{ field }] })
    }
    await bad({ slots: [{ days: [1], from: '18:00', to: '09:00' }] }, 'body.serviceHours.slots.0.to')
    await bad({ slots: [{ days: [1, 2], from: '09:00', to: '13:00' }, { days: [2], from: '12:00', to: '18:00' }] }, 'body.serviceHours.slots.1')
    await bad({ slots: [{ days: [8], from: '09:00', to: '12:00' }] }, 'body.serviceHours.slots.0.days.0')
    await bad({ slots: [{ days: [1], from: '9h', to: '12:00' }] }, 'body.serviceHours.slots.0.from')
    await bad({ slots: [] }, 'body.serviceHours.slots')
  })
})

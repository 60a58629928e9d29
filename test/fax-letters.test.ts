// A recall faxed to a wholesaler whose line never works: retries spread over hours, then a paper letter the lab
// prints (with the recipient's postal address), is told about on its feed, and records as sent.
import { PDFParse } from 'pdf-parse'
import t from 'tap'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { ConfigError, loadConfig } from '../src/platform/config.ts'
import type { FaxGateway } from '../src/platform/fax/gateway.ts'
import { registerFaxJobs } from '../src/platform/fax/job.ts'
import { JobRunner } from '../src/platform/jobs.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp, type TestContext } from './helpers.ts'

const AMOX = '3400936128149'
const MINUTE = 60_000
const HOUR = 60 * MINUTE
const WHOLESALER_FAX = '+33 1 00 00 00 70'

const pdfText = async (pdf: Buffer) => {
  const r = await new PDFParse({ data: new Uint8Array(pdf) }).getText()
  return { text: r.text.replace(/\s+/g, ' '), pages: r.total }
}

/** Records every fax; the numbers listed fail. */
class Gateway implements FaxGateway {
  calls: Array<{ to: string; at: Date; pdf: Buffer }> = []
  failing = new Set<string>()
  constructor(private readonly now: () => Date) {}
  async send(fax: { to: string; pdf: Buffer; reference: string }) {
    this.calls.push({ to: fax.to, at: this.now(), pdf: fax.pdf })
    if (this.failing.has(fax.to)) throw new Error('ligne occupée')
    return { id: `gw-${this.calls.length}` }
  }
}

async function setup(t: { teardown(fn: () => unknown): void }, env: Record<string, string> = {}) {
  const ctx = await testApp(t, { env })
  await importBdpmDirectory(ctx.database.db, DEMO_BDPM_DIR, SYSTEM)
  ctx.clock.now = new Date('2026-11-22T10:00:00Z')
  const gateway = new Gateway(() => ctx.clock.now)
  // The fax job on a runner of the test's own, with the app's configuration (its retry schedule).
  const jobs = new JobRunner({ db: ctx.app.db, log: ctx.app.log, now: () => ctx.clock.now })
  registerFaxJobs({ db: ctx.app.db, config: ctx.app.config, jobs }, gateway)
  return { ...ctx, gateway, jobs }
}

async function broadcast(ctx: TestContext) {
  const { app, auth } = ctx
  const lab = auth('lab', ORG.labBiogaran, 'alice')
  const created = await app.inject({
    method: 'POST', url: '/v1/recalls', headers: lab,
    payload: {
      title: 'Rappel du lot L2411A d’Amoxicilline Biogaran', reason: 'Défaut d’étanchéité de l’opercule', message: 'Mettez en quarantaine les boîtes du lot concerné.',
      action: 'quarantine_return', recipients: { categories: ['wholesaler', 'hospital'], regions: ['11'] }, contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 01' }],
      batches: [{ cip13: AMOX, batch: 'L2411A', expiry: '2027-06-30' }], blockDispensation: false, reminderDelaysHours: [],
    },
  })
  const id = created.json().id
  await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: lab })
  const ok = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/approve`, headers: auth('ansm', ORG.ansm) })
  if (ok.statusCode !== 200) throw new Error(ok.body)
  return id as string
}

t.test('a fax that keeps failing: retries over hours, then a letter the lab prints and records as sent', async (t) => {
  const ctx = await setup(t)
  const { app, auth, clock, gateway, jobs } = ctx
  const lab = auth('lab', ORG.labBiogaran, 'alice')
  const ordre = auth('ordre', ORG.ordre)
  gateway.failing.add(WHOLESALER_FAX)
  const id = await broadcast(ctx)
  const coverage = async () => (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/coverage`, headers: lab })).json()

  t.test('the notice has French labels only and a fax-back form for the quantities', async (t) => {
    await jobs.runDue()
    const hospital = gateway.calls.find((c) => c.to !== WHOLESALER_FAX)!
    const { text } = await pdfText(hospital.pdf)
    t.notMatch(text, 'recall.broadcast', 'no raw event type')
    t.notMatch(text, /\b(quarantine_return|wholesaler|hospital)\b/, 'no code')
    t.match(text, 'Rappel de lots')
    for (const s of ['Accusé de réception', 'mises en quarantaine', 'retournées', 'détruites', 'Aucune boîte des lots concernés en stock', 'Nom et qualité du signataire', 'Date', 'Signature']) t.match(text, s)
    t.match(text, 'BIOGARAN', 'whom to return it to')
    t.match(text, 'R-2026-0001')
  })

  t.test('the failing fax is retried over several hours before giving up', async (t) => {
    const first = gateway.calls.find((c) => c.to === WHOLESALER_FAX)!.at
    for (let i = 0; i < 16 * 6; i++) {
      clock.advance(10 * MINUTE)
      await jobs.runDue()
      const letters = await app.db.selectFrom('paper_letters').select('id').execute()
      const calls = gateway.calls.filter((c) => c.to === WHOLESALER_FAX)
      if (letters.length === 0) t.ok(clock.now.getTime() - first.getTime() < 12 * HOUR, 'gave up within the day')
      else break
      t.ok(calls.length <= 7)
    }
    const calls = gateway.calls.filter((c) => c.to === WHOLESALER_FAX)
    t.equal(calls.length, 7, 'seven attempts')
    const span = calls.at(-1)!.at.getTime() - calls[0]!.at.getTime()
    t.ok(span >= 6 * HOUR, `spread over ${(span / HOUR).toFixed(1)} h`)
    const gaps = calls.slice(1).map((c, i) => c.at.getTime() - calls[i]!.at.getTime())
    t.ok(gaps.every((g, i) => i === 0 || g >= gaps[i - 1]!), 'growing delays')
    t.match((await coverage()).faxes, { paperLetter: 1 })
    t.match((await coverage()).letters, { pending: 1, sent: 0 })
  })

  let letterId = ''
  t.test('the lab is told on its feed, with the recipient’s postal address', async (t) => {
    await app.hub.runSequencer()
    const feed = (await app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=100', headers: lab })).json().items
    const event = feed.find((e: any) => e.type === 'fax.letter_required')
    t.ok(event, 'fax.letter_required on the lab’s feed')
    t.match(event.payload, {
      reference: 'R-2026-0001', attempts: 7, lastError: /ligne occupée/,
      recipient: { id: ORG.wholesaler, name: 'Répartition Île-de-France', address: { line1: String, postalCode: '92000', city: 'Nanterre' } },
    })
    letterId = event.payload.letterId
    t.ok(letterId)
    const list = (await app.inject({ method: 'GET', url: '/v1/paper-letters?status=pending', headers: lab })).json()
    t.match(list.items, [{ id: letterId, status: 'pending', recipient: { id: ORG.wholesaler }, subject: { type: 'recall', id }, reference: 'R-2026-0001' }])
  })

  t.test('the letter: a PDF with the postal address, the message and the form', async (t) => {
    const res = await app.inject({ method: 'GET', url: `/v1/paper-letters/${letterId}/pdf`, headers: lab })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.headers['content-type'], 'application/pdf')
    const { text } = await pdfText(res.rawPayload)
    t.match(text, 'Répartition Île-de-France')
    t.match(text, '92000 NANTERRE')
    t.match(text, 'Objet')
    t.match(text, 'Rappel du lot L2411A')
    t.match(text, 'mises en quarantaine')
    t.notMatch(text, 'recall.broadcast')
  })

  t.test('other tenants see nothing of it', async (t) => {
    const other = auth('lab', ORG.labArrow)
    t.same((await app.inject({ method: 'GET', url: '/v1/paper-letters', headers: other })).json().items, [])
    for (const [method, url] of [['GET', `/v1/paper-letters/${letterId}`], ['GET', `/v1/paper-letters/${letterId}/pdf`], ['POST', `/v1/paper-letters/${letterId}/sent`]] as const) {
      t.equal((await app.inject({ method, url, headers: other, ...(method === 'POST' ? { payload: {} } : {}) })).statusCode, 404, `${method} ${url}`)
    }
    t.equal((await app.inject({ method: 'GET', url: '/v1/paper-letters', headers: auth('wholesaler', ORG.wholesaler) })).statusCode, 403)
    t.equal((await app.inject({ method: 'GET', url: `/v1/paper-letters/${letterId}`, headers: ordre })).statusCode, 200, 'the operator sees every letter')
  })

  t.test('no postal address: the letter cannot be printed until the operator adds it', async (t) => {
    const cleared = await app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.wholesaler}`, headers: ordre, payload: { address: null } })
    t.equal(cleared.statusCode, 200, cleared.body)
    t.equal(cleared.json().address, null)
    const missing = await app.inject({ method: 'GET', url: `/v1/paper-letters/${letterId}/pdf`, headers: lab })
    t.equal(missing.statusCode, 409)
    t.equal(missing.json().code, 'POSTAL_ADDRESS_MISSING')
    t.match(missing.json().detail, 'Répartition Île-de-France')
    const bad = await app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.wholesaler}`, headers: ordre, payload: { address: { line1: '3 rue des Entrepôts', postalCode: '920' } } })
    t.equal(bad.statusCode, 400)
    t.equal(bad.json().errors[0].field, 'body.address.postalCode')
    const set = await app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.wholesaler}`, headers: ordre, payload: { address: { line1: '3 rue des Entrepôts', line2: 'Quai 4', postalCode: '92000' }, city: 'Nanterre' } })
    t.equal(set.statusCode, 200)
    t.same(set.json().address, { line1: '3 rue des Entrepôts', line2: 'Quai 4', postalCode: '92000' })
    const { text } = await pdfText((await app.inject({ method: 'GET', url: `/v1/paper-letters/${letterId}/pdf`, headers: lab })).rawPayload)
    t.match(text, '3 rue des Entrepôts Quai 4 92000 NANTERRE')
  })

  t.test('the lab records that it sent the letter; coverage shows it', async (t) => {
    clock.advance(HOUR)
    const res = await app.inject({ method: 'POST', url: `/v1/paper-letters/${letterId}/sent`, headers: lab, payload: { trackingNumber: '1A 234 567 8901 2' } })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'sent', sentAt: clock.now.toISOString(), trackingNumber: '1A 234 567 8901 2', sentBy: { org: ORG.labBiogaran, user: 'alice' }, address: { line1: '3 rue des Entrepôts', postalCode: '92000', city: 'Nanterre' } })
    t.match((await coverage()).letters, { pending: 0, sent: 1 })
    const recipients = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/recipients`, headers: lab })).json()
    t.match(recipients.items.find((r: any) => r.org.id === ORG.wholesaler), { fax: 'paper_letter', letter: { id: letterId, status: 'sent', sentAt: clock.now.toISOString() } })
    const again = await app.inject({ method: 'POST', url: `/v1/paper-letters/${letterId}/sent`, headers: lab, payload: {} })
    t.equal(again.statusCode, 409, 'recorded once')
    const future = await app.inject({ method: 'POST', url: `/v1/paper-letters/${letterId}/sent`, headers: lab, payload: { sentAt: '2099-01-01T00:00:00Z' } })
    t.ok([400, 409].includes(future.statusCode))
  })
})

t.test('the lab records an acknowledgement sent back on paper', async (t) => {
  const ctx = await setup(t)
  const { app, auth, jobs } = ctx
  const lab = auth('lab', ORG.labBiogaran, 'alice')
  const id = await broadcast(ctx)
  await jobs.runDue()
  const url = (org: string) => `/v1/recalls/${id}/recipients/${org}/acknowledgement`
  const form = { status: 'done', returned: 24, source: 'letter', signedBy: 'M. Durand, pharmacien responsable', signedOn: '2026-11-22' }

  t.test('the rules of an acknowledgement apply, and the form’s details are required', async (t) => {
    const bare = await app.inject({ method: 'PUT', url: url(ORG.wholesaler), headers: lab, payload: { ...form, returned: undefined } })
    t.equal(bare.statusCode, 400)
    t.equal(bare.json().errors[0].field, 'body.quarantined')
    const future = await app.inject({ method: 'PUT', url: url(ORG.wholesaler), headers: lab, payload: { ...form, signedOn: '2026-12-25' } })
    t.equal(future.statusCode, 400)
    t.equal(future.json().errors[0].field, 'body.signedOn')
    const unsigned = await app.inject({ method: 'PUT', url: url(ORG.wholesaler), headers: lab, payload: { ...form, signedBy: undefined } })
    t.equal(unsigned.statusCode, 400)
    t.equal(unsigned.json().errors[0].field, 'body.signedBy')
  })

  t.test('recorded for the recipient: coverage and the recipient’s history show it', async (t) => {
    const res = await app.inject({ method: 'PUT', url: url(ORG.wholesaler), headers: lab, payload: form })
    t.equal(res.statusCode, 200, res.body)
    t.match(res.json(), { status: 'done', returned: 24, changes: 1 })
    t.equal((await app.inject({ method: 'PUT', url: url(ORG.hospital), headers: lab, payload: { status: 'done', noStock: true, source: 'fax', signedBy: 'Dr Roux', signedOn: '2026-11-22' } })).statusCode, 200)
    const coverage = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/coverage`, headers: lab })).json()
    t.match(coverage, { done: 2, quantities: { returned: 24, noStock: 1 } })
    const own = (await app.inject({ method: 'GET', url: `/v1/recalls/${id}/acknowledgement`, headers: auth('wholesaler', ORG.wholesaler) })).json()
    t.match(own.history, [{ seq: 1, returned: 24, source: 'letter', signedBy: 'M. Durand, pharmacien responsable', signedOn: '2026-11-22', by: { org: ORG.labBiogaran, user: 'alice' } }])
    const again = await app.inject({ method: 'PUT', url: url(ORG.wholesaler), headers: lab, payload: form })
    t.match(again.json(), { changes: 1 }, 'the same form twice is one record')
  })

  t.test('only the owning lab, only for a recipient', async (t) => {
    t.equal((await app.inject({ method: 'PUT', url: url(ORG.wholesaler), headers: auth('lab', ORG.labArrow), payload: form })).statusCode, 404)
    t.equal((await app.inject({ method: 'PUT', url: url(ORG.pharmacyLyon), headers: lab, payload: form })).statusCode, 404, 'Lyon was not addressed')
    t.equal((await app.inject({ method: 'PUT', url: url(ORG.wholesaler), headers: auth('wholesaler', ORG.wholesaler), payload: form })).statusCode, 403)
    t.equal((await app.inject({ method: 'PUT', url: url(ORG.wholesaler), headers: auth('ansm', ORG.ansm), payload: form })).statusCode, 403)
  })
})

t.test('the retry schedule is configurable', async (t) => {
  t.same(loadConfig({ FAX_RETRY_MINUTES: '1,5' }).FAX_RETRY_MINUTES, [1, 5])
  t.ok(loadConfig({}).FAX_RETRY_MINUTES.reduce((a, b) => a + b, 0) >= 6 * 60, 'by default, over several hours')
  t.throws(() => loadConfig({ FAX_RETRY_MINUTES: 'soon' }), ConfigError)
  const ctx = await setup(t, { FAX_RETRY_MINUTES: '1,5' })
  ctx.gateway.failing.add(WHOLESALER_FAX)
  await broadcast(ctx)
  await ctx.jobs.runDue()
  for (let i = 0; i < 10; i++) {
    ctx.clock.advance(MINUTE)
    await ctx.jobs.runDue()
  }
  t.equal(ctx.gateway.calls.filter((c) => c.to === WHOLESALER_FAX).length, 3, 'three attempts')
  t.equal((await ctx.app.db.selectFrom('paper_letters').select('id').execute()).length, 1, 'then a letter')
})

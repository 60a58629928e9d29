import { randomUUID } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { sql } from 'kysely'
import { PDFParse } from 'pdf-parse'
import { verifyAudit } from '../src/platform/audit.ts'
import { type NewEvent, publish } from '../src/platform/events/publish.ts'
import { sequence } from '../src/platform/events/sequencer.ts'
import type { FaxGateway } from '../src/platform/fax/gateway.ts'
import { FAX_QUEUE, registerFaxJobs } from '../src/platform/fax/job.ts'
import { renderFaxPdf, toWinAnsi } from '../src/platform/fax/render.ts'
import { SpoolFaxGateway } from '../src/platform/fax/spool.ts'
import { enqueue, JobRunner } from '../src/platform/jobs.ts'
import { ORG, testApp } from './helpers.ts'

// These tests exercise delivery with made-up payloads: the check of payloads against the event catalogue
// (platform/events/catalogue-check.ts) is off here; the services' tests keep it on.
process.env.EVENT_CATALOGUE_CHECK = 'off'

const HOUR = 3_600_000
const TITLE = 'Rappel de lot — « Amoxicilline 500 mg » : arrêt immédiat'

const pdfText = async (pdf: Buffer) => {
  const r = await new PDFParse({ data: new Uint8Array(pdf) }).getText()
  // `flat` joins the lines, for phrases the layout may wrap
  return { text: r.text, flat: r.text.replace(/\s+/g, ' '), pages: r.total }
}

async function spoolDir(t: Test) {
  const dir = await mkdtemp(join(tmpdir(), 'dp-fax-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'spool') // not created yet: the gateway creates it
}

type Mode = 'ok' | 'fail' | 'hang'
/** The spool gateway behind a switch per fax number: fails or hangs on demand, records every call. */
class TestGateway implements FaxGateway {
  calls: Array<{ to: string; reference: string }> = []
  modes = new Map<string, Mode[]>()
  constructor(readonly spool: SpoolFaxGateway) {}
  /** The next calls to this number behave as given, in order; then calls succeed. */
  script(to: string, ...modes: Mode[]) {
    this.modes.set(to, modes)
  }
  async send(fax: { to: string; pdf: Buffer; reference: string }) {
    this.calls.push({ to: fax.to, reference: fax.reference })
    const mode = this.modes.get(fax.to)?.shift() ?? 'ok'
    if (mode === 'fail') throw new Error('ligne occupée')
    if (mode === 'hang') return new Promise<never>(() => {})
    return this.spool.send(fax)
  }
}

/**
 * The app, and a job runner of the test's own on the same database with the fax job registered on the test
 * gateway (with a short timeout). Whether src/app.ts registers 'fax.send' on app.jobs or not, this works: the
 * app's runner only runs when asked to (background 'manual-jobs'), and this file never asks it.
 */
async function faxApp(t: Test) {
  const dir = await spoolDir(t)
  const ctx = await testApp(t, { env: { FAX_SPOOL_DIR: dir } })
  const gateway = new TestGateway(new SpoolFaxGateway(dir, { now: () => ctx.clock.now }))
  const jobs = new JobRunner({ db: ctx.app.db, log: ctx.app.log, now: () => ctx.clock.now })
  // No jitter: the retries come exactly after the configured delays (2, 10, 30, 60, 120, 240 minutes by default).
  // The timeout leaves a loaded machine time to write a spooled fax, and a hanging gateway fails soon enough.
  registerFaxJobs({ db: ctx.app.db, config: ctx.app.config, jobs }, gateway, { timeoutMs: 1500, random: () => 0.5 })
  return { ...ctx, gateway, dir, jobs }
}

const WHOLESALER_FAX = '+33 1 00 00 00 70'
const HOSPITAL_FAX = '+33 1 00 00 00 80'

t.test('fax channel', async (t) => {
  const { app, auth, clock, gateway, dir, jobs: runner } = await faxApp(t)
  const db = app.db
  const lab = auth('lab', ORG.labBiogaran)

  const recallEvent = (extra: Partial<NewEvent> = {}): NewEvent => ({
    type: 'recall.broadcast',
    senderOrg: ORG.labBiogaran,
    subject: { type: 'recall', id: 'RAP-2026-0042' },
    audience: { roles: ['wholesaler', 'hospital', 'pharmacy'] },
    fax: true,
    payload: {
      reference: 'RAP-2026-0042',
      notice: {
        title: TITLE,
        reference: 'RAP-2026-0042',
        body: 'Le laboratoire BIOGARAN procède au rappel du lot B12345.\nMettez en quarantaine les boîtes présentes à l’officine ou en réserve ; ne délivrez plus ce lot. Ça concerne aussi les stocks « tampon ».',
        fields: [
          { label: 'Lots concernés', value: 'B12345 (péremption 03/2027)' },
          { label: 'Action demandée', value: 'Quarantaine puis retour au dépositaire' },
        ],
      },
    },
    ...extra,
  })
  const send = (e: NewEvent) => db.transaction().execute((tx) => publish(tx, e, clock.now))
  const deliveries = (eventId: string) =>
    db.selectFrom('event_deliveries').select(['org_id', 'role', 'fax', 'fax_status', 'fax_attempts', 'delivered_at', 'delivered_via']).where('event_id', '=', eventId).orderBy('org_id').execute()
  const faxedOrgs = async (eventId: string) => (await deliveries(eventId)).filter((d) => d.fax).map((d) => d.org_id).sort()
  const delivery = async (eventId: string, orgId: string) => (await deliveries(eventId)).find((d) => d.org_id === orgId)!
  const coverage = async (eventId: string) => {
    const res = await app.inject({ method: 'GET', url: `/v1/events/${eventId}/coverage`, headers: lab })
    t.equal(res.statusCode, 200, res.body)
    return res.json()
  }
  const auditOf = (eventId: string, action: string) =>
    db.selectFrom('audit_log').select(['actor_user', 'changes', 'at']).where('object_type', '=', 'event').where('object_id', '=', eventId).where('action', '=', action).orderBy('seq').execute()

  // A pharmacy with a fax number still never gets a fax: the channel is for wholesalers and hospitals.
  await db.updateTable('organisations').set({ fax: '+33 1 00 00 00 10' }).where('id', '=', ORG.pharmacyParis).execute()

  let eventId = ''

  t.test('only wholesalers and hospitals without integration get a fax delivery', async (t) => {
    const e = await send(recallEvent())
    eventId = e.id
    t.ok(e.recipients >= 8, 'every pharmacy, the wholesaler and the hospital are recipients')
    t.same(await faxedOrgs(e.id), [ORG.hospital, ORG.wholesaler].sort())
    for (const d of await deliveries(e.id)) {
      if (d.org_id === ORG.hospital || d.org_id === ORG.wholesaler) t.match(d, { fax: true, fax_status: 'queued', fax_attempts: 0, delivered_at: null })
      else t.match(d, { role: 'pharmacy', fax: false, fax_status: null }, `no fax for ${d.org_id}`)
    }
    const jobs = await db.selectFrom('jobs').select(['payload', 'max_attempts', 'state']).where('queue', '=', FAX_QUEUE).execute()
    t.same(jobs.map((j) => j.payload).sort((a: any, b: any) => a.orgId.localeCompare(b.orgId)), [
      { eventId: e.id, orgId: ORG.hospital },
      { eventId: e.id, orgId: ORG.wholesaler },
    ])
    t.ok(jobs.every((j) => j.max_attempts === 5 && j.state === 'pending'))
    t.match((await coverage(e.id)).fax, { queued: 2, sent: 0, failed: 0, paperLetter: 0 })

    const withoutFax = await send(recallEvent({ fax: undefined }))
    t.same(await faxedOrgs(withoutFax.id), [], 'no fax unless the publisher asks for it')
  })

  t.test('the spool gateway writes a real PDF notice for each recipient', async (t) => {
    t.equal(gateway.calls.length, 0, 'nothing is sent before the jobs run')
    const ran = await runner.runDue()
    t.equal(ran, 2)
    t.same(gateway.calls.map((c) => c.to).sort(), [WHOLESALER_FAX, HOSPITAL_FAX].sort())

    const files = (await readdir(dir)).sort()
    t.same(files, [`${eventId}-${ORG.hospital}.json`, `${eventId}-${ORG.hospital}.pdf`, `${eventId}-${ORG.wholesaler}.json`, `${eventId}-${ORG.wholesaler}.pdf`].sort())

    const pdf = await readFile(join(dir, `${eventId}-${ORG.wholesaler}.pdf`))
    t.equal(pdf.subarray(0, 5).toString('latin1'), '%PDF-')
    const { text, flat, pages } = await pdfText(pdf)
    t.equal(pages, 1)
    t.match(text, 'Portail DP — transmission par télécopie')
    t.match(text, 'Répartition Île-de-France', 'the recipient’s name, accents included')
    t.match(text, ORG.wholesaler, 'its FINESS')
    t.match(text, WHOLESALER_FAX)
    t.match(text, 'BIOGARAN', 'the sender')
    t.match(text, TITLE, 'the notice title, with its accents and quotes')
    t.match(flat, 'présentes à l’officine')
    t.match(flat, 'Ça concerne aussi les stocks « tampon »')
    t.match(text, 'Lots concernés')
    t.match(text, 'RAP-2026-0042')
    t.match(text, eventId, 'the event id')
    t.match(flat, 'Merci d’accuser réception de ce message')
    t.match(text, /\d{1,2} \S+ \d{4} à \d{2}:\d{2}:\d{2} \(heure de Paris\)/)
    t.notMatch(text, 'Hôpital Saint-Antoine', 'one recipient per fax')

    const hospitalText = (await pdfText(await readFile(join(dir, `${eventId}-${ORG.hospital}.pdf`)))).text
    t.match(hospitalText, 'PUI — Hôpital Saint-Antoine')
    t.match(hospitalText, HOSPITAL_FAX)

    const sidecar = JSON.parse(await readFile(join(dir, `${eventId}-${ORG.wholesaler}.json`), 'utf8'))
    t.match(sidecar, { to: WHOLESALER_FAX, reference: `${eventId}-${ORG.wholesaler}`, at: clock.now.toISOString(), bytes: pdf.length, id: /^spool-/ })

    for (const org of [ORG.wholesaler, ORG.hospital]) {
      const d = await delivery(eventId, org)
      t.match(d, { fax_status: 'sent', fax_attempts: 1, delivered_via: 'fax' })
      t.equal(d.delivered_at?.getTime(), clock.now.getTime(), 'delivered at the job’s time')
    }
    const audits = await auditOf(eventId, 'fax.sent')
    t.same(audits.map((a: any) => a.changes.orgId).sort(), [ORG.hospital, ORG.wholesaler].sort())
    t.match(audits[0], { actor_user: 'system', changes: { attempts: 1, gatewayId: /^spool-/ } })
    t.same(await db.selectFrom('jobs').select('state').where('queue', '=', FAX_QUEUE).execute(), [{ state: 'done' }, { state: 'done' }])
  })

  t.test('a fax job run again after success sends nothing twice', async (t) => {
    const calls = gateway.calls.length
    for (const orgId of [ORG.wholesaler, ORG.hospital]) await enqueue(db, FAX_QUEUE, { eventId, orgId }, { maxAttempts: 5, runAt: clock.now })
    t.equal(await runner.runDue(), 2, 'the jobs ran')
    t.equal(gateway.calls.length, calls, 'but the gateway was not called')
    t.match(await delivery(eventId, ORG.wholesaler), { fax_status: 'sent', fax_attempts: 1 })
    t.equal((await auditOf(eventId, 'fax.sent')).length, 2)
  })

  t.test('coverage shows the fax counts to the sender, and to nobody else', async (t) => {
    const c = await coverage(eventId)
    t.same(c.fax, { queued: 0, sent: 2, failed: 0, paperLetter: 0 })
    t.equal(c.delivered, 2, 'the two faxed recipients count as reached')
    const other = await app.inject({ method: 'GET', url: `/v1/events/${eventId}/coverage`, headers: auth('lab', ORG.labArrow) })
    t.equal(other.statusCode, 404)
    const recipients = await app.inject({ method: 'GET', url: `/v1/events/${eventId}/recipients?role=hospital`, headers: lab })
    t.match(recipients.json().items, [{ orgId: ORG.hospital, deliveredVia: 'fax', fax: 'sent' }])
  })

  t.test('a failing fax is retried over hours, then a paper letter is asked of the sender', async (t) => {
    // The hospital's line never answers properly; the wholesaler's times out, fails, then works.
    gateway.script(HOSPITAL_FAX, 'fail', 'hang', 'fail', 'fail', 'fail', 'fail', 'fail')
    gateway.script(WHOLESALER_FAX, 'hang', 'fail')
    const e = await send(recallEvent({ audience: { orgs: [ORG.wholesaler, ORG.hospital] } }))
    const calls = () => gateway.calls.filter((c) => c.reference.startsWith(e.id)).length
    const MINUTE = 60_000

    t.equal(await runner.runDue(), 2)
    t.match(await delivery(e.id, ORG.hospital), { fax_status: 'failed', fax_attempts: 1, delivered_at: null })
    t.match(await delivery(e.id, ORG.wholesaler), { fax_status: 'failed', fax_attempts: 1, delivered_at: null })
    t.match((await coverage(e.id)).fax, { queued: 0, sent: 0, failed: 2, paperLetter: 0 })
    const jobs = await db.selectFrom('jobs').select(['state', 'run_at', 'last_error']).where(sql<boolean>`payload->>'eventId' = ${e.id}`).execute()
    t.ok(jobs.every((j) => j.state === 'pending' && j.run_at.getTime() === clock.now.getTime() + 2 * MINUTE), 'both jobs wait 2 minutes for their retry')
    t.ok(jobs.some((j) => /did not answer within/.test(j.last_error ?? '')), 'a hanging gateway times out')

    t.equal(await runner.runDue(), 0, 'nothing is retried before the delay')
    t.equal(calls(), 2)

    clock.advance(2 * MINUTE)
    t.equal(await runner.runDue(), 2)
    t.match(await delivery(e.id, ORG.hospital), { fax_status: 'failed', fax_attempts: 2 })
    t.match(await delivery(e.id, ORG.wholesaler), { fax_status: 'failed', fax_attempts: 2 })

    clock.advance(10 * MINUTE)
    t.equal(await runner.runDue(), 2)
    t.match(await delivery(e.id, ORG.wholesaler), { fax_status: 'sent', fax_attempts: 3, delivered_via: 'fax' }, 'the third attempt went through')
    t.match(await delivery(e.id, ORG.hospital), { fax_status: 'failed', fax_attempts: 3 })

    for (const [minutes, attempts] of [[30, 4], [60, 5], [120, 6]] as const) {
      clock.advance(minutes * MINUTE - 1000)
      t.equal(await runner.runDue(), 0, `not before ${minutes} minutes`)
      clock.advance(1000)
      t.equal(await runner.runDue(), 1, 'only the hospital is retried')
      t.match(await delivery(e.id, ORG.hospital), { fax_status: 'failed', fax_attempts: attempts })
    }
    t.same(await auditOf(e.id, 'fax.paper_letter_needed'), [], 'no paper letter before the last attempt')

    clock.advance(240 * MINUTE)
    t.equal(await runner.runDue(), 1)
    const hospital = await delivery(e.id, ORG.hospital)
    t.match(hospital, { fax_status: 'paper_letter', fax_attempts: 7, delivered_at: null }, 'after the 7th attempt, about 7 h 40 after the first: a paper letter')
    const paper = await auditOf(e.id, 'fax.paper_letter_needed')
    t.equal(paper.length, 1)
    t.match(paper[0], { actor_user: 'system', changes: { orgId: ORG.hospital, attempts: 7, letterId: String } })
    t.equal(paper[0]!.at.getTime(), clock.now.getTime())
    const letter = await db.selectFrom('paper_letters').selectAll().where('event_id', '=', e.id).executeTakeFirstOrThrow()
    t.match(letter, { org_id: ORG.hospital, sender_org: ORG.labBiogaran, status: 'pending', fax_attempts: 7, last_error: 'ligne occupée' })
    t.match(await auditOf(e.id, 'fax.sent'), [{ changes: { orgId: ORG.wholesaler, attempts: 3 } }])
    t.same((await db.selectFrom('jobs').select('state').where(sql<boolean>`payload->>'eventId' = ${e.id}`).execute()).map((j) => j.state), ['done', 'done'])

    clock.advance(24 * HOUR)
    t.equal(await runner.runDue(), 0, 'nothing left to run')
    t.equal(calls(), 10, '7 calls for the hospital, 3 for the wholesaler')
    t.same((await coverage(e.id)).fax, { queued: 0, sent: 1, failed: 0, paperLetter: 1 })
    t.notOk((await readdir(dir)).includes(`${e.id}-${ORG.hospital}.pdf`), 'no PDF spooled for a fax that failed')
  })

  t.test('a paper letter is final: running the job again sends nothing', async (t) => {
    const [e] = await db.selectFrom('event_deliveries').select('event_id').where('fax_status', '=', 'paper_letter').execute()
    const calls = gateway.calls.length
    await enqueue(db, FAX_QUEUE, { eventId: e!.event_id, orgId: ORG.hospital }, { maxAttempts: 5, runAt: clock.now })
    t.equal(await runner.runDue(), 1)
    t.equal(gateway.calls.length, calls)
    t.match(await delivery(e!.event_id, ORG.hospital), { fax_status: 'paper_letter', fax_attempts: 7 })
    t.equal((await db.selectFrom('paper_letters').select('id').where('event_id', '=', e!.event_id).execute()).length, 1, 'still one letter')
  })

  t.test('a wholesaler with an active webhook endpoint gets no fax', async (t) => {
    const endpoint = randomUUID()
    await db
      .insertInto('webhook_endpoints')
      .values({ id: endpoint, org_id: ORG.wholesaler, url: 'http://127.0.0.1:9/hooks', event_types: sql`'{}'::text[]`, secret: 'whsec_dGVzdA==', created_at: clock.now, updated_at: clock.now })
      .execute()
    const withHook = await send(recallEvent())
    t.same(await faxedOrgs(withHook.id), [ORG.hospital])

    await db.updateTable('webhook_endpoints').set({ active: false }).where('id', '=', endpoint).execute()
    const disabled = await send(recallEvent())
    t.same(await faxedOrgs(disabled.id), [ORG.hospital, ORG.wholesaler].sort(), 'a disabled endpoint is no integration')
  })

  t.test('a hospital that pulled its feed in the last days gets no fax', async (t) => {
    // An event that was not faxed, so that the pull records a delivery by 'pull'.
    await send({ type: 'shortage.response', audience: { orgs: [ORG.hospital] }, payload: { message: 'Réponse à votre demande' } })
    await sequence(db)
    const res = await app.inject({ method: 'GET', url: '/v1/feed?after=0&limit=500', headers: auth('hospital', ORG.hospital) })
    t.equal(res.statusCode, 200)
    t.ok(res.json().items.length > 0)
    const pulled = await send(recallEvent())
    t.same(await faxedOrgs(pulled.id), [ORG.wholesaler], 'the hospital reads its feed: no fax')

    clock.advance(8 * 24 * HOUR)
    const later = await send(recallEvent())
    t.same(await faxedOrgs(later.id), [ORG.hospital, ORG.wholesaler].sort(), 'no pull for more than a week: faxed again')
  })

  t.test('the audit chain is intact', async (t) => {
    t.ok((await verifyAudit(db)).ok)
  })
})

t.test('a recipient that starts pulling its feed after being faxed', async (t) => {
  const { app, auth, clock, jobs: runner } = await faxApp(t)
  const db = app.db
  const alert = () => db.transaction().execute((tx) => publish(tx, { type: 'alert.safety', audience: { orgs: [ORG.hospital] }, fax: true, payload: {} }, clock.now))
  const e1 = await alert()
  t.equal(await runner.runDue(), 1)
  await sequence(db)
  const res = await app.inject({ method: 'GET', url: '/v1/feed', headers: auth('hospital', ORG.hospital) })
  t.same(res.json().items.map((i: any) => i.id), [e1.id], 'the hospital now reads its feed')
  const e2 = await alert()
  const d = await db.selectFrom('event_deliveries').select('fax').where('event_id', '=', e2.id).executeTakeFirstOrThrow()
  t.equal(d.fax, false, 'is recognised as integrated (no more faxes)')
})

t.test('the notice', async (t) => {
  const base = {
    recipient: { id: ORG.hospital, name: 'PUI — Hôpital Saint-Antoine', fax: HOSPITAL_FAX },
    sender: { id: ORG.labBiogaran, name: 'BIOGARAN', phone: '+33 1 23 45 67 89' },
    now: new Date('2026-11-22T09:15:00Z'),
  }
  const event = (payload: unknown) => ({ id: '0b7e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e', type: 'alert.safety', createdAt: new Date('2026-11-22T09:14:03Z'), payload, subject: null })

  t.test('dates in Paris time, the sender to call, the service address', async (t) => {
    const { text, flat } = await pdfText(await renderFaxPdf({ ...base, event: event({ notice: { title: 'Information de sécurité', body: 'Texte.' } }), serviceUrl: 'https://portail-dp.example' }))
    t.match(text, 'dimanche 22 novembre 2026 à 10:14:03 (heure de Paris)', 'UTC+1 in November')
    t.match(text, 'dimanche 22 novembre 2026 à 10:15:00 (heure de Paris)')
    t.match(text, 'https://portail-dp.example')
    t.match(flat, 'en appelant l’expéditeur, BIOGARAN, au +33 1 23 45 67 89')
    const summer = await pdfText(await renderFaxPdf({ ...base, event: { ...event({}), createdAt: new Date('2026-07-01T12:00:00Z') } }))
    t.match(summer.text, '1 juillet 2026 à 14:00:00', 'UTC+2 in summer')
  })

  t.test('without a notice: a neutral title and the payload’s fields', async (t) => {
    const { text } = await pdfText(await renderFaxPdf({ ...base, sender: null, event: event({ cip13: '3400930000001', quantité: 12, urgent: true, lots: ['A1', 'B2'], détail: { a: 1 }, vide: null }) }))
    t.match(text, 'Message du Portail DP', 'an unregistered type is named neutrally')
    t.notMatch(text, 'alert.safety', 'never by its code')
    t.match(text, /cip13\s+3400930000001/)
    t.match(text, /quantité\s+12/)
    t.match(text, /urgent\s+oui/)
    t.match(text, /lots\s+A1, B2/)
    t.match(text, /détail\s+\{"a":1\}/)
    t.match(text, 'Portail DP (message du service)')
  })

  t.test('a notice asking for an acknowledgement ends with a page to fax back', async (t) => {
    const ack = (acknowledgement: string, body = 'Mettez en quarantaine les boîtes.') =>
      renderFaxPdf({ ...base, event: { ...event({ reference: 'R-2026-0042', notice: { title: 'Rappel de lots R-2026-0042', body, reference: 'R-2026-0042 v1', acknowledgement } }), type: 'recall.broadcast' } })
    const quantities = await pdfText(await ack('quantities'))
    t.equal(quantities.pages, 2, 'the notice, then the form on its own page')
    t.match(quantities.text, 'Objet Rappel de lots', 'the type by its label')
    t.notMatch(quantities.text, 'recall.broadcast')
    for (const s of ['Accusé de réception et de traitement', 'mises en quarantaine', 'retournées', 'détruites', 'Aucune boîte des lots concernés en stock', 'Nom et qualité du signataire', 'Signature et cachet']) t.match(quantities.text, s)
    t.match(quantities.flat, 'à BIOGARAN (tél. +33 1 23 45 67 89), par télécopie ou par courrier')
    t.match(quantities.flat, 'retournant la page suivante')
    const withFax = await pdfText(await renderFaxPdf({ ...base, sender: { ...base.sender, fax: '+33 1 00 00 00 67' }, event: event({ notice: { title: 'Rappel', body: 'Texte.', acknowledgement: 'quantities' } }) }))
    t.match(withFax.flat, 'à BIOGARAN, par télécopie au +33 1 00 00 00 67')
    const read = await pdfText(await ack('read'))
    t.match(read.text, 'Nous avons pris connaissance de ce message.')
    t.notMatch(read.text, 'mises en quarantaine')
    const long = await pdfText(await ack('quantities', Array.from({ length: 400 }, (_, i) => `Paragraphe ${i + 1} : précautions d’emploi à relire.`).join('\n')))
    t.equal(long.pages, 3, 'two pages of notice at most, then the form')
    t.match(long.text, 'Message abrégé pour la télécopie')
    t.match(long.text, 'page 3/3')
    const none = await pdfText(await renderFaxPdf({ ...base, event: event({ notice: { title: 'Clôture', body: 'Terminé.' } }) }))
    t.equal(none.pages, 1, 'no form when none is asked')
  })

  t.test('characters the fax font lacks are approximated, never garbled', async (t) => {
    t.equal(toWinAnsi('5 µg → 10 μg ≥ 2 ✓ 😀 Œuf ő\u202f!'), '5 µg -> 10 µg >= 2 x ? Œuf o\u00a0!')
    const { text } = await pdfText(await renderFaxPdf({ ...base, event: event({ notice: { title: 'Dose → 10 mg', body: 'Łódź 😀 fin' } }) }))
    t.match(text, 'Dose -> 10 mg')
    t.match(text, 'Lódz ? fin', 'Ł → L, ó kept, ź → z, the emoji → ?')
  })

  t.test('a long message stays within two pages and says where to read the rest', async (t) => {
    const body = Array.from({ length: 400 }, (_, i) => `Paragraphe ${i + 1} : précautions d’emploi à relire.`).join('\n')
    const { text, pages } = await pdfText(await renderFaxPdf({ ...base, event: event({ notice: { title: 'Très long', body } }) }))
    t.equal(pages, 2)
    t.match(text, 'Paragraphe 1 :')
    t.notMatch(text, 'Paragraphe 400 :')
    t.match(text, 'Message abrégé pour la télécopie')
    t.match(text, '0b7e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e', 'the id is still there')
    t.match(text, 'page 2/2')
    const short = await pdfText(await renderFaxPdf({ ...base, event: event({ notice: { title: 'Court', body: 'Une ligne.' } }) }))
    t.equal(short.pages, 1)
    t.notMatch(short.text, 'Message abrégé')
  })
})

t.test('the spool gateway', async (t) => {
  const dir = await spoolDir(t)
  const spool = new SpoolFaxGateway(join(dir, 'a', 'b'), { now: () => new Date('2026-01-02T03:04:05Z') })
  const r = await spool.send({ to: '+33 1 00 00 00 70', pdf: Buffer.from('%PDF-1.3 test'), reference: 'evt-1' })
  t.match(r, { id: /^spool-/ })
  t.same((await readdir(join(dir, 'a', 'b'))).sort(), ['evt-1.json', 'evt-1.pdf'], 'no temporary file left')
  t.same(JSON.parse(await readFile(join(dir, 'a', 'b', 'evt-1.json'), 'utf8')), { id: r.id, to: '+33 1 00 00 00 70', reference: 'evt-1', at: '2026-01-02T03:04:05.000Z', bytes: 13 })
  await t.rejects(spool.send({ to: '1', pdf: Buffer.from('x'), reference: '../evil' }), /reference/)
  await t.rejects(spool.send({ to: ' ', pdf: Buffer.from('x'), reference: 'evt-2' }), /fax number/)
})

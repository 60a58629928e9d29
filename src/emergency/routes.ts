import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { type Static, Type } from 'typebox'
import { actorOf, audit, diff, SYSTEM } from '../platform/audit.ts'
import { principalOf } from '../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'
import { AppError } from '../platform/errors.ts'
import { publish } from '../platform/events/publish.ts'
import { type Lang, langOf } from '../platform/i18n.ts'
import { enqueue, RetryAt } from '../platform/jobs.ts'
import { IdempotencyKeyHeader, problems } from '../platform/openapi.ts'
import { component, Page, PageQuery } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import { isSubscribed } from '../referential/queries/organisations.ts'
import { cip13Of, unknownProduct } from '../shortages/core.ts'
import { parisDate, parisInstant, parisStartOfDay, parisText } from '../platform/paris-time.ts'
import { addBusinessHours, calendarOf, minutesOf } from './business-hours.ts'
import type { EmergencyDelivery, EmergencyEligibility, EmergencyStatus } from './db.ts'
import {
  AnswerInput,
  CONDITIONS,
  type Condition,
  DECISIONS,
  EmergencyRequest,
  Opening,
  OpeningInput,
  REFUSAL_REASONS,
  RequestInput,
  ServiceHours,
  SHIPPING_CHANNELS,
  Statistics,
  STATUS_LABELS,
  STATUSES,
  TRANSITIONS,
  Vocabulary,
} from './schemas.ts'
import {
  ACTIVE_DECLARATION_STATUSES,
  appendStep,
  assertTransition,
  DEFAULT_ESCALATION_BUSINESS_HOURS,
  ESCALATION_QUEUE,
  historyOf,
  isUuid,
  OBJECT_OPENING,
  OBJECT_REQUEST,
  openingNotFound,
  openingQuery,
  requestNotFound,
  requestQuery,
  scoped,
  toOpening,
  toRequest,
} from './service.ts'

export type EmergencyOptions = {
  /** Default escalation delay in Europe/Paris business hours when the lab's opening sets none (default 4). */
  escalationBusinessHours?: number
}

const OpeningPage = Page(Opening, 'EmergencyOpeningPage')
const RequestPage = Page(EmergencyRequest, 'EmergencyRequestPage')
const ReceiptInput = component(
  Type.Object(
    {
      receivedQuantity: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000, description: 'Boxes actually received, when it differs from the answer.' })),
      comment: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    },
    { $id: 'EmergencyReceiptInput', additionalProperties: false, examples: [{ receivedQuantity: 2 }, {}] },
  ),
)
const CancelInput = component(
  Type.Object(
    { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'Why the pharmacy no longer needs it.' })) },
    { $id: 'EmergencyCancelInput', additionalProperties: false, examples: [{ reason: 'Produit obtenu auprès du grossiste' }, {}] },
  ),
)
const CipParams = Type.Object({
  cip13: Type.String({ pattern: '^\\d{13,14}$', 'x-message': { fr: 'un CIP13 (13 chiffres) ou un GTIN-14 est attendu', en: 'a CIP13 (13 digits) or GTIN-14 is expected' } }),
})
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

const fieldError = (field: string, code: string, text: { fr: string; en: string }, lang: Lang) =>
  new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field, code, message: text[lang] }] })

function escalationDefault(opts: EmergencyOptions) {
  const h = opts.escalationBusinessHours ?? DEFAULT_ESCALATION_BUSINESS_HOURS
  if (!Number.isInteger(h) || h < 1 || h > 72) throw new Error(`escalationBusinessHours: an integer from 1 to 72 is expected (got ${h})`)
  return h
}

/** Advisory lock class of "one pending request per pharmacy and presentation" (the key is hashed in it). */
const PENDING_LOCK = 7_203_117

/** Declared hours: each range ends after it starts; two ranges of one day do not overlap. */
function checkServiceHours(hours: Static<typeof ServiceHours>, lang: Lang) {
  const ranges = hours.slots.map((s) => ({ days: s.days, from: minutesOf(s.from), to: minutesOf(s.to) }))
  for (const [i, r] of ranges.entries()) {
    if (r.to <= r.from) throw fieldError(`body.serviceHours.slots.${i}.to`, 'order', { fr: `doit être après ${hours.slots[i]!.from}`, en: `must be after ${hours.slots[i]!.from}` }, lang)
    for (const [j, earlier] of ranges.slice(0, i).entries()) {
      const day = r.days.find((d) => earlier.days.includes(d))
      if (day !== undefined && r.from < earlier.to && earlier.from < r.to) {
        throw fieldError(`body.serviceHours.slots.${i}`, 'overlap', { fr: `chevauche la plage ${j} le jour ${day}`, en: `overlaps range ${j} on day ${day}` }, lang)
      }
    }
  }
  return { slots: hours.slots.map((s) => ({ days: [...s.days].sort((a, b) => a - b), from: s.from, to: s.to })), publicHolidays: hours.publicHolidays ?? 'closed' } as const
}

async function assertSubscribed(app: FastifyInstance, labId: string) {
  if (!(await isSubscribed(app.db, labId))) throw new AppError('LAB_NOT_SUBSCRIBED')
}

/**
 * Emergency requests (dépannage d'urgence): labs open presentations, pharmacies request them for a patient
 * who must not interrupt treatment, labs answer, pharmacies confirm receipt; unanswered requests escalate.
 * Registered with prefix '/v1'. Option: escalationBusinessHours (default 4).
 */
const emergencyRoutes: RoutePlugin<EmergencyOptions> = async (app, opts) => {
  const defaultHours = escalationDefault(opts)

  app.get(
    '/emergency-vocabulary',
    {
      config: { roles: 'public' },
      schema: {
        tags: ['emergency-requests'],
        operationId: 'getEmergencyVocabulary',
        summary: 'Statuses, refusal reasons, shipping channels and eligibility conditions (French and English)',
        description: 'Public and cacheable. `statuses[].next` is the lifecycle.',
        response: { 200: Vocabulary },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600')
      const list = (o: Record<string, { fr: string; en: string }>) => Object.entries(o).map(([code, l]) => ({ code, fr: l.fr, en: l.en }))
      return {
        statuses: STATUSES.map((code) => ({ code, ...STATUS_LABELS[code], next: TRANSITIONS[code] })),
        refusalReasons: list(REFUSAL_REASONS),
        shippingChannels: list(SHIPPING_CHANNELS),
        conditions: list(CONDITIONS),
      }
    },
  )

  // ---- openings ------------------------------------------------------------------------------------------

  app.put(
    '/emergency-openings/:cip13',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['emergency-requests'],
        operationId: 'setEmergencyOpening',
        summary: 'Open one of the lab’s presentations to emergency requests (or update its opening)',
        description: [
          'Subscribed labs only (403 `LAB_NOT_SUBSCRIBED`); the presentation must be the lab’s own (another lab’s or an unknown one: 404).',
          'Gives the emergency service’s contact, optional opening hours (free text for pharmacies), the hours the service keeps (`serviceHours`: ranges per weekday, Europe/Paris, open on public holidays or not), an optional maximum quantity per request and an optional escalation delay (default 4 hours), counted in the declared hours — or, without them, in office hours (Monday–Friday 09:00–18:00, national public holidays excepted).',
          'Declared hours that make no sense (a range ending before it starts, two ranges of a day overlapping) answer 400 naming the range. `PUT` replaces the whole opening: hours left out return to office hours.',
          'Opening does not make a request eligible by itself: the presentation must also be MITM or niche and have an active shortage declared.',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        params: CipParams,
        body: OpeningInput,
        response: { 200: Opening, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const lang = langOf(request)
      const cip13 = cip13Of(request.params.cip13, 'params.cip13', lang)
      const b = request.body
      const serviceHours = b.serviceHours ? checkServiceHours(b.serviceHours, lang) : null
      const now = app.now()
      return app.db.transaction().execute(async (tx) => {
        const product = await tx.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select(['m.lab_id']).where('p.cip13', '=', cip13).executeTakeFirst()
        if (!product || product.lab_id !== principal.org) throw unknownProduct(cip13, 'params.cip13', lang)
        const before = await tx.selectFrom('emergency_openings').selectAll().where('cip13', '=', cip13).forUpdate().executeTakeFirst()
        const values = {
          lab_id: principal.org,
          open: true,
          contact: JSON.stringify(b.contact),
          opening_hours: b.openingHours ?? null,
          service_hours: serviceHours ? JSON.stringify(serviceHours) : null,
          max_quantity: b.maxQuantity ?? null,
          escalation_business_hours: b.escalationBusinessHours ?? null,
          opened_at: before?.open && before.lab_id === principal.org ? before.opened_at : now,
          closed_at: null,
          updated_at: now,
        }
        if (before) await tx.updateTable('emergency_openings').set(values).where('cip13', '=', cip13).execute()
        else await tx.insertInto('emergency_openings').values({ cip13, ...values }).execute()
        const after = { open: true, labId: principal.org, contact: b.contact, openingHours: values.opening_hours, serviceHours, maxQuantity: values.max_quantity, escalationBusinessHours: values.escalation_business_hours }
        const prev = before ? { open: before.open, labId: before.lab_id, contact: before.contact, openingHours: before.opening_hours, serviceHours: before.service_hours, maxQuantity: before.max_quantity, escalationBusinessHours: before.escalation_business_hours } : null
        await audit(tx, actorOf(principal, request.id), { action: `${OBJECT_OPENING}.${before?.open ? 'updated' : 'opened'}`, objectType: OBJECT_OPENING, objectId: cip13, changes: diff(prev, after) }, now)
        return toOpening(await openingQuery(tx).where('o.cip13', '=', cip13).executeTakeFirstOrThrow(), defaultHours)
      })
    },
  )

  app.delete(
    '/emergency-openings/:cip13',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['emergency-requests'],
        operationId: 'closeEmergencyOpening',
        summary: 'Close a presentation to emergency requests',
        description: 'New requests are refused (condition `opened`); requests already sent stay and must still be answered. Closing a closed opening changes nothing. Another lab’s presentation: 404.',
        headers: IdempotencyKeyHeader,
        params: CipParams,
        response: { 200: Opening, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const lang = langOf(request)
      const cip13 = cip13Of(request.params.cip13, 'params.cip13', lang)
      const now = app.now()
      return app.db.transaction().execute(async (tx) => {
        const before = await tx.selectFrom('emergency_openings').selectAll().where('cip13', '=', cip13).where('lab_id', '=', principal.org).forUpdate().executeTakeFirst()
        if (!before) throw openingNotFound()
        if (before.open) {
          await tx.updateTable('emergency_openings').set({ open: false, closed_at: now, updated_at: now }).where('cip13', '=', cip13).execute()
          await audit(tx, actorOf(principal, request.id), { action: `${OBJECT_OPENING}.closed`, objectType: OBJECT_OPENING, objectId: cip13, changes: { open: [true, false] } }, now)
        }
        return toOpening(await openingQuery(tx).where('o.cip13', '=', cip13).executeTakeFirstOrThrow(), defaultHours)
      })
    },
  )

  app.get(
    '/emergency-openings',
    {
      config: { roles: ['pharmacy', 'lab', 'ordre'] },
      schema: {
        tags: ['emergency-requests'],
        operationId: 'listEmergencyOpenings',
        summary: 'Presentations open to emergency requests',
        description: [
          'Pharmacies and the operator: presentations open now, from subscribed labs that exploit them, by CIP13. A lab: its own openings, open and closed (filter with `open`).',
          'Being listed does not guarantee eligibility: the presentation must also be MITM or niche and have an active shortage when the request is sent.',
        ].join('\n\n'),
        querystring: Type.Object(
          { cip13: Type.Optional(CipParams.properties.cip13), open: Type.Optional(Type.Boolean({ description: 'Labs only: filter open or closed.' })), ...PageQuery },
          { additionalProperties: false },
        ),
        response: { 200: OpeningPage },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const lang = langOf(request)
      if (principal.role === 'lab') await assertSubscribed(app, principal.org)
      const { limit = 50, cursor } = request.query
      const cip13 = request.query.cip13 ? cip13Of(request.query.cip13, 'querystring.cip13', lang) : undefined
      const filter = { cip13, open: request.query.open, role: principal.role }
      let q = openingQuery(app.db).orderBy('o.cip13').limit(limit + 1)
      if (principal.role === 'lab') {
        q = q.where('o.lab_id', '=', principal.org)
        if (request.query.open !== undefined) q = q.where('o.open', '=', request.query.open)
      } else {
        q = q
          .where('o.open', '=', true)
          .whereRef('o.lab_id', '=', 'm.lab_id')
          .where((eb) => eb.exists(eb.selectFrom('lab_subscriptions as s').select('s.lab_id').whereRef('s.lab_id', '=', 'o.lab_id').where('s.subscribed', '=', true)))
      }
      if (cip13) q = q.where('o.cip13', '=', cip13)
      if (cursor) {
        const after = decodeCursor<{ c: string }>(cursor, filter)
        if (typeof after.c !== 'string') throw new AppError('INVALID_CURSOR')
        q = q.where('o.cip13', '>', after.c)
      }
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return { items: page.map((r) => toOpening(r, defaultHours)), nextCursor: rows.length > limit && last ? encodeCursor({ c: last.cip13 }, filter) : null }
    },
  )

  // ---- requests ------------------------------------------------------------------------------------------

  app.post(
    '/emergency-requests',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['emergency-requests'],
        operationId: 'submitEmergencyRequest',
        summary: 'Ask a lab for a presentation in shortage, for a patient emergency',
        description: [
          '`patientEmergency: true` is the « urgence patient » attestation; no patient identity is sent (unknown fields are refused). Delivery is always to the requesting pharmacy (name, city, department from the referential); `delivery.address` and `delivery.instructions` are optional.',
          'Eligibility (422 `EMERGENCY_NOT_ELIGIBLE`, `failedConditions` lists every condition that failed, codes from GET /v1/emergency-vocabulary): `mitm_or_niche` the presentation is MITM or a niche product; `active_shortage` a declaration `declared` or `ongoing` (not a return to availability) covers it; `lab_subscribed` its lab is subscribed; `opened` its lab opened it to emergency requests.',
          'Above the lab’s maximum quantity: 422 `EMERGENCY_QUANTITY_ABOVE_MAXIMUM` on `body.quantity`. Unknown presentation: 404.',
          'One pending request per pharmacy and presentation: while the pharmacy’s earlier request for it awaits the lab’s answer (`submitted`), another answers 409 `EMERGENCY_REQUEST_PENDING` with that request in `pendingRequest` (cancel it to send a new one). Of concurrent submissions, exactly one is created.',
          'The lab gets `emergency.request_submitted` at once (feed, stream, webhooks). If it is still unanswered after the opening’s escalation delay in business hours (`escalateAt`), `emergency.request_escalated` goes to the lab and the operator.',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        body: RequestInput,
        response: { 201: EmergencyRequest, ...problems(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const lang = langOf(request)
      const b = request.body
      const cip13 = cip13Of(b.cip13, 'body.cip13', lang)
      const now = app.now()
      const id = randomUUID()
      const created = await app.db.transaction().execute(async (tx) => {
        const product = await tx
          .selectFrom('presentations as p')
          .innerJoin('medicines as m', 'm.cis', 'p.cis')
          .select(['m.lab_id', 'm.mitm', 'm.niche'])
          .where('p.cip13', '=', cip13)
          .executeTakeFirst()
        if (!product) throw unknownProduct(cip13, 'body.cip13', lang)
        const declaration = await tx
          .selectFrom('shortage_declaration_items as i')
          .innerJoin('shortage_declarations as d', 'd.id', 'i.declaration_id')
          .select(['d.id', 'd.kind', 'd.status', 'd.version'])
          .where('i.cip13', '=', cip13)
          .where('i.active', '=', true)
          .where('d.status', 'in', [...ACTIVE_DECLARATION_STATUSES])
          .where('d.kind', '<>', 'availability_return')
          .executeTakeFirst()
        const subscribed = product.lab_id ? await isSubscribed(tx, product.lab_id) : false
        // FOR SHARE: a concurrent close or change of the opening waits for this request to commit, or the other way round.
        const opening = product.lab_id
          ? await tx.selectFrom('emergency_openings').selectAll().where('cip13', '=', cip13).where('lab_id', '=', product.lab_id).where('open', '=', true).forShare().executeTakeFirst()
          : undefined
        const failed: Condition[] = []
        if (!product.mitm && !product.niche) failed.push('mitm_or_niche')
        if (!declaration) failed.push('active_shortage')
        if (!subscribed) failed.push('lab_subscribed')
        if (!opening) failed.push('opened')
        if (failed.length > 0 || !declaration || !opening || !product.lab_id) {
          throw new AppError(
            'EMERGENCY_NOT_ELIGIBLE',
            { cip13, fr: failed.map((c) => CONDITIONS[c].fr).join(' ; '), en: failed.map((c) => CONDITIONS[c].en).join('; ') },
            { failedConditions: failed.map((c) => ({ condition: c, message: CONDITIONS[c][lang] })) },
          )
        }
        if (opening.max_quantity !== null && b.quantity > opening.max_quantity) {
          throw new AppError('EMERGENCY_QUANTITY_ABOVE_MAXIMUM', { max: opening.max_quantity, quantity: b.quantity }, {
            maxQuantity: opening.max_quantity,
            errors: [{ field: 'body.quantity', code: 'maximum', message: lang === 'fr' ? `au plus ${opening.max_quantity} pour cette présentation` : `at most ${opening.max_quantity} for this presentation` }],
          })
        }
        // One pending request per pharmacy and presentation (checked once the request itself is known to be valid). Concurrent submissions of the same pair queue on this
        // lock (released at commit), so the second one sees the first and answers 409: exactly one is created.
        await sql`select pg_advisory_xact_lock(${PENDING_LOCK}::int, hashtext(${`${principal.org}:${cip13}`}))`.execute(tx)
        const pending = await requestQuery(tx).where('r.pharmacy_id', '=', principal.org).where('r.cip13', '=', cip13).where('r.status', '=', 'submitted').orderBy('r.submitted_at').executeTakeFirst()
        if (pending) {
          const sent = pending.submitted_at
          throw new AppError('EMERGENCY_REQUEST_PENDING', { cip13, id: pending.id, sentFr: parisText(sent, 'fr'), sentEn: parisText(sent, 'en') }, { pendingRequest: toRequest(pending) })
        }
        const pharmacy = await tx.selectFrom('organisations').select(['name', 'city', 'department']).where('id', '=', principal.org).executeTakeFirstOrThrow()
        const delivery: EmergencyDelivery = { name: pharmacy.name, city: pharmacy.city, department: pharmacy.department, address: b.delivery?.address ?? null, instructions: b.delivery?.instructions ?? null }
        const eligibility: EmergencyEligibility = {
          mitm: product.mitm,
          niche: product.niche,
          declaration: { id: declaration.id, kind: declaration.kind, status: declaration.status, version: declaration.version },
          labSubscribed: true,
          opening: { maxQuantity: opening.max_quantity, openedAt: opening.opened_at.toISOString() },
        }
        const hours = opening.escalation_business_hours ?? defaultHours
        const escalateAt = addBusinessHours(now, hours, calendarOf(opening.service_hours))
        await tx
          .insertInto('emergency_requests')
          .values({
            id,
            pharmacy_id: principal.org,
            lab_id: product.lab_id,
            cip13,
            quantity: b.quantity,
            delivery: JSON.stringify(delivery),
            patient_emergency: true,
            eligibility: JSON.stringify(eligibility),
            status: 'submitted',
            answer: null as unknown as string,
            version: 1,
            submitted_at: now,
            escalate_at: escalateAt,
            updated_at: now,
          })
          .execute()
        await appendStep(tx, { id, version: 1 }, { action: 'submitted', status: 'submitted', details: { quantity: b.quantity, delivery, eligibility, escalateAt: escalateAt.toISOString() }, actor: actorOf(principal, request.id), now })
        const row = toRequest(await requestQuery(tx).where('r.id', '=', id).executeTakeFirstOrThrow())
        await publish(tx, { type: 'emergency.request_submitted', payload: { request: row }, audience: { orgs: [product.lab_id] }, senderOrg: principal.org, subject: { type: OBJECT_REQUEST, id } }, now)
        await enqueue(tx, ESCALATION_QUEUE, { requestId: id }, { runAt: escalateAt, singletonKey: id })
        return row
      })
      return reply.code(201).send(created)
    },
  )

  app.get(
    '/emergency-requests',
    {
      config: { roles: ['pharmacy', 'lab', 'ordre'] },
      schema: {
        tags: ['emergency-requests'],
        operationId: 'listEmergencyRequests',
        summary: 'Emergency requests, most recent first (the pharmacy’s own, those sent to the lab, all for the operator)',
        description: 'Filters: `status`, `cip13`, `escalated=true` (escalated and still unanswered requests are the operator’s watch list), and for the operator `labId` and `pharmacyId`.',
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Enum([...STATUSES])),
            cip13: Type.Optional(CipParams.properties.cip13),
            escalated: Type.Optional(Type.Boolean({ description: 'true: only escalated requests; false: only never escalated.' })),
            labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'Operator only.' })),
            pharmacyId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'Operator only.' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: RequestPage },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const lang = langOf(request)
      const { status, escalated, labId, pharmacyId, limit = 50, cursor } = request.query
      const cip13 = request.query.cip13 ? cip13Of(request.query.cip13, 'querystring.cip13', lang) : undefined
      const filter = { status, escalated, labId, pharmacyId, cip13 }
      let q = scoped(requestQuery(app.db), principal).orderBy('r.submitted_at', 'desc').orderBy('r.id', 'desc').limit(limit + 1)
      if (status) q = q.where('r.status', '=', status)
      if (cip13) q = q.where('r.cip13', '=', cip13)
      if (escalated !== undefined) q = q.where('r.escalated_at', escalated ? 'is not' : 'is', null)
      if (principal.role === 'ordre' && labId) q = q.where('r.lab_id', '=', labId)
      if (principal.role === 'ordre' && pharmacyId) q = q.where('r.pharmacy_id', '=', pharmacyId)
      if (cursor) {
        const after = decodeCursor<{ t: string; id: string }>(cursor, filter)
        if (typeof after.t !== 'string' || typeof after.id !== 'string' || !isUuid(after.id) || Number.isNaN(Date.parse(after.t))) throw new AppError('INVALID_CURSOR')
        const t = new Date(after.t)
        q = q.where((eb) => eb.or([eb('r.submitted_at', '<', t), eb.and([eb('r.submitted_at', '=', t), eb('r.id', '<', after.id)])]))
      }
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return { items: page.map(toRequest), nextCursor: rows.length > limit && last ? encodeCursor({ t: last.submitted_at.toISOString(), id: last.id }, filter) : null }
    },
  )

  app.get(
    '/emergency-requests/:id',
    {
      config: { roles: ['pharmacy', 'lab', 'ordre'] },
      schema: {
        tags: ['emergency-requests'],
        operationId: 'getEmergencyRequest',
        summary: 'One emergency request with its full history',
        description: 'The requesting pharmacy, the lab it was sent to and the operator read it; anyone else gets 404. `history` lists every step, oldest first, with its time and author; steps are never changed.',
        params: IdParams,
        response: { 200: EmergencyRequest, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const row = await scoped(requestQuery(app.db), principal).where('r.id', '=', request.params.id).executeTakeFirst()
      if (!row) throw requestNotFound()
      return { ...toRequest(row), history: await historyOf(app.db, row.id) }
    },
  )

  /** Loads the caller's request for a change, locked; 404 for anyone else's. */
  async function lockRequest(tx: Parameters<Parameters<ReturnType<typeof app.db.transaction>['execute']>[0]>[0], id: string, principal: ReturnType<typeof principalOf>) {
    const owner = principal.role === 'lab' ? 'lab_id' : 'pharmacy_id'
    const row = await tx.selectFrom('emergency_requests').selectAll().where('id', '=', id).where(owner, '=', principal.org).forUpdate().executeTakeFirst()
    if (!row) throw requestNotFound()
    return row
  }

  app.post(
    '/emergency-requests/:id/answer',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['emergency-requests'],
        operationId: 'answerEmergencyRequest',
        summary: 'The lab answers: accepted, partially accepted, redirected or refused',
        description: [
          '`accepted`: `shippingChannel` and `expectedDelivery` required, `quantity` optional (must equal the requested quantity). `partially_accepted`: `quantity` lower than requested, `shippingChannel`, `expectedDelivery`. `redirected`: `redirectTo` (wholesaler or depot, with details). `refused`: `reason` from the vocabulary, `comment` required with `other`. A field that does not belong to the decision is refused.',
          'Only while `submitted` (409 `EMERGENCY_INVALID_TRANSITION` with `allowedTransitions` otherwise): an answer is never replaced. The pharmacy gets `emergency.request_answered` on its feed.',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: AnswerInput,
        response: { 200: EmergencyRequest, ...problems(404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const lang = langOf(request)
      const b = request.body
      const allowedFields: Record<(typeof DECISIONS)[number], string[]> = {
        accepted: ['quantity', 'shippingChannel', 'expectedDelivery', 'comment'],
        partially_accepted: ['quantity', 'shippingChannel', 'expectedDelivery', 'comment'],
        redirected: ['redirectTo', 'comment'],
        refused: ['reason', 'comment'],
      }
      for (const key of Object.keys(b)) {
        if (key !== 'decision' && !allowedFields[b.decision].includes(key)) {
          throw fieldError(`body.${key}`, 'not_allowed', { fr: `ne s’applique pas à la décision « ${b.decision} »`, en: `does not apply to decision "${b.decision}"` }, lang)
        }
      }
      const need = (key: keyof typeof b) => {
        if (b[key] === undefined) throw fieldError(`body.${key}`, 'required', { fr: `obligatoire pour la décision « ${b.decision} »`, en: `required for decision "${b.decision}"` }, lang)
      }
      if (b.decision === 'accepted' || b.decision === 'partially_accepted') {
        if (b.decision === 'partially_accepted') need('quantity')
        need('shippingChannel')
        need('expectedDelivery')
      }
      if (b.decision === 'redirected') need('redirectTo')
      if (b.decision === 'refused') {
        need('reason')
        if (b.reason === 'other') need('comment')
      }
      if (b.redirectTo?.organisationId) {
        const org = await app.db.selectFrom('organisations').select('role').where('id', '=', b.redirectTo.organisationId).executeTakeFirst()
        if (!org || org.role !== 'wholesaler') {
          throw fieldError('body.redirectTo.organisationId', 'unknown', { fr: 'pas un grossiste-répartiteur enregistré sur le service', en: 'not a wholesaler registered on the service' }, lang)
        }
      }
      const now = app.now()
      return app.db.transaction().execute(async (tx) => {
        const row = await lockRequest(tx, request.params.id, principal)
        assertTransition(row.status, b.decision)
        let quantity: number | undefined
        if (b.decision === 'accepted') {
          quantity = b.quantity ?? row.quantity
          if (quantity !== row.quantity) {
            throw fieldError('body.quantity', 'quantity', { fr: `une acceptation porte sur la quantité demandée (${row.quantity}) ; sinon « partially_accepted »`, en: `an acceptance is for the requested quantity (${row.quantity}); otherwise use "partially_accepted"` }, lang)
          }
        }
        if (b.decision === 'partially_accepted') {
          quantity = b.quantity!
          if (quantity >= row.quantity) {
            throw fieldError('body.quantity', 'quantity', { fr: `doit être inférieure à la quantité demandée (${row.quantity})`, en: `must be lower than the requested quantity (${row.quantity})` }, lang)
          }
        }
        if (b.expectedDelivery && new Date(b.expectedDelivery) < row.submitted_at) {
          throw fieldError('body.expectedDelivery', 'order', { fr: `antérieure à l’envoi de la demande (${row.submitted_at.toISOString()})`, en: `before the request was sent (${row.submitted_at.toISOString()})` }, lang)
        }
        const answer: Record<string, unknown> = {
          decision: b.decision,
          ...(quantity !== undefined ? { quantity } : {}),
          ...(b.shippingChannel ? { shippingChannel: b.shippingChannel, shippingChannelLabel: SHIPPING_CHANNELS[b.shippingChannel] } : {}),
          ...(b.expectedDelivery ? { expectedDelivery: new Date(b.expectedDelivery).toISOString() } : {}),
          ...(b.redirectTo ? { redirectTo: b.redirectTo } : {}),
          ...(b.reason ? { reason: b.reason, reasonLabel: REFUSAL_REASONS[b.reason] } : {}),
          ...(b.comment ? { comment: b.comment } : {}),
          answeredAt: now.toISOString(),
          answeredBy: principal.user,
        }
        const status: EmergencyStatus = b.decision
        const version = row.version + 1
        await tx
          .updateTable('emergency_requests')
          .set({ status, answer: JSON.stringify(answer), answered_at: now, version, updated_at: now, ...(status === 'refused' ? { closed_at: now } : {}) })
          .where('id', '=', row.id)
          .execute()
        await appendStep(tx, { id: row.id, version }, { action: b.decision, status, details: answer, actor: actorOf(principal, request.id), now })
        const out = toRequest(await requestQuery(tx).where('r.id', '=', row.id).executeTakeFirstOrThrow())
        await publish(tx, { type: 'emergency.request_answered', payload: { request: out }, audience: { orgs: [row.pharmacy_id] }, senderOrg: principal.org, subject: { type: OBJECT_REQUEST, id: row.id } }, now)
        return out
      })
    },
  )

  const pharmacyStep = (path: 'receipt' | 'cancel', to: 'received' | 'cancelled') =>
    app.post(
      `/emergency-requests/:id/${path}`,
      {
        config: { roles: ['pharmacy'] },
        schema: {
          tags: ['emergency-requests'],
          operationId: to === 'received' ? 'confirmEmergencyReceipt' : 'cancelEmergencyRequest',
          summary: to === 'received' ? 'The pharmacy confirms receipt' : 'The pharmacy cancels its request',
          description:
            (to === 'received'
              ? 'After `accepted`, `partially_accepted` or `redirected`. Closes the request. The lab gets `emergency.request_received`.'
              : 'While `submitted`, `accepted`, `partially_accepted` or `redirected` (not after receipt, nor after a refusal). Closes the request. The lab gets `emergency.request_cancelled`.') +
            '\n\nAnother state: 409 `EMERGENCY_INVALID_TRANSITION` with `allowedTransitions`. Another pharmacy’s request: 404. The body may be `{}`.',
          headers: IdempotencyKeyHeader,
          params: IdParams,
          body: to === 'received' ? ReceiptInput : CancelInput,
          response: { 200: EmergencyRequest, ...problems(404, 409) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const details = { ...(request.body as Record<string, unknown>) }
        const now = app.now()
        return app.db.transaction().execute(async (tx) => {
          const row = await lockRequest(tx, (request.params as { id: string }).id, principal)
          assertTransition(row.status, to)
          const version = row.version + 1
          await tx.updateTable('emergency_requests').set({ status: to, version, updated_at: now, closed_at: now }).where('id', '=', row.id).execute()
          await appendStep(tx, { id: row.id, version }, { action: to, status: to, details: { ...details, previousStatus: row.status }, actor: actorOf(principal, request.id), now })
          const out = toRequest(await requestQuery(tx).where('r.id', '=', row.id).executeTakeFirstOrThrow())
          await publish(tx, { type: `emergency.request_${to}`, payload: { request: out }, audience: { orgs: [row.lab_id] }, senderOrg: principal.org, subject: { type: OBJECT_REQUEST, id: row.id } }, now)
          return out
        })
      },
    )
  pharmacyStep('receipt', 'received')
  pharmacyStep('cancel', 'cancelled')

  // ---- figures -------------------------------------------------------------------------------------------

  app.get(
    '/emergency-statistics',
    {
      config: { roles: ['lab', 'ordre'] },
      schema: {
        tags: ['emergency-requests'],
        operationId: 'getEmergencyStatistics',
        summary: 'Emergency figures: requests received, answered, median time to answer, acceptance rate (a lab’s, or national)',
        description: 'Requests submitted between `from` and `to` (Paris calendar days, inclusive; default: the last 30 days up to today). A lab reads its own figures (`labId`, if given, must be its own, else 404). The operator reads one lab’s with `labId`, or the national figures without it: every lab together, and `byLab`, each lab’s, most requests first. Time to answer is elapsed time, not business time.',
        querystring: Type.Object(
          {
            from: Type.Optional(Type.String({ format: 'date' })),
            to: Type.Optional(Type.String({ format: 'date' })),
            labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Statistics, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const lang = langOf(request)
      const q = request.query
      let lab: { id: string; name: string } | null = null
      if (principal.role === 'lab') {
        await assertSubscribed(app, principal.org)
        if (q.labId && q.labId !== principal.org) throw notFoundLab()
      }
      const labId = principal.role === 'lab' ? principal.org : q.labId
      if (labId) {
        lab = (await app.db.selectFrom('organisations').select(['id', 'name']).where('id', '=', labId).where('role', '=', 'lab').executeTakeFirst()) ?? null
        if (!lab) throw notFoundLab()
      }
      const now = app.now()
      const today = parisDate(now)
      const todayStr = `${today.y}-${String(today.m).padStart(2, '0')}-${String(today.d).padStart(2, '0')}`
      const to = q.to ?? todayStr
      const from = q.from ?? new Date(Date.parse(`${to}T12:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10)
      if (from > to) throw fieldError('querystring.from', 'order', { fr: `postérieur à « to » (${to})`, en: `after "to" (${to})` }, lang)
      const start = parisStartOfDay(from)
      const [ty, tm, td] = to.split('-').map(Number) as [number, number, number]
      const end = parisInstant(ty, tm, td, 24)
      const rows = await app.db
        .selectFrom('emergency_requests as r')
        .innerJoin('organisations as l', 'l.id', 'r.lab_id')
        .select([
          'r.lab_id',
          'l.name as lab_name',
          sql<string>`count(*)`.as('received'),
          sql<string>`count(r.answered_at)`.as('answered'),
          sql<string>`count(*) filter (where r.answer->>'decision' = 'accepted')`.as('accepted'),
          sql<string>`count(*) filter (where r.answer->>'decision' = 'partially_accepted')`.as('partially_accepted'),
          sql<string>`count(*) filter (where r.answer->>'decision' = 'redirected')`.as('redirected'),
          sql<string>`count(*) filter (where r.answer->>'decision' = 'refused')`.as('refused'),
          sql<string>`count(*) filter (where r.status = 'cancelled' and r.answered_at is null)`.as('cancelled'),
          sql<string>`count(r.escalated_at)`.as('escalated'),
          sql<number | string | null>`percentile_cont(0.5) within group (order by extract(epoch from (r.answered_at - r.submitted_at)))`.as('median_s'),
        ])
        .$if(labId !== undefined, (qb) => qb.where('r.lab_id', '=', labId!))
        .where('r.submitted_at', '>=', start)
        .where('r.submitted_at', '<', end)
        .groupBy(['r.lab_id', 'l.name'])
        .execute()
      // The national median is one over every request, not a median of medians: computed apart.
      const national = labId
        ? null
        : await app.db
            .selectFrom('emergency_requests')
            .select(sql<number | string | null>`percentile_cont(0.5) within group (order by extract(epoch from (answered_at - submitted_at)))`.as('median_s'))
            .where('submitted_at', '>=', start)
            .where('submitted_at', '<', end)
            .executeTakeFirstOrThrow()
      const n = (v: unknown) => Number(v ?? 0)
      const sum = (key: keyof (typeof rows)[number]) => rows.reduce((a, r) => a + n(r[key]), 0)
      const minutes = (s: unknown) => (s === null || s === undefined ? null : Math.round((Number(s) / 60) * 10) / 10)
      const rate = (accepted: number, answered: number) => (answered === 0 ? null : Math.round((accepted / answered) * 1000) / 1000)
      const answered = sum('answered')
      const figures = {
        lab,
        from,
        to,
        received: sum('received'),
        answered,
        byDecision: { accepted: sum('accepted'), partially_accepted: sum('partially_accepted'), redirected: sum('redirected'), refused: sum('refused') },
        cancelledBeforeAnswer: sum('cancelled'),
        escalated: sum('escalated'),
        medianMinutesToAnswer: minutes(national ? national.median_s : rows[0]?.median_s),
        acceptanceRate: rate(sum('accepted') + sum('partially_accepted'), answered),
      }
      if (labId) return figures
      const byLab = rows
        .map((r) => ({
          lab: { id: r.lab_id, name: r.lab_name },
          received: n(r.received),
          answered: n(r.answered),
          escalated: n(r.escalated),
          medianMinutesToAnswer: minutes(r.median_s),
          acceptanceRate: rate(n(r.accepted) + n(r.partially_accepted), n(r.answered)),
        }))
        .sort((a, b) => b.received - a.received || a.lab.id.localeCompare(b.lab.id))
      return { ...figures, byLab }
    },
  )
}
export default emergencyRoutes

const notFoundLab = () => new AppError('NOT_FOUND', { what: 'Le laboratoire', whatEn: 'The lab' })

/**
 * Escalation of a request still unanswered at its `escalateAt`: sets `escalatedAt`, appends a step, tells the
 * lab and the operator (`emergency.request_escalated`). The job re-reads the request under lock, so it does
 * nothing if the request was answered or cancelled meanwhile, or already escalated: it fires at most once.
 */
export async function escalate(app: FastifyInstance, requestId: string, now: Date) {
  await app.db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('emergency_requests').selectAll().where('id', '=', requestId).forUpdate().executeTakeFirst()
    if (!row || row.status !== 'submitted' || row.escalated_at) return
    if (now < row.escalate_at) throw new RetryAt(row.escalate_at, 'not yet due')
    const version = row.version + 1
    await tx.updateTable('emergency_requests').set({ escalated_at: now, version, updated_at: now }).where('id', '=', row.id).execute()
    await appendStep(tx, { id: row.id, version }, { action: 'escalated', status: row.status, details: { escalateAt: row.escalate_at.toISOString(), unansweredMinutes: Math.round((now.getTime() - row.submitted_at.getTime()) / 60_000) }, actor: SYSTEM, now })
    const out = toRequest(await requestQuery(tx).where('r.id', '=', row.id).executeTakeFirstOrThrow())
    await publish(tx, { type: 'emergency.request_escalated', payload: { request: out }, audience: { orgs: [row.lab_id], roles: ['ordre'] }, senderOrg: null, subject: { type: OBJECT_REQUEST, id: row.id } }, now)
  })
}

/** Scheduled work of emergency requests: escalating those unanswered in time. */
export function registerEmergencyJobs(app: FastifyInstance) {
  app.jobs.register(ESCALATION_QUEUE, async (payload: { requestId?: unknown }, ctx) => {
    if (typeof payload?.requestId !== 'string' || !isUuid(payload.requestId)) return
    await escalate(app, payload.requestId, ctx.now)
  })
}


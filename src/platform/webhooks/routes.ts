import { randomUUID } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely'
import { Type, type Static } from 'typebox'
import { actorOf, audit, diff } from '../audit.ts'
import { principalOf } from '../auth.ts'
import { decodeCursor, encodeCursor } from '../cursor.ts'
import { type DB, ROLES, type WebhookEndpointsTable } from '../db/schema.ts'
import { AppError, conflict, defineErrors, errorDef, notFound } from '../errors.ts'
import { langOf } from '../i18n.ts'
import { enqueue } from '../jobs.ts'
import { IdempotencyKeyHeader, problems } from '../openapi.ts'
import { component, Page, PageQuery } from '../schemas.ts'
import { closestEventType, EVENT_TYPE_NAMES, EVENT_TYPES, isEventType } from '../events/event-types.ts'
import { WEBHOOK_QUEUE } from '../events/sequencer.ts'
import type { RoutePlugin } from '../types.ts'
import { MAX_ATTEMPTS, newSecret, send, type SendOptions, signedHeaders, signingSecrets, WEBHOOK_JOB_MAX_ATTEMPTS } from './deliver.ts'
import { webhookUrlProblem } from './ssrf.ts'

/** After a rotation, the previous secret keeps signing (a second signature) this long. */
export const SECRET_OVERLAP_MS = 24 * 3_600_000
/** Active endpoints per organisation: each one multiplies the deliveries of every event. */
export const MAX_ACTIVE_ENDPOINTS = 10

defineErrors({
  WEBHOOK_URL_REFUSED: errorDef(400, 'URL de webhook refusée', 'Webhook URL refused', (p) => ({
    fr: `body.url : ${p.fr}.`,
    en: `body.url: ${p.en}.`,
  })),
})

const nullableDate = Type.Union([Type.String({ format: 'date-time' }), Type.Null()])

const endpointFields = {
  id: Type.String({ format: 'uuid' }),
  url: Type.String({ description: 'Where deliveries are POSTed (normalised).' }),
  description: Type.Union([Type.String(), Type.Null()]),
  eventTypes: Type.Array(Type.String(), { description: 'Event types sent to this endpoint; empty: every type.' }),
  active: Type.Boolean({ description: 'False when deleted, disabled by you, after 410 Gone, or after a long failure streak (see disabledReason).' }),
  disabledReason: Type.Union([Type.String(), Type.Null()]),
  failureStreak: Type.Integer({ description: 'Consecutive failed attempts; the endpoint is disabled when it reaches the configured limit (50 by default).' }),
  previousSecretExpiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'After a rotation: until then deliveries also carry a signature made with the previous secret.',
  }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
}

const endpointExample = {
  id: '5b0f3c8e-8d1a-4a57-9a55-2f4c1e9d7b10',
  url: 'https://lgo.example.fr/hooks/portail-dp',
  description: 'LGO de l’officine — rappels',
  eventTypes: ['recall.broadcast'],
  active: true,
  disabledReason: null,
  failureStreak: 0,
  previousSecretExpiresAt: null,
  createdAt: '2026-11-22T09:00:00.000Z',
  updatedAt: '2026-11-22T09:00:00.000Z',
}

export const WebhookEndpoint = component(
  Type.Object(endpointFields, {
    $id: 'WebhookEndpoint',
    description: 'A URL of yours that receives your feed’s events, signed per Standard Webhooks. Its secret is never shown again after creation or rotation.',
    examples: [endpointExample],
  }),
)

export const WebhookEndpointWithSecret = component(
  Type.Object(
    {
      ...endpointFields,
      secret: Type.String({
        description:
          'The signing secret, shown this once: `whsec_` + base64 of 32 random bytes (Standard Webhooks). Verify deliveries with it, e.g. `new Webhook(secret).verify(body, headers)` from the `standardwebhooks` library.',
      }),
    },
    {
      $id: 'WebhookEndpointWithSecret',
      examples: [{ ...endpointExample, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwZ8sGuS+6RDI=' }],
    },
  ),
)

const EventType = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '^[a-z0-9_]+(\\.[a-z0-9_]+)*$',
  'x-message': { fr: 'type d’événement attendu, ex. recall.broadcast', en: 'expected an event type, e.g. recall.broadcast' },
})
const Url = Type.String({
  minLength: 8,
  maxLength: 2000,
  description: 'https URL, publicly reachable: private, loopback, link-local and reserved addresses (and names resolving to them) are refused.',
})
const EventTypes = Type.Array(EventType, {
  maxItems: 100,
  uniqueItems: true,
  description: `Event types to send; empty or absent: every type. Each must be a known type (GET /v1/webhooks/event-types): ${EVENT_TYPE_NAMES.map((x) => `\`${x}\``).join(', ')}.`,
})

/** Every listed type must be one the service publishes: a typo would otherwise subscribe to silence. */
function checkEventTypes(request: FastifyRequest, types: string[] | undefined) {
  const lang = langOf(request)
  const errors = (types ?? []).flatMap((type, i) => {
    if (isEventType(type)) return []
    const near = closestEventType(type)
    const message =
      lang === 'fr'
        ? `« ${type} » n’est pas un type d’événement connu${near ? ` ; vouliez-vous dire « ${near} » ?` : ''} (liste : GET /v1/webhooks/event-types)`
        : `unknown event type "${type}"${near ? `; did you mean "${near}"?` : ''} (list: GET /v1/webhooks/event-types)`
    return [{ field: `body.eventTypes.${i}`, code: 'unknown_event_type', message }]
  })
  if (errors.length) throw new AppError('VALIDATION_FAILED', { count: errors.length }, { errors })
}

export const WebhookEndpointCreate = component(
  Type.Object(
    {
      url: Url,
      eventTypes: Type.Optional(EventTypes),
      description: Type.Optional(Type.String({ maxLength: 500 })),
    },
    {
      $id: 'WebhookEndpointInput',
      additionalProperties: false,
      examples: [{ url: 'https://lgo.example.fr/hooks/portail-dp', eventTypes: ['recall.broadcast'], description: 'LGO de l’officine — rappels' }],
    },
  ),
)

export const WebhookEndpointPatch = component(
  Type.Object(
    {
      url: Type.Optional(Url),
      eventTypes: Type.Optional(EventTypes),
      description: Type.Optional(Type.Union([Type.String({ maxLength: 500 }), Type.Null()])),
      active: Type.Optional(Type.Boolean({ description: 'false stops deliveries; true re-enables the endpoint and resets its failure streak.' })),
    },
    { $id: 'WebhookEndpointPatch', additionalProperties: false, minProperties: 1, examples: [{ active: true }, { eventTypes: [] }] },
  ),
)

const DeliveryStatus = Type.Enum(['pending', 'succeeded', 'failed'])

export const WebhookDelivery = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid', description: 'Also the `webhook-id` header: the same on every attempt and replay, so you can deduplicate.' }),
      endpointId: Type.String({ format: 'uuid' }),
      eventId: Type.String({ format: 'uuid' }),
      eventType: Type.String(),
      status: DeliveryStatus,
      attempts: Type.Integer(),
      nextAttemptAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
      lastAttemptAt: nullableDate,
      lastStatusCode: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the last attempt; null when no answer (timeout, connection refused).' }),
      lastError: Type.Union([Type.String(), Type.Null()]),
      createdAt: Type.String({ format: 'date-time' }),
      succeededAt: nullableDate,
    },
    {
      $id: 'WebhookDelivery',
      description: `One event sent to one endpoint. Retried with backoff after a failure (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: ${MAX_ATTEMPTS} attempts over about a day), not before the receiver’s Retry-After; stopped by 410 Gone.`,
      examples: [
        {
          id: '9a7d8c3b-1f2e-4d5c-8b6a-7e9f0a1b2c3d', endpointId: endpointExample.id, eventId: '0b7e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e', eventType: 'recall.broadcast',
          status: 'pending', attempts: 2, nextAttemptAt: '2026-11-22T09:35:10.000Z', lastAttemptAt: '2026-11-22T09:05:10.000Z', lastStatusCode: 503,
          lastError: 'HTTP 503 Service Unavailable', createdAt: '2026-11-22T09:05:00.000Z', succeededAt: null,
        },
      ],
    },
  ),
)
export const EventTypeCatalogue = component(
  Type.Object(
    {
      items: Type.Array(
        Type.Object({
          type: Type.String({ description: 'The code, as in a delivery’s `type` and in `eventTypes`.' }),
          label: Type.String({ description: 'Its name for a reader (French, or English with Accept-Language: en).' }),
          description: Type.String({ description: 'Who receives it and when.' }),
        }),
      ),
    },
    {
      $id: 'EventTypeCatalogue',
      description: 'Every event type the service publishes, in code order.',
      examples: [{ items: [{ type: 'recall.broadcast', label: 'Rappel de lots', description: 'Recipients (pharmacies, wholesalers, hospital pharmacies): a new batch recall.' }] }],
    },
  ),
)

export const WebhookTestResult = component(
  Type.Object(
    {
      eventId: Type.String({ format: 'uuid', description: 'The sample event’s `id` (in the body).' }),
      webhookId: Type.String({ description: 'The `webhook-id` header sent.' }),
      type: Type.String({ description: 'Always `webhook.test`.' }),
      url: Type.String(),
      sentAt: Type.String({ format: 'date-time', description: 'The `webhook-timestamp` signed.' }),
      delivered: Type.Boolean({ description: 'The receiver answered 2xx.' }),
      statusCode: Type.Union([Type.Integer(), Type.Null()], { description: 'The receiver’s HTTP status; null when no answer came (timeout, refused connection, forbidden address).' }),
      latencyMs: Type.Integer({ description: 'From sending the request to the receiver’s answer (or the failure).' }),
      error: Type.Union([Type.String(), Type.Null()], { description: 'Why it was not delivered, with the start of the receiver’s answer.' }),
    },
    {
      $id: 'WebhookTestResult',
      examples: [{
        eventId: '3f0c2d5e-6a7b-4c8d-9e0f-1a2b3c4d5e6f', webhookId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d', type: 'webhook.test', url: 'https://lgo.example.fr/hooks/portail-dp',
        sentAt: '2026-11-22T09:00:00.000Z', delivered: false, statusCode: 401, latencyMs: 84, error: 'HTTP 401 Unauthorized: invalid signature',
      }],
    },
  ),
)

const WebhookEndpointPage = Page(WebhookEndpoint, 'WebhookEndpointPage')
const WebhookDeliveryPage = Page(WebhookDelivery, 'WebhookDeliveryPage')

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
const DeliveryParams = Type.Object({ id: Type.String({ format: 'uuid' }), deliveryId: Type.String({ format: 'uuid' }) })
const endpointNotFound = () => notFound('Le point de terminaison webhook', 'The webhook endpoint')
const deliveryNotFound = () => notFound('La livraison webhook', 'The webhook delivery')

type EndpointRow = Selectable<WebhookEndpointsTable>

function toApi(r: EndpointRow, now: Date): Static<typeof WebhookEndpoint> {
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    eventTypes: r.event_types,
    active: r.active,
    disabledReason: r.disabled_reason,
    failureStreak: r.failure_streak,
    previousSecretExpiresAt: r.previous_secret && r.previous_secret_expires_at && r.previous_secret_expires_at > now ? r.previous_secret_expires_at.toISOString() : null,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  }
}

/** The caller's endpoint, or 404 (another organisation's endpoint is not found either). */
async function ownEndpoint(db: Kysely<DB> | Transaction<DB>, org: string, id: string, lock = false) {
  let q = db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).where('org_id', '=', org)
  if (lock) q = q.forUpdate()
  const row = await q.executeTakeFirst()
  if (!row) throw endpointNotFound()
  return row
}

/** The audit's view of an endpoint: never its secrets. */
const audited = (r: Pick<EndpointRow, 'url' | 'description' | 'event_types' | 'active'>) => ({
  url: r.url,
  description: r.description,
  eventTypes: r.event_types,
  active: r.active,
})

async function checkUrl(request: FastifyRequest, url: string, allowPrivate: boolean): Promise<string> {
  const problem = await webhookUrlProblem(url, allowPrivate)
  if (problem) {
    throw new AppError('WEBHOOK_URL_REFUSED', problem, { errors: [{ field: 'body.url', code: 'url_refused', message: problem[langOf(request)] }] })
  }
  return new URL(url).href
}

/** Serialises the endpoint changes of one organisation (the active-endpoint limit). */
async function lockOrganisation(tx: Transaction<DB>, org: string) {
  await tx.selectFrom('organisations').select('id').where('id', '=', org).forUpdate().execute()
}

async function checkActiveLimit(tx: Transaction<DB>, org: string, except?: string) {
  let q = tx.selectFrom('webhook_endpoints').select((eb) => eb.fn.countAll<number>().as('n')).where('org_id', '=', org).where('active', '=', true)
  if (except) q = q.where('id', '<>', except)
  const { n } = await q.executeTakeFirstOrThrow()
  if (Number(n) >= MAX_ACTIVE_ENDPOINTS) {
    throw conflict(
      `Votre organisation a déjà ${MAX_ACTIVE_ENDPOINTS} points de terminaison actifs ; désactivez-en un d’abord.`,
      `Your organisation already has ${MAX_ACTIVE_ENDPOINTS} active endpoints; deactivate one first.`,
    )
  }
}

const TAGS = ['webhooks']

const webhookRoutes: RoutePlugin = async (app) => {
  app.post(
    '/webhooks',
    {
      config: { roles: ROLES },
      schema: {
        tags: TAGS,
        operationId: 'createWebhookEndpoint',
        summary: 'Register a webhook endpoint',
        description: [
          'Your feed’s events (all of them, or the `eventTypes` listed) are POSTed to `url` as JSON `{ id, type, createdAt, sender, subject, payload, pos }`, signed per Standard Webhooks: headers `webhook-id` (the delivery id, constant across retries), `webhook-timestamp` (unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`). Answer 2xx within 10 s; anything else is retried over about a day; 410 Gone disables the endpoint.',
          'The signing secret is in this response only: keep it. The URL must be https and publicly reachable: private, loopback, link-local, CGNAT, multicast and reserved addresses, names resolving to them, and URLs with credentials are refused (400, field `body.url`).',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        body: WebhookEndpointCreate,
        response: { 201: WebhookEndpointWithSecret, ...problems(409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const b = request.body
      checkEventTypes(request, b.eventTypes)
      const url = await checkUrl(request, b.url, app.config.WEBHOOK_ALLOW_PRIVATE)
      const now = app.now()
      const secret = newSecret()
      const row = await app.db.transaction().execute(async (tx) => {
        await lockOrganisation(tx, p.org)
        await checkActiveLimit(tx, p.org)
        const inserted = await tx
          .insertInto('webhook_endpoints')
          .values({
            id: randomUUID(),
            org_id: p.org,
            url,
            description: b.description ?? null,
            event_types: b.eventTypes ?? [],
            secret,
            active: true,
            failure_streak: 0,
            created_at: now,
            updated_at: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow()
        await audit(tx, actorOf(request.principal, request.id), { action: 'webhook.created', objectType: 'webhook_endpoint', objectId: inserted.id, changes: audited(inserted) }, now)
        return inserted
      })
      return reply.code(201).header('location', `/v1/webhooks/${row.id}`).send({ ...toApi(row, now), secret })
    },
  )

  app.get(
    '/webhooks',
    {
      config: { roles: ROLES },
      schema: {
        tags: TAGS,
        operationId: 'listWebhookEndpoints',
        summary: 'Your webhook endpoints',
        description: 'Your organisation’s endpoints, oldest first, without their secrets.',
        querystring: Type.Object({ active: Type.Optional(Type.Boolean()), ...PageQuery }, { additionalProperties: false }),
        response: { 200: WebhookEndpointPage },
      },
    },
    async (request) => {
      const { org } = principalOf(request)
      const { active, limit = 50, cursor } = request.query
      const filter = { active }
      const after = cursor ? decodeCursor<{ at: string; id: string }>(cursor, filter) : null
      let q = app.db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', org).orderBy('created_at').orderBy('id').limit(limit + 1)
      if (active !== undefined) q = q.where('active', '=', active)
      if (after) q = q.where(sql<boolean>`(created_at, id) > (${new Date(after.at)}::timestamptz, ${after.id}::uuid)`)
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      const now = app.now()
      return {
        items: page.map((r) => toApi(r, now)),
        nextCursor: rows.length > limit ? encodeCursor({ at: page.at(-1)!.created_at.toISOString(), id: page.at(-1)!.id }, filter) : null,
      }
    },
  )

  app.get(
    '/webhooks/event-types',
    {
      config: { roles: ROLES },
      schema: {
        tags: TAGS,
        operationId: 'listEventTypes',
        summary: 'Every event type you may subscribe to',
        description: 'The codes accepted in `eventTypes`, with their label and who receives them. A code not in this list is refused (400, `unknown_event_type`).',
        response: { 200: EventTypeCatalogue },
      },
    },
    async (request) => {
      const lang = langOf(request)
      return { items: EVENT_TYPE_NAMES.map((type) => ({ type, label: EVENT_TYPES[type].label[lang], description: EVENT_TYPES[type].description })) }
    },
  )

  app.post(
    '/webhooks/:id/test',
    {
      config: { roles: ROLES, rateLimit: { max: 20, timeWindow: '1 minute' } },
      schema: {
        tags: TAGS,
        operationId: 'testWebhookEndpoint',
        summary: 'Send a signed test event to one of your endpoints, now',
        description: [
          'Sends one `webhook.test` event to the endpoint, whatever its `eventTypes` and even while disabled, exactly as a real delivery is sent: same body shape (`{ id, type, createdAt, sender, subject, payload, pos }`, `pos: null`), same `webhook-id` / `webhook-timestamp` / `webhook-signature` headers signed with the endpoint’s secret (and the previous one during a rotation). Answers what the receiver replied: status, latency, error.',
          'A test is not a delivery of your feed: it is not retried, not listed in deliveries and does not count towards disabling the endpoint. At most 20 tests a minute per organisation.',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        params: IdParams,
        response: { 200: WebhookTestResult, ...problems(404, 422, 429) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const endpoint = await ownEndpoint(app.db, p.org, request.params.id)
      const result = await testEndpoint(endpoint, app.now(), { allowPrivate: app.config.WEBHOOK_ALLOW_PRIVATE, timeoutMs: app.config.WEBHOOK_TIMEOUT_MS })
      await app.db.transaction().execute((tx) =>
        audit(tx, actorOf(request.principal, request.id), { action: 'webhook.tested', objectType: 'webhook_endpoint', objectId: endpoint.id, changes: { statusCode: result.statusCode, delivered: result.delivered, error: result.error } }, app.now()),
      )
      return result
    },
  )

  app.get(
    '/webhooks/:id',
    {
      config: { roles: ROLES },
      schema: {
        tags: TAGS,
        operationId: 'getWebhookEndpoint',
        summary: 'One of your webhook endpoints',
        description: 'Without its secret (shown only at creation and rotation). Another organisation’s endpoint answers 404.',
        params: IdParams,
        response: { 200: WebhookEndpoint, ...problems(404) },
      },
    },
    async (request) => toApi(await ownEndpoint(app.db, principalOf(request).org, request.params.id), app.now()),
  )

  app.patch(
    '/webhooks/:id',
    {
      config: { roles: ROLES },
      schema: {
        tags: TAGS,
        operationId: 'updateWebhookEndpoint',
        summary: 'Change, disable or re-enable a webhook endpoint',
        description:
          'A new `url` is checked as on creation. `active: false` stops deliveries (those pending fail with "endpoint disabled"); `active: true` re-enables an endpoint disabled by you, by 410 Gone or by a failure streak, and resets the streak. `eventTypes` applies to events published from now on.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: WebhookEndpointPatch,
        response: { 200: WebhookEndpoint, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const b = request.body
      checkEventTypes(request, b.eventTypes)
      const url = b.url === undefined ? undefined : await checkUrl(request, b.url, app.config.WEBHOOK_ALLOW_PRIVATE)
      const now = app.now()
      const row = await app.db.transaction().execute(async (tx) => {
        await lockOrganisation(tx, p.org)
        const before = await ownEndpoint(tx, p.org, request.params.id, true)
        const set: Partial<EndpointRow> = {}
        if (url !== undefined) set.url = url
        if (b.eventTypes !== undefined) set.event_types = b.eventTypes
        if (b.description !== undefined) set.description = b.description
        if (b.active === true && !before.active) {
          await checkActiveLimit(tx, p.org, before.id)
          Object.assign(set, { active: true, disabled_reason: null, failure_streak: 0 })
        }
        if (b.active === false && before.active) Object.assign(set, { active: false, disabled_reason: `disabled by ${p.user} on ${now.toISOString()}` })
        const changes = diff(audited(before), audited({ ...before, ...set }))
        if (before.failure_streak !== 0 && set.failure_streak === 0) Object.assign(changes, { failureStreak: [before.failure_streak, 0] })
        if (Object.keys(changes).length === 0) return before
        const after = await tx.updateTable('webhook_endpoints').set({ ...set, updated_at: now }).where('id', '=', before.id).returningAll().executeTakeFirstOrThrow()
        await audit(tx, actorOf(request.principal, request.id), { action: 'webhook.updated', objectType: 'webhook_endpoint', objectId: before.id, changes }, now)
        return after
      })
      return toApi(row, now)
    },
  )

  app.delete(
    '/webhooks/:id',
    {
      config: { roles: ROLES },
      schema: {
        tags: TAGS,
        operationId: 'deleteWebhookEndpoint',
        summary: 'Delete (deactivate) a webhook endpoint',
        description:
          'Deliveries stop at once (those pending fail with "endpoint disabled"). The endpoint is deactivated rather than erased, so that its delivery history stays readable (GET …/deliveries); it remains listed with `active: false` and `PATCH {"active": true}` brings it back. Deleting an inactive endpoint is a no-op (204).',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        response: { 204: Type.Null({ description: 'Deactivated.' }), ...problems(404, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const now = app.now()
      await app.db.transaction().execute(async (tx) => {
        const before = await ownEndpoint(tx, p.org, request.params.id, true)
        if (!before.active) return
        await tx
          .updateTable('webhook_endpoints')
          .set({ active: false, disabled_reason: `deleted by ${p.user} on ${now.toISOString()}`, updated_at: now })
          .where('id', '=', before.id)
          .execute()
        await audit(tx, actorOf(request.principal, request.id), { action: 'webhook.deleted', objectType: 'webhook_endpoint', objectId: before.id, changes: { active: [true, false] } }, now)
      })
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/webhooks/:id/rotate-secret',
    {
      config: { roles: ROLES },
      schema: {
        tags: TAGS,
        operationId: 'rotateWebhookSecret',
        summary: 'Rotate an endpoint’s signing secret',
        description:
          'Returns a new secret, shown this once. For 24 hours the previous secret keeps signing too: `webhook-signature` then carries two signatures separated by a space (new first), and a receiver holding either secret verifies the delivery, so that you can switch without losing any. Rotating again replaces that previous secret with the current one.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        response: { 200: WebhookEndpointWithSecret, ...problems(404, 422) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const now = app.now()
      const secret = newSecret()
      const expires = new Date(now.getTime() + SECRET_OVERLAP_MS)
      const row = await app.db.transaction().execute(async (tx) => {
        const before = await ownEndpoint(tx, p.org, request.params.id, true)
        const after = await tx
          .updateTable('webhook_endpoints')
          .set({ secret, previous_secret: before.secret, previous_secret_expires_at: expires, updated_at: now })
          .where('id', '=', before.id)
          .returningAll()
          .executeTakeFirstOrThrow()
        await audit(
          tx,
          actorOf(request.principal, request.id),
          { action: 'webhook.secret_rotated', objectType: 'webhook_endpoint', objectId: before.id, changes: { previousSecretExpiresAt: expires.toISOString() } },
          now,
        )
        return after
      })
      return { ...toApi(row, now), secret }
    },
  )

  app.get(
    '/webhooks/:id/deliveries',
    {
      config: { roles: ROLES },
      schema: {
        tags: TAGS,
        operationId: 'listWebhookDeliveries',
        summary: 'Deliveries to one of your endpoints, newest first',
        description: 'Each event sent (or being sent) to the endpoint, with its attempts and last outcome. Filter by `status`; page with `cursor`.',
        params: IdParams,
        querystring: Type.Object({ status: Type.Optional(DeliveryStatus), ...PageQuery }, { additionalProperties: false }),
        response: { 200: WebhookDeliveryPage, ...problems(404) },
      },
    },
    async (request) => {
      const { org } = principalOf(request)
      const endpoint = await ownEndpoint(app.db, org, request.params.id)
      const { status, limit = 50, cursor } = request.query
      const filter = { endpoint: endpoint.id, status }
      const after = cursor ? decodeCursor<{ at: string; id: string }>(cursor, filter) : null
      let q = app.db
        .selectFrom('webhook_deliveries as wd')
        .innerJoin('events as e', 'e.id', 'wd.event_id')
        .selectAll('wd')
        .select('e.type')
        .where('wd.endpoint_id', '=', endpoint.id)
        .where('wd.org_id', '=', org)
        .orderBy('wd.created_at', 'desc')
        .orderBy('wd.id', 'desc')
        .limit(limit + 1)
      if (status) q = q.where('wd.status', '=', status)
      if (after) q = q.where(sql<boolean>`(wd.created_at, wd.id) < (${new Date(after.at)}::timestamptz, ${after.id}::uuid)`)
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      return {
        items: page.map(deliveryToApi),
        nextCursor: rows.length > limit ? encodeCursor({ at: page.at(-1)!.created_at.toISOString(), id: page.at(-1)!.id }, filter) : null,
      }
    },
  )

  app.post(
    '/webhooks/:id/deliveries/:deliveryId/replay',
    {
      config: { roles: ROLES },
      schema: {
        tags: TAGS,
        operationId: 'replayWebhookDelivery',
        summary: 'Send a delivery again now',
        description:
          'Queues one more attempt, now, whatever the delivery’s status (a receiver deduplicates on `webhook-id`, unchanged). A pending delivery is simply brought forward. If the attempt fails, the delivery is retried only while it has attempts left; otherwise it stays failed. The endpoint must be active (409 otherwise: re-enable it first).',
        headers: IdempotencyKeyHeader,
        params: DeliveryParams,
        response: { 202: WebhookDelivery, ...problems(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const now = app.now()
      const delivery = await app.db.transaction().execute(async (tx) => {
        const endpoint = await ownEndpoint(tx, p.org, request.params.id)
        const before = await tx
          .selectFrom('webhook_deliveries')
          .selectAll()
          .where('id', '=', request.params.deliveryId)
          .where('endpoint_id', '=', endpoint.id)
          .where('org_id', '=', p.org)
          .forUpdate()
          .executeTakeFirst()
        if (!before) throw deliveryNotFound()
        if (!endpoint.active) {
          throw conflict(
            'Ce point de terminaison est désactivé ; réactivez-le (PATCH active: true) avant de rejouer une livraison.',
            'This endpoint is disabled; re-enable it (PATCH active: true) before replaying a delivery.',
          )
        }
        const after = await tx
          .updateTable('webhook_deliveries')
          .set({ status: 'pending', next_attempt_at: now })
          .where('id', '=', before.id)
          .returningAll()
          .executeTakeFirstOrThrow()
        const job = await enqueue(tx, WEBHOOK_QUEUE, { deliveryId: before.id }, { runAt: now, singletonKey: before.id, maxAttempts: WEBHOOK_JOB_MAX_ATTEMPTS })
        if (!job) {
          // Its job is already queued (a retry): bring it forward. A running one sends it now anyway.
          await tx.updateTable('jobs').set({ run_at: now }).where('queue', '=', WEBHOOK_QUEUE).where('singleton_key', '=', before.id).where('state', '=', 'pending').execute()
        }
        await audit(
          tx,
          actorOf(request.principal, request.id),
          { action: 'webhook.delivery_replayed', objectType: 'webhook_endpoint', objectId: endpoint.id, changes: { deliveryId: before.id, status: [before.status, 'pending'] } },
          now,
        )
        const { type } = await tx.selectFrom('events').select('type').where('id', '=', after.event_id).executeTakeFirstOrThrow()
        return { ...after, type }
      })
      return reply.code(202).send(deliveryToApi(delivery))
    },
  )
}

function deliveryToApi(r: Selectable<DB['webhook_deliveries']> & { type: string }): Static<typeof WebhookDelivery> {
  return {
    id: r.id,
    endpointId: r.endpoint_id,
    eventId: r.event_id,
    eventType: r.type,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.status === 'pending' && r.next_attempt_at ? r.next_attempt_at.toISOString() : null,
    lastAttemptAt: r.last_attempt_at?.toISOString() ?? null,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    createdAt: r.created_at.toISOString(),
    succeededAt: r.succeeded_at?.toISOString() ?? null,
  }
}

/** Sends a `webhook.test` event to the endpoint as a real delivery would be sent, and says what came back. */
async function testEndpoint(endpoint: EndpointRow, now: Date, opts: SendOptions): Promise<Static<typeof WebhookTestResult>> {
  const eventId = randomUUID()
  const webhookId = randomUUID()
  const body = JSON.stringify({
    id: eventId,
    type: 'webhook.test',
    createdAt: now.toISOString(),
    sender: null,
    subject: { type: 'webhook_endpoint', id: endpoint.id },
    payload: { test: true, endpointId: endpoint.id, message: 'Événement de test du Portail DP : votre récepteur est joignable et vérifie la signature.' },
    pos: null,
  })
  const headers = signedHeaders(webhookId, now, body, signingSecrets(endpoint, now))
  const started = performance.now()
  const outcome = await send(endpoint.url, body, headers, opts)
  const latencyMs = Math.round(performance.now() - started)
  const delivered = outcome.status !== null && outcome.status >= 200 && outcome.status < 300
  return { eventId, webhookId, type: 'webhook.test', url: endpoint.url, sentAt: now.toISOString(), delivered, statusCode: outcome.status, latencyMs, error: outcome.error }
}

export default webhookRoutes

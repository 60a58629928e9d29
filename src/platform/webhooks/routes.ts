/** The webhook endpoints' HTTP routes: each parses, calls one use case (use-cases.ts) and shapes the answer. */
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { principalOf } from '../auth.ts'
import { ROLES } from '../db/schema.ts'
import { langOf } from '../i18n.ts'
import { IdempotencyKeyHeader, problems } from '../openapi.ts'
import { PageQuery } from '../schemas.ts'
import { EVENT_TYPE_NAMES, EVENT_TYPES } from '../events/event-types.ts'
import type { RoutePlugin } from '../types.ts'
import {
  DeliveryParams,
  DeliveryStatus,
  EventTypeCatalogue,
  IdParams,
  WebhookDelivery,
  WebhookDeliveryPage,
  WebhookEndpoint,
  WebhookEndpointCreate,
  WebhookEndpointPage,
  WebhookEndpointPatch,
  WebhookEndpointWithSecret,
  WebhookTestResult,
} from './schemas.ts'
import { createEndpoint, deleteEndpoint, type Deps, getEndpoint, listDeliveries, listEndpoints, replayDelivery, rotateSecret, testEndpoint, updateEndpoint, type Who } from './use-cases.ts'

const TAGS = ['webhooks']

const whoOf = (request: FastifyRequest): Who => ({ principal: principalOf(request), requestId: request.id, lang: langOf(request) })

const webhookRoutes: RoutePlugin = async (app) => {
  const deps: Deps = { db: app.db, now: () => app.now(), allowPrivate: app.config.WEBHOOK_ALLOW_PRIVATE, timeoutMs: app.config.WEBHOOK_TIMEOUT_MS }
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
      const endpoint = await createEndpoint(deps, whoOf(request), request.body)
      return reply.code(201).header('location', `/v1/webhooks/${endpoint.id}`).send(endpoint)
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
    async (request) => listEndpoints(deps, principalOf(request).org, request.query),
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
    async (request) => testEndpoint(deps, whoOf(request), request.params.id),
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
    async (request) => getEndpoint(deps, principalOf(request).org, request.params.id),
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
    async (request) => updateEndpoint(deps, whoOf(request), request.params.id, request.body),
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
      await deleteEndpoint(deps, whoOf(request), request.params.id)
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
    async (request) => rotateSecret(deps, whoOf(request), request.params.id),
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
    async (request) => listDeliveries(deps, principalOf(request).org, request.params.id, request.query),
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
    async (request, reply) => reply.code(202).send(await replayDelivery(deps, whoOf(request), request.params.id, request.params.deliveryId)),
  )
}

export default webhookRoutes

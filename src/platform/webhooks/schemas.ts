/** The webhook API's schemas (endpoints, deliveries, event types, tests) and how rows are shown through them. */
import type { Selectable } from 'kysely'
import { Type, type Static } from 'typebox'
import type { DB, WebhookEndpointsTable } from '../db/schema.ts'
import { EVENT_TYPE_NAMES } from '../events/event-types.ts'
import { component, Page } from '../schemas.ts'
import { MAX_ATTEMPTS } from './deliver.ts'

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

export const DeliveryStatus = Type.Enum(['pending', 'succeeded', 'failed'])

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

export const WebhookEndpointPage = Page(WebhookEndpoint, 'WebhookEndpointPage')
export const WebhookDeliveryPage = Page(WebhookDelivery, 'WebhookDeliveryPage')

export { IdParams } from '../schemas.ts'
export const DeliveryParams = Type.Object({ id: Type.String({ format: 'uuid' }), deliveryId: Type.String({ format: 'uuid' }) })

export type EndpointRow = Selectable<WebhookEndpointsTable>
export type DeliveryRow = Selectable<DB['webhook_deliveries']> & { type: string }

export function toApi(r: EndpointRow, now: Date): Static<typeof WebhookEndpoint> {
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

export function deliveryToApi(r: DeliveryRow): Static<typeof WebhookDelivery> {
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

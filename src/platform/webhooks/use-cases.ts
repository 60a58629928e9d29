/**
 * What an organisation does with its webhook endpoints: register, change, delete, rotate, test, and read or
 * replay deliveries. Each change locks what it changes and is audited in its transaction.
 */
import { randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { Static } from 'typebox'
import { actorOf, type Actor, audit, diff } from '../audit.ts'
import type { Principal } from '../auth.ts'
import { decodeCursor, encodeCursor } from '../cursor.ts'
import type { DB } from '../db/schema.ts'
import { AppError, conflict, defineErrors, errorDef, notFound } from '../errors.ts'
import type { Lang } from '../i18n.ts'
import { enqueue } from '../jobs.ts'
import { closestEventType, isEventType } from '../events/event-types.ts'
import { WEBHOOK_QUEUE } from '../events/sequencer.ts'
import { newSecret, send, type SendOptions, signedHeaders, signingSecrets, WEBHOOK_JOB_MAX_ATTEMPTS } from './deliver.ts'
import * as q from './queries.ts'
import { type DeliveryRow, deliveryToApi, type EndpointRow, toApi, type WebhookTestResult } from './schemas.ts'
import { webhookUrlProblem } from './ssrf.ts'
import { inTransaction } from '../db/transaction.ts'

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

export interface Deps {
  db: Kysely<DB>
  now: () => Date
  /** WEBHOOK_ALLOW_PRIVATE: private addresses accepted (tests, closed networks). */
  allowPrivate: boolean
  /** WEBHOOK_TIMEOUT_MS, for the test sends. */
  timeoutMs: number
}

/** Who calls: the organisation owning the endpoints, for the audit trail and the language of field errors. */
export interface Who {
  principal: Principal
  requestId: string
  lang: Lang
}

const actor = (who: Who): Actor => actorOf(who.principal, who.requestId)
const endpointNotFound = () => notFound('Le point de terminaison webhook', 'The webhook endpoint')
const deliveryNotFound = () => notFound('La livraison webhook', 'The webhook delivery')

/** The caller's endpoint, or 404 (another organisation's endpoint is not found either). */
async function ownEndpoint(db: q.Db, org: string, id: string, lock = false): Promise<EndpointRow> {
  const row = await q.findEndpoint(db, org, id, { forUpdate: lock })
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

/** Every listed type must be one the service publishes: a typo would otherwise subscribe to silence. */
function checkEventTypes(lang: Lang, types: string[] | undefined) {
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

/** The URL normalised, or 400 when it is not https or not publicly reachable. */
async function checkUrl(lang: Lang, url: string, allowPrivate: boolean): Promise<string> {
  const problem = await webhookUrlProblem(url, allowPrivate)
  if (problem) {
    throw new AppError('WEBHOOK_URL_REFUSED', problem, { errors: [{ field: 'body.url', code: 'url_refused', message: problem[lang] }] })
  }
  return new URL(url).href
}

async function checkActiveLimit(tx: Transaction<DB>, org: string, except?: string) {
  if ((await q.countActiveEndpoints(tx, org, except)) >= MAX_ACTIVE_ENDPOINTS) {
    throw conflict(
      `Votre organisation a déjà ${MAX_ACTIVE_ENDPOINTS} points de terminaison actifs ; désactivez-en un d’abord.`,
      `Your organisation already has ${MAX_ACTIVE_ENDPOINTS} active endpoints; deactivate one first.`,
    )
  }
}

export interface EndpointInput {
  url: string
  eventTypes?: string[] | undefined
  description?: string | undefined
}

/** Registers an endpoint with a new secret, which the answer shows this once. */
export async function createEndpoint(deps: Deps, who: Who, b: EndpointInput) {
  const org = who.principal.org
  checkEventTypes(who.lang, b.eventTypes)
  const url = await checkUrl(who.lang, b.url, deps.allowPrivate)
  const now = deps.now()
  const secret = newSecret()
  const row = await inTransaction(deps.db, async (tx) => {
    await q.lockOrganisation(tx, org)
    await checkActiveLimit(tx, org)
    const inserted = await q.insertEndpoint(tx, {
      id: randomUUID(),
      org_id: org,
      url,
      description: b.description ?? null,
      event_types: b.eventTypes ?? [],
      secret,
      active: true,
      failure_streak: 0,
      created_at: now,
      updated_at: now,
    })
    await audit(tx, actor(who), { action: 'webhook.created', objectType: 'webhook_endpoint', objectId: inserted.id, changes: audited(inserted) }, now)
    return inserted
  })
  return { ...toApi(row, now), secret }
}

export async function listEndpoints(deps: Deps, org: string, query: { active?: boolean | undefined; limit?: number | undefined; cursor?: string | undefined }) {
  const { active, limit = 50, cursor } = query
  const filter = { active }
  const after = cursor ? decodeCursor<{ at: string; id: string }>(cursor, filter) : null
  const rows = await q.listEndpoints(deps.db, org, { active, after, limit })
  const page = rows.slice(0, limit)
  const now = deps.now()
  return {
    items: page.map((r) => toApi(r, now)),
    nextCursor: rows.length > limit ? encodeCursor({ at: page.at(-1)!.created_at.toISOString(), id: page.at(-1)!.id }, filter) : null,
  }
}

export async function getEndpoint(deps: Deps, org: string, id: string) {
  return toApi(await ownEndpoint(deps.db, org, id), deps.now())
}

/**
 * Sends a `webhook.test` event to the endpoint as a real delivery would be sent, says what came back, and audits
 * the test once it is over (not a delivery: nothing is queued or retried).
 */
export async function testEndpoint(deps: Deps, who: Who, id: string) {
  const endpoint = await ownEndpoint(deps.db, who.principal.org, id)
  const result = await sendTest(endpoint, deps.now(), { allowPrivate: deps.allowPrivate, timeoutMs: deps.timeoutMs })
  await inTransaction(deps.db, (tx) =>
    audit(tx, actor(who), { action: 'webhook.tested', objectType: 'webhook_endpoint', objectId: endpoint.id, changes: { statusCode: result.statusCode, delivered: result.delivered, error: result.error } }, deps.now()),
  )
  return result
}

export interface EndpointPatch {
  url?: string | undefined
  eventTypes?: string[] | undefined
  description?: string | null | undefined
  active?: boolean | undefined
}

/** Changes what is asked; re-enabling counts against the active limit and resets the failure streak. */
export async function updateEndpoint(deps: Deps, who: Who, id: string, b: EndpointPatch) {
  const p = who.principal
  checkEventTypes(who.lang, b.eventTypes)
  const url = b.url === undefined ? undefined : await checkUrl(who.lang, b.url, deps.allowPrivate)
  const now = deps.now()
  const row = await inTransaction(deps.db, async (tx) => {
    await q.lockOrganisation(tx, p.org)
    const before = await ownEndpoint(tx, p.org, id, true)
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
    const after = await q.updateEndpoint(tx, before.id, { ...set, updated_at: now })
    await audit(tx, actor(who), { action: 'webhook.updated', objectType: 'webhook_endpoint', objectId: before.id, changes }, now)
    return after
  })
  return toApi(row, now)
}

/** Deactivates the endpoint (its deliveries stay readable); an inactive one is left as it is. */
export async function deleteEndpoint(deps: Deps, who: Who, id: string) {
  const p = who.principal
  const now = deps.now()
  await inTransaction(deps.db, async (tx) => {
    const before = await ownEndpoint(tx, p.org, id, true)
    if (!before.active) return
    await q.setEndpoint(tx, before.id, { active: false, disabled_reason: `deleted by ${p.user} on ${now.toISOString()}`, updated_at: now })
    await audit(tx, actor(who), { action: 'webhook.deleted', objectType: 'webhook_endpoint', objectId: before.id, changes: { active: [true, false] } }, now)
  })
}

/** A new secret, shown this once; the current one becomes the previous one, signing too for SECRET_OVERLAP_MS. */
export async function rotateSecret(deps: Deps, who: Who, id: string) {
  const now = deps.now()
  const secret = newSecret()
  const expires = new Date(now.getTime() + SECRET_OVERLAP_MS)
  const row = await inTransaction(deps.db, async (tx) => {
    const before = await ownEndpoint(tx, who.principal.org, id, true)
    const after = await q.updateEndpoint(tx, before.id, { secret, previous_secret: before.secret, previous_secret_expires_at: expires, updated_at: now })
    await audit(
      tx,
      actor(who),
      { action: 'webhook.secret_rotated', objectType: 'webhook_endpoint', objectId: before.id, changes: { previousSecretExpiresAt: expires.toISOString() } },
      now,
    )
    return after
  })
  return { ...toApi(row, now), secret }
}

export async function listDeliveries(
  deps: Deps,
  org: string,
  id: string,
  query: { status?: DeliveryRow['status'] | undefined; limit?: number | undefined; cursor?: string | undefined },
) {
  const endpoint = await ownEndpoint(deps.db, org, id)
  const { status, limit = 50, cursor } = query
  const filter = { endpoint: endpoint.id, status }
  const after = cursor ? decodeCursor<{ at: string; id: string }>(cursor, filter) : null
  const rows = await q.listDeliveries(deps.db, org, endpoint.id, { status, after, limit })
  const page = rows.slice(0, limit)
  return {
    items: page.map(deliveryToApi),
    nextCursor: rows.length > limit ? encodeCursor({ at: page.at(-1)!.created_at.toISOString(), id: page.at(-1)!.id }, filter) : null,
  }
}

/** Queues one more attempt now, whatever the delivery's status; the endpoint must be active. */
export async function replayDelivery(deps: Deps, who: Who, endpointId: string, deliveryId: string) {
  const org = who.principal.org
  const now = deps.now()
  const delivery = await inTransaction(deps.db, async (tx) => {
    const endpoint = await ownEndpoint(tx, org, endpointId)
    const before = await q.lockDelivery(tx, org, endpoint.id, deliveryId)
    if (!before) throw deliveryNotFound()
    if (!endpoint.active) {
      throw conflict(
        'Ce point de terminaison est désactivé ; réactivez-le (PATCH active: true) avant de rejouer une livraison.',
        'This endpoint is disabled; re-enable it (PATCH active: true) before replaying a delivery.',
      )
    }
    const after = await q.setDeliveryPending(tx, before.id, now)
    const job = await enqueue(tx, WEBHOOK_QUEUE, { deliveryId: before.id }, { runAt: now, singletonKey: before.id, maxAttempts: WEBHOOK_JOB_MAX_ATTEMPTS })
    // Its job is already queued (a retry): bring it forward. A running one sends it now anyway.
    if (!job) await q.bringJobForward(tx, WEBHOOK_QUEUE, before.id, now)
    await audit(
      tx,
      actor(who),
      { action: 'webhook.delivery_replayed', objectType: 'webhook_endpoint', objectId: endpoint.id, changes: { deliveryId: before.id, status: [before.status, 'pending'] } },
      now,
    )
    return { ...after, type: await q.eventTypeOf(tx, after.event_id) }
  })
  return deliveryToApi(delivery)
}

/** Sends a `webhook.test` event to the endpoint as a real delivery would be sent, and says what came back. */
async function sendTest(endpoint: EndpointRow, now: Date, opts: SendOptions): Promise<Static<typeof WebhookTestResult>> {
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

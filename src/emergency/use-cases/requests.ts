/**
 * An emergency request's life: the pharmacy submits it, the lab answers, the pharmacy confirms receipt or
 * cancels, the scheduled job escalates it when unanswered; and reading them, within each caller's tenancy.
 */
import { randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { Static } from 'typebox'
import { type Actor, audit, SYSTEM } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import type { DB } from '../../platform/db/schema.ts'
import { AppError } from '../../platform/errors.ts'
import { publish } from '../../platform/events/publish.ts'
import { enqueue, RetryAt } from '../../platform/jobs.ts'
import { parisText } from '../../platform/paris-time.ts'
import { isSubscribed } from '../../referential/use-cases/organisations.ts'
import { cip13Of, unknownProduct } from '../../referential/rules/product-code.ts'
import { addBusinessHours, calendarOf } from '../business-hours.ts'
import type { EmergencyDelivery, EmergencyEligibility, EmergencyStatus } from '../db.ts'
import * as q from '../queries.ts'
import { type Answer, checkAnswerFields, checkExpectedDelivery, checkMaxQuantity, failedConditions, grantedQuantity, notAWholesaler, notEligible } from '../rules.ts'
import { REFUSAL_REASONS, type RequestInput, SHIPPING_CHANNELS, type STATUSES } from '../schemas.ts'
import { ACTIVE_DECLARATION_STATUSES, assertTransition, ESCALATION_QUEUE, isUuid, OBJECT_REQUEST, requestNotFound, toRequest, toStep } from '../service.ts'
import { actor, type Deps, type Who } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

/**
 * Appends a step to the request's history (never updated) and audits it, in the caller's transaction. `seq`
 * is the request's new version: the caller holds the request row locked, so steps never collide.
 */
async function appendStep(
  tx: Transaction<DB>,
  req: { id: string; version: number },
  step: { action: string; status: EmergencyStatus; details: Record<string, unknown>; actor: Actor; now: Date },
) {
  const seq = req.version
  await q.insertStep(tx, {
    request_id: req.id,
    seq,
    action: step.action,
    status: step.status,
    details: JSON.stringify(step.details),
    actor_role: step.actor.role,
    actor_org: step.actor.org,
    actor_user: step.actor.user,
    request_id_http: step.actor.requestId ?? null,
    at: step.now,
  })
  await audit(tx, step.actor, { action: `${OBJECT_REQUEST}.${step.action}`, objectType: OBJECT_REQUEST, objectId: req.id, changes: { status: step.status, version: seq, ...step.details } }, step.now)
}

/** The caller's request for a change, locked; 404 for anyone else's. */
async function lockOwn(tx: Transaction<DB>, id: string, principal: Principal) {
  const row = await q.lockOwnRequest(tx, id, principal)
  if (!row) throw requestNotFound()
  return row
}

/**
 * The pharmacy asks the presentation's lab for it (`cip13` already parsed). In one transaction: eligibility
 * (every failed condition named), the lab's maximum, one pending request per pharmacy and presentation (under
 * an advisory lock, so of concurrent submissions exactly one is created), the request and its first step,
 * the lab's event and the escalation job at `escalateAt`.
 */
export async function submitRequest(deps: Deps, who: Who, cip13: string, b: Static<typeof RequestInput>) {
  const { principal, lang } = who
  const now = deps.now()
  const id = randomUUID()
  return inTransaction(deps.db, async (tx) => {
    const product = await q.productOf(tx, cip13)
    if (!product) throw unknownProduct(cip13, 'body.cip13', lang)
    const declaration = await q.activeDeclaration(tx, cip13, ACTIVE_DECLARATION_STATUSES)
    const subscribed = product.lab_id ? await isSubscribed(tx, product.lab_id) : false
    const opening = product.lab_id ? await q.sharedOpenOpening(tx, cip13, product.lab_id) : undefined
    const failed = failedConditions({ mitm: product.mitm, niche: product.niche, activeShortage: !!declaration, labSubscribed: subscribed, opened: !!opening })
    if (failed.length > 0 || !declaration || !opening || !product.lab_id) throw notEligible(cip13, failed, lang)
    checkMaxQuantity(opening.max_quantity, b.quantity, lang)
    // One pending request per pharmacy and presentation, checked once the request itself is valid. Concurrent
    // submissions of the pair queue on this lock (released at commit): the second sees the first and answers 409.
    await q.lockPendingPair(tx, principal.org, cip13)
    const pending = await q.pendingRequest(tx, principal.org, cip13)
    if (pending) {
      const sent = pending.submitted_at
      throw new AppError('EMERGENCY_REQUEST_PENDING', { cip13, id: pending.id, sentFr: parisText(sent, 'fr'), sentEn: parisText(sent, 'en') }, { pendingRequest: toRequest(pending) })
    }
    const pharmacy = await q.pharmacyAddress(tx, principal.org)
    const delivery: EmergencyDelivery = { name: pharmacy.name, city: pharmacy.city, department: pharmacy.department, address: b.delivery?.address ?? null, instructions: b.delivery?.instructions ?? null }
    const eligibility: EmergencyEligibility = {
      mitm: product.mitm,
      niche: product.niche,
      declaration: { id: declaration.id, kind: declaration.kind, status: declaration.status, version: declaration.version },
      labSubscribed: true,
      opening: { maxQuantity: opening.max_quantity, openedAt: opening.opened_at.toISOString() },
    }
    const hours = opening.escalation_business_hours ?? deps.defaultHours
    const escalateAt = addBusinessHours(now, hours, calendarOf(opening.service_hours))
    await q.insertRequest(tx, {
      id,
      pharmacy_id: principal.org,
      lab_id: product.lab_id,
      cip13,
      quantity: b.quantity,
      delivery: JSON.stringify(delivery),
      patient_emergency: true,
      eligibility: JSON.stringify(eligibility),
      status: 'submitted',
      answer: null,
      version: 1,
      submitted_at: now,
      escalate_at: escalateAt,
      updated_at: now,
    })
    await appendStep(tx, { id, version: 1 }, { action: 'submitted', status: 'submitted', details: { quantity: b.quantity, delivery, eligibility, escalateAt: escalateAt.toISOString() }, actor: actor(who), now })
    const row = toRequest(await q.requestOf(tx, id))
    await publish(tx, { type: 'emergency.request_submitted', payload: { request: row }, audience: { orgs: [product.lab_id] }, senderOrg: principal.org, subject: { type: OBJECT_REQUEST, id } }, now)
    await enqueue(tx, ESCALATION_QUEUE, { requestId: id }, { runAt: escalateAt, singletonKey: id })
    return row
  })
}

export interface RequestQuery {
  status?: (typeof STATUSES)[number]
  cip13?: string
  escalated?: boolean
  labId?: string
  pharmacyId?: string
  limit?: number
  cursor?: string
}

/** One page of the requests the caller may read, most recent first. */
export async function listRequests(deps: Deps, who: Who, query: RequestQuery) {
  const { status, escalated, labId, pharmacyId, limit = 50, cursor } = query
  const cip13 = query.cip13 ? cip13Of(query.cip13, 'querystring.cip13', who.lang) : undefined
  const filter = { status, escalated, labId, pharmacyId, cip13 }
  let position: { t: Date; id: string } | undefined
  if (cursor) {
    const after = decodeCursor<{ t: string; id: string }>(cursor, filter)
    if (typeof after.t !== 'string' || typeof after.id !== 'string' || !isUuid(after.id) || Number.isNaN(Date.parse(after.t))) throw new AppError('INVALID_CURSOR')
    position = { t: new Date(after.t), id: after.id }
  }
  const rows = await q.listRequests(deps.db, who.principal, filter, position, limit)
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return { items: page.map(toRequest), nextCursor: rows.length > limit && last ? encodeCursor({ t: last.submitted_at.toISOString(), id: last.id }, filter) : null }
}

/** One request the caller may read, with its full history; 404 for anyone else. */
export async function getRequest(deps: Deps, who: Who, id: string) {
  const row = await q.visibleRequest(deps.db, who.principal, id)
  if (!row) throw requestNotFound()
  return { ...toRequest(row), history: (await q.stepsOf(deps.db, row.id)).map(toStep) }
}

/**
 * The lab answers its request, once, while `submitted`. The body's fields are checked against the decision,
 * and a named wholesaler against the referential, before the request is locked; the quantity and expected
 * delivery against the request, under the lock. The pharmacy is told.
 */
export async function answerRequest(deps: Deps, who: Who, id: string, b: Answer) {
  const { principal, lang } = who
  const now = deps.now()
  return inTransaction(deps.db, async (tx) => {
    // The request first: another lab gets 404 whatever it sends, and cannot probe who is a wholesaler.
    const row = await lockOwn(tx, id, principal)
    checkAnswerFields(b, lang)
    if (b.redirectTo?.organisationId) {
      const org = await q.organisationRole(tx, b.redirectTo.organisationId)
      if (!org || org.role !== 'wholesaler') throw notAWholesaler(lang)
    }
    assertTransition(row.status, b.decision)
    const quantity = grantedQuantity(b, row.quantity, lang)
    checkExpectedDelivery(b.expectedDelivery, row.submitted_at, lang)
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
    await q.updateRequest(tx, row.id, { status, answer: JSON.stringify(answer), answered_at: now, version, updated_at: now, ...(status === 'refused' ? { closed_at: now } : {}) })
    await appendStep(tx, { id: row.id, version }, { action: b.decision, status, details: answer, actor: actor(who), now })
    const out = toRequest(await q.requestOf(tx, row.id))
    await publish(tx, { type: 'emergency.request_answered', payload: { request: out }, audience: { orgs: [row.pharmacy_id] }, senderOrg: principal.org, subject: { type: OBJECT_REQUEST, id: row.id } }, now)
    return out
  })
}

/** The pharmacy closes its request: receipt confirmed or cancelled (`details`: the body, kept in the step). The lab is told. */
export async function closeByPharmacy(deps: Deps, who: Who, id: string, to: 'received' | 'cancelled', details: Record<string, unknown>) {
  const now = deps.now()
  return inTransaction(deps.db, async (tx) => {
    const row = await lockOwn(tx, id, who.principal)
    assertTransition(row.status, to)
    const version = row.version + 1
    await q.updateRequest(tx, row.id, { status: to, version, updated_at: now, closed_at: now })
    await appendStep(tx, { id: row.id, version }, { action: to, status: to, details: { ...details, previousStatus: row.status }, actor: actor(who), now })
    const out = toRequest(await q.requestOf(tx, row.id))
    await publish(tx, { type: `emergency.request_${to}`, payload: { request: out }, audience: { orgs: [row.lab_id] }, senderOrg: who.principal.org, subject: { type: OBJECT_REQUEST, id: row.id } }, now)
    return out
  })
}

/**
 * Escalation of a request still unanswered at its `escalateAt`: sets `escalatedAt`, appends a step, tells the
 * lab and the operator (`emergency.request_escalated`). It re-reads the request under lock, so it does
 * nothing if the request was answered or cancelled meanwhile, or already escalated: it fires at most once.
 */
export async function escalateRequest(db: Kysely<DB>, requestId: string, now: Date) {
  await inTransaction(db, async (tx) => {
    const row = await q.lockRequest(tx, requestId)
    if (!row || row.status !== 'submitted' || row.escalated_at) return
    if (now < row.escalate_at) throw new RetryAt(row.escalate_at, 'not yet due')
    const version = row.version + 1
    await q.updateRequest(tx, row.id, { escalated_at: now, version, updated_at: now })
    await appendStep(tx, { id: row.id, version }, { action: 'escalated', status: row.status, details: { escalateAt: row.escalate_at.toISOString(), unansweredMinutes: Math.round((now.getTime() - row.submitted_at.getTime()) / 60_000) }, actor: SYSTEM, now })
    const out = toRequest(await q.requestOf(tx, row.id))
    await publish(tx, { type: 'emergency.request_escalated', payload: { request: out }, audience: { orgs: [row.lab_id], roles: ['ordre'] }, senderOrg: null, subject: { type: OBJECT_REQUEST, id: row.id } }, now)
  })
}

import type { Kysely, Selectable, Transaction } from 'kysely'
import type { Static } from 'typebox'
import { type Actor, audit } from '../platform/audit.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError, notFound } from '../platform/errors.ts'
import type { Principal } from '../platform/auth.ts'
import { toGtin14 } from '../platform/identifiers.ts'
import type { EmergencyOpeningsTable, EmergencyRequestsTable, EmergencyStatus } from './db.ts'
import { type EmergencyAnswer, type EmergencyRequest, type Opening, STATUS_LABELS, TRANSITIONS } from './schemas.ts'

export type Db = Kysely<DB> | Transaction<DB>
export const OBJECT_REQUEST = 'emergency-request'
export const OBJECT_OPENING = 'emergency-opening'
export const ESCALATION_QUEUE = 'emergency.escalate'
/** Default escalation delay, in Paris business hours (see business-hours.ts for why). */
export const DEFAULT_ESCALATION_BUSINESS_HOURS = 4

/**
 * Declaration statuses that make a shortage "active" for emergency requests: `declared` (published by the
 * lab, the shortage or its risk is current) and `ongoing`. Not `draft` (never published: pharmacies and the
 * ANSM do not see it) nor the closed ones (`resolved`, `avoided`, `discontinued`). A declaration of kind
 * `availability_return` announces the end of a shortage, so it never counts, whatever its status.
 */
export const ACTIVE_DECLARATION_STATUSES = ['declared', 'ongoing'] as const

const iso = (d: Date | null) => (d ? d.toISOString() : null)

export const requestNotFound = () => notFound('La demande de dépannage', 'The emergency request')
export const openingNotFound = () => notFound('L’ouverture au dépannage', 'The emergency opening')
export const isUuid = (s: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s)

// ---- openings ----------------------------------------------------------------------------------------------

export function openingQuery(db: Db) {
  return db
    .selectFrom('emergency_openings as o')
    .innerJoin('presentations as p', 'p.cip13', 'o.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .innerJoin('organisations as l', 'l.id', 'o.lab_id')
    .selectAll('o')
    .select(['m.name as product_name', 'l.name as lab_name'])
}
type OpeningRow = Selectable<EmergencyOpeningsTable> & { product_name: string; lab_name: string }

export function toOpening(r: OpeningRow, defaultHours: number): Static<typeof Opening> {
  return {
    cip13: r.cip13,
    gtin: toGtin14(r.cip13),
    productName: r.product_name,
    lab: { id: r.lab_id, name: r.lab_name },
    open: r.open,
    contact: r.contact,
    openingHours: r.opening_hours,
    serviceHours: r.service_hours ?? null,
    maxQuantity: r.max_quantity,
    escalationBusinessHours: r.escalation_business_hours ?? defaultHours,
    openedAt: r.opened_at.toISOString(),
    closedAt: iso(r.closed_at),
    updatedAt: r.updated_at.toISOString(),
  }
}

// ---- requests ----------------------------------------------------------------------------------------------

export function requestQuery(db: Db) {
  return db
    .selectFrom('emergency_requests as r')
    .innerJoin('presentations as p', 'p.cip13', 'r.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .innerJoin('organisations as l', 'l.id', 'r.lab_id')
    .innerJoin('organisations as ph', 'ph.id', 'r.pharmacy_id')
    .leftJoin('emergency_openings as o', 'o.cip13', 'r.cip13')
    .selectAll('r')
    .select(['m.name as product_name', 'l.name as lab_name', 'ph.name as pharmacy_name', 'o.contact as contact'])
}
type RequestRow = Selectable<EmergencyRequestsTable> & { product_name: string; lab_name: string; pharmacy_name: string; contact: unknown }

/** Tenancy: a pharmacy sees its own requests, a lab those addressed to it, the operator all. */
export function scoped<Q extends { where: (...args: any[]) => Q }>(q: Q, principal: Principal): Q {
  if (principal.role === 'pharmacy') return q.where('r.pharmacy_id', '=', principal.org)
  if (principal.role === 'lab') return q.where('r.lab_id', '=', principal.org)
  if (principal.role === 'ordre') return q
  return q.where('r.id', 'is', null)
}

export function toRequest(r: RequestRow): Static<typeof EmergencyRequest> {
  return {
    id: r.id,
    cip13: r.cip13,
    gtin: toGtin14(r.cip13),
    productName: r.product_name,
    lab: { id: r.lab_id, name: r.lab_name },
    pharmacy: { id: r.pharmacy_id, name: r.pharmacy_name },
    quantity: r.quantity,
    patientEmergency: r.patient_emergency,
    delivery: r.delivery,
    status: r.status,
    statusLabel: STATUS_LABELS[r.status],
    answer: (r.answer ?? null) as Static<typeof EmergencyAnswer> | null,
    eligibility: r.eligibility as unknown as Record<string, unknown>,
    contact: (r.contact ?? {}) as Record<string, unknown>,
    version: r.version,
    submittedAt: r.submitted_at.toISOString(),
    answeredAt: iso(r.answered_at),
    escalateAt: r.escalate_at.toISOString(),
    escalatedAt: iso(r.escalated_at),
    closedAt: iso(r.closed_at),
    allowedTransitions: TRANSITIONS[r.status],
  }
}

export async function historyOf(db: Db, id: string) {
  const rows = await db.selectFrom('emergency_request_steps').selectAll().where('request_id', '=', id).orderBy('seq').execute()
  return rows.map((s) => ({
    seq: s.seq,
    action: s.action,
    status: s.status,
    at: s.at.toISOString(),
    actor: { role: s.actor_role, org: s.actor_org, user: s.actor_user },
    details: s.details ?? {},
  }))
}

export function assertTransition(from: EmergencyStatus, to: EmergencyStatus) {
  const allowed = TRANSITIONS[from]
  if (!allowed.includes(to)) {
    throw new AppError('EMERGENCY_INVALID_TRANSITION', { from, to, allowedText: allowed.join(', ') }, { currentStatus: from, allowedTransitions: allowed })
  }
}

/**
 * Appends a step to the request's history (never updated), bumps its version and audits, in the caller's
 * transaction. `seq` follows the version: the request row is locked by the caller, so steps never collide.
 */
export async function appendStep(
  tx: Transaction<DB>,
  req: { id: string; version: number },
  step: { action: string; status: EmergencyStatus; details: Record<string, unknown>; actor: Actor; now: Date },
) {
  const seq = req.version
  await tx
    .insertInto('emergency_request_steps')
    .values({
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
    .execute()
  await audit(tx, step.actor, { action: `${OBJECT_REQUEST}.${step.action}`, objectType: OBJECT_REQUEST, objectId: req.id, changes: { status: step.status, version: seq, ...step.details } }, step.now)
}

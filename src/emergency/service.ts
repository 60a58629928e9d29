/**
 * What the emergency service's layers share: object names, the escalation queue and default, error builders,
 * the lifecycle rule, and the mappers from rows to the API's shapes.
 */
import type { Selectable } from 'kysely'
import type { Static } from 'typebox'
import { AppError, notFound } from '../platform/errors.ts'
import { toGtin14 } from '../platform/identifiers.ts'
import type { EmergencyRequestStepsTable, EmergencyStatus } from './db.ts'
import type { OpeningRow, RequestRow } from './queries.ts'
import { type EmergencyAnswer, type EmergencyRequest, type Opening, STATUS_LABELS, TRANSITIONS } from './schemas.ts'

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
    eligibility: { ...r.eligibility },
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

export function toStep(s: Selectable<EmergencyRequestStepsTable>) {
  return {
    seq: s.seq,
    action: s.action,
    status: s.status,
    at: s.at.toISOString(),
    actor: { role: s.actor_role, org: s.actor_org, user: s.actor_user },
    details: s.details ?? {},
  }
}

export function assertTransition(from: EmergencyStatus, to: EmergencyStatus) {
  const allowed = TRANSITIONS[from]
  if (!allowed.includes(to)) {
    throw new AppError('EMERGENCY_INVALID_TRANSITION', { from, to, allowedText: allowed.join(', ') }, { currentStatus: from, allowedTransitions: allowed })
  }
}

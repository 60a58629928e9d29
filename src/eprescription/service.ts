import { timingSafeEqual } from 'node:crypto'
import type { FastifyReply } from 'fastify'
import type { Kysely, Selectable, Transaction } from 'kysely'
import type { Actor } from '../platform/audit.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError } from '../platform/errors.ts'
import type {
  EprescriptionDispensationsTable,
  EprescriptionDispensedLinesTable,
  EprescriptionLinesTable,
  EprescriptionsTable,
  PrescriptionStatus,
} from './db.ts'
import './errors.ts'
import { display, qrPayload } from './ids.ts'

type Db = Kysely<DB> | Transaction<DB>

export type PrescriptionRow = Selectable<EprescriptionsTable>
export type LineRow = Selectable<EprescriptionLinesTable>
export type DispensationRow = Selectable<EprescriptionDispensationsTable>
export type DispensedLineRow = Selectable<EprescriptionDispensedLinesTable>

export interface Loaded {
  p: PrescriptionRow
  prescriberName: string | null
  lines: LineRow[]
  /** Every dispensation (open, released, closed) with its recorded lines and the pharmacy's name. */
  dispensations: Array<DispensationRow & { pharmacy_name: string | null; lines: DispensedLineRow[] }>
}

// ---- retention and throttling rules ------------------------------------------------------------------------
export const RETENTION = {
  /** Cancelled prescriptions: purged quickly. */
  cancelledDays: 7,
  /** Expired without any dispensation: nothing to keep. */
  expiredUndispensedDays: 30,
  /** Completed, or expired after a dispensation: the dispensation records are kept for the legal period
   *  (10 years, as the ordonnancier — art. R.5132-10 CSP). */
  dispensedYears: 10,
}
export const THROTTLE = { windowMs: 15 * 60_000, perPrescription: 5, perClient: 20 }

export const PATIENT_ACTOR = (requestId: string): Actor => ({ role: 'patient', org: null, user: 'patient', requestId })

/** ready past its validity reads as expired even before the retention job records it. */
export function effectiveStatus(p: Pick<PrescriptionRow, 'status' | 'valid_until'>, now: Date): PrescriptionStatus {
  if (p.status === 'ready' && p.valid_until.getTime() <= now.getTime()) return 'expired'
  return p.status
}

export async function load(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<Loaded | null> {
  let q = db.selectFrom('eprescriptions').selectAll().where('id', '=', id)
  if (opts.forUpdate) q = q.forUpdate()
  const p = await q.executeTakeFirst()
  if (!p) return null
  const prescriber = await db.selectFrom('organisations').select('name').where('id', '=', p.prescriber_org).executeTakeFirst()
  const lines = await db.selectFrom('eprescription_lines').selectAll().where('prescription_id', '=', id).orderBy('line_no').execute()
  const ds = await db
    .selectFrom('eprescription_dispensations as d')
    .leftJoin('organisations as o', 'o.id', 'd.pharmacy_org')
    .selectAll('d')
    .select('o.name as pharmacy_name')
    .where('d.prescription_id', '=', id)
    .orderBy('d.accepted_at')
    .orderBy('d.id')
    .execute()
  const recorded = ds.length
    ? await db.selectFrom('eprescription_dispensed_lines').selectAll().where('dispensation_id', 'in', ds.map((d) => d.id)).orderBy('line_no').execute()
    : []
  return {
    p,
    prescriberName: prescriber?.name ?? null,
    lines,
    dispensations: ds.map((d) => ({ ...d, lines: recorded.filter((r) => r.dispensation_id === d.id) })),
  }
}

/** How many times each line was delivered, over the closed dispensations. */
export function deliveredCounts(l: Loaded): Map<number, number> {
  const counts = new Map<number, number>()
  for (const d of l.dispensations) {
    if (d.status !== 'closed') continue
    for (const r of d.lines) if (r.outcome === 'delivered') counts.set(r.line_no, (counts.get(r.line_no) ?? 0) + 1)
  }
  return counts
}

export const secretMatches = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

// ---- views --------------------------------------------------------------------------------------------------
const iso = (d: Date | null) => (d ? d.toISOString() : null)

export function dispensedLineView(r: DispensedLineRow) {
  return {
    line: r.line_no,
    outcome: r.outcome,
    cip13: r.cip13,
    quantity: r.quantity,
    batch: r.batch,
    substituted: r.substituted,
    dosageChange: r.dosage_changed_to ? { dosage: r.dosage_changed_to, reason: r.dosage_change_reason ?? '' } : null,
    reason: r.not_delivered_reason,
    recordedAt: r.recorded_at.toISOString(),
  }
}

export type Viewer = { kind: 'prescriber' } | { kind: 'pharmacy'; org: string } | { kind: 'patient' }

/**
 * One view for the three audiences: the prescriber sees the access code (to reprint) and, unless the patient
 * objected, what was dispensed; a pharmacy sees previous dispensations (renewals) but not other pharmacies'
 * identities; the patient sees everything about their prescription.
 */
export function prescriptionView(l: Loaded, viewer: Viewer, now: Date) {
  const { p } = l
  const hidden = viewer.kind === 'prescriber' && p.patient_objection
  const counts = deliveredCounts(l)
  const closed = l.dispensations.filter((d) => d.status === 'closed').sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))
  return {
    id: p.id,
    displayId: display(p.id),
    status: effectiveStatus(p, now),
    issuedAt: p.issued_at.toISOString(),
    validUntil: p.valid_until.toISOString(),
    prescriber: { rpps: p.prescriber_org, name: l.prescriberName },
    patient: { familyName: p.patient_family_name, givenName: p.patient_given_name, birthDate: p.patient_birth_date },
    lines: l.lines.map((x) => ({
      line: x.line_no,
      cip13: x.cip13,
      substance: x.substance,
      strength: x.strength,
      form: x.form,
      label: x.label,
      dosage: x.dosage,
      quantity: x.quantity,
      durationDays: x.duration_days,
      renewals: x.renewals,
      nonSubstitutable: x.non_substitutable,
      dispensationsAllowed: 1 + x.renewals,
      dispensed: hidden ? null : (counts.get(x.line_no) ?? 0),
      remaining: hidden ? null : Math.max(0, 1 + x.renewals - (counts.get(x.line_no) ?? 0)),
    })),
    dispensationCount: p.dispensations_closed,
    patientObjection: p.patient_objection,
    dispensedLinesHidden: hidden,
    dispensations: hidden
      ? []
      : closed.map((d) => ({
          seq: d.seq!,
          pharmacy: viewer.kind === 'pharmacy' && viewer.org !== d.pharmacy_org ? null : { id: d.pharmacy_org, name: d.pharmacy_name },
          acceptedAt: d.accepted_at.toISOString(),
          closedAt: iso(d.closed_at)!,
          lines: d.lines.map(dispensedLineView),
        })),
    cancelledAt: iso(p.cancelled_at),
    cancelReason: p.cancel_reason,
    ...(viewer.kind === 'prescriber' ? { accessCode: display(p.access_code), qrPayload: qrPayload(p.id, p.access_code) } : {}),
  }
}

export function openDispensationView(d: Loaded['dispensations'][number]) {
  return {
    id: d.id,
    status: d.status,
    acceptedAt: d.accepted_at.toISOString(),
    lines: d.lines.map(dispensedLineView),
  }
}

// ---- access log and throttling -----------------------------------------------------------------------------
export async function logAccess(db: Db, prescriptionId: string, actor: { role: string; org: string | null }, action: string, at: Date) {
  await db.insertInto('eprescription_access_log').values({ prescription_id: prescriptionId, at, actor_role: actor.role, actor_org: actor.org, action }).execute()
}

/**
 * Refuses (429 + Retry-After) when too many wrong access codes were given for this prescription, or by this
 * client (a pharmacy, or a patient's address), within the window. Counted in the database: every instance
 * sees the same attempts.
 */
export async function checkThrottle(db: Db, reply: FastifyReply, prescriptionId: string | null, client: string, now: Date) {
  const since = new Date(now.getTime() - THROTTLE.windowMs)
  const scopes: Array<['prescription' | 'client', 'prescription_id' | 'client', string | null, number]> = [
    ['prescription', 'prescription_id', prescriptionId, THROTTLE.perPrescription],
    ['client', 'client', client, THROTTLE.perClient],
  ]
  for (const [scope, column, value, limit] of scopes) {
    if (value === null) continue
    const rows = await db
      .selectFrom('eprescription_access_failures')
      .select('at')
      .where(column, '=', value)
      .where('at', '>', since)
      .orderBy('at', 'desc')
      .limit(limit)
      .execute()
    if (rows.length >= limit) {
      const freeAt = rows[limit - 1]!.at.getTime() + THROTTLE.windowMs
      const seconds = Math.max(1, Math.ceil((freeAt - now.getTime()) / 1000))
      reply.header('retry-after', String(seconds))
      throw new AppError('EPRESCRIPTION_THROTTLED', { scope, seconds }, { retryAfter: seconds })
    }
  }
}

export async function recordFailure(db: Db, prescriptionId: string | null, client: string, now: Date) {
  await db.insertInto('eprescription_access_failures').values({ prescription_id: prescriptionId, client, at: now }).execute()
}

/**
 * ID + access code → the prescription, or 404 (the same answer for an unknown ID and a wrong code). Checked
 * against the throttle first; a wrong code is recorded outside any transaction so that it counts even though
 * the request fails.
 */
export async function authenticateWithCode(db: Kysely<DB>, reply: FastifyReply, id: string, accessCode: string, client: string, now: Date) {
  await checkThrottle(db, reply, id, client, now)
  const row = await db.selectFrom('eprescriptions').select(['id', 'access_code']).where('id', '=', id).executeTakeFirst()
  if (!row || !secretMatches(row.access_code, accessCode)) {
    await recordFailure(db, row ? id : null, client, now)
    throw new AppError('EPRESCRIPTION_NOT_FOUND')
  }
}

/** Purges old failure records (they only matter within the window). */
export async function purgeFailures(db: Db, now: Date) {
  await db.deleteFrom('eprescription_access_failures').where('at', '<', new Date(now.getTime() - 24 * 3_600_000)).execute()
}

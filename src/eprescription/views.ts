/** What each audience is shown of a prescription. */
import { createHash } from 'node:crypto'
import { canonicalJson } from '../platform/canonical-json.ts'
import type { PrescriptionStatus } from './db.ts'
import { display } from './ids.ts'
import type { DispensedLineRow, LineRow, Loaded, PrescriptionRow } from './queries.ts'
import { nextDispensationFrom } from './rules/renewal.ts'

const iso = (d: Date | null) => (d ? d.toISOString() : null)

/** ready past its validity reads as expired even before the retention job records it. */
export function effectiveStatus(p: Pick<PrescriptionRow, 'status' | 'valid_until'>, now: Date): PrescriptionStatus {
  if (p.status === 'ready' && p.valid_until.getTime() <= now.getTime()) return 'expired'
  return p.status
}

/** How many times each line was delivered, over the closed dispensations. */
export function deliveredCounts(l: Pick<Loaded, 'dispensations'>): Map<number, number> {
  const counts = new Map<number, number>()
  for (const d of l.dispensations) {
    if (d.status !== 'closed') continue
    for (const r of d.lines) if (r.outcome === 'delivered') counts.set(r.line_no, (counts.get(r.line_no) ?? 0) + 1)
  }
  return counts
}

/** When each line was delivered (the close times of the dispensations that delivered it). */
export function deliveryTimes(l: Pick<Loaded, 'dispensations'>): Map<number, Date[]> {
  const times = new Map<number, Date[]>()
  for (const d of l.dispensations) {
    if (d.status !== 'closed' || !d.closed_at) continue
    for (const r of d.lines) if (r.outcome === 'delivered') times.set(r.line_no, [...(times.get(r.line_no) ?? []), d.closed_at])
  }
  return times
}

/** Per line, when its next dispensation may take place (null: nothing left). */
export function windows(l: Pick<Loaded, 'p' | 'lines' | 'dispensations'>, toleranceDays: number): Map<number, Date | null> {
  const times = deliveryTimes(l)
  return new Map(l.lines.map((x) => [x.line_no, nextDispensationFrom(x, times.get(x.line_no) ?? [], l.p.issued_at, toleranceDays)]))
}

/**
 * The prescription as issued, which the receipts bind: its ID, times, prescriber, patient and lines, as they
 * were given. The same JSON (RFC 8785) recomputes the digest from the prescription's view.
 */
export function issuedContent(p: Pick<PrescriptionRow, 'id' | 'prescriber_org' | 'patient_family_name' | 'patient_given_name' | 'patient_birth_date' | 'issued_at' | 'valid_until'>, lines: LineRow[]) {
  return {
    id: p.id,
    issuedAt: p.issued_at.toISOString(),
    validUntil: p.valid_until.toISOString(),
    prescriber: p.prescriber_org,
    patient: { familyName: p.patient_family_name, givenName: p.patient_given_name, birthDate: p.patient_birth_date },
    lines: lines.map((x) => ({
      line: x.line_no, cip13: x.cip13, substance: x.substance, strength: x.strength, form: x.form, dosage: x.dosage,
      quantity: x.quantity, units: x.units, durationDays: x.duration_days, renewals: x.renewals, nonSubstitutable: x.non_substitutable,
    })),
  }
}
export const digestOfIssued = (content: ReturnType<typeof issuedContent>) => `sha-256:${createHash('sha256').update(canonicalJson(content)).digest('base64url')}`

export function dispensedLineView(r: DispensedLineRow) {
  return {
    line: r.line_no,
    outcome: r.outcome,
    cip13: r.cip13,
    quantity: r.quantity,
    batch: r.batch,
    substituted: r.substituted,
    match: r.match,
    units: r.units,
    quantityReason: r.quantity_reason,
    dosageChange: r.dosage_changed_to ? { dosage: r.dosage_changed_to, reason: r.dosage_change_reason ?? '' } : null,
    reason: r.not_delivered_reason,
    recordedAt: r.recorded_at.toISOString(),
  }
}

export type Viewer = { kind: 'prescriber' } | { kind: 'pharmacy'; org: string } | { kind: 'patient' }

/**
 * One view for the three audiences: the prescriber sees, unless the patient objected, what was dispensed and
 * when the next renewal may be; a pharmacy sees previous dispensations (renewals) but not other pharmacies'
 * identities; the patient sees everything about their prescription.
 */
export function prescriptionView(l: Loaded, viewer: Viewer, now: Date, toleranceDays: number) {
  const { p } = l
  const hidden = viewer.kind === 'prescriber' && p.patient_objection
  const counts = deliveredCounts(l)
  const status = effectiveStatus(p, now)
  const live = status === 'ready' || status === 'in_progress'
  const next = windows(l, toleranceDays)
  const closed = l.dispensations.filter((d) => d.status === 'closed').sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))
  const nextOf = (line: number) => (hidden || !live ? null : iso(next.get(line) ?? null))
  const upcoming = l.lines.map((x) => nextOf(x.line_no)).filter((x): x is string => x !== null).sort()[0] ?? null
  return {
    id: p.id,
    displayId: display(p.id),
    status,
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
      units: x.units,
      durationDays: x.duration_days,
      renewals: x.renewals,
      nonSubstitutable: x.non_substitutable,
      dispensationsAllowed: 1 + x.renewals,
      dispensed: hidden ? null : (counts.get(x.line_no) ?? 0),
      remaining: hidden ? null : Math.max(0, 1 + x.renewals - (counts.get(x.line_no) ?? 0)),
      nextDispensationFrom: nextOf(x.line_no),
    })),
    nextDispensationFrom: upcoming,
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
    issuedDigest: p.issued_digest ?? digestOfIssued(issuedContent(p, l.lines)),
  }
}

export function openDispensationView(d: Loaded['dispensations'][number]) {
  return { id: d.id, status: d.status, acceptedAt: d.accepted_at.toISOString(), lines: d.lines.map(dispensedLineView) }
}

/** One prescription in the prescriber's list. */
export function summaryView(p: PrescriptionRow, lines: LineRow[], deliveries: Array<{ line_no: number; closed_at: Date }>, now: Date, toleranceDays: number) {
  const status = effectiveStatus(p, now)
  const hidden = p.patient_objection
  const live = status === 'ready' || status === 'in_progress'
  const next =
    hidden || !live
      ? null
      : (lines
          .map((x) => nextDispensationFrom(x, deliveries.filter((d) => d.line_no === x.line_no).map((d) => d.closed_at), p.issued_at, toleranceDays))
          .filter((d): d is Date => d !== null)
          .sort((a, b) => a.getTime() - b.getTime())[0] ?? null)
  return {
    id: p.id,
    displayId: display(p.id),
    status,
    issuedAt: p.issued_at.toISOString(),
    validUntil: p.valid_until.toISOString(),
    patient: { familyName: p.patient_family_name, givenName: p.patient_given_name, birthDate: p.patient_birth_date },
    lines: lines.length,
    dispensationCount: p.dispensations_closed,
    patientObjection: p.patient_objection,
    nextDispensationFrom: iso(next),
    cancelledAt: iso(p.cancelled_at),
  }
}

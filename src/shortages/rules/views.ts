// How a declaration (its snapshot, its summary) and an automatic response are shown, from their rows.
import type { Static } from 'typebox'
import type { Alternative, DeclarationData, DeclarationRow, ResponseRow } from '../db.ts'
import { type AutomaticResponse, CAUSES, type CauseCode, type DeclarationSnapshot } from '../schemas.ts'

const iso = (d: Date | null) => (d ? d.toISOString() : null)

export function snapshotOf(r: DeclarationRow, presentations: Static<typeof DeclarationSnapshot>['presentations']): Static<typeof DeclarationSnapshot> {
  const cause = r.cause as CauseCode
  return {
    id: r.id,
    lab: { id: r.lab_id, name: r.lab_name },
    kind: r.kind,
    status: r.status,
    version: r.version,
    source: r.source,
    mitm: r.mitm,
    atc: r.atc,
    presentations,
    cause: { code: cause, ...(CAUSES[cause] ?? { fr: cause, en: cause }) },
    causeText: r.cause_text,
    anticipatedStart: r.anticipated_start,
    actualStart: r.actual_start,
    estimatedEnd: r.estimated_end,
    estimatedEndUnknown: r.end_unknown,
    actualEnd: r.actual_end,
    stockCoverageDays: r.stock_coverage_days,
    allocation: { inPlace: r.allocation_in_place, details: r.allocation_details },
    alternatives: r.alternatives ?? [],
    advice: r.advice,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    declaredAt: iso(r.declared_at),
    closedAt: iso(r.closed_at),
  }
}

export function toResponse(r: ResponseRow): Static<typeof AutomaticResponse> {
  return {
    scope: r.declaration_id ? 'declaration' : 'presentation',
    cip13: r.cip13,
    declarationId: r.declaration_id,
    lab: { id: r.lab_id, name: r.lab_name },
    message: r.message,
    expectedReturn: r.expected_return,
    alternatives: (r.alternatives ?? []) as Alternative[],
    emergencyContact: r.emergency_contact,
    allocationRules: r.allocation_rules,
    updatedAt: r.updated_at.toISOString(),
  }
}

export function summaryOf(d: Pick<DeclarationData, 'id' | 'kind' | 'status' | 'version' | 'estimated_end' | 'end_unknown' | 'actual_end' | 'allocation_in_place' | 'advice'>) {
  return {
    id: d.id,
    kind: d.kind,
    status: d.status,
    version: d.version,
    estimatedEnd: d.estimated_end,
    estimatedEndUnknown: d.end_unknown,
    actualEnd: d.actual_end,
    allocationInPlace: d.allocation_in_place,
    advice: d.advice,
  }
}

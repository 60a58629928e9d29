/**
 * What DP-Ruptures publishes to everyone: the public list of declarations (never a draft, a pharmacy, a signal
 * or an automatic response), and the declarations' view of a presentation's availability for the product routes.
 */
import type { Static } from 'typebox'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { AppError } from '../../platform/errors.ts'
import type { Lang } from '../../platform/i18n.ts'
import { cip13Of } from '../../referential/rules/product-code.ts'
import type { DeclarationKind, DeclarationRow, DeclarationStatus } from '../db.ts'
import * as q from '../queries/declarations.ts'
import { type Db, itemsOf } from '../queries/rows.ts'
import { CAUSES, type CauseCode, KIND_LABELS, KINDS, PUBLIC_STATUSES, type PublicShortage, STATUS_LABELS } from '../schemas.ts'
import type { DeclarationFilter } from '../queries/search.ts'

export interface PublicQuery {
  cip13?: string | undefined
  q?: string | undefined
  labId?: string | undefined
  atc?: string | undefined
  mitm?: boolean | undefined
  kind?: (typeof KINDS)[number] | undefined
  status?: Exclude<DeclarationStatus, 'draft'> | undefined
  updatedSince?: string | undefined
  limit?: number | undefined
  cursor?: string | undefined
}

const iso = (d: Date | null) => (d ? d.toISOString() : null)

function toPublic(r: DeclarationRow, presentations: Static<typeof PublicShortage>['presentations']): Static<typeof PublicShortage> {
  const cause = r.cause as CauseCode
  return {
    id: r.id,
    version: r.version,
    kind: r.kind,
    kindLabel: { fr: KIND_LABELS[r.kind].fr, en: KIND_LABELS[r.kind].en },
    status: r.status as Exclude<DeclarationStatus, 'draft'>,
    statusLabel: STATUS_LABELS[r.status],
    lab: { id: r.lab_id, name: r.lab_name },
    presentations,
    atc: r.atc,
    mitm: r.mitm,
    cause: { code: cause, ...(CAUSES[cause] ?? { fr: cause, en: cause }) },
    causeText: r.cause_text,
    anticipatedStart: r.anticipated_start,
    actualStart: r.actual_start,
    estimatedEnd: r.estimated_end,
    estimatedEndUnknown: r.end_unknown,
    actualEnd: r.actual_end,
    allocation: { inPlace: r.allocation_in_place, details: r.allocation_details },
    alternatives: (r.alternatives ?? []).map((a) => (a.cip13 ? { cip13: a.cip13, description: a.description } : { description: a.description })),
    advice: r.advice,
    source: r.source,
    declaredAt: iso(r.declared_at),
    updatedAt: r.updated_at.toISOString(),
    closedAt: iso(r.closed_at),
  }
}

/**
 * One page of the public list: every declaration but drafts, most recently changed first (by change sequence,
 * so a page never repeats an item; one changed while paging comes back first next time).
 */
export async function publicShortages(db: Db, query: PublicQuery, lang: Lang, maxLimit: number) {
  const { limit = 50, cursor, ...rest } = query
  const filter: DeclarationFilter & Record<string, unknown> = {
    ...rest,
    cip13: rest.cip13 ? cip13Of(rest.cip13, 'querystring.cip13', lang) : undefined,
    updatedSince: undefined,
  }
  const key = { ...filter, updatedSince: rest.updatedSince }
  let beforeSeq: number | null = null
  if (cursor) {
    const after = decodeCursor<{ s: number }>(cursor, key)
    if (!Number.isSafeInteger(after.s)) throw new AppError('INVALID_CURSOR')
    beforeSeq = after.s
  }
  const n = Math.min(limit, maxLimit)
  const statuses = (rest.status ?? PUBLIC_STATUSES) as DeclarationStatus[]
  const rows = await q.publicPage(db, { ...filter, status: statuses }, { updatedSince: rest.updatedSince, beforeSeq, limit: n })
  const page = rows.slice(0, n)
  const items = await itemsOf(db, page.map((r) => r.id))
  const last = page[page.length - 1]
  return { items: page.map((r) => toPublic(r, items.get(r.id) ?? [])), nextCursor: rows.length > n && last ? encodeCursor({ s: last.change_seq }, key) : null }
}

export interface DeclaredAvailability {
  id: string
  kind: DeclarationKind
  status: DeclarationStatus
  startDate: string | null
  /** Set when the shortage actually started (an anticipated one that materialised). */
  actualStart: string | null
  plannedEndDate: string | null
  endDate: string | null
  closedAt: Date | null
  /** The current version was written by the lab (through the API), not by the BDPM availability import. */
  byLab: boolean
}

/**
 * What the labs' declarations say of each presentation: its open declaration (declared or ongoing), else its
 * most recently closed one (null when there is none). The referential decides how this combines with the
 * BDPM availability file (referential/use-cases/bdpm-import.ts).
 */
export async function declaredAvailability(db: Db, cip13s: string[]): Promise<Map<string, DeclaredAvailability>> {
  const out = new Map<string, DeclaredAvailability>()
  if (cip13s.length === 0) return out
  const rows = await q.declarationsOfPresentations(db, cip13s)
  for (const r of rows) {
    if (out.has(r.cip13)) continue
    out.set(r.cip13, {
      kind: r.kind,
      status: r.status,
      id: r.id,
      startDate: r.actual_start ?? r.anticipated_start,
      actualStart: r.actual_start,
      plannedEndDate: r.estimated_end,
      endDate: r.actual_end,
      closedAt: r.closed_at,
      byLab: r.actor_role === 'lab',
    })
  }
  return out
}

/**
 * A presentation's availability: the BDPM availability line, and the lab's own declaration on DP-Ruptures that
 * comes before it (see the ProductAvailability schema).
 */
import type { Static } from 'typebox'
import type { DeclaredAvailability } from '../../shortages/use-cases/public.ts'
import { type ProductAvailability, STATUS } from '../schemas/products.ts'

interface AvailabilityCols {
  code: number | null
  label: string | null
  start: string | null
  end: string | null
  returned: string | null
  link: string | null
  updated?: Date | null
}
export type Availability = Static<typeof ProductAvailability>
export function availabilityOf(a: AvailabilityCols, scope: 'presentation' | 'medicine'): Availability | null {
  if (a.code === null) return null
  return {
    status: STATUS[a.code - 1] ?? 'shortage',
    statusCode: a.code,
    label: a.label ?? '',
    startDate: a.start,
    plannedEndDate: a.end,
    returnDate: a.returned,
    link: a.link,
    scope,
    source: 'bdpm',
    declarationId: null,
  }
}

/** BDPM wording of the four statuses, for a status that comes from a declaration. */
const BDPM_LABELS = ['Rupture de stock', 'Tension d’approvisionnement', 'Arrêt de commercialisation', 'Remise à disposition']
const KIND_CODE: Record<DeclaredAvailability['kind'], number> = { observed: 1, anticipated: 2, discontinuation: 3, availability_return: 4 }

/** An anticipated shortage that materialised (ongoing, or with an actual start) is a shortage. */
const openCode = (d: DeclaredAvailability) => (d.kind === 'anticipated' && (d.status === 'ongoing' || d.actualStart) ? 1 : KIND_CODE[d.kind])

function fromDeclaration(d: DeclaredAvailability, code: number, returnDate: string | null): Availability {
  return { status: STATUS[code - 1]!, statusCode: code, label: BDPM_LABELS[code - 1]!, startDate: d.startDate, plannedEndDate: d.plannedEndDate, returnDate, link: null, scope: 'presentation', source: 'declaration', declarationId: d.id }
}

/**
 * A presentation's availability: the lab's word first, then the BDPM file (see the ProductAvailability schema).
 * `bdpm` is the BDPM status for the presentation or, failing that, its medicine; `updated` when it was imported.
 */
export function combinedAvailability(bdpm: Availability | null, bdpmUpdated: Date | null, d: DeclaredAvailability | undefined): Availability | null {
  if (d && d.byLab) {
    if (d.status === 'declared' || d.status === 'ongoing') return fromDeclaration(d, openCode(d), d.kind === 'availability_return' ? d.startDate : null)
    // Closed by the lab: newer than the BDPM line, or no line at all.
    if (d.closedAt && (!bdpm || !bdpmUpdated || d.closedAt > bdpmUpdated)) {
      if (d.status === 'discontinued') return fromDeclaration(d, 3, null)
      if (bdpm && d.status === 'resolved') return fromDeclaration(d, 4, d.endDate)
      if (bdpm) return null // resolved with no line left to contradict, or avoided: nothing to report
    }
  }
  if (bdpm) return bdpm
  // A declaration imported from the BDPM file whose line the referential does not hold.
  if (d && (d.status === 'declared' || d.status === 'ongoing')) return fromDeclaration(d, openCode(d), null)
  return null
}

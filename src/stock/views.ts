/** How campaigns, declarations and aggregates are shown: the API's JSON shapes and the aggregates' CSV. */
import { stringify } from '../platform/csv.ts'
import type { CampaignProductView, CampaignRow, DeclarationRow } from './queries.ts'
import { statusOf } from './rules.ts'
import type { PublishedCell, PublishedTable } from './suppression.ts'
import { type Week, weekAt, weekOfMonday } from './time.ts'

export const iso = (d: Date | null) => (d ? d.toISOString() : null)

export function weekInfo(w: Week) {
  return { week: w.week, monday: w.monday, start: w.start.toISOString(), end: w.end.toISOString() }
}

export function toCampaign(c: CampaignRow, products: CampaignProductView[], now: Date) {
  const status = statusOf(c, now)
  return {
    id: c.id,
    name: c.name,
    period: c.period,
    startDate: c.start_date,
    endDate: c.end_date,
    retentionDays: c.retention_days,
    minPharmacies: c.min_pharmacies,
    status,
    currentWeek: status === 'open' ? weekInfo(weekAt(now)) : null,
    products,
    createdAt: c.created_at.toISOString(),
    closedAt: iso(c.closed_at),
  }
}

export function toDeclaration(d: DeclarationRow) {
  const w = weekOfMonday(d.week)
  return {
    id: d.id,
    campaignId: d.campaign_id,
    pharmacyId: d.pharmacy_id,
    department: d.department,
    week: w.week,
    monday: d.week,
    cip13: d.cip13,
    quantity: d.quantity,
    version: d.version,
    firstDeclaredAt: d.first_declared_at.toISOString(),
    declaredAt: d.declared_at.toISOString(),
  }
}

// ---- aggregates as CSV -----------------------------------------------------------------------------------

const CSV_COLUMNS = [
  ['week', 'Semaine'],
  ['monday', 'Lundi'],
  ['department', 'Département'],
  ['region', 'Région'],
  ['cip13', 'Code CIP13'],
  ['name', 'Produit'],
  ['totalQuantity', 'Quantité totale'],
  ['pharmacies', 'Nombre d’officines déclarantes'],
  ['secret', 'Secret statistique'],
] as const
const SECRET = { below_threshold: 'secret (moins de pharmacies que le seuil)', complementary: 'secret complémentaire' } as const

interface AggregateWeeks {
  weeks: Array<{ week: string; monday: string; products: Array<{ cip13: string; name: string; national: PublishedTable['national']; departments: Array<PublishedCell & { region: string | null }> }> }>
}

/** One line per week, product and department, then the product's national line; suppressed figures empty. */
export function aggregatesCsv(data: AggregateWeeks) {
  const records: Array<Record<string, string | number>> = []
  for (const w of data.weeks) {
    for (const p of w.products) {
      for (const d of p.departments) {
        records.push({ week: w.week, monday: w.monday, department: d.department, region: d.region ?? '', cip13: p.cip13, name: p.name, totalQuantity: d.totalQuantity ?? '', pharmacies: d.pharmacies ?? '', secret: d.reason ? SECRET[d.reason] : '' })
      }
      records.push({ week: w.week, monday: w.monday, department: 'France entière', region: '', cip13: p.cip13, name: p.name, totalQuantity: p.national.totalQuantity ?? '', pharmacies: p.national.pharmacies ?? '', secret: p.national.suppressed ? SECRET.complementary : '' })
    }
  }
  return stringify(records, { header: true, bom: true, delimiter: ';', columns: CSV_COLUMNS.map(([key, header]) => ({ key, header })) })
}

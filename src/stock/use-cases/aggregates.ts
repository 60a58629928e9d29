/** The published aggregates of a campaign: complete weeks only, with the statistical suppression applied. */
import { regionOfDepartment } from '../../platform/identifiers.ts'
import { fieldError } from '../errors.ts'
import * as q from '../queries.ts'
import { isPublished, mondayParam } from '../rules.ts'
import { type Cell, suppress } from '../suppression.ts'
import { parisDay, weekOfMonday } from '../time.ts'
import { type Deps, loadCampaign, type Who } from './context.ts'

/** Every published week of the campaign, or the one asked for; a week not yet published is a 400. */
export async function publishedAggregates(deps: Deps, who: Pick<Who, 'lang'>, campaignId: string, weekLabel: string | undefined, now: Date) {
  const campaign = await loadCampaign(deps.db, campaignId)
  let monday: string | undefined
  if (weekLabel) {
    monday = mondayParam(weekLabel, who.lang)
    if (!isPublished(campaign, monday, now)) {
      const end = weekOfMonday(monday).end
      throw fieldError('querystring.week', 'not_published', { fr: `la semaine ${weekLabel} n’est pas terminée ; ses agrégats seront publiés le ${parisDay(end)}`, en: `week ${weekLabel} has not ended; its aggregates are published on ${parisDay(end)}` }, who.lang)
    }
  }
  return aggregatesOf(deps.db, campaign, now, monday)
}

/** Per published week and product: the department cells after suppression, and the national total. */
async function aggregatesOf(db: q.Db, campaign: q.CampaignRow, now: Date, onlyMonday?: string) {
  const rows = await q.aggregateCells(db, campaign.id, onlyMonday)
  const products = (await q.productsOf(db, [campaign.id])).get(campaign.id) ?? []
  const byWeek = new Map<string, Map<string, Cell[]>>()
  for (const r of rows) {
    if (!isPublished(campaign, r.week, now)) continue
    const week = byWeek.get(r.week) ?? new Map<string, Cell[]>()
    const cells = week.get(r.cip13) ?? []
    cells.push({ department: r.department, totalQuantity: Number(r.total_quantity), pharmacies: r.pharmacies })
    week.set(r.cip13, cells)
    byWeek.set(r.week, week)
  }
  return {
    campaignId: campaign.id,
    name: campaign.name,
    minPharmacies: campaign.min_pharmacies,
    weeks: [...byWeek].map(([monday, cellsByProduct]) => ({
      week: weekOfMonday(monday).week,
      monday,
      products: products.map((p) => {
        const table = suppress(cellsByProduct.get(p.cip13) ?? [], campaign.min_pharmacies)
        return {
          cip13: p.cip13,
          name: p.name,
          national: table.national,
          departments: table.departments.map((d) => ({ ...d, region: regionOfDepartment(d.department) })),
        }
      }),
    })),
  }
}

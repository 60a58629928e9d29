import { randomUUID } from 'node:crypto'
import type { Kysely, Selectable, Transaction } from 'kysely'
import { sql } from 'kysely'
import { type Actor, audit, SYSTEM } from '../platform/audit.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError, notFound } from '../platform/errors.ts'
import type { Lang } from '../platform/i18n.ts'
import { departmentOfFiness, regionOfDepartment } from '../platform/identifiers.ts'
import type { StockCampaignsTable, StockDeclarationsTable } from './db.ts'
import { type Cell, suppress } from './suppression.ts'
import { addDays, parisStartOfDay, type Week, weekAt, weekOfMonday } from './time.ts'

export type Db = Kysely<DB> | Transaction<DB>
export type CampaignRow = Selectable<StockCampaignsTable>
export type DeclarationRow = Selectable<StockDeclarationsTable>
export type CampaignStatus = 'scheduled' | 'open' | 'ended' | 'closed'

export const OBJECT_CAMPAIGN = 'stock-campaign'
export const OBJECT_DECLARATION = 'stock-declaration'
export const RETENTION_QUEUE = 'stock.retention'

export const campaignNotFound = () => notFound('La campagne', 'The campaign')
export const declarationNotFound = () => notFound('La déclaration', 'The declaration')

/** A 400 naming the field, like the schema validation's. */
export function fieldError(field: string, code: string, text: { fr: string; en: string }, lang: Lang) {
  return new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field, code, message: text[lang] }] })
}

// ---- campaigns -----------------------------------------------------------------------------------------

/** Declarations are accepted from startDate 00:00 to the day after endDate 00:00, Paris time. */
export const opensAt = (c: Pick<CampaignRow, 'start_date'>) => parisStartOfDay(c.start_date)
export const endsAt = (c: Pick<CampaignRow, 'end_date'>) => parisStartOfDay(addDays(c.end_date, 1))

export function statusOf(c: CampaignRow, now: Date): CampaignStatus {
  if (c.closed_at) return 'closed'
  if (now < opensAt(c)) return 'scheduled'
  if (now >= endsAt(c)) return 'ended'
  return 'open'
}

/** Raw data of a week is purged at 00:00 Paris time, retentionDays days after the week ended. */
export const purgeAt = (monday: string, retentionDays: number) => parisStartOfDay(addDays(monday, 7 + retentionDays))

/**
 * A week's aggregates are published once no declaration can change them any more: the week has ended, or the
 * campaign is over. Publishing a week in progress would let a reader who reads before and after one pharmacy's
 * declaration learn its quantity by difference, whatever the cell suppression.
 */
export function isPublished(c: CampaignRow, monday: string, now: Date) {
  return weekOfMonday(monday).end <= now || c.closed_at !== null || now >= endsAt(c)
}

export const iso = (d: Date | null) => (d ? d.toISOString() : null)

export function weekInfo(w: Week) {
  return { week: w.week, monday: w.monday, start: w.start.toISOString(), end: w.end.toISOString() }
}

export async function productsOf(db: Db, campaignIds: string[]) {
  const out = new Map<string, Array<{ cip13: string; name: string; label: string }>>()
  if (campaignIds.length === 0) return out
  const rows = await db
    .selectFrom('stock_campaign_products as cp')
    .innerJoin('presentations as p', 'p.cip13', 'cp.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['cp.campaign_id', 'cp.cip13', 'm.name', 'p.label'])
    .where('cp.campaign_id', 'in', campaignIds)
    .orderBy('cp.campaign_id')
    .orderBy('cp.position')
    .execute()
  for (const r of rows) {
    const list = out.get(r.campaign_id) ?? []
    list.push({ cip13: r.cip13, name: r.name, label: r.label })
    out.set(r.campaign_id, list)
  }
  return out
}

export function toCampaign(c: CampaignRow, products: Array<{ cip13: string; name: string; label: string }>, now: Date) {
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

export async function loadCampaign(db: Db, id: string, forUpdate = false) {
  let q = db.selectFrom('stock_campaigns').selectAll().where('id', '=', id)
  if (forUpdate) q = q.forUpdate()
  const c = await q.executeTakeFirst()
  if (!c) throw campaignNotFound()
  return c
}

// ---- declarations ----------------------------------------------------------------------------------------

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

/** Adds to an aggregate cell under its row lock (concurrent declarations add up; none is lost). */
async function bump(tx: Transaction<DB>, key: { campaign_id: string; week: string; cip13: string; department: string }, quantity: number, pharmacies: number) {
  await tx
    .insertInto('stock_aggregates')
    .values({ ...key, total_quantity: quantity, pharmacies })
    .onConflict((oc) =>
      oc.columns(['campaign_id', 'week', 'cip13', 'department']).doUpdateSet({
        total_quantity: sql`stock_aggregates.total_quantity + excluded.total_quantity`,
        pharmacies: sql`stock_aggregates.pharmacies + excluded.pharmacies`,
      }),
    )
    .execute()
}

/** The pharmacy's department, from the referential (else from its FINESS). */
export async function departmentOf(db: Db, pharmacyId: string) {
  const org = await db.selectFrom('organisations').select('department').where('id', '=', pharmacyId).executeTakeFirst()
  return org?.department ?? departmentOfFiness(pharmacyId) ?? '??'
}

/**
 * Records the quantities of one pharmacy for the current week, in the caller's transaction: each product's
 * value replaces the week's previous one, which goes to the history; the aggregates move by the difference.
 * Items are handled in CIP13 order so that concurrent bulk declarations lock aggregate rows in the same order.
 */
export async function recordDeclarations(
  tx: Transaction<DB>,
  input: { campaign: CampaignRow; pharmacyId: string; items: Array<{ cip13: string; quantity: number }>; actor: Actor; now: Date },
) {
  const { campaign, pharmacyId, actor, now } = input
  const week = weekAt(now)
  const department = await departmentOf(tx, pharmacyId)
  const items = [...input.items].sort((a, b) => a.cip13.localeCompare(b.cip13))
  const out: Array<ReturnType<typeof toDeclaration> & { replaced: boolean }> = []
  for (const item of items) {
    const key = { campaign_id: campaign.id, pharmacy_id: pharmacyId, week: week.monday, cip13: item.cip13 }
    const inserted = await tx
      .insertInto('stock_declarations')
      .values({ id: randomUUID(), ...key, department, quantity: item.quantity, version: 1, first_declared_at: now, declared_at: now, declared_by: actor.user })
      .onConflict((oc) => oc.columns(['campaign_id', 'pharmacy_id', 'week', 'cip13']).doNothing())
      .returningAll()
      .executeTakeFirst()
    if (inserted) {
      await bump(tx, { campaign_id: campaign.id, week: week.monday, cip13: item.cip13, department }, item.quantity, 1)
      out.push({ ...toDeclaration(inserted), replaced: false })
      continue
    }
    const before = await tx
      .selectFrom('stock_declarations')
      .selectAll()
      .where('campaign_id', '=', key.campaign_id)
      .where('pharmacy_id', '=', key.pharmacy_id)
      .where('week', '=', key.week)
      .where('cip13', '=', key.cip13)
      .forUpdate()
      .executeTakeFirstOrThrow()
    await tx
      .insertInto('stock_declaration_history')
      .values({ declaration_id: before.id, version: before.version, quantity: before.quantity, declared_at: before.declared_at, declared_by: before.declared_by, replaced_at: now })
      .execute()
    const after = await tx
      .updateTable('stock_declarations')
      .set({ quantity: item.quantity, version: before.version + 1, declared_at: now, declared_by: actor.user, department })
      .where('id', '=', before.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    if (before.department === department) {
      await bump(tx, { campaign_id: campaign.id, week: week.monday, cip13: item.cip13, department }, item.quantity - before.quantity, 0)
    } else {
      // The pharmacy moved department in the referential during the week: its figure moves with it.
      await bump(tx, { campaign_id: campaign.id, week: week.monday, cip13: item.cip13, department: before.department }, -before.quantity, -1)
      await bump(tx, { campaign_id: campaign.id, week: week.monday, cip13: item.cip13, department }, item.quantity, 1)
    }
    out.push({ ...toDeclaration(after), replaced: true })
  }
  // The audit trail names who declared what, never the quantities: those are raw data, purged after the
  // retention, and the audit trail is kept for ever.
  await audit(
    tx,
    actor,
    {
      action: `${OBJECT_DECLARATION}.declared`,
      objectType: OBJECT_CAMPAIGN,
      objectId: campaign.id,
      changes: { pharmacy: pharmacyId, week: week.week, products: out.map((d) => ({ cip13: d.cip13, version: d.version, declarationId: d.id })) },
    },
    now,
  )
  return { week, items: out }
}

// ---- aggregates ------------------------------------------------------------------------------------------

export async function aggregatesOf(db: Db, campaign: CampaignRow, now: Date, onlyMonday?: string) {
  let q = db.selectFrom('stock_aggregates').select(['week', 'cip13', 'department', 'total_quantity', 'pharmacies']).where('campaign_id', '=', campaign.id).where('pharmacies', '>', 0)
  if (onlyMonday) q = q.where('week', '=', onlyMonday)
  const rows = await q.orderBy('week').execute()
  const products = (await productsOf(db, [campaign.id])).get(campaign.id) ?? []
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

// ---- retention -------------------------------------------------------------------------------------------

/**
 * Purges the raw declarations (and their history) of every week past the campaign's retention, and records
 * the purge with its counts in the audit trail. The aggregates are kept. Returns when to run again: the purge
 * time of the oldest week left, or of the current week while the campaign may still receive declarations;
 * null when nothing is left to purge.
 */
export async function purgeExpired(db: Kysely<DB>, campaignId: string, now: Date): Promise<{ declarations: number; history: number; weeks: string[]; next: Date | null }> {
  return db.transaction().execute(async (tx) => {
    const campaign = await tx.selectFrom('stock_campaigns').selectAll().where('id', '=', campaignId).forUpdate().executeTakeFirst()
    if (!campaign) return { declarations: 0, history: 0, weeks: [], next: null }
    const weeks = (await tx.selectFrom('stock_declarations').select('week').distinct().where('campaign_id', '=', campaignId).orderBy('week').execute()).map((r) => r.week)
    const expired = weeks.filter((w) => purgeAt(w, campaign.retention_days) <= now)
    let declarations = 0
    let history = 0
    if (expired.length > 0) {
      const ids = tx.selectFrom('stock_declarations').select('id').where('campaign_id', '=', campaignId).where('week', 'in', expired)
      history = Number((await tx.deleteFrom('stock_declaration_history').where('declaration_id', 'in', ids).executeTakeFirst()).numDeletedRows)
      declarations = Number((await tx.deleteFrom('stock_declarations').where('campaign_id', '=', campaignId).where('week', 'in', expired).executeTakeFirst()).numDeletedRows)
      const last = expired[expired.length - 1]!
      await tx.updateTable('stock_campaigns').set({ purged_through: last }).where('id', '=', campaignId).execute()
      await audit(
        tx,
        { ...SYSTEM, user: 'stock-retention' },
        {
          action: `${OBJECT_CAMPAIGN}.raw-data-purged`,
          objectType: OBJECT_CAMPAIGN,
          objectId: campaignId,
          changes: { declarations, history, weeks: expired.map((w) => weekOfMonday(w).week), retentionDays: campaign.retention_days },
        },
        now,
      )
    }
    const left = weeks.filter((w) => !expired.includes(w))
    let next: Date | null = null
    if (left.length > 0) next = purgeAt(left[0]!, campaign.retention_days)
    else if (!campaign.closed_at && now < endsAt(campaign)) next = purgeAt(weekAt(now < opensAt(campaign) ? opensAt(campaign) : now).monday, campaign.retention_days)
    return { declarations, history, weeks: expired, next }
  })
}

/**
 * The stock campaigns' SQL. Functions take a Kysely or a Transaction; where a read is scoped to one pharmacy,
 * the pharmacy is a parameter and the filter is in the query.
 */
import type { Insertable, Kysely, Selectable, Transaction } from 'kysely'
import { sql } from 'kysely'
import type { DB } from '../platform/db/schema.ts'
import type { StockCampaignsTable, StockDeclarationHistoryTable, StockDeclarationsTable } from './db.ts'
import './db.ts'

export type Db = Kysely<DB> | Transaction<DB>
export type CampaignRow = Selectable<StockCampaignsTable>
export type DeclarationRow = Selectable<StockDeclarationsTable>
export type CampaignProductView = { cip13: string; name: string; label: string }

// ---- referential -----------------------------------------------------------------------------------------

/** Which of these CIP13 exist in the referential. */
export async function knownPresentations(db: Db, cip13s: string[]) {
  return new Set((await db.selectFrom('presentations').select('cip13').where('cip13', 'in', cip13s).execute()).map((r) => r.cip13))
}

/** The pharmacy's department in the referential, if it has one. */
export async function organisationDepartment(db: Db, pharmacyId: string) {
  const org = await db.selectFrom('organisations').select('department').where('id', '=', pharmacyId).executeTakeFirst()
  return org?.department
}

// ---- campaigns -------------------------------------------------------------------------------------------

export async function findCampaign(db: Db, id: string, lock?: 'update' | 'share') {
  let q = db.selectFrom('stock_campaigns').selectAll().where('id', '=', id)
  if (lock === 'update') q = q.forUpdate()
  if (lock === 'share') q = q.forShare()
  return q.executeTakeFirst()
}

export async function insertCampaign(tx: Transaction<DB>, row: Insertable<StockCampaignsTable>, products: string[]) {
  const inserted = await tx.insertInto('stock_campaigns').values(row).returningAll().executeTakeFirstOrThrow()
  await tx.insertInto('stock_campaign_products').values(products.map((cip13, position) => ({ campaign_id: row.id, cip13, position }))).execute()
  return inserted
}

export async function closeCampaign(tx: Transaction<DB>, id: string, at: Date, by: string) {
  return tx.updateTable('stock_campaigns').set({ closed_at: at, closed_by: by }).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
}

/**
 * A page of campaigns, newest first, one more than `limit` to tell whether another page follows. The status is
 * read against `today` (Paris calendar).
 */
export async function listCampaigns(db: Db, opts: { status?: 'scheduled' | 'open' | 'ended' | 'closed'; today: string; after?: { createdAt: Date; id: string }; limit: number }) {
  const { status, today, after, limit } = opts
  let q = db.selectFrom('stock_campaigns').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1)
  if (status === 'closed') q = q.where('closed_at', 'is not', null)
  else if (status) {
    q = q.where('closed_at', 'is', null)
    if (status === 'scheduled') q = q.where('start_date', '>', today)
    if (status === 'open') q = q.where('start_date', '<=', today).where('end_date', '>=', today)
    if (status === 'ended') q = q.where('end_date', '<', today)
  }
  if (after) q = q.where((eb) => eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(after.createdAt as any, after.id)))
  return q.execute()
}

/** The products of each campaign, in their campaign order, with their names from the referential. */
export async function productsOf(db: Db, campaignIds: string[]) {
  const out = new Map<string, CampaignProductView[]>()
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

/** The CIP13 listed in a campaign. */
export async function listedProducts(db: Db, campaignId: string) {
  return new Set((await db.selectFrom('stock_campaign_products').select('cip13').where('campaign_id', '=', campaignId).execute()).map((r) => r.cip13))
}

// ---- declarations ----------------------------------------------------------------------------------------

/** One declaration; with `pharmacyId`, only if it is that pharmacy's. */
export async function findDeclaration(db: Db, id: string, pharmacyId?: string) {
  let q = db.selectFrom('stock_declarations').selectAll().where('id', '=', id)
  if (pharmacyId !== undefined) q = q.where('pharmacy_id', '=', pharmacyId)
  return q.executeTakeFirst()
}

export async function declarationHistory(db: Db, declarationId: string) {
  return db.selectFrom('stock_declaration_history').selectAll().where('declaration_id', '=', declarationId).orderBy('version').execute()
}

/** A pharmacy's current values for one week of a campaign. */
export async function pharmacyDeclarations(db: Db, campaignId: string, pharmacyId: string, monday: string) {
  return db.selectFrom('stock_declarations').selectAll().where('campaign_id', '=', campaignId).where('pharmacy_id', '=', pharmacyId).where('week', '=', monday).orderBy('cip13').execute()
}

/** A page of a campaign's declarations by week, pharmacy and product, one more than `limit`. */
export async function listDeclarations(
  db: Db,
  campaignId: string,
  opts: { monday?: string; cip13?: string; department?: string; after?: { week: string; pharmacyId: string; cip13: string }; limit: number },
) {
  const { monday, cip13, department, after, limit } = opts
  let q = db.selectFrom('stock_declarations').selectAll().where('campaign_id', '=', campaignId).orderBy('week').orderBy('pharmacy_id').orderBy('cip13').limit(limit + 1)
  if (monday) q = q.where('week', '=', monday)
  if (cip13) q = q.where('cip13', '=', cip13)
  if (department) q = q.where('department', '=', department)
  if (after) q = q.where((eb) => eb(eb.refTuple('week', 'pharmacy_id', 'cip13'), '>', eb.tuple(after.week, after.pharmacyId, after.cip13)))
  return q.execute()
}

type DeclarationKey = { campaign_id: string; pharmacy_id: string; week: string; cip13: string }

/** Inserts the week's first value of a product; undefined when the pharmacy already declared it this week. */
export async function insertDeclarationIfNew(tx: Transaction<DB>, row: Insertable<StockDeclarationsTable> & DeclarationKey) {
  return tx
    .insertInto('stock_declarations')
    .values(row)
    .onConflict((oc) => oc.columns(['campaign_id', 'pharmacy_id', 'week', 'cip13']).doNothing())
    .returningAll()
    .executeTakeFirst()
}

/** The week's current value of a product, locked for the transaction. */
export async function lockDeclaration(tx: Transaction<DB>, key: DeclarationKey) {
  return tx
    .selectFrom('stock_declarations')
    .selectAll()
    .where('campaign_id', '=', key.campaign_id)
    .where('pharmacy_id', '=', key.pharmacy_id)
    .where('week', '=', key.week)
    .where('cip13', '=', key.cip13)
    .forUpdate()
    .executeTakeFirstOrThrow()
}

export async function insertHistory(tx: Transaction<DB>, row: Insertable<StockDeclarationHistoryTable>) {
  await tx.insertInto('stock_declaration_history').values(row).execute()
}

export async function updateDeclaration(tx: Transaction<DB>, id: string, set: Pick<DeclarationRow, 'quantity' | 'version' | 'declared_at' | 'declared_by' | 'department'>) {
  return tx.updateTable('stock_declarations').set(set).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
}

// ---- aggregates ------------------------------------------------------------------------------------------

/** Adds to an aggregate cell under its row lock (concurrent declarations add up; none is lost). */
export async function bumpAggregate(tx: Transaction<DB>, key: { campaign_id: string; week: string; cip13: string; department: string }, quantity: number, pharmacies: number) {
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

/** The campaign's non-empty aggregate cells, by week; of one week with `onlyMonday`. */
export async function aggregateCells(db: Db, campaignId: string, onlyMonday?: string) {
  let q = db.selectFrom('stock_aggregates').select(['week', 'cip13', 'department', 'total_quantity', 'pharmacies']).where('campaign_id', '=', campaignId).where('pharmacies', '>', 0)
  if (onlyMonday) q = q.where('week', '=', onlyMonday)
  return q.orderBy('week').execute()
}

// ---- retention -------------------------------------------------------------------------------------------

/** The weeks that still hold raw declarations, oldest first. */
export async function declaredWeeks(db: Db, campaignId: string) {
  return (await db.selectFrom('stock_declarations').select('week').distinct().where('campaign_id', '=', campaignId).orderBy('week').execute()).map((r) => r.week)
}

/** Deletes the raw declarations of these weeks and their history; answers both counts. */
export async function deleteWeeks(tx: Transaction<DB>, campaignId: string, weeks: string[]) {
  const ids = tx.selectFrom('stock_declarations').select('id').where('campaign_id', '=', campaignId).where('week', 'in', weeks)
  const history = Number((await tx.deleteFrom('stock_declaration_history').where('declaration_id', 'in', ids).executeTakeFirst()).numDeletedRows)
  const declarations = Number((await tx.deleteFrom('stock_declarations').where('campaign_id', '=', campaignId).where('week', 'in', weeks).executeTakeFirst()).numDeletedRows)
  return { declarations, history }
}

export async function setPurgedThrough(tx: Transaction<DB>, campaignId: string, monday: string) {
  await tx.updateTable('stock_campaigns').set({ purged_through: monday }).where('id', '=', campaignId).execute()
}

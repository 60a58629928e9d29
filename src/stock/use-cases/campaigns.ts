/** The operator's campaigns: define, list, read, close. */
import { randomUUID } from 'node:crypto'
import type { Static } from 'typebox'
import { audit } from '../../platform/audit.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { AppError } from '../../platform/errors.ts'
import { publish } from '../../platform/events/publish.ts'
import { enqueue } from '../../platform/jobs.ts'
import * as q from '../queries.ts'
import { campaignErrors, type CampaignStatus, purgeAt, statusOf } from '../rules.ts'
import { type CampaignInput, DEFAULT_MIN_PHARMACIES, DEFAULT_RETENTION_DAYS } from '../schemas.ts'
import { mondayOf, parisDay } from '../time.ts'
import { toCampaign } from '../views.ts'
import { actor, type Deps, loadCampaign, OBJECT_CAMPAIGN, type Who } from './context.ts'
import { RETENTION_QUEUE } from './retention.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * Checks the definition (all errors at once), then in one transaction: the campaign and its products, the
 * audit entry, the pharmacies' event and the retention job.
 */
export async function createCampaign(deps: Deps, who: Who, input: Static<typeof CampaignInput>, now: Date) {
  const errors = campaignErrors(input, await q.knownPresentations(deps.db, input.products), who.lang)
  if (errors.length) throw new AppError('STOCK_CAMPAIGN_INVALID', { count: errors.length }, { errors })

  return inTransaction(deps.db, async (tx) => {
    const id = randomUUID()
    const row = await q.insertCampaign(
      tx,
      {
        id,
        name: input.name,
        period: 'weekly',
        start_date: input.startDate,
        end_date: input.endDate,
        retention_days: input.retentionDays ?? DEFAULT_RETENTION_DAYS,
        min_pharmacies: input.minPharmacies ?? DEFAULT_MIN_PHARMACIES,
        created_at: now,
        created_by: who.principal.user,
      },
      input.products,
    )
    await audit(tx, actor(who), { action: `${OBJECT_CAMPAIGN}.created`, objectType: OBJECT_CAMPAIGN, objectId: id, changes: { ...input, retentionDays: row.retention_days, minPharmacies: row.min_pharmacies } }, now)
    await publish(
      tx,
      { type: 'stock.campaign_created', payload: { campaignId: id, name: input.name, products: input.products, startDate: input.startDate, endDate: input.endDate }, audience: { roles: ['pharmacy'] }, senderOrg: who.principal.org, subject: { type: OBJECT_CAMPAIGN, id } },
      now,
    )
    // The retention job: first due when the first week's raw data expires; it reschedules itself.
    await enqueue(tx, RETENTION_QUEUE, { campaignId: id }, { runAt: purgeAt(mondayOf([parisDay(now), input.startDate].sort()[1]!), row.retention_days), singletonKey: id })
    return toCampaign(row, (await q.productsOf(tx, [id])).get(id) ?? [], now)
  })
}

/** A page of campaigns, newest first, optionally of one status; the cursor is bound to the filter. */
export async function listCampaigns(deps: Deps, query: { status?: CampaignStatus; limit: number; cursor?: string }, now: Date) {
  const { status, limit, cursor } = query
  const filter = { status }
  let after: { createdAt: Date; id: string } | undefined
  if (cursor) {
    const c = decodeCursor<{ t: string; i: string }>(cursor, filter)
    if (typeof c.t !== 'string' || Number.isNaN(Date.parse(c.t)) || typeof c.i !== 'string' || !UUID.test(c.i)) throw new AppError('INVALID_CURSOR')
    after = { createdAt: new Date(c.t), id: c.i }
  }
  const rows = await q.listCampaigns(deps.db, { status, today: parisDay(now), after, limit })
  const page = rows.slice(0, limit)
  const products = await q.productsOf(deps.db, page.map((r) => r.id))
  const last = page[page.length - 1]
  return {
    items: page.map((r) => toCampaign(r, products.get(r.id) ?? [], now)),
    nextCursor: rows.length > limit && last ? encodeCursor({ t: last.created_at.toISOString(), i: last.id }, filter) : null,
  }
}

export async function getCampaign(deps: Deps, id: string, now: Date) {
  const c = await loadCampaign(deps.db, id)
  return toCampaign(c, (await q.productsOf(deps.db, [c.id])).get(c.id) ?? [], now)
}

/** Closes under the campaign's row lock, so that a declaration in flight finishes first or sees it closed. */
export async function closeCampaign(deps: Deps, who: Who, id: string, now: Date) {
  return inTransaction(deps.db, async (tx) => {
    const c = await loadCampaign(tx, id, 'update')
    if (c.closed_at) throw new AppError('STOCK_CAMPAIGN_CLOSED', { name: c.name, closedAt: parisDay(c.closed_at) }, { closedAt: c.closed_at.toISOString() })
    const row = await q.closeCampaign(tx, c.id, now, who.principal.user)
    await audit(tx, actor(who), { action: `${OBJECT_CAMPAIGN}.closed`, objectType: OBJECT_CAMPAIGN, objectId: c.id, changes: { status: [statusOf(c, now), 'closed'] } }, now)
    return toCampaign(row, (await q.productsOf(tx, [c.id])).get(c.id) ?? [], now)
  })
}

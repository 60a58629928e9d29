/**
 * The webhook endpoints' and deliveries' SQL. Every query is scoped to the calling organisation (org_id), so that
 * another organisation's endpoint or delivery is simply not found.
 */
import { type Insertable, type Kysely, sql, type Transaction, type Updateable } from 'kysely'
import type { DB, WebhookEndpointsTable } from '../db/schema.ts'
import type { DeliveryRow, EndpointRow } from './schemas.ts'

export type Db = Kysely<DB> | Transaction<DB>
/** A keyset position: the last row's creation time and id. */
export type After = { at: string; id: string } | null

/** The organisation's endpoint; locked for the transaction with forUpdate. */
export async function findEndpoint(db: Db, org: string, id: string, opts: { forUpdate?: boolean } = {}): Promise<EndpointRow | undefined> {
  let q = db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).where('org_id', '=', org)
  if (opts.forUpdate) q = q.forUpdate()
  return q.executeTakeFirst()
}

/** Serialises the endpoint changes of one organisation (the active-endpoint limit). */
export async function lockOrganisation(tx: Transaction<DB>, org: string) {
  await tx.selectFrom('organisations').select('id').where('id', '=', org).forUpdate().execute()
}

/** The organisation's active endpoints, but `except`. */
export async function countActiveEndpoints(tx: Transaction<DB>, org: string, except?: string): Promise<number> {
  let q = tx.selectFrom('webhook_endpoints').select((eb) => eb.fn.countAll<number>().as('n')).where('org_id', '=', org).where('active', '=', true)
  if (except) q = q.where('id', '<>', except)
  const { n } = await q.executeTakeFirstOrThrow()
  return Number(n)
}

export async function insertEndpoint(tx: Transaction<DB>, row: Insertable<WebhookEndpointsTable>): Promise<EndpointRow> {
  return tx.insertInto('webhook_endpoints').values(row).returningAll().executeTakeFirstOrThrow()
}

/** The organisation's endpoints, oldest first, after a position; one more than `limit` tells that a page follows. */
export async function listEndpoints(db: Db, org: string, opts: { active: boolean | undefined; after: After; limit: number }): Promise<EndpointRow[]> {
  let q = db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', org).orderBy('created_at').orderBy('id').limit(opts.limit + 1)
  if (opts.active !== undefined) q = q.where('active', '=', opts.active)
  if (opts.after) q = q.where(sql<boolean>`(created_at, id) > (${new Date(opts.after.at)}::timestamptz, ${opts.after.id}::uuid)`)
  return q.execute()
}

export async function updateEndpoint(tx: Transaction<DB>, id: string, set: Updateable<WebhookEndpointsTable>): Promise<EndpointRow> {
  return tx.updateTable('webhook_endpoints').set(set).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
}

/** As updateEndpoint, without reading the row back. */
export async function setEndpoint(tx: Transaction<DB>, id: string, set: Updateable<WebhookEndpointsTable>) {
  await tx.updateTable('webhook_endpoints').set(set).where('id', '=', id).execute()
}

/** The endpoint's deliveries with their event type, newest first, before a position; one more than `limit`. */
export async function listDeliveries(
  db: Db,
  org: string,
  endpointId: string,
  opts: { status: DeliveryRow['status'] | undefined; after: After; limit: number },
): Promise<DeliveryRow[]> {
  let q = db
    .selectFrom('webhook_deliveries as wd')
    .innerJoin('events as e', 'e.id', 'wd.event_id')
    .selectAll('wd')
    .select('e.type')
    .where('wd.endpoint_id', '=', endpointId)
    .where('wd.org_id', '=', org)
    .orderBy('wd.created_at', 'desc')
    .orderBy('wd.id', 'desc')
    .limit(opts.limit + 1)
  if (opts.status) q = q.where('wd.status', '=', opts.status)
  if (opts.after) q = q.where(sql<boolean>`(wd.created_at, wd.id) < (${new Date(opts.after.at)}::timestamptz, ${opts.after.id}::uuid)`)
  return q.execute()
}

/** One delivery of the organisation's endpoint, locked for the transaction. */
export async function lockDelivery(tx: Transaction<DB>, org: string, endpointId: string, id: string) {
  return tx.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).where('endpoint_id', '=', endpointId).where('org_id', '=', org).forUpdate().executeTakeFirst()
}

/** The delivery is due again now. */
export async function setDeliveryPending(tx: Transaction<DB>, id: string, now: Date) {
  return tx.updateTable('webhook_deliveries').set({ status: 'pending', next_attempt_at: now }).where('id', '=', id).returningAll().executeTakeFirstOrThrow()
}

/** Brings a queued (not running) singleton job forward to now. */
export async function bringJobForward(tx: Transaction<DB>, queue: string, singletonKey: string, now: Date) {
  await tx.updateTable('jobs').set({ run_at: now }).where('queue', '=', queue).where('singleton_key', '=', singletonKey).where('state', '=', 'pending').execute()
}

export async function eventTypeOf(tx: Transaction<DB>, eventId: string): Promise<string> {
  const { type } = await tx.selectFrom('events').select('type').where('id', '=', eventId).executeTakeFirstOrThrow()
  return type
}

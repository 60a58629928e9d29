/**
 * The SQL of the events' coverage, recipients and sent lists (the feed itself is read in feed.ts). Sent events are
 * filtered by sender here; an event's coverage and recipients are read once its visibility has been checked.
 */
import { type ExpressionBuilder, type Kysely, sql } from 'kysely'
import type { DB, Role } from '../db/schema.ts'

export async function findEvent(db: Kysely<DB>, eventId: string) {
  return db.selectFrom('events').select(['id', 'type', 'created_at', 'sender_org']).where('id', '=', eventId).executeTakeFirst()
}

/** The event's deliveries counted: in all, by role, by department, and its faxes by status. */
export async function coverageCounts(db: Kysely<DB>, eventId: string) {
  const counts = (eb: ExpressionBuilder<DB, 'event_deliveries'>) => [
    eb.fn.countAll().as('recipients'),
    eb.fn.countAll().filterWhere('delivered_at', 'is not', null).as('delivered'),
    eb.fn.countAll().filterWhere('read_at', 'is not', null).as('read'),
    eb.fn.countAll().filterWhere('acked_at', 'is not', null).as('acknowledged'),
  ]
  const base = db.selectFrom('event_deliveries').where('event_id', '=', eventId)
  const [total, byRole, byDepartment, fax] = await Promise.all([
    base.select(counts).executeTakeFirstOrThrow(),
    base.select('role').select(counts).groupBy('role').orderBy('role').execute(),
    base.select(['department', 'region']).select(counts).groupBy(['department', 'region']).orderBy('department').execute(),
    base
      .select((eb) => [
        eb.fn.countAll().filterWhere('fax_status', '=', 'queued').as('queued'),
        eb.fn.countAll().filterWhere('fax_status', '=', 'sent').as('sent'),
        eb.fn.countAll().filterWhere('fax_status', '=', 'failed').as('failed'),
        eb.fn.countAll().filterWhere('fax_status', '=', 'paper_letter').as('paperLetter'),
      ])
      .executeTakeFirstOrThrow(),
  ])
  return { total, byRole, byDepartment, fax }
}

export interface RecipientFilter {
  status?: 'undelivered' | 'unread' | 'unacknowledged' | undefined
  role?: Role | undefined
  department?: string | undefined
}

/** The event's recipients in organisation order, after a position; one more than `limit` tells that a page follows. */
export async function listRecipients(db: Kysely<DB>, eventId: string, filter: RecipientFilter, opts: { after: { org: string } | null; limit: number }) {
  const { status, role, department } = filter
  let q = db
    .selectFrom('event_deliveries as d')
    .innerJoin('organisations as o', 'o.id', 'd.org_id')
    .select(['d.org_id', 'o.name', 'd.role', 'd.department', 'd.delivered_at', 'd.delivered_via', 'd.read_at', 'd.acked_at', 'd.ack', 'd.fax_status'])
    .where('d.event_id', '=', eventId)
    .orderBy('d.org_id')
    .limit(opts.limit + 1)
  if (status === 'undelivered') q = q.where('d.delivered_at', 'is', null)
  if (status === 'unread') q = q.where('d.read_at', 'is', null)
  if (status === 'unacknowledged') q = q.where('d.acked_at', 'is', null)
  if (role) q = q.where('d.role', '=', role)
  if (department) q = q.where('d.department', '=', department)
  if (opts.after) q = q.where('d.org_id', '>', opts.after.org)
  return q.execute()
}

/** The events the organisation caused, newest first, before a position; one more than `limit`. */
export async function listSentEvents(db: Kysely<DB>, org: string, opts: { type: string | undefined; after: { at: string; id: string } | null; limit: number }) {
  let q = db
    .selectFrom('events')
    .select(['id', 'type', 'created_at', 'subject_type', 'subject_id', 'recipients'])
    .where('sender_org', '=', org)
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(opts.limit + 1)
  if (opts.type) q = q.where('type', '=', opts.type)
  if (opts.after) q = q.where(sql<boolean>`(created_at, id) < (${new Date(opts.after.at)}::timestamptz, ${opts.after.id}::uuid)`)
  return q.execute()
}

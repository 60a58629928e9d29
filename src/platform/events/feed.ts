import { type Kysely, sql } from 'kysely'
import type { DB } from '../db/schema.ts'

/** One event as an organisation's feed shows it (pull, stream and webhooks share this shape). */
export interface FeedItem {
  pos: number
  id: string
  type: string
  createdAt: string
  sender: string | null
  subject: { type: string; id: string } | null
  payload: unknown
  readAt: string | null
  ack: unknown
}

export interface EventRow {
  id: string
  type: string
  created_at: Date
  sender_org: string | null
  subject_type: string | null
  subject_id: string | null
  payload: unknown
}

export const eventFields = (e: EventRow) => ({
  id: e.id,
  type: e.type,
  createdAt: e.created_at.toISOString(),
  sender: e.sender_org,
  subject: e.subject_type && e.subject_id ? { type: e.subject_type, id: e.subject_id } : null,
  payload: e.payload,
})

/** The organisation's events after a position, in order. */
export async function readFeed(db: Kysely<DB>, orgId: string, after: number, limit: number): Promise<FeedItem[]> {
  const rows = await db
    .selectFrom('event_deliveries as d')
    .innerJoin('events as e', 'e.id', 'd.event_id')
    .select(['d.pos', 'd.read_at', 'd.ack', 'e.id', 'e.type', 'e.created_at', 'e.sender_org', 'e.subject_type', 'e.subject_id', 'e.payload'])
    .where('d.org_id', '=', orgId)
    .where('d.pos', 'is not', null)
    .where('d.pos', '>', after)
    .orderBy('d.pos')
    .limit(limit)
    .execute()
  return rows.map((r) => ({ pos: r.pos!, ...eventFields(r), readAt: r.read_at ? r.read_at.toISOString() : null, ack: r.ack ?? null }))
}

/**
 * Records that the organisation reads its feed (at most one write an hour): such recipients are integrated
 * and no longer get faxes.
 */
export async function touchFeedReader(db: Kysely<DB>, orgId: string, now: Date) {
  await db
    .updateTable('organisations')
    .set({ feed_read_at: now })
    .where('id', '=', orgId)
    .where((eb) => eb.or([eb('feed_read_at', 'is', null), eb('feed_read_at', '<', new Date(now.getTime() - 3_600_000))]))
    .execute()
}

/** Marks positions as delivered (first delivery wins: the channel and time are kept). */
export async function markDelivered(db: Kysely<DB>, positions: number[], via: 'pull' | 'stream', now: Date) {
  if (positions.length === 0) return
  await db
    .updateTable('event_deliveries')
    .set({ delivered_at: now, delivered_via: via })
    .where(sql<boolean>`pos = any(${positions}::bigint[])`)
    .where('delivered_at', 'is', null)
    .execute()
}

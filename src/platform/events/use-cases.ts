/**
 * What an organisation does with its feed (pull or long-poll, mark read) and with the events it sent (coverage,
 * recipients, list). The stream is in stream.ts.
 */
import type { Kysely } from 'kysely'
import type { Static } from 'typebox'
import type { Principal } from '../auth.ts'
import { decodeCursor, encodeCursor } from '../cursor.ts'
import type { DB, Role } from '../db/schema.ts'
import type { Drain } from '../drain.ts'
import { notFound } from '../errors.ts'
import type { Metrics } from '../metrics.ts'
import { markDelivered, readFeed, touchFeedReader } from './feed.ts'
import type { Hub } from './hub.ts'
import { markRead } from './publish.ts'
import * as q from './queries.ts'
import type { Coverage } from './schemas.ts'

export interface Deps {
  db: Kysely<DB>
  hub: Hub
  metrics: Metrics
  drain: Drain
  now: () => Date
  /** STREAM_STALL_MS: how long a stream may stay blocked on a client that does not read. */
  stallMs: number
}

const eventNotFound = () => notFound('L’événement', 'The event')

/** The feed after `after`; when empty and `wait` > 0, waits that many seconds for something new, then reads again. */
export async function pullFeed(deps: Deps, org: string, query: { after?: number | undefined; limit?: number | undefined; wait?: number | undefined }) {
  const { after = 0, limit = 100, wait = 0 } = query
  let items = await readFeed(deps.db, org, after, limit)
  if (items.length === 0 && wait > 0) {
    await deps.hub.wait(org, wait * 1000)
    items = await readFeed(deps.db, org, after, limit)
  }
  await markDelivered(deps.db, items.map((i) => i.pos), 'pull', deps.now())
  await touchFeedReader(deps.db, org, deps.now())
  if (items.length) deps.metrics.delivered.inc({ channel: wait > 0 ? 'long_poll' : 'pull' }, items.length)
  return { items, nextAfter: items.at(-1)?.pos ?? after }
}

/** Records the events as read; ids not of the organisation's feed come back as unknown. */
export async function markFeedRead(deps: Deps, org: string, eventIds: string[]) {
  const read = await markRead(deps.db, org, eventIds, deps.now())
  const found = new Set(read)
  return { read, unknown: eventIds.filter((id) => !found.has(id)) }
}

/** The sender of an event, ANSM and the operator follow it; anyone else gets 404. */
async function visibleEvent(db: Kysely<DB>, eventId: string, role: Role, org: string) {
  const e = await q.findEvent(db, eventId)
  if (!e || !(role === 'ansm' || role === 'ordre' || (e.sender_org !== null && e.sender_org === org))) throw eventNotFound()
  return e
}

export async function eventCoverage(deps: Deps, viewer: Principal, eventId: string) {
  const e = await visibleEvent(deps.db, eventId, viewer.role, viewer.org)
  const { total, byRole, byDepartment, fax } = await q.coverageCounts(deps.db, e.id)
  const n = (r: any) => ({ recipients: Number(r.recipients), delivered: Number(r.delivered), read: Number(r.read), acknowledged: Number(r.acknowledged) })
  return {
    eventId: e.id,
    type: e.type,
    createdAt: e.created_at.toISOString(),
    ...n(total),
    byRole: byRole.map((r) => ({ role: r.role, ...n(r) })),
    byDepartment: byDepartment.map((r) => ({ department: r.department, region: r.region, ...n(r) })),
    fax: { queued: Number(fax.queued), sent: Number(fax.sent), failed: Number(fax.failed), paperLetter: Number(fax.paperLetter) },
  } satisfies Static<typeof Coverage>
}

export async function eventRecipients(deps: Deps, viewer: Principal, eventId: string, query: q.RecipientFilter & { limit?: number | undefined; cursor?: string | undefined }) {
  const e = await visibleEvent(deps.db, eventId, viewer.role, viewer.org)
  const { status, role, department, limit = 50, cursor } = query
  const filter = { e: e.id, status, role, department }
  const after = cursor ? decodeCursor<{ org: string }>(cursor, filter) : null
  const rows = await q.listRecipients(deps.db, e.id, { status, role, department }, { after, limit })
  const page = rows.slice(0, limit)
  return {
    items: page.map((r) => ({
      orgId: r.org_id, name: r.name, role: r.role, department: r.department,
      deliveredAt: r.delivered_at?.toISOString() ?? null, deliveredVia: (r.delivered_via as any) ?? null,
      readAt: r.read_at?.toISOString() ?? null, acknowledgedAt: r.acked_at?.toISOString() ?? null, ack: r.ack ?? null, fax: r.fax_status,
    })),
    nextCursor: rows.length > limit ? encodeCursor({ org: page.at(-1)!.org_id }, filter) : null,
  }
}

export async function sentEvents(deps: Deps, org: string, query: { type?: string | undefined; limit?: number | undefined; cursor?: string | undefined }) {
  const { type, limit = 50, cursor } = query
  const filter = { type }
  const after = cursor ? decodeCursor<{ at: string; id: string }>(cursor, filter) : null
  const rows = await q.listSentEvents(deps.db, org, { type, after, limit })
  const page = rows.slice(0, limit)
  return {
    items: page.map((r) => ({
      id: r.id, type: r.type, createdAt: r.created_at.toISOString(),
      subject: r.subject_type && r.subject_id ? { type: r.subject_type, id: r.subject_id } : null, recipients: r.recipients,
    })),
    nextCursor: rows.length > limit ? encodeCursor({ at: page.at(-1)!.created_at.toISOString(), id: page.at(-1)!.id }, filter) : null,
  }
}

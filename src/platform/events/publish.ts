import { randomUUID } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { DB, Role } from '../db/schema.ts'
import { executeNamed } from '../db/named.ts'
import { commitScope } from '../db/transaction.ts'
import { enqueue } from '../jobs.ts'
import { assertInCatalogue, checkEvents } from './catalogue-check.ts'

/**
 * Who receives an event. `orgs` names recipients; `roles` addresses every active organisation of those roles,
 * narrowed to `departments` and/or `regions` when given (a recall for overseas departments only, say).
 * Both may be combined: the recipients are the union.
 */
export interface Audience {
  orgs?: string[]
  roles?: Role[]
  departments?: string[]
  regions?: string[]
}

export interface NewEvent {
  type: string
  payload: unknown
  audience: Audience
  /** The organisation whose action caused it (it may follow coverage); null for the system. */
  senderOrg?: string | null
  subject?: { type: string; id: string }
  /**
   * Also send by fax to recipients without an integration (wholesalers and hospital pharmacies that have a fax
   * number, no active webhook and have not read their feed in FAX_INTEGRATION_DAYS).
   */
  fax?: boolean
}

/** Channels on which a committed publication wakes the instances (see hub.ts). */
export const CHANNEL_PUBLISHED = 'dp_events_published'
export const CHANNEL_SEQUENCED = 'dp_feed_sequenced'
export const FAX_INTEGRATION_DAYS = 7

/**
 * Publishes an event inside the caller's transaction: the event and one delivery row per recipient are
 * written with the change that causes them. A rollback publishes nothing; a commit wakes the sequencer.
 */
export async function publish(tx: Transaction<DB>, event: NewEvent, now: Date = new Date()): Promise<{ id: string; recipients: number }> {
  if (checkEvents()) await assertInCatalogue(event.type, event.payload)
  const id = randomUUID()
  const { orgs = [], roles = [], departments = [], regions = [] } = event.audience
  if (orgs.length === 0 && roles.length === 0) throw new Error('an event needs recipients: orgs or roles')
  // One statement (one round trip in the publisher's transaction, which may hold locks meanwhile): the deliveries,
  // one per recipient, and the event with their count. The deliveries' foreign key to the event is checked at the
  // end of the statement, when both are written.
  const faxCutoff = new Date(now.getTime() - FAX_INTEGRATION_DAYS * 86_400_000)
  const { shape, recipientsFilter } = audienceFilter(orgs, roles, departments, regions)
  const inserted = await executeNamed(tx, shape, sql<{ org_id: string; fax: boolean }>`
    with d as (
      insert into event_deliveries (event_id, org_id, role, department, region, fax, fax_status, created_at)
      select ${id}::uuid, o.id, o.role, o.department, o.region, f.fax, case when f.fax then 'queued' end, ${now}::timestamptz
      from organisations o
      cross join lateral (
        select ${event.fax === true}::boolean
          and o.role in ('wholesaler', 'hospital')
          and o.fax is not null
          and not exists (select 1 from webhook_endpoints w where w.org_id = o.id and w.active)
          and (o.feed_read_at is null or o.feed_read_at <= ${faxCutoff}::timestamptz)
          as fax
      ) f
      where o.active and ${recipientsFilter}
      returning org_id, fax
    ), e as (
      insert into events (id, type, sender_org, subject_type, subject_id, payload, audience, recipients, created_at)
      select ${id}::uuid, ${event.type}, ${event.senderOrg ?? null}, ${event.subject?.type ?? null}, ${event.subject?.id ?? null},
        ${JSON.stringify(event.payload ?? null)}::jsonb, ${JSON.stringify(event.audience)}::jsonb, (select count(*) from d)::int, ${now}::timestamptz
    )
    select org_id, fax from d`)
  const recipients = inserted.rows.length
  for (const r of inserted.rows) {
    if (r.fax) await enqueue(tx, 'fax.send', { eventId: id, orgId: r.org_id }, { singletonKey: `${id}:${r.org_id}`, maxAttempts: 5, runAt: now })
  }
  // Waking a sequencer. In a transaction started by inTransaction, on an instance whose sequencer runs, that
  // sequencer is woken in process after the commit, and its one NOTIFY per run (CHANNEL_SEQUENCED) tells the
  // others: a NOTIFY inside the transaction would take PostgreSQL's notification lock until the commit is flushed,
  // which makes every publishing transaction of the cluster commit one at a time (measured: 5 times fewer commits
  // per second at 16 connections). Otherwise pg_notify, which is transactional: delivered at commit, never for a
  // rollback. A wake-up lost to a crash between commit and wake is caught by the hubs' sweep within a second.
  const scope = commitScope(tx)
  const wake = scope && localSequencers.get(scope.db)
  if (scope && wake) {
    if (!scope.after.includes(wake)) scope.after.push(wake)
  } else {
    await sql`select pg_notify(${CHANNEL_PUBLISHED}, '')`.execute(tx)
  }
  return { id, recipients }
}

/**
 * Who receives, as a condition on `organisations o`, with the name of the publication's statement for that shape
 * of audience. To one organisation (an alert to its lab: the frequent case) PostgreSQL keeps one plan, the generic
 * one; with an array of organisations or roles it plans each call for its audience (custom plans are then cheaper:
 * a role may be thousands).
 */
function audienceFilter(orgs: string[], roles: Role[], departments: string[], regions: string[]) {
  if (roles.length === 0 && orgs.length === 1) return { shape: 'events_publish_to_org', recipientsFilter: sql`o.id = ${orgs[0]}::text` }
  if (roles.length === 0) return { shape: 'events_publish_to_orgs', recipientsFilter: sql`o.id = any(${orgs}::text[])` }
  return {
    shape: 'events_publish',
    recipientsFilter: sql`(o.id = any(${orgs}::text[])
      or (o.role = any(${roles}::text[])
          and (cardinality(${departments}::text[]) = 0 or o.department = any(${departments}::text[]))
          and (cardinality(${regions}::text[]) = 0 or o.region = any(${regions}::text[]))))`,
  }
}

/** The sequencer of the hub running on this instance, by the database it sequences (hub.ts registers it). */
const localSequencers = new WeakMap<Kysely<DB>, () => void>()
export function registerLocalSequencer(db: Kysely<DB>, wake: () => void, on: boolean) {
  if (on) localSequencers.set(db, wake)
  else if (localSequencers.get(db) === wake) localSequencers.delete(db)
}

/** Records that a recipient read an event (idempotent). */
export async function markRead(db: Transaction<DB> | Kysely<DB>, orgId: string, eventIds: string[], now: Date) {
  if (eventIds.length === 0) return [] as string[]
  const rows = await db
    .updateTable('event_deliveries')
    .set({ read_at: sql`coalesce(read_at, ${now}::timestamptz)`, delivered_at: sql`coalesce(delivered_at, ${now}::timestamptz)`, delivered_via: sql`coalesce(delivered_via, 'read')` })
    .where('org_id', '=', orgId)
    .where('event_id', 'in', eventIds)
    .returning('event_id')
    .execute()
  return rows.map((r) => r.event_id)
}

/**
 * Records a service's acknowledgement of an event by a recipient (a recall's "12 boxes quarantined").
 * Implies read. Returns false when the event was not addressed to that organisation.
 */
export async function acknowledge(tx: Transaction<DB>, orgId: string, eventId: string, ack: unknown, now: Date): Promise<boolean> {
  const row = await tx
    .updateTable('event_deliveries')
    .set({
      ack: JSON.stringify(ack ?? null),
      acked_at: now,
      read_at: sql`coalesce(read_at, ${now}::timestamptz)`,
      delivered_at: sql`coalesce(delivered_at, ${now}::timestamptz)`,
      delivered_via: sql`coalesce(delivered_via, 'read')`,
    })
    .where('org_id', '=', orgId)
    .where('event_id', '=', eventId)
    .returning('event_id')
    .executeTakeFirst()
  return row !== undefined
}

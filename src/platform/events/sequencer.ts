import { type Kysely, sql } from 'kysely'
import { LOCKS } from '../db/locks.ts'
import { executeNamed } from '../db/named.ts'
import type { DB } from '../db/schema.ts'
import { inTransaction } from '../db/transaction.ts'
import { CHANNEL_SEQUENCED } from './publish.ts'

/** The job queue that sends one webhook delivery (src/platform/webhooks). It reschedules itself between attempts. */
export const WEBHOOK_QUEUE = 'webhook.deliver'
const WEBHOOK_JOB_MAX_ATTEMPTS = 1000
const BATCH = 200_000

/**
 * Gives committed deliveries their feed position. Positions are assigned here, after commit and one sequencer
 * at a time (transaction-scoped advisory lock), rather than by a sequence at insert time: a sequence hands out
 * numbers in insert order but transactions commit in another order, so a reader could see position 12 before
 * 11 commits and skip it forever. Assigned after commit, positions only grow in the order readers can see them.
 *
 * Four round trips: BEGIN, the lock, one statement for the rest, COMMIT. The statement runs after the lock, so its
 * snapshot holds what the previous sequencer committed: the last position, the deliveries still without one. It
 * gives them their positions, moves the last position, creates the webhook deliveries of the events sequenced and
 * the job that sends each, and notifies the instances (only when it assigned some). The lock was followed by up to
 * five statements, each a round trip while it is held; a storm of alerts runs the sequencer dozens of times a second.
 *
 * Returns the last position assigned (or the current one when there was nothing to do), and when each event
 * sequenced was published (for the lag figure).
 */
export async function sequence(
  db: Kysely<DB>,
  now: Date = new Date(),
): Promise<{ assigned: number; lastPos: number; published: Array<{ at: Date; positions: number }> }> {
  return inTransaction(db, async (tx) => {
    await sql`select pg_advisory_xact_lock(${LOCKS.sequencer})`.execute(tx)
    const { rows } = await executeNamed(tx, 'events_sequence', sql<{ base: number; pos: number | null; event_id: string | null; created_at: Date | null }>`
      with cur as (
        select last_pos from feed_sequence where id = 1
      ), p as (
        select d.event_id, d.org_id, e.created_at, row_number() over (order by e.seq, d.org_id) as rn
        from event_deliveries d join events e on e.id = d.event_id
        where d.pos is null
        order by e.seq, d.org_id
        limit ${BATCH}
      ), upd as (
        update event_deliveries d set pos = cur.last_pos + p.rn
        from p, cur
        where d.event_id = p.event_id and d.org_id = p.org_id
        returning d.pos, d.event_id, d.org_id, p.created_at
      ), moved as (
        update feed_sequence set last_pos = (select max(pos) from upd)
        where id = 1 and exists (select 1 from upd)
        returning last_pos
      ), created as (
        -- Webhook deliveries for the newly sequenced events, and the job that sends each.
        insert into webhook_deliveries (id, endpoint_id, event_id, org_id, status, next_attempt_at, created_at)
        select gen_random_uuid(), w.id, u.event_id, u.org_id, 'pending', ${now}::timestamptz, ${now}::timestamptz
        from upd u
        join events e on e.id = u.event_id
        join webhook_endpoints w on w.org_id = u.org_id and w.active
          and (cardinality(w.event_types) = 0 or e.type = any(w.event_types))
        on conflict (endpoint_id, event_id) do nothing
        returning id
      ), jobs as (
        insert into jobs (id, queue, payload, run_at, max_attempts, state, singleton_key, created_at)
        select gen_random_uuid(), ${WEBHOOK_QUEUE}, jsonb_build_object('deliveryId', id), ${now}::timestamptz, ${WEBHOOK_JOB_MAX_ATTEMPTS}, 'pending', id::text, ${now}::timestamptz
        from created
      )
      -- One row at least (the current position when nothing was pending). The notification is evaluated once, and
      -- sends nothing when no position was assigned (moved is then empty).
      select cur.last_pos as base, u.pos, u.event_id, u.created_at, (select pg_notify(${CHANNEL_SEQUENCED}, last_pos::text) from moved) as notified
      from cur left join upd u on true`)
    const base = Number(rows[0]!.base)
    const updated = rows.filter((r) => r.pos !== null)
    const assigned = updated.length
    if (assigned === 0) return { assigned, lastPos: base, published: [] }
    const byEvent = new Map<string, { at: Date; positions: number }>()
    for (const r of updated) {
      const e = byEvent.get(r.event_id!)
      if (e) e.positions++
      else byEvent.set(r.event_id!, { at: new Date(r.created_at!), positions: 1 })
    }
    return { assigned, lastPos: base + assigned, published: [...byEvent.values()] }
  })
}

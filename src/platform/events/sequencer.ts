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
 * Returns the last position assigned (or the current one when there was nothing to do), and when each event
 * sequenced was published (for the lag figure).
 */
export async function sequence(
  db: Kysely<DB>,
  now: Date = new Date(),
): Promise<{ assigned: number; lastPos: number; published: Array<{ at: Date; positions: number }> }> {
  return inTransaction(db, async (tx) => {
    await sql`select pg_advisory_xact_lock(${LOCKS.sequencer})`.execute(tx)
    const { last_pos } = await tx.selectFrom('feed_sequence').select('last_pos').where('id', '=', 1).executeTakeFirstOrThrow()
    const updated = await executeNamed(tx, 'events_sequence', sql<{ pos: number; event_id: string; created_at: Date }>`
      update event_deliveries d set pos = ${last_pos}::bigint + p.rn
      from (
        select d.event_id, d.org_id, e.created_at, row_number() over (order by e.seq, d.org_id) as rn
        from event_deliveries d join events e on e.id = d.event_id
        where d.pos is null
        order by e.seq, d.org_id
        limit ${BATCH}
      ) p
      where d.event_id = p.event_id and d.org_id = p.org_id
      returning d.pos, d.event_id, p.created_at`)
    const assigned = updated.rows.length
    if (assigned === 0) return { assigned, lastPos: last_pos, published: [] }
    const byEvent = new Map<string, { at: Date; positions: number }>()
    for (const r of updated.rows) {
      const e = byEvent.get(r.event_id)
      if (e) e.positions++
      else byEvent.set(r.event_id, { at: new Date(r.created_at), positions: 1 })
    }
    const published = [...byEvent.values()]
    const lastPos = last_pos + assigned
    await tx.updateTable('feed_sequence').set({ last_pos: lastPos }).where('id', '=', 1).execute()
    // Webhook deliveries for the newly sequenced events, and the job that sends each, in the same transaction.
    await executeNamed(tx, 'events_sequence_webhooks', sql`
      with created as (
        insert into webhook_deliveries (id, endpoint_id, event_id, org_id, status, next_attempt_at, created_at)
        select gen_random_uuid(), w.id, d.event_id, d.org_id, 'pending', ${now}::timestamptz, ${now}::timestamptz
        from event_deliveries d
        join events e on e.id = d.event_id
        join webhook_endpoints w on w.org_id = d.org_id and w.active
          and (cardinality(w.event_types) = 0 or e.type = any(w.event_types))
        where d.pos > ${last_pos}::bigint and d.pos <= ${lastPos}::bigint
        on conflict (endpoint_id, event_id) do nothing
        returning id
      )
      insert into jobs (id, queue, payload, run_at, max_attempts, state, singleton_key, created_at)
      select gen_random_uuid(), ${WEBHOOK_QUEUE}, jsonb_build_object('deliveryId', id), ${now}::timestamptz, ${WEBHOOK_JOB_MAX_ATTEMPTS}, 'pending', id::text, ${now}::timestamptz
      from created`)
    await sql`select pg_notify(${CHANNEL_SEQUENCED}, ${String(lastPos)})`.execute(tx)
    return { assigned, lastPos, published }
  })
}

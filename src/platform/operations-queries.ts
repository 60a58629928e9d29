/** The database reads of the operations endpoints: the readiness ping and the figures read at each metrics scrape. */
import { type Kysely, sql } from 'kysely'
import type { DB } from './db/schema.ts'

/** The cheapest statement that proves the database answers. */
export const ping = (db: Kysely<DB>) => sql`select 1`.execute(db)

/** Pending jobs per queue (due, scheduled, oldest due), deliveries not yet sequenced, disabled webhook endpoints. */
export async function databaseFigures(db: Kysely<DB>, now: Date) {
  const [jobs, feed, endpoints] = await Promise.all([
    db
      .selectFrom('jobs')
      .select((eb) => [
        'queue',
        eb.fn.countAll().filterWhere('run_at', '<=', now).as('due'),
        eb.fn.countAll().filterWhere('run_at', '>', now).as('scheduled'),
        eb.fn.min<Date>('run_at').filterWhere('run_at', '<=', now).as('oldest'),
      ])
      .where('state', '=', 'pending')
      .groupBy('queue')
      .execute(),
    sql<{ n: number; oldest: Date | null }>`
      select count(*)::int as n, min(e.created_at) as oldest
      from event_deliveries d join events e on e.id = d.event_id
      where d.pos is null`.execute(db),
    db.selectFrom('webhook_endpoints').select((eb) => eb.fn.countAll().as('n')).where('active', '=', false).executeTakeFirstOrThrow(),
  ])
  return { jobs, feed: feed.rows[0]!, endpoints }
}

/**
 * The SQL of the changes to the blocking facts: the generation every change bumps, the notification that makes
 * the instances reload, and which live instances have not loaded a generation yet (see registry.ts).
 */
import { sql, type Transaction } from 'kysely'
import type { DatabaseHandle } from '../platform/db/index.ts'
import type { DB } from '../platform/db/schema.ts'

export const CHANNEL_BLOCKS = 'dp_dispensation_blocks'

/** The next generation, in the transaction that changes the facts (the row stays locked until it commits). */
export async function nextGeneration(tx: Transaction<DB>): Promise<number> {
  const row = await tx
    .updateTable('dispensation_block_generation')
    .set({ generation: sql<number>`generation + 1` })
    .where('id', '=', 1)
    .returning('generation')
    .executeTakeFirstOrThrow()
  return row.generation
}

/** Tells every instance of the new generation, at commit. */
export async function notifyGeneration(tx: Transaction<DB>, generation: number) {
  await sql`select pg_notify(${CHANNEL_BLOCKS}, ${String(generation)})`.execute(tx)
}

/** The instances holding a valid lease that have not loaded generation g yet (a prepared statement: polled). */
export function instancesBehind(database: DatabaseHandle, g: number) {
  return database.prepared<{ id: string }>('dp_blocks_behind', 'select id from dispensation_block_instances where lease_until > now() and loaded_generation < $1', [g])
}

// Frozen: never edit a migration that has been released; add a new one.
// Blocking of dispensation (DP-Rappels): the batches no pharmacy may dispense, and what every API instance
// has loaded of them. Each instance keeps the whole (small) set in memory and answers the dispensation check
// without a query; these tables let a recall's broadcast make sure every live instance blocks a batch before
// the broadcast commits (see src/recalls/blocking.ts).
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // One row per recall and batch. 'pending': announced to the instances by a broadcast not yet committed
  // (already blocking: blocking a few milliseconds early is harmless); 'active': in force.
  await db.schema
    .createTable('dispensation_blocks')
    .addColumn('cip13', 'text', (c) => c.notNull())
    // Upper-cased: a batch typed by hand in lower case must still match.
    .addColumn('batch', 'text', (c) => c.notNull())
    .addColumn('recall_id', 'text', (c) => c.notNull())
    .addColumn('reference', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('lab_id', 'text', (c) => c.notNull())
    .addColumn('expiry', 'date')
    .addColumn('message_fr', 'text', (c) => c.notNull())
    .addColumn('message_en', 'text')
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('pending', 'active')`))
    .addColumn('since', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('dispensation_blocks_pk', ['cip13', 'batch', 'recall_id'])
    .execute()
  await db.schema.createIndex('dispensation_blocks_recall').on('dispensation_blocks').column('recall_id').execute()

  // The generation of the set: bumped in the same transaction as every change, so that an instance that read
  // generation N has read every change up to N (a sequence would not do: nextval is not transactional).
  await db.schema
    .createTable('dispensation_block_generation')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('generation', 'bigint', (c) => c.notNull())
    .execute()
  await sql`insert into dispensation_block_generation (id, generation) values (1, 0)`.execute(db)

  // Live instances: each renews its lease every second and records the generation it has loaded. A broadcast
  // waits until every instance with a valid lease has loaded its generation; an instance that cannot renew
  // its lease stops answering from memory before the lease ends (it asks the database instead).
  await db.schema
    .createTable('dispensation_block_instances')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('loaded_generation', 'bigint', (c) => c.notNull())
    .addColumn('lease_until', 'timestamptz', (c) => c.notNull())
    .addColumn('started_at', 'timestamptz', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('dispensation_block_instances').execute()
  await db.schema.dropTable('dispensation_block_generation').execute()
  await db.schema.dropTable('dispensation_blocks').execute()
}

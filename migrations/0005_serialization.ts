// Frozen: never edit a migration that has been released; add a new one.
// Serialization (EU falsified-medicines rules): the packs uploaded by the labs, their batches, the lab's status
// of a product, and every state change of a pack (the transaction an undo refers to).
// Every table that grows with the boxes sold is keyed by product code (cip13) first, so that it can be
// partitioned by hash of cip13 (or distributed by it with Citus) without changing a query: every query on
// them names the cip13. See the README, "Serialization", for the partitioning plan.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // A batch of a product, as the lab declared it; status is set by the lab or by DP-Rappels (one truth).
  await db.schema
    .createTable('serial_batches')
    .addColumn('cip13', 'text', (c) => c.notNull())
    .addColumn('batch', 'text', (c) => c.notNull())
    .addColumn('lab_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('expiry', 'date', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('active').check(sql`status in ('active','recalled','withdrawn','expired')`))
    .addColumn('status_reason', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('serial_batches_pk', ['cip13', 'batch'])
    .execute()
  await db.schema.createIndex('serial_batches_lab').on('serial_batches').columns(['lab_id', 'cip13']).execute()

  // The lab's status of a whole product (every batch follows); no row: active.
  await db.schema
    .createTable('serial_products')
    .addColumn('cip13', 'text', (c) => c.primaryKey())
    .addColumn('lab_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('active','recalled','withdrawn','expired')`))
    .addColumn('status_reason', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()

  // One row per box. state is the pack's own state; the batch's and product's status are not copied here
  // (a recall changes one row, not millions): verification combines them.
  await db.schema
    .createTable('packs')
    .addColumn('cip13', 'text', (c) => c.notNull())
    .addColumn('serial', 'text', (c) => c.notNull())
    .addColumn('batch', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) =>
      c.notNull().check(sql`state in ('active','supplied','destroyed','stolen','sample','free_sample','locked','exported','checked_out')`),
    )
    .addColumn('state_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_txn', 'uuid') // the transaction that set the current state (an undo must name it)
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('packs_pk', ['cip13', 'serial'])
    .addForeignKeyConstraint('packs_batch_fk', ['cip13', 'batch'], 'serial_batches', ['cip13', 'batch'])
    .execute()
  await db.schema.createIndex('packs_batch').on('packs').columns(['cip13', 'batch', 'state']).execute()

  // Append-only: every state change of a pack (undo included). An undo names the transaction it reverts.
  await db.schema
    .createTable('pack_transactions')
    .addColumn('cip13', 'text', (c) => c.notNull())
    .addColumn('id', 'uuid', (c) => c.notNull())
    .addColumn('serial', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('from_state', 'text', (c) => c.notNull())
    .addColumn('to_state', 'text', (c) => c.notNull())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('undoes', 'uuid')
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('pack_transactions_pk', ['cip13', 'id'])
    .execute()
  await db.schema.createIndex('pack_transactions_pack').on('pack_transactions').columns(['cip13', 'serial', 'at']).execute()
  await db.schema.createIndex('pack_transactions_org').on('pack_transactions').columns(['org_id', 'at']).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['pack_transactions', 'packs', 'serial_products', 'serial_batches']) await db.schema.dropTable(t).ifExists().execute()
}

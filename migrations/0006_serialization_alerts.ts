// Frozen: never edit a migration that has been released; add a new one.
// Serialization alerts (a verification answer that may mean a falsified pack) and the pseudonymised scan log.
// The scan log grows with every scan in the country: keyed by product code (cip13) first, like packs and
// pack_transactions, so that it can be partitioned by hash of cip13 (or by month of `at` within it).
// It never holds the pharmacy's FINESS: only a keyed pseudonym (HMAC-SHA256 with SCAN_PSEUDONYM_SECRET).
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // Every verification and state change of a readable French pack, whatever its answer.
  await db.schema
    .createTable('serial_scans')
    .addColumn('cip13', 'text', (c) => c.notNull())
    .addColumn('id', 'uuid', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('serial', 'text', (c) => c.notNull())
    .addColumn('batch', 'text', (c) => c.notNull())
    .addColumn('expiry', 'date', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull()) // verify, supply, destroy… undo
    .addColumn('code', 'text', (c) => c.notNull()) // the return code answered
    .addColumn('role', 'text', (c) => c.notNull()) // pharmacy, hospital or wholesaler
    .addColumn('pharmacy_pseudonym', 'text', (c) => c.notNull())
    .addColumn('transaction_id', 'uuid')
    .addColumn('alert_reference', 'text')
    .addPrimaryKeyConstraint('serial_scans_pk', ['cip13', 'id'])
    .execute()
  await db.schema.createIndex('serial_scans_pack').on('serial_scans').columns(['cip13', 'serial', 'at']).execute()
  await db.schema.createIndex('serial_scans_pseudonym').on('serial_scans').columns(['pharmacy_pseudonym', 'at']).execute()

  // Human-readable references ALR-<year>-<number>; the number never repeats (a sequence, not per year).
  await sql`create sequence serial_alert_seq`.execute(db)

  await db.schema
    .createTable('serial_alerts')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('reference', 'text', (c) => c.notNull().unique())
    .addColumn('cip13', 'text', (c) => c.notNull())
    .addColumn('lab_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('serial', 'text', (c) => c.notNull())
    .addColumn('batch', 'text', (c) => c.notNull())
    .addColumn('expiry', 'date', (c) => c.notNull())
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    // The pharmacy (for its own view and to route the lab's questions); never shown to the lab.
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('pharmacy_pseudonym', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().defaultTo('new').check(sql`status in ('new','under_investigation','closed')`))
    .addColumn('conclusion', 'text', (c) => c.check(sql`conclusion in ('technical_error','scanning_error','falsification_suspected','other')`))
    .addColumn('conclusion_note', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('closed_at', 'timestamptz')
    .addCheckConstraint('serial_alerts_closed', sql`(status = 'closed') = (conclusion is not null)`)
    .execute()
  await db.schema.createIndex('serial_alerts_lab').on('serial_alerts').columns(['lab_id', 'seq']).execute()
  await db.schema.createIndex('serial_alerts_org').on('serial_alerts').columns(['org_id', 'seq']).execute()
  await db.schema.createIndex('serial_alerts_product').on('serial_alerts').columns(['cip13']).execute()

  // The lab's questions and the pharmacy's answers about an alert.
  await db.schema
    .createTable('serial_alert_messages')
    .addColumn('id', 'bigserial', (c) => c.primaryKey()) // the order of the exchange
    .addColumn('alert_seq', 'bigint', (c) => c.notNull().references('serial_alerts.seq'))
    .addColumn('author', 'text', (c) => c.notNull().check(sql`author in ('lab','pharmacy')`))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('serial_alert_messages_alert').on('serial_alert_messages').columns(['alert_seq', 'id']).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['serial_alert_messages', 'serial_alerts', 'serial_scans']) await db.schema.dropTable(t).ifExists().execute()
  await sql`drop sequence if exists serial_alert_seq`.execute(db)
}

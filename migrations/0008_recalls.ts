// Frozen: never edit a migration that has been released; add a new one.
// DP-Rappels (batch recalls) and DP-Alertes Labo (public-health alerts): one pipeline, `kind` tells them apart.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // Gapless references per kind and year (R-2026-0001, A-2026-0001): the counter row is taken inside the
  // creating transaction, so a rollback gives its number back.
  await db.schema
    .createTable('recall_reference_counters')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('year', 'integer', (c) => c.notNull())
    .addColumn('last', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('recall_reference_counters_pk', ['kind', 'year'])
    .execute()

  await db.schema
    .createTable('recalls')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('recall','alert')`))
    .addColumn('reference', 'text', (c) => c.notNull().unique())
    .addColumn('lab_id', 'text', (c) => c.notNull().references('organisations.id'))
    // draft, submitted, changes_requested, rejected (review of the first version), approved (waiting for its
    // scheduled time), broadcast (in force, possibly with a revision under review), closed.
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('draft','submitted','changes_requested','rejected','approved','broadcast','closed')`))
    .addColumn('version', 'integer', (c) => c.notNull()) // the latest version
    .addColumn('live_version', 'integer') // the version in force (broadcast), null before the first broadcast
    .addColumn('blocking', 'boolean', (c) => c.notNull().defaultTo(false)) // some broadcast version blocked dispensation
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('first_submitted_at', 'timestamptz')
    .addColumn('broadcast_at', 'timestamptz')
    .addColumn('closed_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('recalls_lab').on('recalls').columns(['lab_id', 'kind', 'updated_at']).execute()
  await db.schema.createIndex('recalls_status').on('recalls').columns(['status', 'kind']).execute()

  // Every version: its content and its own review state.
  await db.schema
    .createTable('recall_versions')
    .addColumn('recall_id', 'uuid', (c) => c.notNull().references('recalls.id'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('draft','submitted','changes_requested','rejected','approved','broadcast','superseded','cancelled')`))
    .addColumn('content', 'jsonb', (c) => c.notNull())
    .addColumn('event_id', 'uuid') // the broadcast event of this version
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('submitted_at', 'timestamptz')
    .addColumn('decided_at', 'timestamptz')
    .addColumn('broadcast_at', 'timestamptz')
    .addPrimaryKeyConstraint('recall_versions_pk', ['recall_id', 'version'])
    .execute()
  await sql`create index recall_versions_queue on recall_versions (submitted_at) where status = 'submitted'`.execute(db)

  // The exchange history with ANSM: comments from both sides and every review decision.
  await db.schema
    .createTable('recall_messages')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('seq', 'bigserial', (c) => c.notNull()) // order of entries written in the same instant
    .addColumn('recall_id', 'uuid', (c) => c.notNull().references('recalls.id'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('text', 'text')
    .addColumn('author_role', 'text')
    .addColumn('author_org', 'text')
    .addColumn('author_user', 'text')
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('recall_messages_recall').on('recall_messages').columns(['recall_id', 'seq']).execute()

  // Who a recall reached (the union over its broadcast versions) and what they did: carried over between versions.
  await db.schema
    .createTable('recall_recipients')
    .addColumn('recall_id', 'uuid', (c) => c.notNull().references('recalls.id'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('department', 'text')
    .addColumn('region', 'text')
    .addColumn('first_version', 'integer', (c) => c.notNull())
    .addColumn('last_event_id', 'uuid', (c) => c.notNull())
    .addColumn('read_at', 'timestamptz')
    .addColumn('ack_status', 'text', (c) => c.check(sql`ack_status in ('read','done')`))
    .addColumn('ack', 'jsonb')
    .addColumn('acked_at', 'timestamptz')
    .addColumn('done_at', 'timestamptz')
    .addColumn('reminders', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_reminded_at', 'timestamptz')
    .addColumn('added_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('recall_recipients_pk', ['recall_id', 'org_id'])
    .execute()
  await db.schema.createIndex('recall_recipients_org').on('recall_recipients').columns(['org_id', 'added_at']).execute()

  // Append-only: every distinct acknowledgement a recipient gave (a change keeps the previous one here).
  await db.schema
    .createTable('recall_ack_history')
    .addColumn('recall_id', 'uuid', (c) => c.notNull())
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('ack', 'jsonb', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('user_id', 'text')
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('recall_ack_history_pk', ['recall_id', 'org_id', 'seq'])
    .execute()

  // The report (bilan) computed when the lab closes the recall.
  await db.schema
    .createTable('recall_reports')
    .addColumn('recall_id', 'uuid', (c) => c.primaryKey().references('recalls.id'))
    .addColumn('report', 'jsonb', (c) => c.notNull())
    .addColumn('event_id', 'uuid', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['recall_reports', 'recall_ack_history', 'recall_recipients', 'recall_messages', 'recall_versions', 'recalls', 'recall_reference_counters']) {
    await db.schema.dropTable(t).execute()
  }
}

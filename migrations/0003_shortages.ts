// Frozen: never edit a migration that has been released; add a new one.
// DP-Ruptures: lab declarations (with versions), pharmacy signals, automatic responses, lab settings.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // One row: the last change sequence given to a declaration version. Taken with UPDATE … RETURNING inside the
  // writing transaction, its row lock orders the writers, so sequences become visible in increasing order
  // (see src/shortages/declarations.ts, nextChangeSeq).
  await db.schema
    .createTable('shortage_change_counter')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .execute()
  await db.insertInto('shortage_change_counter').values({ id: 1, last_seq: 0 }).execute()

  await db.schema
    .createTable('shortage_declarations')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('lab_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('anticipated','observed','discontinuation','availability_return')`))
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('draft','declared','ongoing','resolved','avoided','discontinued')`))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('change_seq', 'bigint', (c) => c.notNull().unique())
    .addColumn('mitm', 'boolean', (c) => c.notNull()) // from the referential when the version was written
    .addColumn('atc', 'text')
    .addColumn('cause', 'text', (c) => c.notNull())
    .addColumn('cause_text', 'text')
    .addColumn('anticipated_start', 'date')
    .addColumn('actual_start', 'date')
    .addColumn('estimated_end', 'date')
    .addColumn('end_unknown', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('actual_end', 'date')
    .addColumn('stock_coverage_days', 'integer')
    .addColumn('allocation_in_place', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('allocation_details', 'text')
    .addColumn('alternatives', 'jsonb', (c) => c.notNull())
    .addColumn('advice', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('declared_at', 'timestamptz')
    .addColumn('closed_at', 'timestamptz')
    .execute()
  await db.schema.createIndex('shortage_declarations_lab').on('shortage_declarations').columns(['lab_id', 'updated_at']).execute()
  await sql`create index shortage_declarations_mitm_seq on shortage_declarations (change_seq) where mitm and status <> 'draft'`.execute(db)

  // The presentations a declaration covers; `active` while the declaration is not closed: one active declaration
  // per presentation.
  await db.schema
    .createTable('shortage_declaration_items')
    .addColumn('declaration_id', 'uuid', (c) => c.notNull().references('shortage_declarations.id'))
    .addColumn('cip13', 'text', (c) => c.notNull().references('presentations.cip13'))
    .addColumn('active', 'boolean', (c) => c.notNull())
    .addPrimaryKeyConstraint('shortage_declaration_items_pk', ['declaration_id', 'cip13'])
    .execute()
  await sql`create unique index shortage_declaration_items_active on shortage_declaration_items (cip13) where active`.execute(db)

  // Append-only: every version of every declaration, with who made it.
  await db.schema
    .createTable('shortage_declaration_versions')
    .addColumn('declaration_id', 'uuid', (c) => c.notNull().references('shortage_declarations.id'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('change_seq', 'bigint', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('snapshot', 'jsonb', (c) => c.notNull())
    .addColumn('actor_role', 'text')
    .addColumn('actor_org', 'text')
    .addColumn('actor_user', 'text')
    .addColumn('request_id', 'text')
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('shortage_declaration_versions_pk', ['declaration_id', 'version'])
    .execute()

  await db.schema
    .createTable('shortage_signals')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('pharmacy_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('department', 'text')
    .addColumn('region', 'text')
    .addColumn('cip13', 'text', (c) => c.notNull().references('presentations.cip13'))
    .addColumn('lab_id', 'text') // the exploiting lab when the signal was made
    .addColumn('wholesaler', 'text', (c) => c.notNull())
    .addColumn('last_supply_date', 'date')
    .addColumn('unavailable_since', 'timestamptz', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open','closed','lapsed')`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('renewed_at', 'timestamptz', (c) => c.notNull())
    .addColumn('lapses_at', 'timestamptz', (c) => c.notNull())
    .addColumn('closed_at', 'timestamptz')
    .addColumn('close_reason', 'text')
    .addColumn('first_response_at', 'timestamptz')
    .execute()
  await sql`create unique index shortage_signals_open on shortage_signals (pharmacy_id, cip13) where status = 'open'`.execute(db)
  await db.schema.createIndex('shortage_signals_pharmacy').on('shortage_signals').columns(['pharmacy_id', 'created_at']).execute()
  await db.schema.createIndex('shortage_signals_cip13').on('shortage_signals').columns(['cip13', 'status']).execute()
  await db.schema.createIndex('shortage_signals_lab').on('shortage_signals').columns(['lab_id', 'created_at']).execute()

  // What every signalling pharmacy receives: per presentation, or per declaration (which takes precedence).
  await db.schema
    .createTable('shortage_automatic_responses')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('lab_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('cip13', 'text', (c) => c.references('presentations.cip13'))
    .addColumn('declaration_id', 'uuid', (c) => c.references('shortage_declarations.id'))
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('expected_return', 'date')
    .addColumn('alternatives', 'jsonb', (c) => c.notNull())
    .addColumn('emergency_contact', 'text')
    .addColumn('allocation_rules', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_by', 'text')
    .addCheckConstraint('shortage_automatic_responses_scope', sql`(cip13 is null) <> (declaration_id is null)`)
    .execute()
  await sql`create unique index shortage_automatic_responses_cip13 on shortage_automatic_responses (cip13) where cip13 is not null`.execute(db)
  await sql`create unique index shortage_automatic_responses_declaration on shortage_automatic_responses (declaration_id) where declaration_id is not null`.execute(db)

  await db.schema
    .createTable('shortage_lab_settings')
    .addColumn('lab_id', 'text', (c) => c.primaryKey().references('organisations.id'))
    .addColumn('signal_threshold', 'integer')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['shortage_lab_settings', 'shortage_automatic_responses', 'shortage_signals', 'shortage_declaration_versions', 'shortage_declaration_items', 'shortage_declarations', 'shortage_change_counter']) {
    await db.schema.dropTable(t).execute()
  }
}

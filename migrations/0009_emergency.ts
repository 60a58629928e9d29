// Frozen: never edit a migration that has been released; add a new one.
// Emergency requests (dépannage d'urgence): presentations a lab opens to emergency requests, the requests,
// and their append-only history.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // One row per presentation ever opened; `open` says whether it accepts requests now. Closing keeps the row.
  await db.schema
    .createTable('emergency_openings')
    .addColumn('cip13', 'text', (c) => c.primaryKey().references('presentations.cip13'))
    .addColumn('lab_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('open', 'boolean', (c) => c.notNull())
    .addColumn('contact', 'jsonb', (c) => c.notNull())
    .addColumn('opening_hours', 'text')
    .addColumn('max_quantity', 'integer', (c) => c.check(sql`max_quantity is null or max_quantity > 0`))
    .addColumn('escalation_business_hours', 'integer', (c) => c.check(sql`escalation_business_hours is null or escalation_business_hours between 1 and 72`))
    .addColumn('opened_at', 'timestamptz', (c) => c.notNull())
    .addColumn('closed_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('emergency_openings_lab').on('emergency_openings').columns(['lab_id', 'cip13']).execute()

  await db.schema
    .createTable('emergency_requests')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('pharmacy_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('lab_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('cip13', 'text', (c) => c.notNull().references('presentations.cip13'))
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity > 0`))
    .addColumn('delivery', 'jsonb', (c) => c.notNull())
    .addColumn('patient_emergency', 'boolean', (c) => c.notNull().check(sql`patient_emergency`))
    // What made it eligible when submitted: the shortage declaration and the product flags.
    .addColumn('eligibility', 'jsonb', (c) => c.notNull())
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('submitted','accepted','partially_accepted','redirected','refused','received','cancelled')`),
    )
    .addColumn('answer', 'jsonb')
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('submitted_at', 'timestamptz', (c) => c.notNull())
    .addColumn('answered_at', 'timestamptz')
    .addColumn('escalate_at', 'timestamptz', (c) => c.notNull())
    .addColumn('escalated_at', 'timestamptz')
    .addColumn('closed_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('emergency_requests_pharmacy').on('emergency_requests').columns(['pharmacy_id', 'submitted_at']).execute()
  await db.schema.createIndex('emergency_requests_lab').on('emergency_requests').columns(['lab_id', 'submitted_at']).execute()
  await sql`create index emergency_requests_escalated on emergency_requests (escalated_at) where escalated_at is not null`.execute(db)

  // Append-only: every step of every request, with who made it. Never updated.
  await db.schema
    .createTable('emergency_request_steps')
    .addColumn('request_id', 'uuid', (c) => c.notNull().references('emergency_requests.id'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('details', 'jsonb', (c) => c.notNull())
    .addColumn('actor_role', 'text')
    .addColumn('actor_org', 'text')
    .addColumn('actor_user', 'text')
    .addColumn('request_id_http', 'text')
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('emergency_request_steps_pk', ['request_id', 'seq'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('emergency_request_steps').execute()
  await db.schema.dropTable('emergency_requests').execute()
  await db.schema.dropTable('emergency_openings').execute()
}

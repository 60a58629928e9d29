// Frozen: never edit a migration that has been released; add a new one.
// Paper letters: when a fax fails after every retry, the sender (a lab) prints a letter to the recipient's postal
// address and records that it was sent. Organisations get a postal address (the city is already there).
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table organisations add column address_line1 text`.execute(db)
  await sql`alter table organisations add column address_line2 text`.execute(db)
  await sql`alter table organisations add column postal_code text`.execute(db)

  await db.schema
    .createTable('paper_letters')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('event_id', 'uuid', (c) => c.notNull().references('events.id'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id')) // the recipient
    .addColumn('sender_org', 'text') // who sends it: the event's sender; null for the service (the operator sends it)
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending','sent')`))
    .addColumn('fax_attempts', 'integer', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('sent_at', 'timestamptz')
    .addColumn('sent_by_role', 'text')
    .addColumn('sent_by_org', 'text')
    .addColumn('sent_by_user', 'text')
    .addColumn('recorded_at', 'timestamptz')
    .addColumn('tracking_number', 'text')
    .addColumn('comment', 'text')
    .addColumn('address', 'jsonb') // the address the letter was sent to, as recorded
    .addUniqueConstraint('paper_letters_delivery', ['event_id', 'org_id'])
    .execute()
  await db.schema.createIndex('paper_letters_sender').on('paper_letters').columns(['sender_org', 'status', 'created_at']).execute()
  await db.schema.createIndex('paper_letters_recipient').on('paper_letters').columns(['org_id', 'created_at']).execute()

  // Faxes already given up before letters existed: a letter to send for each.
  await sql`
    insert into paper_letters (id, event_id, org_id, sender_org, status, fax_attempts, last_error, created_at)
    select gen_random_uuid(), d.event_id, d.org_id, e.sender_org, 'pending', d.fax_attempts, null, coalesce(d.delivered_at, e.created_at)
    from event_deliveries d join events e on e.id = d.event_id
    where d.fax_status = 'paper_letter'`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('paper_letters').execute()
  for (const c of ['postal_code', 'address_line2', 'address_line1']) await sql`alter table organisations drop column ${sql.id(c)}`.execute(db)
}

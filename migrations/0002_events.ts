// Frozen: never edit a migration that has been released; add a new one.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // When the organisation last read its feed (pull or stream): recipients that read it are integrated, not faxed.
  await db.schema.alterTable('organisations').addColumn('feed_read_at', 'timestamptz').execute()

  // Transactional outbox: an event is inserted in the transaction of the change that causes it.
  await db.schema
    .createTable('events')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('seq', 'bigserial', (c) => c.notNull().unique()) // insertion order, used to order a sequencer batch
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('sender_org', 'text') // the organisation whose action caused it (lab, ANSM…); null for the system
    .addColumn('subject_type', 'text')
    .addColumn('subject_id', 'text')
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('audience', 'jsonb', (c) => c.notNull()) // what the publisher addressed, as given
    .addColumn('recipients', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('events_subject').on('events').columns(['subject_type', 'subject_id']).execute()
  await db.schema.createIndex('events_sender').on('events').columns(['sender_org', 'created_at']).execute()

  // One row per event and recipient: the recipient's feed and the delivery record.
  // pos is the feed position, assigned after commit by the sequencer (see src/platform/events/sequencer.ts).
  await db.schema
    .createTable('event_deliveries')
    .addColumn('event_id', 'uuid', (c) => c.notNull().references('events.id'))
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('pos', 'bigint')
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('department', 'text')
    .addColumn('region', 'text')
    .addColumn('fax', 'boolean', (c) => c.notNull().defaultTo(false)) // also sent by fax (recipient without integration)
    .addColumn('fax_status', 'text', (c) => c.check(sql`fax_status in ('queued','sent','failed','paper_letter')`))
    .addColumn('fax_attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('delivered_at', 'timestamptz')
    .addColumn('delivered_via', 'text')
    .addColumn('read_at', 'timestamptz')
    .addColumn('ack', 'jsonb')
    .addColumn('acked_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('event_deliveries_pk', ['event_id', 'org_id'])
    .execute()
  await sql`create unique index event_deliveries_feed on event_deliveries (org_id, pos) where pos is not null`.execute(db)
  await sql`create index event_deliveries_pos on event_deliveries (pos) where pos is not null`.execute(db)
  await sql`create index event_deliveries_unsequenced on event_deliveries (event_id) where pos is null`.execute(db)

  await db.schema
    .createTable('feed_sequence')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('last_pos', 'bigint', (c) => c.notNull())
    .execute()
  await db.insertInto('feed_sequence').values({ id: 1, last_pos: 0 }).execute()

  await db.schema
    .createTable('webhook_endpoints')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('org_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('event_types', sql`text[]`, (c) => c.notNull()) // empty: every type
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('previous_secret', 'text') // still signs for a while after a rotation
    .addColumn('previous_secret_expires_at', 'timestamptz')
    .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('disabled_reason', 'text')
    .addColumn('failure_streak', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('webhook_endpoints_org').on('webhook_endpoints').column('org_id').execute()

  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('endpoint_id', 'uuid', (c) => c.notNull().references('webhook_endpoints.id'))
    .addColumn('event_id', 'uuid', (c) => c.notNull().references('events.id'))
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('pending','succeeded','failed')`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('last_attempt_at', 'timestamptz')
    .addColumn('last_status_code', 'integer')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('succeeded_at', 'timestamptz')
    .addUniqueConstraint('webhook_deliveries_once', ['endpoint_id', 'event_id'])
    .execute()
  await sql`create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending'`.execute(db)
  await db.schema.createIndex('webhook_deliveries_endpoint').on('webhook_deliveries').columns(['endpoint_id', 'created_at']).execute()

  // Scheduled work (webhook retries, fax, reminders, escalations, purges): claimed with SKIP LOCKED.
  await db.schema
    .createTable('jobs')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('queue', 'text', (c) => c.notNull())
    .addColumn('payload', 'jsonb', (c) => c.notNull())
    .addColumn('run_at', 'timestamptz', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull().defaultTo(10))
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('pending','running','done','failed')`))
    .addColumn('locked_by', 'text')
    .addColumn('locked_until', 'timestamptz')
    .addColumn('last_error', 'text')
    .addColumn('singleton_key', 'text') // at most one pending/running job per key
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('finished_at', 'timestamptz')
    .execute()
  await sql`create index jobs_due on jobs (run_at) where state = 'pending'`.execute(db)
  await sql`create unique index jobs_singleton on jobs (queue, singleton_key) where singleton_key is not null and state in ('pending','running')`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['jobs', 'webhook_deliveries', 'webhook_endpoints', 'feed_sequence', 'event_deliveries', 'events']) await db.schema.dropTable(t).execute()
  await db.schema.alterTable('organisations').dropColumn('feed_read_at').execute()
}

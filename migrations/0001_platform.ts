// Frozen: never edit a migration that has been released; add a new one.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('organisations')
    .addColumn('id', 'text', (c) => c.primaryKey()) // national identifier: FINESS, SIREN, RPPS, or a fixed code
    .addColumn('role', 'text', (c) =>
      c.notNull().check(sql`role in ('pharmacy','lab','ansm','wholesaler','hospital','prescriber','ordre','ministry')`),
    )
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('department', 'text')
    .addColumn('region', 'text')
    .addColumn('city', 'text')
    .addColumn('email', 'text')
    .addColumn('phone', 'text')
    .addColumn('fax', 'text')
    .addColumn('active', 'boolean', (c) => c.notNull().defaultTo(true))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('organisations_role_department').on('organisations').columns(['role', 'department']).execute()

  await db.schema
    .createTable('lab_subscriptions')
    .addColumn('lab_id', 'text', (c) => c.primaryKey().references('organisations.id'))
    .addColumn('subscribed', 'boolean', (c) => c.notNull())
    .addColumn('since', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  // BDPM holder label -> exploiting lab; the import uses it, the operator corrects it.
  await db.schema
    .createTable('lab_holders')
    .addColumn('holder', 'text', (c) => c.primaryKey())
    .addColumn('lab_id', 'text', (c) => c.references('organisations.id'))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()

  await db.schema
    .createTable('medicines')
    .addColumn('cis', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('search_name', 'text', (c) => c.notNull()) // upper case, no accents: portable search without extensions
    .addColumn('form', 'text')
    .addColumn('routes', 'text')
    .addColumn('authorisation_status', 'text')
    .addColumn('procedure', 'text')
    .addColumn('marketing_state', 'text')
    .addColumn('authorisation_date', 'date')
    .addColumn('holder', 'text')
    .addColumn('lab_id', 'text', (c) => c.references('organisations.id'))
    .addColumn('atc', 'text')
    .addColumn('mitm', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('niche', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('enhanced_monitoring', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('medicines_lab').on('medicines').column('lab_id').execute()
  await db.schema.createIndex('medicines_atc').on('medicines').column('atc').execute()
  await db.schema.createIndex('medicines_search').on('medicines').columns(['search_name', 'cis']).execute()

  await db.schema
    .createTable('presentations')
    .addColumn('cip13', 'text', (c) => c.primaryKey())
    .addColumn('cis', 'text', (c) => c.notNull().references('medicines.cis'))
    .addColumn('cip7', 'text')
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('administrative_status', 'text')
    .addColumn('marketing_state', 'text')
    .addColumn('declaration_date', 'date')
    .addColumn('hospital_approved', 'boolean')
    .addColumn('reimbursement_rate', 'text')
    .addColumn('price_eur', sql`numeric(12,2)`)
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await db.schema.createIndex('presentations_cis').on('presentations').column('cis').execute()
  await db.schema.createIndex('presentations_cip7').on('presentations').column('cip7').execute()

  // Current availability as published in CIS_CIP_Dispo_Spec.txt (cip13 null = every presentation of the CIS).
  await db.schema
    .createTable('availability')
    .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('cis', 'text', (c) => c.notNull().references('medicines.cis'))
    .addColumn('cip13', 'text')
    .addColumn('status_code', 'integer', (c) => c.notNull())
    .addColumn('status_label', 'text', (c) => c.notNull())
    .addColumn('start_date', 'date')
    .addColumn('planned_end_date', 'date')
    .addColumn('return_date', 'date')
    .addColumn('link', 'text')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute()
  await sql`create unique index availability_key on availability (cis, coalesce(cip13, ''))`.execute(db)

  // Append-only, hash-chained. seq is assigned under a lock so that it has no gaps.
  await db.schema
    .createTable('audit_log')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('actor_role', 'text')
    .addColumn('actor_org', 'text')
    .addColumn('actor_user', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('object_type', 'text', (c) => c.notNull())
    .addColumn('object_id', 'text', (c) => c.notNull())
    .addColumn('changes', 'jsonb', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('audit_log_object').on('audit_log').columns(['object_type', 'object_id', 'seq']).execute()

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('org_id', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('running','done')`))
    .addColumn('status_code', 'integer')
    .addColumn('response_headers', 'jsonb')
    .addColumn('response_body', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['org_id', 'key'])
    .execute()
  await db.schema.createIndex('idempotency_keys_expiry').on('idempotency_keys').column('expires_at').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['idempotency_keys', 'audit_log', 'availability', 'presentations', 'medicines', 'lab_holders', 'lab_subscriptions', 'organisations']) {
    await db.schema.dropTable(t).execute()
  }
}

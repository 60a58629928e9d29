// Frozen: never edit a migration that has been released; add a new one.
// E-prescription: prescriptions, their lines, dispensations (one per pharmacy visit), what each delivered,
// the access log the patient sees, wrong access-code attempts (throttling) and the receipt signing keys.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('eprescriptions')
    .addColumn('id', 'text', (c) => c.primaryKey()) // 12 Crockford base-32 characters, the last a check character
    .addColumn('prescriber_org', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('prescriber_user', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('draft','ready','in_progress','completed','cancelled','expired')`))
    .addColumn('access_code', 'text', (c) => c.notNull())
    .addColumn('patient_family_name', 'text', (c) => c.notNull())
    .addColumn('patient_given_name', 'text', (c) => c.notNull())
    .addColumn('patient_birth_date', 'date', (c) => c.notNull())
    .addColumn('patient_objection', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('issued_at', 'timestamptz', (c) => c.notNull())
    .addColumn('valid_until', 'timestamptz', (c) => c.notNull())
    .addColumn('holder_org', 'text') // the pharmacy holding it while in_progress
    .addColumn('dispensations_closed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cancelled_at', 'timestamptz')
    .addColumn('cancel_reason', 'text')
    .addColumn('completed_at', 'timestamptz')
    .addColumn('expired_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('eprescriptions_prescriber').on('eprescriptions').columns(['prescriber_org', 'issued_at']).execute()

  await db.schema
    .createTable('eprescription_lines')
    .addColumn('prescription_id', 'text', (c) => c.notNull().references('eprescriptions.id').onDelete('cascade'))
    .addColumn('line_no', 'integer', (c) => c.notNull())
    .addColumn('cip13', 'text')
    .addColumn('substance', 'text')
    .addColumn('strength', 'text')
    .addColumn('form', 'text')
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('dosage', 'text', (c) => c.notNull())
    .addColumn('quantity', 'integer')
    .addColumn('duration_days', 'integer')
    .addColumn('renewals', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('non_substitutable', 'boolean', (c) => c.notNull().defaultTo(false))
    .addPrimaryKeyConstraint('eprescription_lines_pk', ['prescription_id', 'line_no'])
    .addCheckConstraint('eprescription_lines_what', sql`(cip13 is null) <> (substance is null)`)
    .execute()

  await db.schema
    .createTable('eprescription_dispensations')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('prescription_id', 'text', (c) => c.notNull().references('eprescriptions.id').onDelete('cascade'))
    .addColumn('seq', 'integer') // 1, 2, 3… given at close
    .addColumn('pharmacy_org', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('pharmacy_user', 'text', (c) => c.notNull())
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('open','released','closed')`))
    .addColumn('accepted_at', 'timestamptz', (c) => c.notNull())
    .addColumn('released_at', 'timestamptz')
    .addColumn('closed_at', 'timestamptz')
    .addColumn('digest', 'text')
    .addColumn('receipt', 'text')
    .addColumn('receipt_kid', 'text')
    .execute()
  // At most one open dispensation per prescription; closed ones numbered without duplicates.
  await sql`create unique index eprescription_dispensations_open on eprescription_dispensations (prescription_id) where status = 'open'`.execute(db)
  await sql`create unique index eprescription_dispensations_seq on eprescription_dispensations (prescription_id, seq) where seq is not null`.execute(db)
  await db.schema.createIndex('eprescription_dispensations_pharmacy').on('eprescription_dispensations').columns(['pharmacy_org', 'accepted_at']).execute()

  await db.schema
    .createTable('eprescription_dispensed_lines')
    .addColumn('dispensation_id', 'uuid', (c) => c.notNull().references('eprescription_dispensations.id').onDelete('cascade'))
    .addColumn('line_no', 'integer', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('delivered','not_delivered')`))
    .addColumn('cip13', 'text')
    .addColumn('quantity', 'integer')
    .addColumn('batch', 'text')
    .addColumn('substituted', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('dosage_changed_to', 'text')
    .addColumn('dosage_change_reason', 'text')
    .addColumn('not_delivered_reason', 'text')
    .addColumn('recorded_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('eprescription_dispensed_lines_pk', ['dispensation_id', 'line_no'])
    .execute()

  // Every access to a prescription (who, when, what); the patient reads it. Purged with the prescription.
  await db.schema
    .createTable('eprescription_access_log')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('prescription_id', 'text', (c) => c.notNull().references('eprescriptions.id').onDelete('cascade'))
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .addColumn('actor_role', 'text', (c) => c.notNull())
    .addColumn('actor_org', 'text')
    .addColumn('action', 'text', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('eprescription_access_log_prescription').on('eprescription_access_log').columns(['prescription_id', 'id']).execute()

  // Wrong access codes, counted in the database so that the limit holds across instances.
  // client: 'org:<FINESS>' for a pharmacy, 'ip:<address>' for a patient. prescription_id: null when unknown.
  await db.schema
    .createTable('eprescription_access_failures')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('prescription_id', 'text')
    .addColumn('client', 'text', (c) => c.notNull())
    .addColumn('at', 'timestamptz', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('eprescription_access_failures_prescription').on('eprescription_access_failures').columns(['prescription_id', 'at']).execute()
  await db.schema.createIndex('eprescription_access_failures_client').on('eprescription_access_failures').columns(['client', 'at']).execute()

  // Public keys that signed receipts (JWKS): kept so that an old receipt still verifies after a key change.
  await db.schema
    .createTable('eprescription_receipt_keys')
    .addColumn('kid', 'text', (c) => c.primaryKey())
    .addColumn('jwk', 'jsonb', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of [
    'eprescription_receipt_keys',
    'eprescription_access_failures',
    'eprescription_access_log',
    'eprescription_dispensed_lines',
    'eprescription_dispensations',
    'eprescription_lines',
    'eprescriptions',
  ]) {
    await db.schema.dropTable(t).execute()
  }
}

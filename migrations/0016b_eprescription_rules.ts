// Frozen: never edit a migration that has been released; add a new one.
// E-prescription rules: access codes and dispensation secrets become keyed hashes (HMAC-SHA256 with
// EPRESCRIPTION_CODE_KEY; existing rows are hashed here, then the clear columns dropped); lines may give units;
// dispensed lines record how the product matched the line, the units delivered and the reason for a larger
// quantity; the digest of the prescription as issued; alerts raised to the operator on repeated wrong codes.
import { createHmac } from 'node:crypto'
import { type Kysely, sql } from 'kysely'

// Must equal DEV_EPRESCRIPTION_CODE_KEY in the configuration (a test checks that existing rows still open).
const DEV_KEY = 'development-only-eprescription-code-key-never-in-production'

function key(): string {
  const configured = process.env.EPRESCRIPTION_CODE_KEY
  if (configured) return configured
  if (process.env.NODE_ENV === 'production') throw new Error('EPRESCRIPTION_CODE_KEY is required to hash the existing access codes and secrets')
  return DEV_KEY
}
const mac = (k: string, text: string) => createHmac('sha256', k).update(text).digest('base64url')

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table eprescriptions add column access_code_hash text`.execute(db)
  await sql`alter table eprescriptions add column issued_digest text`.execute(db)
  await sql`alter table eprescription_dispensations add column secret_hash text`.execute(db)

  const codes = await db.selectFrom('eprescriptions').select(['id', 'access_code']).execute()
  const secrets = await db.selectFrom('eprescription_dispensations').select(['id', 'secret']).execute()
  if (codes.length || secrets.length) {
    const k = key()
    for (const r of codes) {
      await db.updateTable('eprescriptions').set({ access_code_hash: mac(k, `access-code:${r.id}:${r.access_code}`) }).where('id', '=', r.id).execute()
    }
    for (const r of secrets) {
      await db.updateTable('eprescription_dispensations').set({ secret_hash: mac(k, `secret:${r.id}:${r.secret}`) }).where('id', '=', r.id).execute()
    }
  }
  await sql`alter table eprescriptions alter column access_code_hash set not null`.execute(db)
  await sql`alter table eprescriptions drop column access_code`.execute(db)
  await sql`alter table eprescription_dispensations alter column secret_hash set not null`.execute(db)
  await sql`alter table eprescription_dispensations drop column secret`.execute(db)

  await sql`alter table eprescription_lines add column units integer`.execute(db)
  await sql`alter table eprescription_lines add column substance_code text`.execute(db)
  await sql`alter table eprescription_dispensed_lines add column cis text`.execute(db)
  await sql`alter table eprescription_dispensed_lines add column units integer`.execute(db)
  await sql`alter table eprescription_dispensed_lines add column match text check (match in ('prescribed', 'pack-size', 'generic-group', 'substance'))`.execute(db)
  await sql`alter table eprescription_dispensed_lines add column quantity_reason text check (quantity_reason in ('pack-size', 'unit-conversion'))`.execute(db)
  // The list of a prescriber's prescriptions, newest first.
  await sql`create index eprescriptions_prescriber_list on eprescriptions (prescriber_org, issued_at desc, id desc)`.execute(db)
  await sql`create index eprescription_access_failures_client_prescription on eprescription_access_failures (client, prescription_id, at)`.execute(db)

  await db.schema
    .createTable('eprescription_access_alerts')
    .addColumn('id', 'bigserial', (c) => c.primaryKey())
    .addColumn('prescription_id', 'text', (c) => c.notNull().references('eprescriptions.id').onDelete('cascade'))
    .addColumn('raised_at', 'timestamptz', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('callers', 'integer', (c) => c.notNull())
    .execute()
  await db.schema.createIndex('eprescription_access_alerts_prescription').on('eprescription_access_alerts').columns(['prescription_id', 'raised_at']).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  // The clear codes cannot be recovered from their hashes: going down leaves the prescriptions unopenable.
  await db.schema.dropTable('eprescription_access_alerts').execute()
  await sql`drop index eprescription_access_failures_client_prescription`.execute(db)
  await sql`drop index eprescriptions_prescriber_list`.execute(db)
  for (const c of ['quantity_reason', 'match', 'units', 'cis']) await sql`alter table eprescription_dispensed_lines drop column ${sql.ref(c)}`.execute(db)
  await sql`alter table eprescription_lines drop column substance_code`.execute(db)
  await sql`alter table eprescription_lines drop column units`.execute(db)
  await sql`alter table eprescription_dispensations add column secret text not null default ''`.execute(db)
  await sql`alter table eprescription_dispensations drop column secret_hash`.execute(db)
  await sql`alter table eprescriptions add column access_code text not null default ''`.execute(db)
  await sql`alter table eprescriptions drop column issued_digest`.execute(db)
  await sql`alter table eprescriptions drop column access_code_hash`.execute(db)
}

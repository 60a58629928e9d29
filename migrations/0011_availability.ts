// Frozen: never edit a migration that has been released; add a new one.
// DP-Ruptures item 7: declarations seeded and reconciled from the BDPM availability file (CIS_CIP_Dispo_Spec.txt).
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // Who created the declaration: the lab through the API, or the BDPM availability import. The import only
  // ever changes declarations it created and that no lab has changed since (see src/shortages/availability.ts).
  await db.schema
    .alterTable('shortage_declarations')
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('lab').check(sql`source in ('lab','bdpm')`))
    .execute()

  // The BDPM line behind each imported declaration. Key: (cis, cip13), cip13 '' when the line covers every
  // presentation of the CIS. A key may have several rows over time (a shortage that ends and comes back);
  // the latest one (imported_at, then declaration) is the one the next import compares with.
  await db.schema
    .createTable('shortage_bdpm_lines')
    .addColumn('declaration_id', 'uuid', (c) => c.primaryKey().references('shortage_declarations.id'))
    .addColumn('cis', 'text', (c) => c.notNull())
    .addColumn('cip13', 'text', (c) => c.notNull()) // '' = every presentation of the CIS
    .addColumn('fingerprint', 'text', (c) => c.notNull()) // the line's meaningful fields, to see whether it changed
    .addColumn('status_code', 'integer', (c) => c.notNull())
    .addColumn('status_label', 'text', (c) => c.notNull())
    .addColumn('start_date', 'date')
    .addColumn('bdpm_updated_on', 'date') // 6th column: the date BDPM last updated the status
    .addColumn('return_date', 'date')
    .addColumn('link', 'text')
    .addColumn('imported_at', 'timestamptz', (c) => c.notNull())
    // null while the line is in the file; 'missing' once a later file no longer had it (the declaration was
    // then resolved); 'line' when the line itself closed the declaration (remise à disposition, past arrêt).
    .addColumn('closed_reason', 'text', (c) => c.check(sql`closed_reason in ('missing','line')`))
    .execute()
  await db.schema.createIndex('shortage_bdpm_lines_key').on('shortage_bdpm_lines').columns(['cis', 'cip13', 'imported_at']).execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('shortage_bdpm_lines').execute()
  await db.schema.alterTable('shortage_declarations').dropColumn('source').execute()
}

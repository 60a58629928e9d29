// Frozen: never edit a migration that has been released; add a new one.
// The rest of the BDPM that substitution needs: generic groups (CIS_GENER_bdpm.txt), the composition of each
// medicine (CIS_COMPO_bdpm.txt) and its prescription and dispensing conditions (CIS_CPD_bdpm.txt).
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('generic_groups')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('label', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
    .execute()
  // No foreign key to medicines: the répertoire keeps medicines that are no longer in CIS_bdpm.txt.
  await db.schema
    .createTable('generic_group_members')
    .addColumn('group_id', 'integer', (c) => c.notNull().references('generic_groups.id').onDelete('cascade'))
    .addColumn('cis', 'text', (c) => c.notNull())
    // 0 princeps, 1 generic, 2 generic by complementarity of posology, 4 substitutable generic
    .addColumn('type', 'smallint', (c) => c.notNull().check(sql`type in (0, 1, 2, 4)`))
    .addColumn('sort_order', 'integer')
    .addPrimaryKeyConstraint('generic_group_members_pk', ['group_id', 'cis'])
    .execute()
  await db.schema.createIndex('generic_group_members_cis').on('generic_group_members').columns(['cis', 'group_id']).execute()

  await db.schema
    .createTable('medicine_components')
    .addColumn('cis', 'text', (c) => c.notNull().references('medicines.cis').onDelete('cascade'))
    .addColumn('element', 'text', (c) => c.notNull()) // pharmaceutical element, e.g. "comprimé"
    .addColumn('link_no', 'integer', (c) => c.notNull()) // an active substance (SA) and its therapeutic fraction (FT) share it
    .addColumn('nature', 'text', (c) => c.notNull().check(sql`nature in ('SA', 'FT')`))
    .addColumn('substance_code', 'text', (c) => c.notNull())
    .addColumn('substance', 'text', (c) => c.notNull())
    .addColumn('search_substance', 'text', (c) => c.notNull()) // upper case without accents, for matching
    .addColumn('dosage', 'text')
    .addColumn('dosage_reference', 'text')
    .addPrimaryKeyConstraint('medicine_components_pk', ['cis', 'element', 'link_no', 'nature', 'substance_code'])
    .execute()
  await db.schema.createIndex('medicine_components_substance').on('medicine_components').columns(['search_substance']).execute()

  await db.schema
    .createTable('prescription_conditions')
    .addColumn('cis', 'text', (c) => c.notNull().references('medicines.cis').onDelete('cascade'))
    .addColumn('condition', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('prescription_conditions_pk', ['cis', 'condition'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['prescription_conditions', 'medicine_components', 'generic_group_members', 'generic_groups']) await db.schema.dropTable(t).execute()
}

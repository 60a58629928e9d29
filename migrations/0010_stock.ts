// Frozen: never edit a migration that has been released; add a new one.
// Stock-declaration campaigns: campaigns and their products, pharmacies' weekly declarations (with the history of
// replaced values), and the weekly aggregates by department and product that outlive the raw data.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('stock_campaigns')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull().check(sql`period in ('weekly')`))
    .addColumn('start_date', 'date', (c) => c.notNull())
    .addColumn('end_date', 'date', (c) => c.notNull())
    .addColumn('retention_days', 'integer', (c) => c.notNull().check(sql`retention_days > 0`))
    .addColumn('min_pharmacies', 'integer', (c) => c.notNull().check(sql`min_pharmacies > 0`))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('closed_at', 'timestamptz')
    .addColumn('closed_by', 'text')
    .addColumn('purged_through', 'date') // the last week whose raw data was purged
    .addCheckConstraint('stock_campaigns_dates', sql`end_date >= start_date`)
    .execute()
  await db.schema.createIndex('stock_campaigns_created').on('stock_campaigns').columns(['created_at', 'id']).execute()

  await db.schema
    .createTable('stock_campaign_products')
    .addColumn('campaign_id', 'uuid', (c) => c.notNull().references('stock_campaigns.id'))
    .addColumn('cip13', 'text', (c) => c.notNull().references('presentations.cip13'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('stock_campaign_products_pk', ['campaign_id', 'cip13'])
    .execute()

  // Raw data: one row per campaign, pharmacy, week (its Monday, Paris calendar) and product; a new declaration for
  // the same week replaces the quantity and moves the previous one to the history. Purged after the retention.
  await db.schema
    .createTable('stock_declarations')
    .addColumn('id', 'uuid', (c) => c.primaryKey())
    .addColumn('campaign_id', 'uuid', (c) => c.notNull().references('stock_campaigns.id'))
    .addColumn('pharmacy_id', 'text', (c) => c.notNull().references('organisations.id'))
    .addColumn('week', 'date', (c) => c.notNull())
    .addColumn('cip13', 'text', (c) => c.notNull().references('presentations.cip13'))
    .addColumn('department', 'text', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull().check(sql`quantity >= 0`))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('first_declared_at', 'timestamptz', (c) => c.notNull())
    .addColumn('declared_at', 'timestamptz', (c) => c.notNull())
    .addColumn('declared_by', 'text')
    .addUniqueConstraint('stock_declarations_one', ['campaign_id', 'pharmacy_id', 'week', 'cip13'])
    .execute()
  await db.schema.createIndex('stock_declarations_week').on('stock_declarations').columns(['campaign_id', 'week', 'cip13']).execute()

  await db.schema
    .createTable('stock_declaration_history')
    .addColumn('declaration_id', 'uuid', (c) => c.notNull().references('stock_declarations.id').onDelete('cascade'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('quantity', 'integer', (c) => c.notNull())
    .addColumn('declared_at', 'timestamptz', (c) => c.notNull())
    .addColumn('declared_by', 'text')
    .addColumn('replaced_at', 'timestamptz', (c) => c.notNull())
    .addPrimaryKeyConstraint('stock_declaration_history_pk', ['declaration_id', 'version'])
    .execute()

  // Kept up to date in the transaction of every declaration (increments under the row lock), so that the
  // aggregates exist without the raw data and survive its purge.
  await db.schema
    .createTable('stock_aggregates')
    .addColumn('campaign_id', 'uuid', (c) => c.notNull().references('stock_campaigns.id'))
    .addColumn('week', 'date', (c) => c.notNull())
    .addColumn('cip13', 'text', (c) => c.notNull())
    .addColumn('department', 'text', (c) => c.notNull())
    .addColumn('total_quantity', 'bigint', (c) => c.notNull())
    .addColumn('pharmacies', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('stock_aggregates_pk', ['campaign_id', 'week', 'cip13', 'department'])
    .execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['stock_aggregates', 'stock_declaration_history', 'stock_declarations', 'stock_campaign_products', 'stock_campaigns']) {
    await db.schema.dropTable(t).execute()
  }
}

import type { ColumnType } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
/** DATE columns are read as 'YYYY-MM-DD' strings on both drivers. */
type DateOnly = string
type BigCount = ColumnType<string | number, number | string, number | string>

export interface StockCampaignsTable {
  id: string
  name: string
  period: 'weekly'
  start_date: DateOnly
  end_date: DateOnly
  retention_days: number
  min_pharmacies: number
  created_at: Timestamp
  created_by: string | null
  closed_at: Date | null
  closed_by: string | null
  purged_through: DateOnly | null
}

export interface StockCampaignProductsTable {
  campaign_id: string
  cip13: string
  position: number
}

export interface StockDeclarationsTable {
  id: string
  campaign_id: string
  pharmacy_id: string
  week: DateOnly
  cip13: string
  department: string
  quantity: number
  version: number
  first_declared_at: Timestamp
  declared_at: Timestamp
  declared_by: string | null
}

export interface StockDeclarationHistoryTable {
  declaration_id: string
  version: number
  quantity: number
  declared_at: Timestamp
  declared_by: string | null
  replaced_at: Timestamp
}

export interface StockAggregatesTable {
  campaign_id: string
  week: DateOnly
  cip13: string
  department: string
  total_quantity: BigCount
  pharmacies: number
}

declare module '../platform/db/schema.ts' {
  interface DB {
    stock_campaigns: StockCampaignsTable
    stock_campaign_products: StockCampaignProductsTable
    stock_declarations: StockDeclarationsTable
    stock_declaration_history: StockDeclarationHistoryTable
    stock_aggregates: StockAggregatesTable
  }
}

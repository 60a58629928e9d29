/** The tables of the blocking of dispensation: the recalls' blocked batches and what each API instance has loaded. */
import type { ColumnType } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type DateOnly = ColumnType<string, string, string>

export interface DispensationBlocksTable {
  cip13: string
  batch: string
  recall_id: string
  reference: string
  version: number
  lab_id: string
  expiry: DateOnly | null
  message_fr: string
  message_en: string | null
  state: 'pending' | 'active'
  since: Timestamp
}

declare module '../platform/db/schema.ts' {
  interface DB {
    dispensation_blocks: DispensationBlocksTable
    dispensation_block_generation: { id: number; generation: number }
    dispensation_block_instances: { id: string; loaded_generation: number; lease_until: Timestamp; started_at: Timestamp }
  }
}

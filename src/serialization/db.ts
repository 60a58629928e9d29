import type { ColumnType } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
/** DATE columns are read as 'YYYY-MM-DD' strings on both drivers (see platform/db/index.ts). */
type DateOnly = ColumnType<string, string, string>

/** A pack's own state; `not_found` is an answer, never stored. */
export const PACK_STATES = ['active', 'supplied', 'destroyed', 'stolen', 'sample', 'free_sample', 'locked', 'exported', 'checked_out'] as const
export type PackState = (typeof PACK_STATES)[number]
/** What a pharmacy, wholesaler or lab may do to a pack (POST /v1/serialization/packs/state). */
export const ACTIONS = ['supply', 'destroy', 'stolen', 'sample', 'free_sample', 'lock', 'export', 'unlock', 'undo'] as const
export type Action = (typeof ACTIONS)[number]
/** Status of a batch or of a whole product, set by the lab (or by DP-Rappels for a recall). */
export const BATCH_STATUSES = ['active', 'recalled', 'withdrawn', 'expired'] as const
export type BatchStatus = (typeof BATCH_STATUSES)[number]

export interface SerialBatchesTable {
  cip13: string
  batch: string
  lab_id: string
  expiry: DateOnly
  status: ColumnType<BatchStatus, BatchStatus | undefined, BatchStatus>
  status_reason: string | null
  created_at: Timestamp
  updated_at: Timestamp
}

export interface SerialProductsTable {
  cip13: string
  lab_id: string
  status: BatchStatus
  status_reason: string | null
  updated_at: Timestamp
}

export interface PacksTable {
  cip13: string
  serial: string
  batch: string
  state: PackState
  state_at: Timestamp
  last_txn: string | null
  created_at: Timestamp
}

export interface PackTransactionsTable {
  cip13: string
  id: string
  serial: string
  action: string
  from_state: PackState
  to_state: PackState
  /** Pseudonyms (pseudonyms.ts): no FINESS and no user identifier in clear. */
  org_pseudonym: string
  user_pseudonym: string
  role: string
  undoes: string | null
  at: Timestamp
}

declare module '../platform/db/schema.ts' {
  interface DB {
    serial_batches: SerialBatchesTable
    serial_products: SerialProductsTable
    packs: PacksTable
    pack_transactions: PackTransactionsTable
  }
}

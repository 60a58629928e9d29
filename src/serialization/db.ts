// Serialization's tables: batches, products, packs and their transactions; the scan log, alerts and their messages.
import type { ColumnType, Generated } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
/** DATE columns are read as 'YYYY-MM-DD' strings on both drivers (see platform/db/index.ts). */
type DateOnly = ColumnType<string, string, string>
/** bigint: read as a number on both drivers (platform/db/index.ts). */
type BigIntCol = ColumnType<number, number, number>

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
  /** Pseudonyms (rules/pseudonyms.ts): no FINESS and no user identifier in clear. */
  org_pseudonym: string
  user_pseudonym: string
  role: string
  undoes: string | null
  at: Timestamp
}

export const ALERT_STATUSES = ['new', 'under_investigation', 'escalated', 'closed'] as const
export type AlertStatus = (typeof ALERT_STATUSES)[number]
export const ALERT_CONCLUSIONS = ['technical_error', 'scanning_error', 'falsification_suspected', 'other'] as const
export type AlertConclusion = (typeof ALERT_CONCLUSIONS)[number]
/** ANSM's conclusion on an alert a lab escalated to it. */
export const ANSM_CONCLUSIONS = ['falsification_confirmed', 'no_falsification', 'other'] as const
export type AnsmConclusion = (typeof ANSM_CONCLUSIONS)[number]

/** The pseudonymised scan log: never a FINESS, a user or an organisation id. */
export interface SerialScansTable {
  cip13: string
  id: string
  at: Timestamp
  serial: string
  batch: string
  expiry: DateOnly
  action: string
  code: string
  role: string
  pharmacy_pseudonym: string
  transaction_id: string | null
  alert_reference: string | null
}

export interface SerialAlertsTable {
  seq: BigIntCol
  reference: string
  cip13: string
  lab_id: string
  serial: string
  batch: string
  expiry: DateOnly
  code: string
  action: string
  /** The scanning organisation and user, as pseudonyms (rules/pseudonyms.ts): never a FINESS or a user id. */
  pharmacy_pseudonym: string
  user_pseudonym: string
  /** The DataMatrix as scanned, when the pack was scanned (at most 200 characters). */
  scanned: string | null
  occurrences: ColumnType<number, number | undefined, number>
  last_seen_at: Timestamp
  status: ColumnType<AlertStatus, AlertStatus | undefined, AlertStatus>
  conclusion: AlertConclusion | null
  conclusion_note: string | null
  escalated_at: Timestamp | null
  ansm_conclusion: AnsmConclusion | null
  ansm_note: string | null
  created_at: Timestamp
  updated_at: Timestamp
  closed_at: Timestamp | null
}

export interface SerialAlertMessagesTable {
  id: Generated<number>
  alert_seq: BigIntCol
  author: 'lab' | 'pharmacy' | 'ansm'
  user_pseudonym: string
  text: string
  at: Timestamp
}

declare module '../platform/db/schema.ts' {
  interface DB {
    serial_batches: SerialBatchesTable
    serial_products: SerialProductsTable
    packs: PacksTable
    pack_transactions: PackTransactionsTable
    serial_scans: SerialScansTable
    serial_alerts: SerialAlertsTable
    serial_alert_messages: SerialAlertMessagesTable
  }
}

import type { ColumnType, Generated } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type DateOnly = ColumnType<string, string, string>
/** bigint: read as a number on both drivers (platform/db/index.ts). */
type BigIntCol = ColumnType<number, number, number>

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
  /** The scanning organisation and user, as pseudonyms (pseudonyms.ts): never a FINESS or a user id. */
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
    serial_scans: SerialScansTable
    serial_alerts: SerialAlertsTable
    serial_alert_messages: SerialAlertMessagesTable
  }
}

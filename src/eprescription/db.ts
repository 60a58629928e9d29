import type { ColumnType, Generated } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type DateOnly = ColumnType<string, string, string>

export type PrescriptionStatus = 'draft' | 'ready' | 'in_progress' | 'completed' | 'cancelled' | 'expired'
export type DeliveredMatch = 'prescribed' | 'pack-size' | 'generic-group' | 'substance'
export type QuantityReason = 'pack-size' | 'unit-conversion'

export interface EprescriptionsTable {
  id: string
  prescriber_org: string
  prescriber_user: string
  status: PrescriptionStatus
  /** HMAC-SHA256 (EPRESCRIPTION_CODE_KEY) of the access code: the code itself is never stored. */
  access_code_hash: string
  /** sha-256 of the prescription as issued (see digestOfIssued); null for prescriptions issued before it existed, until their first close. */
  issued_digest: string | null
  patient_family_name: string
  patient_given_name: string
  patient_birth_date: DateOnly
  patient_objection: Generated<boolean>
  issued_at: Timestamp
  valid_until: Timestamp
  holder_org: string | null
  dispensations_closed: Generated<number>
  cancelled_at: Timestamp | null
  cancel_reason: string | null
  completed_at: Timestamp | null
  expired_at: Timestamp | null
  updated_at: Timestamp
}

export interface EprescriptionLinesTable {
  prescription_id: string
  line_no: number
  cip13: string | null
  substance: string | null
  strength: string | null
  form: string | null
  label: string
  dosage: string
  quantity: number | null
  /** Units (tablets, capsules…) per dispensation, when the prescriber gave them instead of boxes. */
  units: number | null
  duration_days: number | null
  renewals: number
  non_substitutable: boolean
  /** ANSM codes of the prescribed substances (substance lines), from the composition at issue. */
  substance_code: string | null
}

export interface EprescriptionDispensationsTable {
  id: string
  prescription_id: string
  seq: number | null
  pharmacy_org: string
  pharmacy_user: string
  /** HMAC-SHA256 of the secret given to the pharmacy: the secret itself is never stored. */
  secret_hash: string
  status: 'open' | 'released' | 'closed'
  accepted_at: Timestamp
  released_at: Timestamp | null
  closed_at: Timestamp | null
  digest: string | null
  receipt: string | null
  receipt_kid: string | null
}

export interface EprescriptionDispensedLinesTable {
  dispensation_id: string
  line_no: number
  outcome: 'delivered' | 'not_delivered'
  cip13: string | null
  quantity: number | null
  batch: string | null
  /** The delivered product's medicine. */
  cis: string | null
  /** Units delivered (quantity × units per box), when the box says. */
  units: number | null
  /** How the delivered product relates to the line, as the service decided it. */
  match: DeliveredMatch | null
  quantity_reason: QuantityReason | null
  substituted: boolean
  dosage_changed_to: string | null
  dosage_change_reason: string | null
  not_delivered_reason: string | null
  recorded_at: Timestamp
}

export interface EprescriptionAccessLogTable {
  id: Generated<number>
  prescription_id: string
  at: Timestamp
  actor_role: string
  actor_org: string | null
  action: string
}

export interface EprescriptionAccessFailuresTable {
  id: Generated<number>
  prescription_id: string | null
  client: string
  at: Timestamp
}

export interface EprescriptionAccessAlertsTable {
  id: Generated<number>
  prescription_id: string
  raised_at: Timestamp
  failures: number
  callers: number
}

export interface EprescriptionReceiptKeysTable {
  kid: string
  jwk: ColumnType<Record<string, unknown>, string, string>
  created_at: Timestamp
}

declare module '../platform/db/schema.ts' {
  interface DB {
    eprescriptions: EprescriptionsTable
    eprescription_lines: EprescriptionLinesTable
    eprescription_dispensations: EprescriptionDispensationsTable
    eprescription_dispensed_lines: EprescriptionDispensedLinesTable
    eprescription_access_log: EprescriptionAccessLogTable
    eprescription_access_failures: EprescriptionAccessFailuresTable
    eprescription_receipt_keys: EprescriptionReceiptKeysTable
    eprescription_access_alerts: EprescriptionAccessAlertsTable
  }
}

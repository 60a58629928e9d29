import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

export type Role = 'pharmacy' | 'lab' | 'ansm' | 'wholesaler' | 'hospital' | 'prescriber' | 'ordre' | 'ministry'
export const ROLES: readonly Role[] = ['pharmacy', 'lab', 'ansm', 'wholesaler', 'hospital', 'prescriber', 'ordre', 'ministry']

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
/** DATE columns are read as 'YYYY-MM-DD' strings on both drivers (see db/index.ts). */
type DateOnly = ColumnType<string, string | null, string | null>

export interface OrganisationsTable {
  id: string
  role: Role
  name: string
  department: string | null
  region: string | null
  city: string | null
  email: string | null
  phone: string | null
  fax: string | null
  /** Postal address (with `city`): where a paper letter goes when a fax fails. */
  address_line1: string | null
  address_line2: string | null
  postal_code: string | null
  active: Generated<boolean>
  feed_read_at: Timestamp | null
  created_at: Generated<Date>
  updated_at: Timestamp
}

export interface LabSubscriptionsTable {
  lab_id: string
  subscribed: boolean
  since: Timestamp
  updated_at: Timestamp
}

export interface LabHoldersTable {
  holder: string
  lab_id: string | null
  updated_at: Timestamp
}

export interface MedicinesTable {
  cis: string
  name: string
  search_name: string
  form: string | null
  routes: string | null
  authorisation_status: string | null
  procedure: string | null
  marketing_state: string | null
  authorisation_date: DateOnly | null
  holder: string | null
  lab_id: string | null
  atc: string | null
  mitm: Generated<boolean>
  niche: Generated<boolean>
  enhanced_monitoring: Generated<boolean>
  created_at: Generated<Date>
  updated_at: Timestamp
}

export interface PresentationsTable {
  cip13: string
  cis: string
  cip7: string | null
  label: string
  administrative_status: string | null
  marketing_state: string | null
  declaration_date: DateOnly | null
  hospital_approved: boolean | null
  reimbursement_rate: string | null
  price_eur: ColumnType<string | null, string | number | null, string | number | null>
  created_at: Generated<Date>
  updated_at: Timestamp
}

export interface AvailabilityTable {
  id: Generated<string>
  cis: string
  cip13: string | null
  status_code: number
  status_label: string
  start_date: DateOnly | null
  planned_end_date: DateOnly | null
  return_date: DateOnly | null
  link: string | null
  updated_at: Timestamp
}

export interface AuditLogTable {
  /** The trail's overall order (from a sequence: gaps are normal). */
  seq: number
  /** Which hash chain the entry belongs to, and its gapless position there. */
  chain: number
  chain_seq: number
  at: Date
  actor_role: string | null
  actor_org: string | null
  actor_user: string | null
  action: string
  object_type: string
  object_id: string
  changes: ColumnType<unknown, string, string>
  request_id: string | null
  prev_hash: string
  hash: string
}

export interface IdempotencyKeysTable {
  org_id: string
  key: string
  request_hash: string
  state: 'running' | 'done'
  status_code: number | null
  response_headers: ColumnType<Record<string, string> | null, string | null, string | null>
  response_body: string | null
  created_at: Generated<Date>
  expires_at: Timestamp
}

export interface EventsTable {
  id: string
  seq: Generated<number>
  type: string
  sender_org: string | null
  subject_type: string | null
  subject_id: string | null
  payload: ColumnType<unknown, string, never>
  audience: ColumnType<unknown, string, never>
  recipients: number
  created_at: Timestamp
}

export interface EventDeliveriesTable {
  event_id: string
  org_id: string
  pos: number | null
  role: Role
  department: string | null
  region: string | null
  fax: Generated<boolean>
  fax_status: 'queued' | 'sent' | 'failed' | 'paper_letter' | null
  fax_attempts: Generated<number>
  delivered_at: Timestamp | null
  delivered_via: string | null
  read_at: Timestamp | null
  ack: ColumnType<unknown, string | null, string | null>
  acked_at: Timestamp | null
  created_at: Timestamp
}

export interface FeedSequenceTable {
  id: number
  last_pos: number
}

export interface WebhookEndpointsTable {
  id: string
  org_id: string
  url: string
  description: string | null
  event_types: string[]
  secret: string
  previous_secret: string | null
  previous_secret_expires_at: Timestamp | null
  active: Generated<boolean>
  disabled_reason: string | null
  failure_streak: Generated<number>
  created_at: Timestamp
  updated_at: Timestamp
}

export interface WebhookDeliveriesTable {
  id: string
  endpoint_id: string
  event_id: string
  org_id: string
  status: 'pending' | 'succeeded' | 'failed'
  attempts: Generated<number>
  next_attempt_at: Timestamp | null
  last_attempt_at: Timestamp | null
  last_status_code: number | null
  last_error: string | null
  created_at: Timestamp
  succeeded_at: Timestamp | null
}

export interface JobsTable {
  id: string
  queue: string
  payload: ColumnType<unknown, string, string>
  run_at: Timestamp
  attempts: Generated<number>
  max_attempts: Generated<number>
  state: 'pending' | 'running' | 'done' | 'failed'
  locked_by: string | null
  locked_until: Timestamp | null
  last_error: string | null
  singleton_key: string | null
  created_at: Timestamp
  finished_at: Timestamp | null
}

export interface DB {
  organisations: OrganisationsTable
  lab_subscriptions: LabSubscriptionsTable
  lab_holders: LabHoldersTable
  medicines: MedicinesTable
  presentations: PresentationsTable
  availability: AvailabilityTable
  audit_log: AuditLogTable
  idempotency_keys: IdempotencyKeysTable
  events: EventsTable
  event_deliveries: EventDeliveriesTable
  feed_sequence: FeedSequenceTable
  webhook_endpoints: WebhookEndpointsTable
  webhook_deliveries: WebhookDeliveriesTable
  jobs: JobsTable
}

export type Organisation = Selectable<OrganisationsTable>
export type NewOrganisation = Insertable<OrganisationsTable>
export type OrganisationUpdate = Updateable<OrganisationsTable>
export type Medicine = Selectable<MedicinesTable>
export type Presentation = Selectable<PresentationsTable>

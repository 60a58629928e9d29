import type { ColumnType } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type Json<T> = ColumnType<T, string, string>

export type EmergencyStatus = 'submitted' | 'accepted' | 'partially_accepted' | 'redirected' | 'refused' | 'received' | 'cancelled'

export interface EmergencyContact {
  service: string
  phone: string
  email?: string | undefined
}

export interface EmergencyDelivery {
  name: string
  city: string | null
  department: string | null
  address: string | null
  instructions: string | null
}

export interface EmergencyEligibility {
  mitm: boolean
  niche: boolean
  declaration: { id: string; kind: string; status: string; version: number }
  labSubscribed: boolean
  opening: { maxQuantity: number | null; openedAt: string }
}

/** The hours a lab's emergency service declared (migrations/0017_emergency_service_hours.ts). */
export interface EmergencyServiceHours {
  slots: Array<{ days: number[]; from: string; to: string }>
  publicHolidays: 'closed' | 'open'
}

export interface EmergencyOpeningsTable {
  cip13: string
  lab_id: string
  open: boolean
  contact: Json<EmergencyContact>
  opening_hours: string | null
  service_hours: ColumnType<EmergencyServiceHours | null, string | null | undefined, string | null>
  max_quantity: number | null
  escalation_business_hours: number | null
  opened_at: Timestamp
  closed_at: Timestamp | null
  updated_at: Timestamp
}

export interface EmergencyRequestsTable {
  id: string
  pharmacy_id: string
  lab_id: string
  cip13: string
  quantity: number
  delivery: Json<EmergencyDelivery>
  patient_emergency: boolean
  eligibility: Json<EmergencyEligibility>
  status: EmergencyStatus
  answer: ColumnType<Record<string, unknown> | null, string | null, string | null>
  version: number
  submitted_at: Timestamp
  answered_at: Timestamp | null
  escalate_at: Timestamp
  escalated_at: Timestamp | null
  closed_at: Timestamp | null
  updated_at: Timestamp
}

export interface EmergencyRequestStepsTable {
  request_id: string
  seq: number
  action: string
  status: EmergencyStatus
  details: Json<Record<string, unknown>>
  actor_role: string | null
  actor_org: string | null
  actor_user: string | null
  request_id_http: string | null
  at: Timestamp
}

declare module '../platform/db/schema.ts' {
  interface DB {
    emergency_openings: EmergencyOpeningsTable
    emergency_requests: EmergencyRequestsTable
    emergency_request_steps: EmergencyRequestStepsTable
  }
}

import type { ColumnType, Generated, Selectable } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
type Json<T> = ColumnType<T, string, string>

export type PipelineKind = 'recall' | 'alert'
export type RecallStatus = 'draft' | 'submitted' | 'changes_requested' | 'rejected' | 'approved' | 'broadcast' | 'closed' | 'discarded'
export type VersionStatus = 'draft' | 'submitted' | 'changes_requested' | 'rejected' | 'approved' | 'broadcast' | 'superseded' | 'cancelled' | 'discarded'
export type Category = 'pharmacy' | 'wholesaler' | 'hospital'
export type RequestedAction = 'quarantine_return' | 'destroy' | 'stop_dispensing'

export interface RecallBatch {
  cip13: string
  batch: string
  expiry: string | null
}

/** What a version says: the whole message as ANSM approved it. */
export interface RecallContent {
  title: string
  reason: string
  message: string
  messageEn: string | null
  action: RequestedAction | null
  recipients: { categories: Category[]; regions: string[]; departments: string[] }
  contacts: Array<{ name: string; phone: string | null; email: string | null }>
  batches: RecallBatch[]
  blockDispensation: boolean
  scheduledAt: string | null
  reminderDelaysHours: number[]
}

export interface AckContent {
  quarantined: number
  returned: number
  destroyed: number
  noStock: boolean
  comment: string | null
}

export interface RecallsTable {
  id: string
  kind: PipelineKind
  reference: string
  lab_id: string
  status: RecallStatus
  version: number
  live_version: number | null
  blocking: ColumnType<boolean, boolean | undefined, boolean>
  created_at: Timestamp
  updated_at: Timestamp
  first_submitted_at: Timestamp | null
  broadcast_at: Timestamp | null
  closed_at: Timestamp | null
}

/** A message as the use cases read it: its row and its lab's name. */
export type RecallRow = Selectable<RecallsTable> & { lab_name: string }

export interface RecallVersionsTable {
  recall_id: string
  version: number
  status: VersionStatus
  content: Json<RecallContent>
  event_id: string | null
  created_at: Timestamp
  updated_at: Timestamp
  submitted_at: Timestamp | null
  decided_at: Timestamp | null
  broadcast_at: Timestamp | null
}

export interface RecallMessagesTable {
  id: string
  seq: Generated<number>
  recall_id: string
  version: number
  kind: string
  text: string | null
  author_role: string | null
  author_org: string | null
  author_user: string | null
  at: Timestamp
  /** What an edit or a new version changed (field-level), null for the other entries. */
  changes: ColumnType<FieldChange[] | null, string | null | undefined, string | null>
}

/** One field that differs between two contents of a recall or alert. */
export interface FieldChange {
  /** title, message, recipients.regions, batches, batches.expiry… */
  field: string
  change: 'added' | 'removed' | 'changed'
  /** For an item of a list (a batch: "CIP13/BATCH"). */
  key?: string
  before: unknown
  after: unknown
}

export type RoundDecision = 'approved' | 'changes_requested' | 'rejected' | 'withdrawn' | 'cancelled'

/** One submission of a version to ANSM (a review round): the content as submitted and what ANSM decided. */
export interface RecallSubmissionsTable {
  recall_id: string
  version: number
  round: number
  content: Json<RecallContent>
  submitted_at: Timestamp
  submitted_by_role: string | null
  submitted_by_org: string | null
  submitted_by_user: string | null
  decision: RoundDecision | null
  decided_at: Timestamp | null
  decided_by_role: string | null
  decided_by_org: string | null
  decided_by_user: string | null
  comment: string | null
  reconstructed: ColumnType<boolean, boolean | undefined, boolean>
}

export interface RecallRecipientsTable {
  recall_id: string
  org_id: string
  role: string
  department: string | null
  region: string | null
  first_version: number
  last_event_id: string
  read_at: Timestamp | null
  ack_status: 'read' | 'done' | null
  ack: ColumnType<AckContent | null, string | null, string | null>
  acked_at: Timestamp | null
  done_at: Timestamp | null
  reminders: ColumnType<number, number | undefined, number>
  last_reminded_at: Timestamp | null
  added_at: Timestamp
}

export interface RecallAckHistoryTable {
  recall_id: string
  org_id: string
  seq: number
  status: string
  ack: Json<AckContent>
  version: number
  user_id: string | null
  at: Timestamp
  /** recipient: given by the recipient itself; fax / letter: the paper form it sent back, recorded by the lab. */
  source: ColumnType<AckSource, AckSource | undefined, AckSource>
  recorded_by_org: string | null
  signed_by: string | null
  signed_on: ColumnType<string | null, string | null | undefined, string | null>
}

export type AckSource = 'recipient' | 'fax' | 'letter'

export interface RecallReportsTable {
  recall_id: string
  report: Json<unknown>
  event_id: string
  created_at: Timestamp
}

export interface RecallReferenceCountersTable {
  kind: string
  year: number
  last: number
}

declare module '../platform/db/schema.ts' {
  interface DB {
    recalls: RecallsTable
    recall_versions: RecallVersionsTable
    recall_messages: RecallMessagesTable
    recall_submissions: RecallSubmissionsTable
    recall_recipients: RecallRecipientsTable
    recall_ack_history: RecallAckHistoryTable
    recall_reports: RecallReportsTable
    recall_reference_counters: RecallReferenceCountersTable
  }
}

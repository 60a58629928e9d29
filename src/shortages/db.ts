import type { ColumnType, Generated, Selectable } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>
/** DATE columns are read as 'YYYY-MM-DD' strings on both drivers. */
type DateOnly = string
type Json<T> = ColumnType<T, string, string>

export type DeclarationKind = 'anticipated' | 'observed' | 'discontinuation' | 'availability_return'
export type DeclarationStatus = 'draft' | 'declared' | 'ongoing' | 'resolved' | 'avoided' | 'discontinued'
export type SignalStatus = 'open' | 'closed' | 'lapsed'
export interface Alternative {
  cip13?: string | undefined
  description: string
}

export interface ShortageChangeCounterTable {
  id: number
  last_seq: number
}

export type DeclarationSource = 'lab' | 'bdpm'

export interface ShortageDeclarationsTable {
  id: string
  lab_id: string
  kind: DeclarationKind
  status: DeclarationStatus
  version: number
  change_seq: number
  mitm: boolean
  atc: string | null
  cause: string
  cause_text: string | null
  anticipated_start: DateOnly | null
  actual_start: DateOnly | null
  estimated_end: DateOnly | null
  end_unknown: boolean
  actual_end: DateOnly | null
  stock_coverage_days: number | null
  allocation_in_place: boolean
  allocation_details: string | null
  alternatives: Json<Alternative[]>
  advice: string | null
  created_at: Timestamp
  updated_at: Timestamp
  declared_at: Date | null
  closed_at: Date | null
  /** 'lab' (through the API) or 'bdpm' (use-cases/availability-import.ts); migrations/0011_availability.ts. */
  source: Generated<'lab' | 'bdpm'>
}

export type DeclarationData = Selectable<ShortageDeclarationsTable>
/** A declaration as the queries read it (queries/rows.ts declarationRows): with its lab's name. */
export type DeclarationRow = DeclarationData & { lab_name: string }

export interface ShortageDeclarationItemsTable {
  declaration_id: string
  cip13: string
  active: boolean
}

export interface ShortageDeclarationVersionsTable {
  declaration_id: string
  version: number
  change_seq: number
  status: DeclarationStatus
  action: string
  reason: string | null
  snapshot: Json<unknown>
  actor_role: string | null
  actor_org: string | null
  actor_user: string | null
  request_id: string | null
  at: Timestamp
}

export interface ShortageSignalsTable {
  id: string
  pharmacy_id: string
  department: string | null
  region: string | null
  cip13: string
  lab_id: string | null
  wholesaler: string
  last_supply_date: DateOnly | null
  unavailable_since: Timestamp
  status: SignalStatus
  created_at: Timestamp
  renewed_at: Timestamp
  lapses_at: Timestamp
  closed_at: Date | null
  close_reason: string | null
  first_response_at: Date | null
}

export interface ShortageAutomaticResponsesTable {
  id: string
  lab_id: string
  cip13: string | null
  declaration_id: string | null
  message: string
  expected_return: DateOnly | null
  alternatives: Json<Alternative[]>
  emergency_contact: string | null
  allocation_rules: string | null
  updated_at: Timestamp
  updated_by: string | null
}

/** An automatic response as the queries read it (queries/rows.ts responseQuery): with its lab's name. */
export type ResponseRow = Selectable<ShortageAutomaticResponsesTable> & { lab_name: string }

export interface ShortageLabSettingsTable {
  lab_id: string
  signal_threshold: number | null
  updated_at: Timestamp
}

/** What the availability import keeps of the line behind each declaration it made (use-cases/availability-import.ts). */
export interface ShortageBdpmLinesTable {
  declaration_id: string
  cis: string
  cip13: string
  fingerprint: string
  status_code: number
  status_label: string
  start_date: string | null
  bdpm_updated_on: string | null
  return_date: string | null
  link: string | null
  imported_at: Date
  closed_reason: 'missing' | 'line' | null
}

declare module '../platform/db/schema.ts' {
  interface DB {
    shortage_change_counter: ShortageChangeCounterTable
    shortage_declarations: ShortageDeclarationsTable
    shortage_declaration_items: ShortageDeclarationItemsTable
    shortage_declaration_versions: ShortageDeclarationVersionsTable
    shortage_signals: ShortageSignalsTable
    shortage_automatic_responses: ShortageAutomaticResponsesTable
    shortage_lab_settings: ShortageLabSettingsTable
    shortage_bdpm_lines: ShortageBdpmLinesTable
  }
}

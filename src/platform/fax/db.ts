import type { ColumnType } from 'kysely'

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>

export interface PostalAddress {
  line1: string
  line2: string | null
  postalCode: string
  city: string
}

/** A letter to send because a fax failed after every retry; the sender records it sent. */
export interface PaperLettersTable {
  id: string
  event_id: string
  org_id: string
  sender_org: string | null
  status: 'pending' | 'sent'
  fax_attempts: number
  last_error: string | null
  created_at: Timestamp
  sent_at: Timestamp | null
  sent_by_role: string | null
  sent_by_org: string | null
  sent_by_user: string | null
  recorded_at: Timestamp | null
  tracking_number: string | null
  comment: string | null
  address: ColumnType<PostalAddress | null, string | null | undefined, string | null>
}

declare module '../db/schema.ts' {
  interface DB {
    paper_letters: PaperLettersTable
  }
}

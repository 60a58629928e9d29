// Frozen: never edit a migration that has been released; add a new one.
// DP-Rappels / DP-Alertes: an acknowledgement may come back on paper (the form at the end of a fax notice or a
// letter) and be recorded by the lab on the recipient's behalf: the history says so, with who signed it and when.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table recall_ack_history add column source text not null default 'recipient'`.execute(db)
  await sql`alter table recall_ack_history add constraint recall_ack_history_source check (source in ('recipient', 'fax', 'letter'))`.execute(db)
  await sql`alter table recall_ack_history add column recorded_by_org text`.execute(db)
  await sql`alter table recall_ack_history add column signed_by text`.execute(db)
  await sql`alter table recall_ack_history add column signed_on date`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const c of ['signed_on', 'signed_by', 'recorded_by_org']) await sql`alter table recall_ack_history drop column ${sql.id(c)}`.execute(db)
  await sql`alter table recall_ack_history drop constraint recall_ack_history_source`.execute(db)
  await sql`alter table recall_ack_history drop column source`.execute(db)
}

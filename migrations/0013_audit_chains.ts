// Frozen: never edit a migration that has been released; add a new one.
// The audit trail becomes several hash chains. One chain made every audited write in the country wait for the
// previous one to commit (a lock held from the append to the commit); with several, writes on different chains
// commit side by side. `chain_seq` is the gapless position in its chain (a deleted row still shows as a hole);
// `seq` becomes the trail's overall order, drawn from a sequence (gaps allowed: a rolled-back append uses a number).
// The existing entries form chain 0, in the same order, with their hashes unchanged.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table audit_log add column chain smallint not null default 0`.execute(db)
  await sql`alter table audit_log add column chain_seq bigint`.execute(db)
  await sql`update audit_log set chain_seq = seq`.execute(db)
  await sql`alter table audit_log alter column chain_seq set not null`.execute(db)
  await sql`alter table audit_log alter column chain drop default`.execute(db)
  await sql`create unique index audit_log_chain on audit_log (chain, chain_seq)`.execute(db)
  await sql`create sequence audit_log_seq`.execute(db)
  await sql`select setval('audit_log_seq', coalesce((select max(seq) from audit_log), 0) + 1, false)`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop sequence audit_log_seq`.execute(db)
  await sql`drop index audit_log_chain`.execute(db)
  await sql`alter table audit_log drop column chain_seq`.execute(db)
  await sql`alter table audit_log drop column chain`.execute(db)
}

// Frozen: never edit a migration that has been released; add a new one.
// An audit append becomes one statement where it was two (the chain's lock, then the append that reads the chain's
// head): every audited transaction of the service made that extra round trip while holding, or waiting for, its
// chain's lock. The lock and the read of the head move into this function. Declared VOLATILE: in READ COMMITTED each
// query it runs takes a fresh snapshot, so the head it reads, after the lock is granted, includes the entry the
// previous holder just committed (a read in the calling statement itself would use that statement's older snapshot).
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function audit_chain_head(lock_key integer, chain_no integer)
    returns table (head_seq bigint, head_hash text)
    language plpgsql volatile as $$
    begin
      perform pg_advisory_xact_lock(lock_key, chain_no);
      return query select a.chain_seq, a.hash from audit_log a where a.chain = chain_no order by a.chain_seq desc limit 1;
    end
    $$`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function audit_chain_head(integer, integer)`.execute(db)
}

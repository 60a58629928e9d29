/**
 * The packs' SQL. On the hot paths, named prepared statements: the pack as read (one statement whatever the
 * outcome), its change (one conditional UPDATE with its transaction and scan-log rows) and its undo; and the
 * transaction an undo names, read when the undo is refused.
 */
import { randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import { type Blocking, blockingSql } from '../../dispensation/rule.ts'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { Action, PackState } from '../db.ts'
import type { PackRef, PackRow } from '../rules/packs.ts'
import type { Scanner } from '../rules/pseudonyms.ts'

type Db = Kysely<DB> | Transaction<DB>

/**
 * The pack as read for a diagnosis (PackRow), one row whatever the outcome: whether the product has packs at all,
 * the pack, its batch and what blocks it. The SQL expressions name the pack asked for; readPack and the grouped
 * change (queries/change-batch.ts, for the packs it did not change) read it the same way.
 */
export const packAsReadSql = (a: { cip13: string; serial: string; batch: string; today: string }) => `
  select exists (select 1 from serial_batches where cip13 = ${a.cip13}) as product_known,
         exists (select 1 from serial_batches where cip13 = ${a.cip13} and batch = ${a.batch}) as batch_known,
         p.state, p.batch, p.state_at, p.last_txn, b.expiry,
         ${blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: 'sp.status', expiry: 'b.expiry', today: a.today })} as blocking,
         case when p.state <> 'active' then (select t.org_pseudonym from pack_transactions t where t.cip13 = p.cip13 and t.id = p.last_txn and t.serial = p.serial) end as last_org
  from (select 1) as one
  left join packs p on p.cip13 = ${a.cip13} and p.serial = ${a.serial}
  left join serial_batches b on b.cip13 = p.cip13 and b.batch = p.batch
  left join serial_products sp on sp.cip13 = ${a.cip13}`
const PACK_SQL = packAsReadSql({ cip13: '$1', serial: '$2', today: '$3::date', batch: '$4' })

export async function readPack(database: DatabaseHandle, ref: PackRef, today: string): Promise<PackRow | null> {
  if (!ref.cip13) return null
  const rows = await database.prepared<PackRow>('serial_pack', PACK_SQL, [ref.cip13, ref.serial, today, ref.batch])
  return rows[0] ?? null
}

// ---- state changes -----------------------------------------------------------------------------------------

// Exactly once: the change is one conditional UPDATE on the pack's row (state = 'active'); PostgreSQL re-checks
// the condition on the latest row version after waiting for a concurrent writer, so of many concurrent requests
// exactly one updates the row. The transaction row and the scan-log row are written by the same statement.
export const CHANGE_SQL = `
  with u as (
    update packs p set state = $3, state_at = $4, last_txn = $5
    from serial_batches b
    where p.cip13 = $1 and p.serial = $2 and p.state = 'active'
      and b.cip13 = p.cip13 and b.batch = p.batch
      and p.batch = $6 and b.expiry = $7::date
      and ($8::boolean or ${blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: '(select sp.status from serial_products sp where sp.cip13 = p.cip13)', expiry: 'b.expiry', today: '$9::date' })} is null)
    returning p.cip13, p.serial, ${blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: '(select sp.status from serial_products sp where sp.cip13 = p.cip13)', expiry: 'b.expiry', today: '$9::date' })} as blocking
  ), t as (
    insert into pack_transactions (cip13, id, serial, action, from_state, to_state, org_pseudonym, user_pseudonym, role, undoes, at)
    select cip13, $5, serial, $10, 'active', $3, $11, $12, $13, null, $4 from u
    returning id
  ), s as (
    insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
    select cip13, $14::uuid, $4, serial, $6, $7::date, $10, 'STATE_CHANGED', $13, $11, $5, null from u
  )
  select t.id, u.blocking from t, u`

// Undo: the pack must still be in the state the named transaction set, that transaction must be its last change,
// made by the same organisation and user (compared as pseudonyms) less than 10 days ago, and nothing may block the
// pack's batch (dispensation/rule.ts).
const UNDO_SQL = `
  with o as (
    select t.id, t.to_state from pack_transactions t
    where t.cip13 = $1 and t.id = $3 and t.serial = $2 and t.org_pseudonym = $4 and t.user_pseudonym = $5
      and t.at > $6 and t.to_state = any($7::text[])
  ), u as (
    update packs p set state = 'active', state_at = $8, last_txn = $9
    from o, serial_batches b
    where p.cip13 = $1 and p.serial = $2 and p.last_txn = o.id and p.state = o.to_state
      and b.cip13 = p.cip13 and b.batch = p.batch
      and p.batch = $10 and b.expiry = $11::date
      and ${blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: '(select sp.status from serial_products sp where sp.cip13 = p.cip13)', expiry: 'b.expiry', today: '$12::date' })} is null
    returning p.cip13, p.serial, o.to_state
  ), t as (
    insert into pack_transactions (cip13, id, serial, action, from_state, to_state, org_pseudonym, user_pseudonym, role, undoes, at)
    select cip13, $9, serial, $13, to_state, 'active', $4, $5, $14, $3, $8 from u
    returning id
  )
  select id from t`


/** Runs CHANGE_SQL (its parameters in their order): the new transaction's id and what blocks the batch; no row when the pack was not changed. */
export function changeActivePack(database: DatabaseHandle, cip13: string, serial: string, target: PackState, now: Date, id: string, batch: string, expiry: string, force: boolean, today: string, action: Action, scanner: Scanner) {
  return database.prepared<{ id: string; blocking: Blocking | null }>('serial_change', CHANGE_SQL, [
    cip13, serial, target, now, id, batch, expiry, force, today, action, scanner.org, scanner.user, scanner.role, randomUUID(),
  ])
}

/** Runs UNDO_SQL (its parameters in their order): the undo's transaction id; no row when nothing was undone. */
export function undoChange(database: DatabaseHandle, cip13: string, serial: string, transactionId: string, scanner: Scanner, since: Date, states: readonly string[], now: Date, id: string, batch: string, expiry: string, today: string, action: Action) {
  return database.prepared<{ id: string }>('serial_undo', UNDO_SQL, [
    cip13, serial, transactionId, scanner.org, scanner.user, since, states, now, id, batch, expiry, today, action, scanner.role,
  ])
}

/** The pack's transaction an undo names: who made it, what it set and when. */
export function packTransaction(db: Db, cip13: string, id: string, serial: string) {
  return db
    .selectFrom('pack_transactions')
    .select(['org_pseudonym', 'user_pseudonym', 'to_state', 'at'])
    .where('cip13', '=', cip13)
    .where('id', '=', id)
    .where('serial', '=', serial)
    .executeTakeFirst()
}

/**
 * The serial alerts' SQL: the scan log, an alert raised or counted again, the alerts as each viewer may see them
 * (the tenancy filter is here), the investigation's writes, and the figures.
 */
import { type Insertable, type Kysely, sql, type Transaction, type Updateable } from 'kysely'
import type { Principal } from '../../platform/auth.ts'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import { LOCKS } from '../../platform/db/locks.ts'
import { executeNamed } from '../../platform/db/named.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { AlertConclusion, AlertStatus, AnsmConclusion, SerialAlertMessagesTable, SerialAlertsTable } from '../db.ts'
import { pharmacyPseudonym } from '../rules/pseudonyms.ts'

type Db = Kysely<DB> | Transaction<DB>

// ---- the scan log and raising an alert ---------------------------------------------------------------------

const SCAN_SQL = `
  insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
  values ($1, $2, $3, $4, $5, $6::date, $7, $8, $9, $10, $11, $12)`

/** A scan-log row but its alert reference, its keys in the order of SCAN_SQL's parameters. */
export interface ScanRow {
  cip13: string
  id: string
  at: Date
  serial: string
  batch: string
  expiry: string
  action: string
  code: string
  role: string
  pharmacy_pseudonym: string
  transaction_id: string | null
}

/** Logs a scan without alert (a named prepared statement: the hot path's). */
export function logScan(database: DatabaseHandle, scan: ScanRow) {
  return database.prepared('serial_scan_log', SCAN_SQL, [...Object.values(scan), null])
}

/** Logs a scan in an alert's transaction, with the alert's reference (or none). */
export function insertScan(tx: Transaction<DB>, scan: ScanRow & { alert_reference: string | null }) {
  return tx.insertInto('serial_scans').values(scan).execute()
}

/** The batch of the product's pack with this serial. */
export function packBatch(db: Kysely<DB>, cip13: string, serial: string) {
  return db.selectFrom('packs').select('batch').where('cip13', '=', cip13).where('serial', '=', serial).executeTakeFirst()
}

/**
 * The lab to alert about a product (the one that exploits it in the referential, else the one that uploaded its
 * packs) and, in the same statement, the lock that serializes until the transaction ends the failures of one
 * pharmacy on one pack with one code: one round trip where there were two or three, in a transaction that a storm
 * of alerts runs many times. The lab does not depend on the lock: it is read whatever the lock's wait.
 */
export async function lockRepeatsAndFindLab(tx: Transaction<DB>, r: { cip13: string; serial: string; org: string; code: string }): Promise<string | null> {
  const { rows } = await executeNamed(tx, 'serial_alert_lock_lab', sql<{ lab: string | null }>`
    select pg_advisory_xact_lock(${LOCKS.alertRepeat}::int, hashtext(${`${r.cip13}/${r.serial}/${r.org}/${r.code}`})) as locked,
      coalesce(
        (select m.lab_id from presentations p join medicines m on m.cis = p.cis where p.cip13 = ${r.cip13} limit 1),
        (select b.lab_id from serial_batches b where b.cip13 = ${r.cip13} limit 1)
      ) as lab`)
  return rows[0]?.lab ?? null
}

/**
 * The alert of a failure, in one statement after lockRepeatsAndFindLab: counted once more on the open alert of the same
 * failure seen since `since`, else raised with the next reference (ALR-<year>-<number>, six digits at least);
 * the scan row is written with it either way. `created` tells which.
 */
export async function countAgainOrRaise(
  tx: Transaction<DB>,
  a: { scan: ScanRow; since: Date; lab: string; year: string; userPseudonym: string; scanned: string | null },
): Promise<{ reference: string; created: boolean }> {
  const s = a.scan
  const { rows } = await executeNamed(tx, 'serial_alert_raise', sql<{ reference: string; created: boolean }>`
    with open as (
      select seq, reference from serial_alerts
      where cip13 = ${s.cip13} and serial = ${s.serial} and pharmacy_pseudonym = ${s.pharmacy_pseudonym} and code = ${s.code}
        and status in ('new', 'under_investigation') and last_seen_at > ${a.since}::timestamptz
      limit 1
    ), again as (
      update serial_alerts set occurrences = occurrences + 1, last_seen_at = ${s.at}::timestamptz
      where seq = (select seq from open)
      returning reference
    ), fresh as (
      -- No FROM: the number is drawn only when the WHERE holds (no gap for a repeat).
      select nextval('serial_alert_seq') as seq where not exists (select 1 from open)
    ), raised as (
      insert into serial_alerts (seq, reference, cip13, lab_id, serial, batch, expiry, code, action, pharmacy_pseudonym, user_pseudonym, scanned, created_at, updated_at, last_seen_at)
      select seq, 'ALR-' || ${a.year}::text || '-' || lpad(seq::text, greatest(6, length(seq::text)), '0'), ${s.cip13}::text, ${a.lab}::text, ${s.serial}::text,
        ${s.batch}::text, ${s.expiry}::date, ${s.code}::text, ${s.action}::text, ${s.pharmacy_pseudonym}::text, ${a.userPseudonym}::text, ${a.scanned}::text,
        ${s.at}::timestamptz, ${s.at}::timestamptz, ${s.at}::timestamptz
      from fresh
      returning reference
    ), chosen as (
      select reference, false as created from again union all select reference, true from raised
    ), logged as (
      insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
      values (${s.cip13}, ${s.id}::uuid, ${s.at}::timestamptz, ${s.serial}, ${s.batch}, ${s.expiry}::date, ${s.action}, ${s.code}, ${s.role}, ${s.pharmacy_pseudonym},
        ${s.transaction_id}::uuid, (select reference from chosen))
    )
    select reference, created from chosen`)
  return rows[0]!
}

// ---- reading alerts ----------------------------------------------------------------------------------------

const ALERT_COLUMNS = [
  'a.seq', 'a.reference', 'a.cip13', 'a.lab_id', 'a.serial', 'a.batch', 'a.expiry', 'a.code', 'a.action', 'a.pharmacy_pseudonym', 'a.status', 'a.conclusion',
  'a.conclusion_note', 'a.created_at', 'a.updated_at', 'a.closed_at', 'a.escalated_at', 'a.ansm_conclusion', 'a.ansm_note', 'a.scanned', 'a.occurrences', 'a.last_seen_at',
] as const

export type AlertRow = {
  seq: number; reference: string; cip13: string; lab_id: string; serial: string; batch: string; expiry: string; code: string; action: string
  pharmacy_pseudonym: string; status: AlertStatus; conclusion: AlertConclusion | null; conclusion_note: string | null; created_at: Date; updated_at: Date; closed_at: Date | null
  escalated_at: Date | null; ansm_conclusion: AnsmConclusion | null; ansm_note: string | null; scanned: string | null; occurrences: number; last_seen_at: Date
}

/** Who looks: the lab sees its products' alerts, a scanning organisation its own, ANSM and the operator all. */
function seenBy(db: Db, secret: string, viewer: Principal) {
  const q = db.selectFrom('serial_alerts as a').select([...ALERT_COLUMNS])
  if (viewer.role === 'ordre' || viewer.role === 'ansm') return q
  if (viewer.role === 'lab') return q.where('a.lab_id', '=', viewer.org)
  return q.where('a.pharmacy_pseudonym', '=', pharmacyPseudonym(secret, viewer.org))
}

export interface AlertFilter {
  status?: AlertStatus | undefined
  product?: string | undefined
  lab?: string | undefined
  pharmacy?: string | undefined
}

/** Newest first, one row more than `limit` when another page follows; `before`: keyset on the alert's number. */
export function alertRows(db: Db, secret: string, viewer: Principal, filter: AlertFilter, opts: { before?: number | undefined; limit: number }) {
  let q = seenBy(db, secret, viewer).orderBy('a.seq', 'desc').limit(opts.limit + 1)
  if (filter.status) q = q.where('a.status', '=', filter.status)
  if (filter.product) q = q.where('a.cip13', '=', filter.product)
  if (filter.lab) q = q.where('a.lab_id', '=', filter.lab)
  if (filter.pharmacy) q = q.where('a.pharmacy_pseudonym', '=', filter.pharmacy)
  if (opts.before !== undefined) q = q.where('a.seq', '<', opts.before)
  return q.execute()
}

/** The alert, if the viewer may see it; `forUpdate`: its row locked until the transaction ends. */
export function alertRow(db: Db, secret: string, viewer: Principal, reference: string, forUpdate: boolean) {
  let q = seenBy(db, secret, viewer).where('a.reference', '=', reference)
  if (forUpdate) q = q.forUpdate()
  return q.executeTakeFirst()
}

export function alertMessages(db: Db, seq: number) {
  return db.selectFrom('serial_alert_messages').select(['author', 'text', 'at']).where('alert_seq', '=', seq).orderBy('id').execute()
}

/** The pack's scans, its state changes (oldest first) and the pack itself. */
export function packHistoryRows(db: Db, cip13: string, serial: string) {
  return Promise.all([
    db.selectFrom('serial_scans').select(['at', 'action', 'code', 'role', 'pharmacy_pseudonym', 'batch', 'expiry', 'transaction_id', 'alert_reference']).where('cip13', '=', cip13).where('serial', '=', serial).orderBy('at').execute(),
    db.selectFrom('pack_transactions').select(['id', 'at', 'action', 'from_state', 'to_state', 'org_pseudonym', 'user_pseudonym', 'role', 'undoes']).where('cip13', '=', cip13).where('serial', '=', serial).orderBy('at').execute(),
    db.selectFrom('packs').select(['batch', 'state', 'state_at', 'created_at']).where('cip13', '=', cip13).where('serial', '=', serial).executeTakeFirst(),
  ])
}

// ---- the investigation -------------------------------------------------------------------------------------

export function updateAlert(tx: Transaction<DB>, seq: number, changes: Updateable<SerialAlertsTable>) {
  return tx.updateTable('serial_alerts').set(changes).where('seq', '=', seq).execute()
}

export function insertAlertMessage(tx: Transaction<DB>, message: Insertable<SerialAlertMessagesTable>) {
  return tx.insertInto('serial_alert_messages').values(message).execute()
}

// ---- figures -----------------------------------------------------------------------------------------------

/** Alerts counted per lab, product, status, conclusion and code. */
export function alertGroups(db: Db, lab: string | undefined, since: Date | undefined) {
  let q = db.selectFrom('serial_alerts as a').select(['a.lab_id', 'a.cip13', 'a.status', 'a.conclusion', 'a.code', (eb) => eb.fn.countAll<number>().as('n')])
  if (lab) q = q.where('a.lab_id', '=', lab)
  if (since) q = q.where('a.created_at', '>=', since)
  return q.groupBy(['a.lab_id', 'a.cip13', 'a.status', 'a.conclusion', 'a.code']).execute()
}

/** The products with uploaded packs, with their lab. */
export function serializedProducts(db: Db, lab: string | undefined) {
  let bq = db.selectFrom('serial_batches').select(['cip13', 'lab_id']).distinct()
  if (lab) bq = bq.where('lab_id', '=', lab)
  return bq.execute()
}

/** Logged scans counted per product. */
export function scanCounts(db: Db, codes: string[], since: Date | undefined) {
  let sq = db.selectFrom('serial_scans').select(['cip13', (eb) => eb.fn.countAll<number>().as('n')]).where('cip13', 'in', codes)
  if (since) sq = sq.where('at', '>=', since)
  return sq.groupBy('cip13').execute()
}

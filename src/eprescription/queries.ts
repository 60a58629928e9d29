/**
 * The e-prescription's SQL. Functions take a Kysely or a Transaction; the callers (use cases) apply tenancy on
 * what they load, or pass the owner here where the query itself filters (lists).
 */
import type { Insertable, Kysely, Selectable, Transaction } from 'kysely'
import { sql } from 'kysely'
import type { DB } from '../platform/db/schema.ts'
import type {
  EprescriptionDispensationsTable,
  EprescriptionDispensedLinesTable,
  EprescriptionLinesTable,
  EprescriptionsTable,
  PrescriptionStatus,
} from './db.ts'
import './db.ts'

export type Db = Kysely<DB> | Transaction<DB>

export type PrescriptionRow = Selectable<EprescriptionsTable>
export type LineRow = Selectable<EprescriptionLinesTable>
export type DispensationRow = Selectable<EprescriptionDispensationsTable>
export type DispensedLineRow = Selectable<EprescriptionDispensedLinesTable>

export interface Loaded {
  p: PrescriptionRow
  prescriberName: string | null
  lines: LineRow[]
  /** Every dispensation (open, released, closed) with its recorded lines and the pharmacy's name. */
  dispensations: Array<DispensationRow & { pharmacy_name: string | null; lines: DispensedLineRow[] }>
}

/** The prescription with its lines and dispensations; locked for the transaction with forUpdate. */
export async function load(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<Loaded | null> {
  let q = db.selectFrom('eprescriptions').selectAll().where('id', '=', id)
  if (opts.forUpdate) q = q.forUpdate()
  const p = await q.executeTakeFirst()
  if (!p) return null
  const prescriber = await db.selectFrom('organisations').select('name').where('id', '=', p.prescriber_org).executeTakeFirst()
  const lines = await db.selectFrom('eprescription_lines').selectAll().where('prescription_id', '=', id).orderBy('line_no').execute()
  const ds = await db
    .selectFrom('eprescription_dispensations as d')
    .leftJoin('organisations as o', 'o.id', 'd.pharmacy_org')
    .selectAll('d')
    .select('o.name as pharmacy_name')
    .where('d.prescription_id', '=', id)
    .orderBy('d.accepted_at')
    .orderBy('d.id')
    .execute()
  const recorded = ds.length
    ? await db.selectFrom('eprescription_dispensed_lines').selectAll().where('dispensation_id', 'in', ds.map((d) => d.id)).orderBy('line_no').execute()
    : []
  return { p, prescriberName: prescriber?.name ?? null, lines, dispensations: ds.map((d) => ({ ...d, lines: recorded.filter((r) => r.dispensation_id === d.id) })) }
}

/** Draws a free ID and inserts the prescription; the caller gives everything but the ID. */
export async function insertPrescription(tx: Transaction<DB>, draw: () => string, row: Omit<Insertable<EprescriptionsTable>, 'id'>): Promise<string> {
  for (let attempt = 0; attempt < 8; attempt++) {
    const id = draw()
    const inserted = await tx.insertInto('eprescriptions').values({ ...row, id }).onConflict((oc) => oc.column('id').doNothing()).returning('id').executeTakeFirst()
    if (inserted) return id
  }
  throw new Error('could not draw a free prescription ID')
}

export async function insertLines(tx: Transaction<DB>, rows: Insertable<EprescriptionLinesTable>[]) {
  await tx.insertInto('eprescription_lines').values(rows).execute()
}

export async function setStatus(tx: Transaction<DB>, id: string, set: Partial<Pick<PrescriptionRow, 'status' | 'holder_org' | 'cancelled_at' | 'cancel_reason' | 'completed_at' | 'expired_at' | 'dispensations_closed' | 'patient_objection' | 'access_code_hash' | 'issued_digest'>>, now: Date) {
  await tx.updateTable('eprescriptions').set({ ...set, updated_at: now }).where('id', '=', id).execute()
}

export async function insertDispensation(tx: Transaction<DB>, row: Insertable<EprescriptionDispensationsTable>) {
  await tx.insertInto('eprescription_dispensations').values(row).execute()
}

export async function updateDispensation(tx: Transaction<DB>, id: string, set: Partial<Pick<DispensationRow, 'status' | 'released_at' | 'closed_at' | 'seq' | 'digest' | 'receipt' | 'receipt_kid' | 'secret_hash'>>) {
  await tx.updateTable('eprescription_dispensations').set(set).where('id', '=', id).execute()
}

/** Records (or replaces, until the close) what was delivered for one line. */
export async function upsertDispensedLine(tx: Transaction<DB>, row: Insertable<EprescriptionDispensedLinesTable>) {
  const { dispensation_id: _d, line_no: _l, ...update } = row
  await tx.insertInto('eprescription_dispensed_lines').values(row).onConflict((oc) => oc.columns(['dispensation_id', 'line_no']).doUpdateSet(update)).execute()
}

/** The medicine delivered on a line by the last closed dispensation that delivered it (renewals of a substance line). */
export function previousDelivery(l: Loaded, lineNo: number): DispensedLineRow | null {
  const closed = l.dispensations.filter((d) => d.status === 'closed').sort((a, b) => (b.seq ?? 0) - (a.seq ?? 0))
  for (const d of closed) {
    const r = d.lines.find((x) => x.line_no === lineNo && x.outcome === 'delivered')
    if (r) return r
  }
  return null
}

// ---- the prescriber's list ------------------------------------------------------------------------------

export interface ListFilter {
  status?: PrescriptionStatus
  issuedFrom?: Date
  issuedTo?: Date
  /** Family name, accents and case ignored, as a prefix. */
  patient?: string
}

/** A prescriber's prescriptions, newest first, keyset-paginated on (issued_at, id). */
export async function listOwned(db: Db, prescriberOrg: string, f: ListFilter, after: { t: Date; id: string } | null, limit: number, now: Date) {
  let q = db.selectFrom('eprescriptions').selectAll().where('prescriber_org', '=', prescriberOrg)
  // "expired" as the caller sees it: recorded expired, or ready past its validity before the job records it.
  if (f.status === 'expired') q = q.where((eb) => eb.or([eb('status', '=', 'expired'), eb.and([eb('status', '=', 'ready'), eb('valid_until', '<=', now)])]))
  else if (f.status === 'ready') q = q.where('status', '=', 'ready').where('valid_until', '>', now)
  else if (f.status) q = q.where('status', '=', f.status)
  if (f.issuedFrom) q = q.where('issued_at', '>=', f.issuedFrom)
  if (f.issuedTo) q = q.where('issued_at', '<', f.issuedTo)
  if (f.patient) q = q.where(sql<string>`upper(translate(patient_family_name, 'àâäáãåçéèêëíìîïñóòôöõúùûüýÿÀÂÄÁÃÅÇÉÈÊËÍÌÎÏÑÓÒÔÖÕÚÙÛÜÝŸ', 'aaaaaaceeeeiiiinooooouuuuyyAAAAAACEEEEIIIINOOOOOUUUUYY'))`, 'like', `${f.patient.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)
  if (after) q = q.where((eb) => eb.or([eb('issued_at', '<', after.t), eb.and([eb('issued_at', '=', after.t), eb('id', '<', after.id)])]))
  return q.orderBy('issued_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute()
}

/** Lines and closed deliveries of the listed prescriptions, for their summaries (two queries for a page). */
export async function linesAndDeliveries(db: Db, ids: string[]) {
  if (ids.length === 0) return { lines: [] as LineRow[], deliveries: [] as Array<{ prescription_id: string; line_no: number; closed_at: Date }> }
  const lines = await db.selectFrom('eprescription_lines').selectAll().where('prescription_id', 'in', ids).orderBy('prescription_id').orderBy('line_no').execute()
  const deliveries = await db
    .selectFrom('eprescription_dispensed_lines as r')
    .innerJoin('eprescription_dispensations as d', 'd.id', 'r.dispensation_id')
    .select(['d.prescription_id', 'r.line_no', 'd.closed_at'])
    .where('d.prescription_id', 'in', ids)
    .where('d.status', '=', 'closed')
    .where('r.outcome', '=', 'delivered')
    .execute()
  return { lines, deliveries: deliveries.map((x) => ({ prescription_id: x.prescription_id, line_no: x.line_no, closed_at: x.closed_at! })) }
}

// ---- access log ------------------------------------------------------------------------------------------

export async function logAccess(db: Db, prescriptionId: string | string[], actor: { role: string; org: string | null }, action: string, at: Date) {
  const ids = Array.isArray(prescriptionId) ? prescriptionId : [prescriptionId]
  if (ids.length === 0) return
  await db.insertInto('eprescription_access_log').values(ids.map((id) => ({ prescription_id: id, at, actor_role: actor.role, actor_org: actor.org, action }))).execute()
}

export async function accessLog(db: Db, prescriptionId: string) {
  return db
    .selectFrom('eprescription_access_log as a')
    .leftJoin('organisations as o', 'o.id', 'a.actor_org')
    .select(['a.at', 'a.actor_role', 'a.actor_org', 'a.action', 'o.name'])
    .where('a.prescription_id', '=', prescriptionId)
    .orderBy('a.id')
    .execute()
}

// ---- wrong access codes ----------------------------------------------------------------------------------

/** A caller's wrong codes since `since`: in all, and on this prescription. */
/** Locks a prescription's row (an access alert is raised once per window); false when it is gone. */
export async function lockPrescription(tx: Transaction<DB>, id: string) {
  return (await tx.selectFrom('eprescriptions').select('id').where('id', '=', id).forUpdate().executeTakeFirst()) !== undefined
}

/** The stored hash of a prescription's access code, undefined for an unknown ID. */
export function accessCodeOf(db: Db, id: string) {
  return db.selectFrom('eprescriptions').select(['id', 'access_code_hash']).where('id', '=', id).executeTakeFirst()
}

export async function callerFailures(db: Db, client: string, prescriptionId: string | null, since: Date) {
  const rows = await db
    .selectFrom('eprescription_access_failures')
    .select(['prescription_id', 'at'])
    .where('client', '=', client)
    .where('at', '>', since)
    .orderBy('at', 'desc')
    .limit(200)
    .execute()
  return { all: rows.map((r) => r.at), onPrescription: rows.filter((r) => prescriptionId !== null && r.prescription_id === prescriptionId).map((r) => r.at) }
}

export async function insertFailure(db: Db, prescriptionId: string | null, client: string, at: Date) {
  await db.insertInto('eprescription_access_failures').values({ prescription_id: prescriptionId, client, at }).execute()
}

/** Wrong codes on a prescription since `since`, from anyone: how many, from how many callers. */
export async function prescriptionFailures(db: Db, prescriptionId: string, since: Date) {
  const r = await db
    .selectFrom('eprescription_access_failures')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.count<number>('client').distinct().as('callers'), eb.fn.min('at').as('first')])
    .where('prescription_id', '=', prescriptionId)
    .where('at', '>', since)
    .executeTakeFirstOrThrow()
  return { failures: Number(r.n), callers: Number(r.callers), first: r.first as Date | null }
}

export async function lastAlert(db: Db, prescriptionId: string) {
  return db.selectFrom('eprescription_access_alerts').select('raised_at').where('prescription_id', '=', prescriptionId).orderBy('raised_at', 'desc').limit(1).executeTakeFirst()
}

export async function insertAlert(tx: Transaction<DB>, row: { prescription_id: string; raised_at: Date; failures: number; callers: number }) {
  await tx.insertInto('eprescription_access_alerts').values(row).execute()
}

/** Failure records only matter within the window: older ones are deleted. */
export async function purgeFailures(db: Db, before: Date) {
  await db.deleteFrom('eprescription_access_failures').where('at', '<', before).execute()
}

// ---- retention -------------------------------------------------------------------------------------------

export async function lastClosedAt(db: Db, prescriptionId: string): Promise<Date | null> {
  const r = await db.selectFrom('eprescription_dispensations').select((eb) => eb.fn.max('closed_at').as('last')).where('prescription_id', '=', prescriptionId).where('status', '=', 'closed').executeTakeFirst()
  return (r?.last as Date | null | undefined) ?? null
}

/** A receipt-signing public key, stored once (its kid) so that receipts stay verifiable after a key change. */
export async function insertReceiptKey(tx: Transaction<DB>, kid: string, jwk: unknown, now: Date) {
  await tx.insertInto('eprescription_receipt_keys').values({ kid, jwk: JSON.stringify(jwk), created_at: now }).onConflict((oc) => oc.column('kid').doNothing()).execute()
}

/** Every receipt-signing public key ever used, oldest first. */
export function receiptKeys(db: Db) {
  return db.selectFrom('eprescription_receipt_keys').select(['kid', 'jwk']).orderBy('created_at').execute()
}

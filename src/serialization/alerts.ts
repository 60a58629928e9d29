import { createHmac, randomUUID } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import { type Actor, audit } from '../platform/audit.ts'
import type { Principal } from '../platform/auth.ts'
import type { DatabaseHandle } from '../platform/db/index.ts'
import type { DB } from '../platform/db/schema.ts'
import { conflict, notFound } from '../platform/errors.ts'
import { publish } from '../platform/events/publish.ts'
import { type AlertConclusion, type AlertStatus } from './alerts-db.ts'
import './alerts-db.ts'
import { RETURN_CODES } from './codes.ts'
import { parisDay } from '../platform/paris-time.ts'
import type { PackRef, PackResult } from './service.ts'

type Db = Kysely<DB> | Transaction<DB>

/** Roles that scan packs (their organisation is "the pharmacy" of an alert). */
export const SCANNER_ROLES = ['pharmacy', 'hospital', 'wholesaler'] as const

/**
 * The keyed pseudonym of a pharmacy in the scan log and in what a lab sees: HMAC-SHA256(secret, FINESS),
 * base64url, 22 characters (132 bits). Stable for a given secret; without the secret it cannot be reversed or
 * recomputed from the (public) list of FINESS numbers.
 */
export const pharmacyPseudonym = (secret: string, finess: string) => createHmac('sha256', secret).update(finess, 'utf8').digest('base64url').slice(0, 22)

/** pharmacyPseudonym with a bounded per-process memo (the hot path computes one per scan). */
export function pseudonymMemo(secret: string, max = 100_000): (org: string) => string {
  const memo = new Map<string, string>()
  return (org) => {
    let p = memo.get(org)
    if (p === undefined) {
      if (memo.size >= max) memo.clear()
      p = pharmacyPseudonym(secret, org)
      memo.set(org, p)
    }
    return p
  }
}

/** The code of an alert raised for a pack that another organisation already supplied (answered ALREADY_INACTIVE). */
export const DISPENSED_ELSEWHERE = 'ALREADY_DISPENSED_ELSEWHERE'

export const alertNotFound = (reference: string) => notFound(`L’alerte ${reference}`, `Alert ${reference}`)

// ---- recording a scan -------------------------------------------------------------------------------------

const SCAN_SQL = `
  insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
  values ($1, $2, $3, $4, $5, $6::date, $7, $8, $9, $10, $11, $12)`

export interface ScanContext {
  database: DatabaseHandle
  secret: string
  /** Memoised pharmacyPseudonym(secret, ·) (pseudonymMemo). */
  pseudonymOf?: (org: string) => string
}

/**
 * Logs a scan (verification or state change) of a readable French pack and, when its answer may mean a
 * falsification, raises an alert. Returns the alert's reference.
 *
 * Consistency: the successful state changes and the verifications without alert are logged by their own statement
 * (service.ts changePackState, verify-batch.ts); this logs the others. An answer that raises an alert never
 * changed anything (every alert is a refusal), so the log row is written right after the answer is known. An alert, its scan row, its audit entry and its event to the lab are written in one
 * transaction: the pharmacy receives the reference only once all of them are committed.
 */
export async function recordScan(ctx: ScanContext, principal: Principal, ref: PackRef, action: string, outcome: PackResult, now: Date): Promise<string | undefined> {
  if (!ref.cip13) return undefined
  const pseudonym = ctx.pseudonymOf ? ctx.pseudonymOf(principal.org) : pharmacyPseudonym(ctx.secret, principal.org)
  const scan = {
    cip13: ref.cip13, id: randomUUID(), at: now, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, action, code: outcome.code, role: principal.role,
    pharmacy_pseudonym: pseudonym, transaction_id: outcome.transactionId ?? null,
  }
  if (!RETURN_CODES[outcome.code].alert && !outcome.dispensedElsewhere) {
    await ctx.database.prepared('serial_scan_log', SCAN_SQL, [...Object.values(scan), null])
    return undefined
  }
  const alertCode = outcome.dispensedElsewhere ? DISPENSED_ELSEWHERE : outcome.code
  return ctx.database.db.transaction().execute(async (tx) => {
    const lab = await labOfProduct(tx, ref.cip13!)
    if (!lab) {
      await tx.insertInto('serial_scans').values({ ...scan, alert_reference: null }).execute()
      return undefined
    }
    if (outcome.dispensedElsewhere) {
      // One open alert per pack and scanning organisation: its re-scans and retries (and its users racing on the
      // same box) get the same reference instead of flooding the lab. The lock serializes them; the read after it
      // sees the alert a concurrent request just committed.
      await sql`select pg_advisory_xact_lock(hashtext(${`${ref.cip13}/${ref.serial}/${principal.org}`}))`.execute(tx)
      const open = await tx
        .selectFrom('serial_alerts')
        .select('reference')
        .where('cip13', '=', ref.cip13!)
        .where('serial', '=', ref.serial)
        .where('org_id', '=', principal.org)
        .where('code', '=', DISPENSED_ELSEWHERE)
        .where('status', '<>', 'closed')
        .executeTakeFirst()
      if (open) {
        await tx.insertInto('serial_scans').values({ ...scan, alert_reference: open.reference }).execute()
        return open.reference
      }
    }
    const { seq } = (await sql<{ seq: number }>`select nextval('serial_alert_seq')::bigint as seq`.execute(tx)).rows[0]!
    const reference = `ALR-${parisDay(now).slice(0, 4)}-${String(Number(seq)).padStart(6, '0')}`
    await tx
      .insertInto('serial_alerts')
      .values({
        seq: Number(seq), reference, cip13: ref.cip13!, lab_id: lab, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, code: alertCode, action,
        org_id: principal.org, user_id: principal.user, pharmacy_pseudonym: pseudonym, created_at: now, updated_at: now,
      })
      .execute()
    await tx.insertInto('serial_scans').values({ ...scan, alert_reference: reference }).execute()
    const actor: Actor = { role: principal.role, org: principal.org, user: principal.user }
    await audit(tx, actor, { action: 'serialization.alert.raised', objectType: 'serial_alert', objectId: reference, changes: { product: ref.cip13, serial: ref.serial, batch: ref.batch, code: alertCode, action } }, now)
    // To the lab: the pseudonym, never the pharmacy (no FINESS, no user, no sender).
    await publish(
      tx,
      {
        type: 'serialization.alert',
        payload: {
          reference, product: ref.cip13, gtin: ref.gtin, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, code: alertCode, action,
          pharmacy: pseudonym, packState: outcome.pack.state, at: now.toISOString(),
        },
        audience: { orgs: [lab] },
        senderOrg: null,
        subject: { type: 'serial_alert', id: reference },
      },
      now,
    )
    return reference
  })
}

/** The lab that exploits the product (referential), else the one that uploaded its packs. */
async function labOfProduct(db: Db, cip13: string): Promise<string | null> {
  const m = await db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select('m.lab_id').where('p.cip13', '=', cip13).executeTakeFirst()
  if (m?.lab_id) return m.lab_id
  const b = await db.selectFrom('serial_batches').select('lab_id').where('cip13', '=', cip13).limit(1).executeTakeFirst()
  return b?.lab_id ?? null
}

// ---- reading alerts ----------------------------------------------------------------------------------------

/** Who looks: the lab sees its products' alerts, a pharmacy its own, the operator all. */
function scoped<Q extends { where: (...a: any[]) => Q }>(q: Q, viewer: Principal): Q {
  if (viewer.role === 'ordre') return q
  if (viewer.role === 'lab') return q.where('a.lab_id', '=', viewer.org)
  return q.where('a.org_id', '=', viewer.org)
}

const ALERT_COLUMNS = [
  'a.seq', 'a.reference', 'a.cip13', 'a.lab_id', 'a.serial', 'a.batch', 'a.expiry', 'a.code', 'a.action', 'a.pharmacy_pseudonym', 'a.status', 'a.conclusion',
  'a.conclusion_note', 'a.created_at', 'a.updated_at', 'a.closed_at',
] as const

type AlertRow = {
  seq: number; reference: string; cip13: string; lab_id: string; serial: string; batch: string; expiry: string; code: string; action: string
  pharmacy_pseudonym: string; status: AlertStatus; conclusion: AlertConclusion | null; conclusion_note: string | null; created_at: Date; updated_at: Date; closed_at: Date | null
}

export interface AlertView {
  reference: string
  product: string
  lab: string
  serial: string
  batch: string
  expiry: string
  code: string
  action: string
  pharmacy: string
  status: AlertStatus
  conclusion: AlertConclusion | null
  conclusionNote: string | null
  createdAt: string
  updatedAt: string
  closedAt: string | null
  messages?: Array<{ author: 'lab' | 'pharmacy'; text: string; at: string }>
}

const toView = (r: AlertRow): AlertView => ({
  reference: r.reference, product: r.cip13, lab: r.lab_id, serial: r.serial, batch: r.batch, expiry: r.expiry, code: r.code, action: r.action,
  pharmacy: r.pharmacy_pseudonym, status: r.status, conclusion: r.conclusion, conclusionNote: r.conclusion_note,
  createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(), closedAt: r.closed_at?.toISOString() ?? null,
})

export interface AlertFilter {
  status?: AlertStatus | undefined
  product?: string | undefined
  lab?: string | undefined
  pharmacy?: string | undefined
}

/** Newest first; `before`: keyset on the alert's number. */
export async function listAlerts(db: Db, viewer: Principal, filter: AlertFilter, opts: { before?: number | undefined; limit: number }) {
  let q = scoped(db.selectFrom('serial_alerts as a').select([...ALERT_COLUMNS]), viewer).orderBy('a.seq', 'desc').limit(opts.limit + 1)
  if (filter.status) q = q.where('a.status', '=', filter.status)
  if (filter.product) q = q.where('a.cip13', '=', filter.product)
  if (filter.lab) q = q.where('a.lab_id', '=', filter.lab)
  if (filter.pharmacy) q = q.where('a.pharmacy_pseudonym', '=', filter.pharmacy)
  if (opts.before !== undefined) q = q.where('a.seq', '<', opts.before)
  const rows = (await q.execute()) as AlertRow[]
  const page = rows.slice(0, opts.limit)
  return { items: page.map(toView), last: rows.length > opts.limit ? Number(page.at(-1)!.seq) : null }
}

async function findAlert(db: Db, viewer: Principal, reference: string, forUpdate = false) {
  let q = scoped(db.selectFrom('serial_alerts as a').select([...ALERT_COLUMNS, 'a.org_id']), viewer).where('a.reference', '=', reference)
  if (forUpdate) q = q.forUpdate()
  const row = (await q.executeTakeFirst()) as (AlertRow & { org_id: string }) | undefined
  if (!row) throw alertNotFound(reference)
  return row
}

export async function getAlert(db: Db, viewer: Principal, reference: string): Promise<AlertView> {
  const row = await findAlert(db, viewer, reference)
  const messages = await db.selectFrom('serial_alert_messages').select(['author', 'text', 'at']).where('alert_seq', '=', Number(row.seq)).orderBy('id').execute()
  return { ...toView(row), messages: messages.map((m) => ({ author: m.author, text: m.text, at: m.at.toISOString() })) }
}

// ---- the lab's investigation -------------------------------------------------------------------------------

const NEXT: Record<AlertStatus, AlertStatus | null> = { new: 'under_investigation', under_investigation: 'closed', closed: null }

/** new → under_investigation → closed (with a conclusion). Setting the current status again changes nothing. */
export async function setAlertStatus(
  tx: Transaction<DB>,
  viewer: Principal,
  actor: Actor,
  reference: string,
  input: { status: Exclude<AlertStatus, 'new'>; conclusion?: AlertConclusion | undefined; note?: string | undefined },
  now: Date,
) {
  const row = await findAlert(tx, viewer, reference, true)
  if (row.status === input.status && input.status !== 'closed') return
  if (NEXT[row.status] !== input.status) {
    throw conflict(
      `L’alerte ${reference} est « ${row.status} » : elle passe de new à under_investigation, puis à closed.`,
      `Alert ${reference} is "${row.status}": it moves from new to under_investigation, then to closed.`,
    )
  }
  if (input.status === 'closed' && !input.conclusion) {
    throw conflict('Une conclusion est requise pour clore l’alerte.', 'A conclusion is required to close the alert.', { errors: [{ field: 'body.conclusion', code: 'required', message: 'conclusion required' }] })
  }
  const closed = input.status === 'closed'
  await tx
    .updateTable('serial_alerts')
    .set({ status: input.status, conclusion: closed ? input.conclusion! : null, conclusion_note: closed ? (input.note ?? null) : null, closed_at: closed ? now : null, updated_at: now })
    .where('seq', '=', Number(row.seq))
    .execute()
  await audit(tx, actor, { action: 'serialization.alert.status', objectType: 'serial_alert', objectId: reference, changes: { status: [row.status, input.status], conclusion: input.conclusion ?? null, note: input.note ?? null } }, now)
  // The pharmacy that raised it learns the outcome.
  await publish(
    tx,
    {
      type: 'serialization.alert.status',
      payload: { reference, status: input.status, conclusion: closed ? input.conclusion : null, at: now.toISOString() },
      audience: { orgs: [row.org_id] },
      senderOrg: row.lab_id,
      subject: { type: 'serial_alert', id: reference },
    },
    now,
  )
}

/** The lab asks the pharmacy a question, the pharmacy answers; each goes to the other's feed. */
export async function addAlertMessage(tx: Transaction<DB>, viewer: Principal, actor: Actor, reference: string, text: string, now: Date) {
  const row = await findAlert(tx, viewer, reference, true)
  if (row.status === 'closed') throw conflict(`L’alerte ${reference} est close.`, `Alert ${reference} is closed.`)
  const author = viewer.role === 'lab' ? 'lab' : 'pharmacy'
  await tx.insertInto('serial_alert_messages').values({ alert_seq: Number(row.seq), author, user_id: viewer.user, text, at: now }).execute()
  await tx.updateTable('serial_alerts').set({ updated_at: now }).where('seq', '=', Number(row.seq)).execute()
  await audit(tx, actor, { action: author === 'lab' ? 'serialization.alert.question' : 'serialization.alert.answer', objectType: 'serial_alert', objectId: reference, changes: { text } }, now)
  await publish(
    tx,
    author === 'lab'
      ? { type: 'serialization.alert.question', payload: { reference, product: row.cip13, serial: row.serial, question: text, at: now.toISOString() }, audience: { orgs: [row.org_id] }, senderOrg: row.lab_id, subject: { type: 'serial_alert', id: reference } }
      : // To the lab: no sender (it would be the pharmacy's FINESS).
        { type: 'serialization.alert.answer', payload: { reference, product: row.cip13, serial: row.serial, pharmacy: row.pharmacy_pseudonym, answer: text, at: now.toISOString() }, audience: { orgs: [row.lab_id] }, senderOrg: null, subject: { type: 'serial_alert', id: reference } },
    now,
  )
}

// ---- figures -----------------------------------------------------------------------------------------------

export interface AlertFigures {
  labs: Array<{ lab: string; alerts: number; byStatus: Record<string, number>; byConclusion: Record<string, number>; byCode: Record<string, number> }>
  products: Array<{ product: string; lab: string; alerts: number; scans: number; rate: number | null }>
}

/** Per lab (the lab sees its own line) and per product: alerts, logged scans and the alert rate (alerts / scans). */
export async function alertFigures(db: Db, viewer: Principal, opts: { lab?: string | undefined; since?: Date | undefined }): Promise<AlertFigures> {
  const lab = viewer.role === 'lab' ? viewer.org : opts.lab
  let q = db.selectFrom('serial_alerts as a').select(['a.lab_id', 'a.cip13', 'a.status', 'a.conclusion', 'a.code', (eb) => eb.fn.countAll<number>().as('n')])
  if (lab) q = q.where('a.lab_id', '=', lab)
  if (opts.since) q = q.where('a.created_at', '>=', opts.since)
  const groups = await q.groupBy(['a.lab_id', 'a.cip13', 'a.status', 'a.conclusion', 'a.code']).execute()

  const labs = new Map<string, AlertFigures['labs'][number]>()
  const products = new Map<string, AlertFigures['products'][number]>()
  const bump = (m: Record<string, number>, k: string, n: number) => (m[k] = (m[k] ?? 0) + n)
  for (const g of groups) {
    const n = Number(g.n)
    const l = labs.get(g.lab_id) ?? { lab: g.lab_id, alerts: 0, byStatus: {}, byConclusion: {}, byCode: {} }
    l.alerts += n
    bump(l.byStatus, g.status, n)
    if (g.conclusion) bump(l.byConclusion, g.conclusion, n)
    bump(l.byCode, g.code, n)
    labs.set(g.lab_id, l)
    const p = products.get(g.cip13) ?? { product: g.cip13, lab: g.lab_id, alerts: 0, scans: 0, rate: null }
    p.alerts += n
    products.set(g.cip13, p)
  }
  // The lab's serialized products without alerts count too (rate 0).
  let bq = db.selectFrom('serial_batches').select(['cip13', 'lab_id']).distinct()
  if (lab) bq = bq.where('lab_id', '=', lab)
  for (const b of await bq.execute()) if (!products.has(b.cip13)) products.set(b.cip13, { product: b.cip13, lab: b.lab_id, alerts: 0, scans: 0, rate: null })
  const codes = [...products.keys()]
  if (codes.length) {
    let sq = db.selectFrom('serial_scans').select(['cip13', (eb) => eb.fn.countAll<number>().as('n')]).where('cip13', 'in', codes)
    if (opts.since) sq = sq.where('at', '>=', opts.since)
    for (const s of await sq.groupBy('cip13').execute()) products.get(s.cip13)!.scans = Number(s.n)
  }
  for (const p of products.values()) p.rate = p.scans > 0 ? Math.round((p.alerts / p.scans) * 1e6) / 1e6 : null
  return {
    labs: [...labs.values()].sort((a, b) => a.lab.localeCompare(b.lab)),
    products: [...products.values()].sort((a, b) => b.alerts - a.alerts || a.product.localeCompare(b.product)),
  }
}

// ---- the operator resolves a pseudonym ---------------------------------------------------------------------

/**
 * The organisation behind a pseudonym: recomputed over the scanning organisations (a few tens of thousands of
 * HMACs), nothing stored. Every attempt is audited, found or not.
 */
export async function resolvePseudonym(db: Kysely<DB>, secret: string, actor: Actor, pseudonym: string, reason: string, now: Date) {
  const orgs = await db.selectFrom('organisations').select(['id', 'role', 'name']).where('role', 'in', [...SCANNER_ROLES]).execute()
  const match = orgs.find((o) => pharmacyPseudonym(secret, o.id) === pseudonym) ?? null
  await db.transaction().execute((tx) =>
    audit(tx, actor, { action: 'serialization.pseudonym.resolved', objectType: 'pharmacy_pseudonym', objectId: pseudonym, changes: { found: match !== null, org: match?.id ?? null, reason } }, now),
  )
  return match
}

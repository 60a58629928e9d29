import { randomUUID } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import { type Actor, audit } from '../platform/audit.ts'
import type { Principal } from '../platform/auth.ts'
import type { DatabaseHandle } from '../platform/db/index.ts'
import { inTransaction } from '../platform/db/transaction.ts'
import type { DB } from '../platform/db/schema.ts'
import { conflict, notFound } from '../platform/errors.ts'
import { publish } from '../platform/events/publish.ts'
import { parisDay } from '../platform/paris-time.ts'
import type { AnsmConclusion, AlertConclusion, AlertStatus } from './db.ts'
import './db.ts'
import type { ReturnCodeName } from './rules/codes.ts'
import { pharmacyPseudonym, type Scanner, userPseudonym } from './rules/pseudonyms.ts'
import type { PseudonymDirectory } from './use-cases/pseudonyms.ts'
import type { PackRef, PackResult } from './rules/packs.ts'

type Db = Kysely<DB> | Transaction<DB>

/** Identical failures of one pharmacy on one pack within this window count on the open alert instead of a new one. */
export const REPEAT_WINDOW_MS = 30 * 60_000

export const alertNotFound = (reference: string) => notFound(`L’alerte ${reference}`, `Alert ${reference}`)

/** What the alert functions need besides the database: the pseudonym key, and who is behind a pseudonym (routing). */
export interface AlertContext {
  secret: string
  directory: PseudonymDirectory
}

// ---- recording a scan -------------------------------------------------------------------------------------

const SCAN_SQL = `
  insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
  values ($1, $2, $3, $4, $5, $6::date, $7, $8, $9, $10, $11, $12)`

/** How a scan ended once logged: the alert it raised, or the keyboard hint that was given instead. */
export interface ScanRecord {
  alertReference?: string
  /** The scan was read with its case inverted (Caps Lock): answered INVALID_CODE with the hint, no alert. */
  capsLock?: boolean
}

/** Caps Lock inverts the case of every letter. */
const swapCase = (s: string) => s.replace(/[a-zA-Z]/g, (c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()))
const CASE_SENSITIVE_CODES: ReadonlySet<ReturnCodeName> = new Set(['UNKNOWN_SERIAL', 'BATCH_UNKNOWN', 'BATCH_MISMATCH'])

/**
 * Logs a scan (verification or state change) of a readable French pack and, when its answer raises an alert
 * (rules/alerts.ts), the alert. Before any alert, a scan whose serial and batch exist with their letters' case
 * inverted gets the keyboard hint instead (a keyboard-wedge scanner with Caps Lock on, without AIM prefix to
 * betray it). Repeated identical failures of one pharmacy on one pack within REPEAT_WINDOW_MS count on the open
 * alert. An alert, its scan row, its audit entry and its event to the lab are written in one transaction: the
 * pharmacy receives the reference only once all of them are committed.
 *
 * The successful state changes and the verifications without alert are logged by their own statement
 * (use-cases/pack-state.ts changePackState, queries/verify-batch.ts); this logs the others.
 */
/**
 * Alert transactions in flight at once, per database: at most half of its pool. Each commits an event (NOTIFY, which
 * PostgreSQL serialises at commit) and an audit entry; in a storm of alert-raising scans they would otherwise take
 * every pooled connection and the verifications of other pharmacies would wait behind them. Beyond the limit they
 * queue here, in order; none is dropped. (A counter and a queue of resolvers: no library needed for this.)
 */
const alertSlots = new WeakMap<DatabaseHandle, { free: number; waiting: Array<() => void> }>()
async function withAlertSlot<T>(database: DatabaseHandle, fn: () => Promise<T>): Promise<T> {
  let slots = alertSlots.get(database)
  if (!slots) alertSlots.set(database, (slots = { free: Math.max(1, Math.floor(database.usage().max / 2)), waiting: [] }))
  if (slots.free > 0) slots.free--
  else await new Promise<void>((resolve) => slots.waiting.push(resolve))
  try {
    return await fn()
  } finally {
    const next = slots.waiting.shift()
    if (next) next()
    else slots.free++
  }
}

export async function recordScan(database: DatabaseHandle, scanner: Scanner, ref: PackRef, action: string, outcome: PackResult, now: Date): Promise<ScanRecord> {
  if (!ref.cip13) return {}
  const cip13 = ref.cip13
  const scan = {
    cip13, id: randomUUID(), at: now, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, action, code: outcome.code as string, role: scanner.role,
    pharmacy_pseudonym: scanner.org, transaction_id: outcome.transactionId ?? null,
  }
  if (!outcome.alert) {
    await database.prepared('serial_scan_log', SCAN_SQL, [...Object.values(scan), null])
    return {}
  }
  if (ref.scan && !ref.scan.aim && CASE_SENSITIVE_CODES.has(outcome.code)) {
    const serial = swapCase(ref.serial)
    const batch = swapCase(ref.batch)
    if (serial !== ref.serial || batch !== ref.batch) {
      const twin = await database.db.selectFrom('packs').select('batch').where('cip13', '=', cip13).where('serial', '=', serial).executeTakeFirst()
      if (twin?.batch === batch) {
        await database.prepared('serial_scan_log', SCAN_SQL, [...Object.values({ ...scan, code: 'INVALID_CODE' }), null])
        return { capsLock: true }
      }
    }
  }
  return withAlertSlot(database, () => inTransaction(database.db, async (tx) => {
    const lab = await labOfProduct(tx, cip13)
    if (!lab) {
      await tx.insertInto('serial_scans').values({ ...scan, alert_reference: null }).execute()
      return {}
    }
    // One alert for repeated identical failures (re-scans, retries, users racing on the same box): the lock
    // serializes them; the read after it sees the alert a concurrent request just committed.
    await sql`select pg_advisory_xact_lock(hashtext(${`${cip13}/${ref.serial}/${scanner.org}/${outcome.code}`}))`.execute(tx)
    const open = await tx
      .selectFrom('serial_alerts')
      .select(['seq', 'reference'])
      .where('cip13', '=', cip13)
      .where('serial', '=', ref.serial)
      .where('pharmacy_pseudonym', '=', scanner.org)
      .where('code', '=', outcome.code)
      .where('status', 'in', ['new', 'under_investigation'])
      .where('last_seen_at', '>', new Date(now.getTime() - REPEAT_WINDOW_MS))
      .executeTakeFirst()
    if (open) {
      await tx.updateTable('serial_alerts').set({ occurrences: sql<number>`occurrences + 1`, last_seen_at: now }).where('seq', '=', Number(open.seq)).execute()
      await tx.insertInto('serial_scans').values({ ...scan, alert_reference: open.reference }).execute()
      return { alertReference: open.reference }
    }
    const { seq } = (await sql<{ seq: number }>`select nextval('serial_alert_seq')::bigint as seq`.execute(tx)).rows[0]!
    const reference = `ALR-${parisDay(now).slice(0, 4)}-${String(Number(seq)).padStart(6, '0')}`
    await tx
      .insertInto('serial_alerts')
      .values({
        seq: Number(seq), reference, cip13, lab_id: lab, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, code: outcome.code, action,
        pharmacy_pseudonym: scanner.org, user_pseudonym: scanner.user, scanned: ref.scan?.raw ?? null, created_at: now, updated_at: now, last_seen_at: now,
      })
      .execute()
    await tx.insertInto('serial_scans').values({ ...scan, alert_reference: reference }).execute()
    // The audit trail names the pseudonyms: no FINESS in what serialization records.
    const actor: Actor = { role: scanner.role, org: scanner.org, user: scanner.user }
    await audit(tx, actor, { action: 'serialization.alert.raised', objectType: 'serial_alert', objectId: reference, changes: { product: cip13, serial: ref.serial, batch: ref.batch, code: outcome.code, action } }, now)
    // To the lab: the pseudonym, never the pharmacy (no FINESS, no user, no sender).
    await publish(
      tx,
      {
        type: 'serialization.alert',
        payload: {
          reference, product: cip13, gtin: ref.gtin, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, code: outcome.code, action,
          pharmacy: scanner.org, packState: outcome.pack.state, at: now.toISOString(),
        },
        audience: { orgs: [lab] },
        senderOrg: null,
        subject: { type: 'serial_alert', id: reference },
      },
      now,
    )
    return { alertReference: reference }
  }))
}

/** The lab that exploits the product (referential), else the one that uploaded its packs. */
async function labOfProduct(db: Db, cip13: string): Promise<string | null> {
  const m = await db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select('m.lab_id').where('p.cip13', '=', cip13).executeTakeFirst()
  if (m?.lab_id) return m.lab_id
  const b = await db.selectFrom('serial_batches').select('lab_id').where('cip13', '=', cip13).limit(1).executeTakeFirst()
  return b?.lab_id ?? null
}

// ---- reading alerts ----------------------------------------------------------------------------------------

/** Who looks: the lab sees its products' alerts, a scanning organisation its own, ANSM and the operator all. */
function scoped<Q extends { where: (...a: any[]) => Q }>(q: Q, viewer: Principal, ctx: AlertContext): Q {
  if (viewer.role === 'ordre' || viewer.role === 'ansm') return q
  if (viewer.role === 'lab') return q.where('a.lab_id', '=', viewer.org)
  return q.where('a.pharmacy_pseudonym', '=', pharmacyPseudonym(ctx.secret, viewer.org))
}

const ALERT_COLUMNS = [
  'a.seq', 'a.reference', 'a.cip13', 'a.lab_id', 'a.serial', 'a.batch', 'a.expiry', 'a.code', 'a.action', 'a.pharmacy_pseudonym', 'a.status', 'a.conclusion',
  'a.conclusion_note', 'a.created_at', 'a.updated_at', 'a.closed_at', 'a.escalated_at', 'a.ansm_conclusion', 'a.ansm_note', 'a.scanned', 'a.occurrences', 'a.last_seen_at',
] as const

type AlertRow = {
  seq: number; reference: string; cip13: string; lab_id: string; serial: string; batch: string; expiry: string; code: string; action: string
  pharmacy_pseudonym: string; status: AlertStatus; conclusion: AlertConclusion | null; conclusion_note: string | null; created_at: Date; updated_at: Date; closed_at: Date | null
  escalated_at: Date | null; ansm_conclusion: AnsmConclusion | null; ansm_note: string | null; scanned: string | null; occurrences: number; last_seen_at: Date
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
  scanned: string | null
  occurrences: number
  lastSeenAt: string
  status: AlertStatus
  conclusion: AlertConclusion | null
  conclusionNote: string | null
  escalatedAt: string | null
  ansmConclusion: AnsmConclusion | null
  ansmNote: string | null
  createdAt: string
  updatedAt: string
  closedAt: string | null
  messages?: Array<{ author: 'lab' | 'pharmacy' | 'ansm'; text: string; at: string }>
}

const toView = (r: AlertRow): AlertView => ({
  reference: r.reference, product: r.cip13, lab: r.lab_id, serial: r.serial, batch: r.batch, expiry: r.expiry, code: r.code, action: r.action,
  pharmacy: r.pharmacy_pseudonym, scanned: r.scanned, occurrences: Number(r.occurrences), lastSeenAt: r.last_seen_at.toISOString(),
  status: r.status, conclusion: r.conclusion, conclusionNote: r.conclusion_note,
  escalatedAt: r.escalated_at?.toISOString() ?? null, ansmConclusion: r.ansm_conclusion, ansmNote: r.ansm_note,
  createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(), closedAt: r.closed_at?.toISOString() ?? null,
})

export interface AlertFilter {
  status?: AlertStatus | undefined
  product?: string | undefined
  lab?: string | undefined
  pharmacy?: string | undefined
}

/** Newest first; `before`: keyset on the alert's number. */
export async function listAlerts(db: Db, ctx: AlertContext, viewer: Principal, filter: AlertFilter, opts: { before?: number | undefined; limit: number }) {
  let q = scoped(db.selectFrom('serial_alerts as a').select([...ALERT_COLUMNS]), viewer, ctx).orderBy('a.seq', 'desc').limit(opts.limit + 1)
  if (filter.status) q = q.where('a.status', '=', filter.status)
  if (filter.product) q = q.where('a.cip13', '=', filter.product)
  if (filter.lab) q = q.where('a.lab_id', '=', filter.lab)
  if (filter.pharmacy) q = q.where('a.pharmacy_pseudonym', '=', filter.pharmacy)
  if (opts.before !== undefined) q = q.where('a.seq', '<', opts.before)
  const rows = (await q.execute()) as AlertRow[]
  const page = rows.slice(0, opts.limit)
  return { items: page.map(toView), last: rows.length > opts.limit ? Number(page.at(-1)!.seq) : null }
}

async function findAlert(db: Db, ctx: AlertContext, viewer: Principal, reference: string, forUpdate = false) {
  let q = scoped(db.selectFrom('serial_alerts as a').select([...ALERT_COLUMNS]), viewer, ctx).where('a.reference', '=', reference)
  if (forUpdate) q = q.forUpdate()
  const row = (await q.executeTakeFirst()) as AlertRow | undefined
  if (!row) throw alertNotFound(reference)
  return row
}

export async function getAlert(db: Db, ctx: AlertContext, viewer: Principal, reference: string): Promise<AlertView> {
  const row = await findAlert(db, ctx, viewer, reference)
  const messages = await db.selectFrom('serial_alert_messages').select(['author', 'text', 'at']).where('alert_seq', '=', Number(row.seq)).orderBy('id').execute()
  return { ...toView(row), messages: messages.map((m) => ({ author: m.author, text: m.text, at: m.at.toISOString() })) }
}

/** The pack's history for its investigation: every scan and state change, oldest first, with pseudonyms only. */
export async function packHistory(db: Db, ctx: AlertContext, viewer: Principal, reference: string) {
  const alert = await findAlert(db, ctx, viewer, reference)
  const [scans, changes, pack] = await Promise.all([
    db.selectFrom('serial_scans').select(['at', 'action', 'code', 'role', 'pharmacy_pseudonym', 'batch', 'expiry', 'transaction_id', 'alert_reference']).where('cip13', '=', alert.cip13).where('serial', '=', alert.serial).orderBy('at').execute(),
    db.selectFrom('pack_transactions').select(['id', 'at', 'action', 'from_state', 'to_state', 'org_pseudonym', 'user_pseudonym', 'role', 'undoes']).where('cip13', '=', alert.cip13).where('serial', '=', alert.serial).orderBy('at').execute(),
    db.selectFrom('packs').select(['batch', 'state', 'state_at', 'created_at']).where('cip13', '=', alert.cip13).where('serial', '=', alert.serial).executeTakeFirst(),
  ])
  return {
    reference,
    product: alert.cip13,
    serial: alert.serial,
    pack: pack ? { batch: pack.batch, state: pack.state, stateAt: pack.state_at.toISOString(), uploadedAt: pack.created_at.toISOString() } : null,
    scans: scans.map((s) => ({ at: s.at.toISOString(), action: s.action, code: s.code, role: s.role, pharmacy: s.pharmacy_pseudonym, batch: s.batch, expiry: s.expiry, transactionId: s.transaction_id, alertReference: s.alert_reference })),
    changes: changes.map((c) => ({ transactionId: c.id, at: c.at.toISOString(), action: c.action, from: c.from_state, to: c.to_state, organisation: c.org_pseudonym, user: c.user_pseudonym, role: c.role, undoes: c.undoes })),
  }
}

// ---- the lab's investigation, ANSM's decision ----------------------------------------------------------------

/**
 * new → under_investigation → closed (with a conclusion); a lab concluding "falsification suspected" escalates the
 * alert to ANSM instead of closing it (status escalated, an event on ANSM's feed); ANSM closes it. Setting the
 * current status again changes nothing.
 */
export async function setAlertStatus(
  tx: Transaction<DB>,
  ctx: AlertContext,
  viewer: Principal,
  actor: Actor,
  reference: string,
  input: { status: 'under_investigation' | 'closed'; conclusion?: AlertConclusion | undefined; note?: string | undefined },
  now: Date,
) {
  const row = await findAlert(tx, ctx, viewer, reference, true)
  if (row.status === input.status && input.status !== 'closed') return
  const step = input.status === 'under_investigation' ? row.status === 'new' : row.status === 'under_investigation'
  if (!step) {
    throw conflict(
      `L’alerte ${reference} est « ${row.status} » : elle passe de new à under_investigation, puis à closed (ou escalated vers l’ANSM si une falsification est suspectée).`,
      `Alert ${reference} is "${row.status}": it moves from new to under_investigation, then to closed (or escalated to ANSM when a falsification is suspected).`,
    )
  }
  if (input.status === 'closed' && !input.conclusion) {
    throw conflict('Une conclusion est requise pour clore l’alerte.', 'A conclusion is required to close the alert.', { errors: [{ field: 'body.conclusion', code: 'required', message: 'conclusion required' }] })
  }
  const concluded = input.status === 'closed'
  const escalated = concluded && input.conclusion === 'falsification_suspected'
  const status: AlertStatus = escalated ? 'escalated' : input.status
  await tx
    .updateTable('serial_alerts')
    .set({
      status,
      conclusion: concluded ? input.conclusion! : null,
      conclusion_note: concluded ? (input.note ?? null) : null,
      closed_at: concluded && !escalated ? now : null,
      escalated_at: escalated ? now : null,
      updated_at: now,
    })
    .where('seq', '=', Number(row.seq))
    .execute()
  await audit(tx, actor, { action: 'serialization.alert.status', objectType: 'serial_alert', objectId: reference, changes: { status: [row.status, status], conclusion: input.conclusion ?? null, note: input.note ?? null } }, now)
  await tellPharmacy(tx, ctx, row, { reference, status, conclusion: concluded ? input.conclusion! : null, at: now.toISOString() }, now)
  if (escalated) {
    await publish(
      tx,
      {
        type: 'serialization.alert.escalated',
        payload: {
          reference, product: row.cip13, lab: row.lab_id, serial: row.serial, batch: row.batch, expiry: row.expiry, code: row.code, action: row.action,
          pharmacy: row.pharmacy_pseudonym, occurrences: Number(row.occurrences), note: input.note ?? null, at: now.toISOString(),
        },
        audience: { roles: ['ansm'] },
        senderOrg: row.lab_id,
        subject: { type: 'serial_alert', id: reference },
      },
      now,
    )
  }
}

/** ANSM closes an escalated alert with its own conclusion; the lab and the pharmacy are told. */
export async function closeEscalatedAlert(tx: Transaction<DB>, ctx: AlertContext, viewer: Principal, actor: Actor, reference: string, input: { conclusion: AnsmConclusion; note?: string | undefined }, now: Date) {
  const row = await findAlert(tx, ctx, viewer, reference, true)
  if (row.status !== 'escalated') {
    throw conflict(`L’alerte ${reference} est « ${row.status} » : l’ANSM clôt les alertes que le laboratoire lui a transmises (escalated).`, `Alert ${reference} is "${row.status}": ANSM closes the alerts the lab escalated to it (escalated).`)
  }
  await tx
    .updateTable('serial_alerts')
    .set({ status: 'closed', ansm_conclusion: input.conclusion, ansm_note: input.note ?? null, closed_at: now, updated_at: now })
    .where('seq', '=', Number(row.seq))
    .execute()
  await audit(tx, actor, { action: 'serialization.alert.ansm_closed', objectType: 'serial_alert', objectId: reference, changes: { status: ['escalated', 'closed'], conclusion: input.conclusion, note: input.note ?? null } }, now)
  const payload = { reference, status: 'closed', conclusion: row.conclusion, ansmConclusion: input.conclusion, at: now.toISOString() }
  await publish(tx, { type: 'serialization.alert.status', payload, audience: { orgs: [row.lab_id] }, senderOrg: null, subject: { type: 'serial_alert', id: reference } }, now)
  await tellPharmacy(tx, ctx, row, payload, now)
}

/** The pharmacy that raised an alert learns what became of it. */
async function tellPharmacy(tx: Transaction<DB>, ctx: AlertContext, row: AlertRow, payload: Record<string, unknown>, now: Date) {
  const org = await ctx.directory.orgOf(tx, row.pharmacy_pseudonym)
  if (!org) return
  await publish(tx, { type: 'serialization.alert.status', payload, audience: { orgs: [org] }, senderOrg: row.lab_id, subject: { type: 'serial_alert', id: row.reference } }, now)
}

/**
 * The lab asks the pharmacy a question, the pharmacy answers; ANSM may write to the lab on an escalated alert. Each
 * message goes to the other party's feed; authors are recorded as pseudonyms.
 */
export async function addAlertMessage(tx: Transaction<DB>, ctx: AlertContext, viewer: Principal, actor: Actor, reference: string, text: string, now: Date) {
  const row = await findAlert(tx, ctx, viewer, reference, true)
  if (row.status === 'closed') throw conflict(`L’alerte ${reference} est close.`, `Alert ${reference} is closed.`)
  const author = viewer.role === 'lab' ? 'lab' : viewer.role === 'ansm' ? 'ansm' : 'pharmacy'
  if (author === 'ansm' && row.status !== 'escalated') throw conflict(`L’alerte ${reference} n’a pas été transmise à l’ANSM.`, `Alert ${reference} was not escalated to ANSM.`)
  await tx.insertInto('serial_alert_messages').values({ alert_seq: Number(row.seq), author, user_pseudonym: userPseudonym(ctx.secret, viewer.org, viewer.user), text, at: now }).execute()
  await tx.updateTable('serial_alerts').set({ updated_at: now }).where('seq', '=', Number(row.seq)).execute()
  await audit(tx, actor, { action: `serialization.alert.${author === 'pharmacy' ? 'answer' : 'question'}`, objectType: 'serial_alert', objectId: reference, changes: { text } }, now)
  const subject = { type: 'serial_alert', id: reference }
  if (author === 'pharmacy') {
    // To the lab: no sender (it would be the pharmacy's FINESS).
    await publish(tx, { type: 'serialization.alert.answer', payload: { reference, product: row.cip13, serial: row.serial, pharmacy: row.pharmacy_pseudonym, answer: text, at: now.toISOString() }, audience: { orgs: [row.lab_id] }, senderOrg: null, subject }, now)
  } else if (author === 'ansm') {
    await publish(tx, { type: 'serialization.alert.question', payload: { reference, product: row.cip13, serial: row.serial, question: text, from: 'ansm', at: now.toISOString() }, audience: { orgs: [row.lab_id] }, senderOrg: viewer.org, subject }, now)
  } else {
    const org = await ctx.directory.orgOf(tx, row.pharmacy_pseudonym)
    if (org) await publish(tx, { type: 'serialization.alert.question', payload: { reference, product: row.cip13, serial: row.serial, question: text, from: 'lab', at: now.toISOString() }, audience: { orgs: [org] }, senderOrg: row.lab_id, subject }, now)
  }
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

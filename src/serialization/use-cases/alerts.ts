/**
 * Reading serial alerts, as each viewer may see them: a list, one alert with its messages, its pack's history for
 * the investigation, and the figures per lab and per product.
 */
import type { Kysely, Transaction } from 'kysely'
import type { Principal } from '../../platform/auth.ts'
import type { DB } from '../../platform/db/schema.ts'
import { notFound } from '../../platform/errors.ts'
import type { AlertConclusion, AlertStatus, AnsmConclusion } from '../db.ts'
import * as q from '../queries/alerts.ts'
import type { PseudonymDirectory } from './pseudonyms.ts'

type Db = Kysely<DB> | Transaction<DB>

export const alertNotFound = (reference: string) => notFound(`L’alerte ${reference}`, `Alert ${reference}`)

/** What the alert functions need besides the database: the pseudonym key, and who is behind a pseudonym (routing). */
export interface AlertContext {
  secret: string
  directory: PseudonymDirectory
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

const toView = (r: q.AlertRow): AlertView => ({
  reference: r.reference, product: r.cip13, lab: r.lab_id, serial: r.serial, batch: r.batch, expiry: r.expiry, code: r.code, action: r.action,
  pharmacy: r.pharmacy_pseudonym, scanned: r.scanned, occurrences: Number(r.occurrences), lastSeenAt: r.last_seen_at.toISOString(),
  status: r.status, conclusion: r.conclusion, conclusionNote: r.conclusion_note,
  escalatedAt: r.escalated_at?.toISOString() ?? null, ansmConclusion: r.ansm_conclusion, ansmNote: r.ansm_note,
  createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(), closedAt: r.closed_at?.toISOString() ?? null,
})

/** Newest first; `before`: keyset on the alert's number. */
export async function listAlerts(db: Db, ctx: AlertContext, viewer: Principal, filter: q.AlertFilter, opts: { before?: number | undefined; limit: number }) {
  const rows = await q.alertRows(db, ctx.secret, viewer, filter, opts)
  const page = rows.slice(0, opts.limit)
  return { items: page.map(toView), last: rows.length > opts.limit ? Number(page.at(-1)!.seq) : null }
}

/** The alert, if the viewer may see it (else 404); `forUpdate`: locked until the transaction ends. */
export async function findAlert(db: Db, ctx: AlertContext, viewer: Principal, reference: string, forUpdate = false) {
  const row = await q.alertRow(db, ctx.secret, viewer, reference, forUpdate)
  if (!row) throw alertNotFound(reference)
  return row
}

export async function getAlert(db: Db, ctx: AlertContext, viewer: Principal, reference: string): Promise<AlertView> {
  const row = await findAlert(db, ctx, viewer, reference)
  const messages = await q.alertMessages(db, Number(row.seq))
  return { ...toView(row), messages: messages.map((m) => ({ author: m.author, text: m.text, at: m.at.toISOString() })) }
}

/** The pack's history for its investigation: every scan and state change, oldest first, with pseudonyms only. */
export async function packHistory(db: Db, ctx: AlertContext, viewer: Principal, reference: string) {
  const alert = await findAlert(db, ctx, viewer, reference)
  const [scans, changes, pack] = await q.packHistoryRows(db, alert.cip13, alert.serial)
  return {
    reference,
    product: alert.cip13,
    serial: alert.serial,
    pack: pack ? { batch: pack.batch, state: pack.state, stateAt: pack.state_at.toISOString(), uploadedAt: pack.created_at.toISOString() } : null,
    scans: scans.map((s) => ({ at: s.at.toISOString(), action: s.action, code: s.code, role: s.role, pharmacy: s.pharmacy_pseudonym, batch: s.batch, expiry: s.expiry, transactionId: s.transaction_id, alertReference: s.alert_reference })),
    changes: changes.map((c) => ({ transactionId: c.id, at: c.at.toISOString(), action: c.action, from: c.from_state, to: c.to_state, organisation: c.org_pseudonym, user: c.user_pseudonym, role: c.role, undoes: c.undoes })),
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
  const groups = await q.alertGroups(db, lab, opts.since)

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
  for (const b of await q.serializedProducts(db, lab)) if (!products.has(b.cip13)) products.set(b.cip13, { product: b.cip13, lab: b.lab_id, alerts: 0, scans: 0, rate: null })
  const codes = [...products.keys()]
  if (codes.length) {
    for (const s of await q.scanCounts(db, codes, opts.since)) products.get(s.cip13)!.scans = Number(s.n)
  }
  for (const p of products.values()) p.rate = p.scans > 0 ? Math.round((p.alerts / p.scans) * 1e6) / 1e6 : null
  return {
    labs: [...labs.values()].sort((a, b) => a.lab.localeCompare(b.lab)),
    products: [...products.values()].sort((a, b) => b.alerts - a.alerts || a.product.localeCompare(b.product)),
  }
}

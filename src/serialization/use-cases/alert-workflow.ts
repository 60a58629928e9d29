/**
 * The alert workflow's writes: the lab's status change, ANSM's decision, a message. Each runs in its transaction
 * (the alert's row locked, the rules of rules/alert-workflow.ts checked, audited, the parties told on their feeds);
 * the alert is then read back, after the commit, as the caller sees it.
 */
import type { Kysely, Transaction } from 'kysely'
import { type Actor, actorOf, audit } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import type { DB } from '../../platform/db/schema.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import { publish } from '../../platform/events/publish.ts'
import type { AlertConclusion, AnsmConclusion } from '../db.ts'
import * as q from '../queries/alerts.ts'
import { alertStatusStep, assertEscalated, messageAuthor } from '../rules/alert-workflow.ts'
import { userPseudonym } from '../rules/pseudonyms.ts'
import { type AlertContext, findAlert, getAlert } from './alerts.ts'

export interface AlertDeps {
  db: Kysely<DB>
  ctx: AlertContext
  /** Read inside each transaction, as the time of the change. */
  now: () => Date
}

/** Who calls: tenancy and the audit trail. */
export interface Who {
  principal: Principal
  requestId: string
}

/**
 * new → under_investigation → closed (with a conclusion); a lab concluding "falsification suspected" escalates the
 * alert to ANSM instead of closing it (status escalated, an event on ANSM's feed); ANSM closes it. Setting the
 * current status again changes nothing.
 */
async function setAlertStatus(
  tx: Transaction<DB>,
  ctx: AlertContext,
  viewer: Principal,
  actor: Actor,
  reference: string,
  input: { status: 'under_investigation' | 'closed'; conclusion?: AlertConclusion | undefined; note?: string | undefined },
  now: Date,
) {
  const row = await findAlert(tx, ctx, viewer, reference, true)
  const step = alertStatusStep(reference, row.status, input)
  if (!step) return
  const { status, concluded, escalated } = step
  await q.updateAlert(tx, Number(row.seq), {
    status,
    conclusion: concluded ? input.conclusion! : null,
    conclusion_note: concluded ? (input.note ?? null) : null,
    closed_at: concluded && !escalated ? now : null,
    escalated_at: escalated ? now : null,
    updated_at: now,
  })
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
async function closeEscalatedAlert(tx: Transaction<DB>, ctx: AlertContext, viewer: Principal, actor: Actor, reference: string, input: { conclusion: AnsmConclusion; note?: string | undefined }, now: Date) {
  const row = await findAlert(tx, ctx, viewer, reference, true)
  assertEscalated(reference, row.status)
  await q.updateAlert(tx, Number(row.seq), { status: 'closed', ansm_conclusion: input.conclusion, ansm_note: input.note ?? null, closed_at: now, updated_at: now })
  await audit(tx, actor, { action: 'serialization.alert.ansm_closed', objectType: 'serial_alert', objectId: reference, changes: { status: ['escalated', 'closed'], conclusion: input.conclusion, note: input.note ?? null } }, now)
  const payload = { reference, status: 'closed', conclusion: row.conclusion, ansmConclusion: input.conclusion, at: now.toISOString() }
  await publish(tx, { type: 'serialization.alert.status', payload, audience: { orgs: [row.lab_id] }, senderOrg: null, subject: { type: 'serial_alert', id: reference } }, now)
  await tellPharmacy(tx, ctx, row, payload, now)
}

/** The pharmacy that raised an alert learns what became of it. */
async function tellPharmacy(tx: Transaction<DB>, ctx: AlertContext, row: q.AlertRow, payload: Record<string, unknown>, now: Date) {
  const org = await ctx.directory.orgOf(tx, row.pharmacy_pseudonym)
  if (!org) return
  await publish(tx, { type: 'serialization.alert.status', payload, audience: { orgs: [org] }, senderOrg: row.lab_id, subject: { type: 'serial_alert', id: row.reference } }, now)
}

/**
 * The lab asks the pharmacy a question, the pharmacy answers; ANSM may write to the lab on an escalated alert. Each
 * message goes to the other party's feed; authors are recorded as pseudonyms.
 */
async function addAlertMessage(tx: Transaction<DB>, ctx: AlertContext, viewer: Principal, actor: Actor, reference: string, text: string, now: Date) {
  const row = await findAlert(tx, ctx, viewer, reference, true)
  const author = messageAuthor(reference, row.status, viewer.role)
  await q.insertAlertMessage(tx, { alert_seq: Number(row.seq), author, user_pseudonym: userPseudonym(ctx.secret, viewer.org, viewer.user), text, at: now })
  await q.updateAlert(tx, Number(row.seq), { updated_at: now })
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

// ---- the calls: each in its transaction, then the alert read back ------------------------------------------------

export async function changeAlertStatus(deps: AlertDeps, who: Who, reference: string, input: Parameters<typeof setAlertStatus>[5]) {
  const { principal } = who
  await inTransaction(deps.db, (tx) => setAlertStatus(tx, deps.ctx, principal, actorOf(principal, who.requestId), reference, input, deps.now()))
  return getAlert(deps.db, deps.ctx, principal, reference)
}

export async function decideEscalatedAlert(deps: AlertDeps, who: Who, reference: string, input: Parameters<typeof closeEscalatedAlert>[5]) {
  const { principal } = who
  await inTransaction(deps.db, (tx) => closeEscalatedAlert(tx, deps.ctx, principal, actorOf(principal, who.requestId), reference, input, deps.now()))
  return getAlert(deps.db, deps.ctx, principal, reference)
}

export async function postAlertMessage(deps: AlertDeps, who: Who, reference: string, text: string) {
  const { principal } = who
  await inTransaction(deps.db, (tx) => addAlertMessage(tx, deps.ctx, principal, actorOf(principal, who.requestId), reference, text, deps.now()))
  return getAlert(deps.db, deps.ctx, principal, reference)
}

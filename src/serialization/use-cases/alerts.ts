/**
 * The alert workflow's writes: the lab's status change, ANSM's decision, a message. Each runs in its transaction;
 * the alert is then read back, after the commit, as the caller sees it.
 */
import type { Kysely } from 'kysely'
import { actorOf } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import type { DB } from '../../platform/db/schema.ts'
import { addAlertMessage, type AlertContext, closeEscalatedAlert, getAlert, setAlertStatus } from '../alerts.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

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

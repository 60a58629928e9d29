/** The exchange between the lab and ANSM: submission, ANSM's decisions, scheduled broadcasts, comments, history. */
import { audit } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import { publish } from '../../platform/events/publish.ts'
import type { PipelineKind } from '../db.ts'
import * as q from '../queries/messages.ts'
import { LABEL } from '../rules/kinds.ts'
import { closeRound, historyOf, openRound } from '../queries/rounds.ts'
import { approveOrBroadcast } from './broadcast.ts'
import { actor, type Deps, viewFor, type Who } from './context.ts'
import { transition } from './transition.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

/** The latest version goes to ANSM's review queue: a new round. */
export function submitMessage(deps: Deps, kind: PipelineKind, who: Who, id: string, comment: string | null) {
  const by = actor(who)
  return transition(deps, kind, who, id, 'submit', async (tx, r, latest, now) => {
    // A new round: the decision of an earlier round is not this one's.
    await q.updateVersion(tx, r.id, r.version, { status: 'submitted', submitted_at: now, decided_at: null, updated_at: now })
    await openRound(tx, r.id, r.version, latest.content, by, now)
    await q.updateRecall(tx, r.id, { updated_at: now, first_submitted_at: r.first_submitted_at ?? now, ...(r.live_version === null ? { status: 'submitted' as const } : {}) })
    return {
      message: 'submitted',
      text: comment,
      changes: { comment },
      notify: { type: 'submitted', to: { roles: ['ansm'] }, payload: { lab: { id: r.lab_id, name: r.lab_name }, revision: r.live_version !== null } },
    }
  })
}

/** ANSM approves: broadcast now, or at the scheduled time (see approveOrBroadcast). */
export async function approveMessage(deps: Deps, kind: PipelineKind, who: Who, id: string, comment: string | null) {
  const { principal } = who
  await approveOrBroadcast(deps.app, kind, id, actor(who), { approve: { comment, principal } })
  return viewFor(deps.db, kind, await q.visibleRecall(deps.db, kind, id, principal), principal)
}

/** ANSM sends the version back for changes, or rejects it (which ends a first version). */
export function decideMessage(deps: Deps, kind: PipelineKind, who: Who, id: string, decision: 'request-changes' | 'reject', comment: string) {
  const status = decision === 'reject' ? ('rejected' as const) : ('changes_requested' as const)
  const by = actor(who)
  return transition(deps, kind, who, id, decision, async (tx, r, _latest, now) => {
    await q.updateVersion(tx, r.id, r.version, { status, decided_at: now, updated_at: now })
    await closeRound(tx, r.id, r.version, status, comment ?? null, by, now)
    await q.updateRecall(tx, r.id, { updated_at: now, ...(r.live_version === null ? { status } : {}) })
    return { message: status, text: comment, changes: { comment }, notify: { type: 'reviewed', to: { orgs: [r.lab_id] }, payload: { decision: status, comment } } }
  })
}

/** The lab or ANSM withdraws an approval waiting for its time: the version goes back to draft; the other side is told. */
export function cancelScheduledBroadcast(deps: Deps, kind: PipelineKind, who: Who, id: string, reason: string) {
  const { principal } = who
  return transition(deps, kind, who, id, 'cancel-schedule', async (tx, r, latest, now) => {
    await q.updateVersion(tx, r.id, r.version, { status: 'draft', decided_at: null, updated_at: now })
    await q.updateRecall(tx, r.id, { status: 'draft', updated_at: now })
    const to = principal.role === 'ansm' ? { orgs: [r.lab_id] } : { roles: ['ansm'] as ['ansm'] }
    return { message: 'schedule_cancelled', text: reason, changes: { reason, from: latest.status }, notify: { type: 'schedule_cancelled', to, payload: { reason, by: principal.role } } }
  })
}

/** A comment in the thread; the other side gets it on its feed (ANSM only once the message was submitted). */
export async function addComment(deps: Deps, kind: PipelineKind, who: Who, id: string, text: string) {
  const { principal } = who
  const now = deps.now()
  const by = actor(who)
  const object = LABEL[kind].object
  return inTransaction(deps.db, async (tx) => {
    const r = await q.visibleRecall(tx, kind, id, principal, { forUpdate: true })
    await q.addMessage(tx, r.id, r.version, 'comment', text, by, now)
    await audit(tx, by, { action: `${kind}.comment`, objectType: object, objectId: r.id, changes: { version: r.version, text } }, now)
    const to = principal.role === 'ansm' ? { orgs: [r.lab_id] } : r.first_submitted_at ? { roles: ['ansm' as const] } : null
    if (to) await publish(tx, { type: `${kind}.comment`, payload: { id: r.id, reference: r.reference, version: r.version, text, from: principal.role }, audience: to, senderOrg: principal.org, subject: { type: object, id: r.id } }, now)
    return { at: now.toISOString(), version: r.version, kind: 'comment', text, author: { role: principal.role, org: principal.org, user: principal.user }, changes: null }
  })
}

export async function historyFor(deps: Deps, kind: PipelineKind, principal: Principal, id: string) {
  const r = await q.visibleRecall(deps.db, kind, id, principal)
  // ANSM sees the versions that were submitted to it, not the lab's drafts.
  const versions = await q.versionsOf(deps.db, r.id, { submittedOnly: principal.role === 'ansm' })
  return { id: r.id, reference: r.reference, ...(await historyOf(deps.db, r.id, versions)) }
}

/** ANSM's queue: every version waiting for a decision, recalls and alerts together. */
export async function reviewQueue(deps: Pick<Deps, 'db'>) {
  const rows = await q.submittedVersions(deps.db)
  return {
    items: rows.map((r) => ({
      id: r.id, kind: r.kind, reference: r.reference, lab: { id: r.lab_id, name: r.lab_name }, version: r.version,
      revision: r.live_version !== null, title: r.content.title, submittedAt: r.submitted_at!.toISOString(),
    })),
  }
}

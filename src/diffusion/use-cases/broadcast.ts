/**
 * A message going out: ANSM's approval, the broadcast (now or by the scheduled job, with the blocking of a recall's
 * batches when it blocks dispensation), and the reminders to the recipients still lagging.
 */
import type { FastifyInstance } from 'fastify'
import type { Transaction } from 'kysely'
import { type Actor, audit, SYSTEM } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import type { DB } from '../../platform/db/schema.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import { AppError } from '../../platform/errors.ts'
import { publish } from '../../platform/events/publish.ts'
import { enqueue } from '../../platform/jobs.ts'
import { applyBlocks, type RecallBlocks } from '../../recalls/use-cases/blocking.ts'
import type { PipelineKind, RecallRow } from '../db.ts'
import * as q from '../queries/messages.ts'
import { addRecipients, markReminded, recipientStates } from '../queries/recipients.ts'
import { closeRound } from '../queries/rounds.ts'
import { lagging } from '../rules/acknowledgements.ts'
import { assertAction } from '../rules/actions.ts'
import { targetDepartments } from '../rules/content.ts'
import { LABEL, notFoundFor } from '../rules/kinds.ts'
import { blocksTarget, eventPayload } from '../rules/notices.ts'

export const QUEUE_BROADCAST = 'recalls.broadcast'
export const QUEUE_REMIND = 'recalls.remind'

/**
 * Runs a use case in one transaction: through applyBlocks when the blocked batches change (the broadcast of a
 * blocking recall, of a new version, the close), else a plain transaction.
 */
export function withBlocksIfAny<T>(app: FastifyInstance, target: RecallBlocks | null, actor: Actor, fn: (tx: Transaction<DB>) => Promise<T>): Promise<T> {
  return target ? applyBlocks(app, target, fn) : inTransaction(app.db, fn)
}

/**
 * Broadcasts an approved version, inside the caller's transaction (the applyBlocks one for a blocking
 * recall): publishes to the targeted organisations (fax for those without an integration), records them as
 * recipients (what earlier recipients did is kept), supersedes the previous version, schedules reminders
 * after the first broadcast.
 */
export async function broadcastVersion(tx: Transaction<DB>, kind: PipelineKind, r: RecallRow, version: number, actor: Actor, now: Date) {
  const v = await q.versionOf(tx, r.id, version)
  const c = v.content
  const first = r.live_version === null
  const departments = targetDepartments(c)
  const ev = await publish(
    tx,
    {
      type: `${kind}.${first ? 'broadcast' : 'updated'}`,
      payload: eventPayload(kind, r, version, c, first),
      audience: { roles: c.recipients.categories, ...(departments.length ? { departments } : {}) },
      senderOrg: r.lab_id,
      subject: { type: LABEL[kind].object, id: r.id },
      fax: true,
    },
    now,
  )
  await addRecipients(tx, r.id, version, ev.id, now)
  if (r.live_version !== null) await q.updateVersion(tx, r.id, r.live_version, { status: 'superseded', updated_at: now })
  await q.updateVersion(tx, r.id, version, { status: 'broadcast', event_id: ev.id, broadcast_at: now, updated_at: now })
  await q.updateRecall(tx, r.id, { status: 'broadcast', live_version: version, updated_at: now, ...(first ? { broadcast_at: now } : {}), ...(c.blockDispensation ? { blocking: true } : {}) })
  await q.addMessage(tx, r.id, version, 'broadcast', `${ev.recipients}`, actor, now)
  await audit(tx, actor, { action: `${kind}.broadcast`, objectType: LABEL[kind].object, objectId: r.id, changes: { version, eventId: ev.id, recipients: ev.recipients, blocked: c.blockDispensation ? c.batches : [] } }, now)
  if (first) {
    for (const [step, hours] of c.reminderDelaysHours.entries()) {
      await enqueue(tx, QUEUE_REMIND, { recallId: r.id, kind, step }, { runAt: new Date(now.getTime() + hours * 3_600_000), singletonKey: `${r.id}:${step}`, maxAttempts: 5 })
    }
  }
  return ev
}

/**
 * Approves and broadcasts now (or at the scheduled time): the use case behind ANSM's approval and behind the
 * scheduled job. The recall is locked and its state checked again inside the transaction.
 */
export async function approveOrBroadcast(
  app: FastifyInstance,
  kind: PipelineKind,
  id: string,
  actor: Actor,
  mode: { approve: { comment: string | null; principal: Principal } } | { scheduled: { version: number; scheduledAt?: string } },
) {
  const now = app.now()
  // Read first to know whether the blocked set changes; everything is checked again under lock below.
  const pre = await q.recallById(app.db, id, { kind })
  if (!pre) throw notFoundFor(kind, id)
  const pv = await q.versionOf(app.db, id, pre.version)
  const scheduledFor = pv.content.scheduledAt ? new Date(pv.content.scheduledAt) : null
  const immediate = 'scheduled' in mode || !scheduledFor || scheduledFor.getTime() <= now.getTime() || pre.live_version !== null
  const needsBlocks = kind === 'recall' && immediate && (pv.content.blockDispensation || pre.blocking)
  const target = needsBlocks ? blocksTarget(pre, pre.version, pv.content) : null
  const run = withBlocksIfAny(app, target, actor, async (tx) => {
    const r = await q.recallById(tx, id, { kind, forUpdate: true })
    if (!r) throw notFoundFor(kind, id)
    const latest = await q.versionOf(tx, id, r.version)
    if ('approve' in mode) {
      if (mode.approve.principal.role !== 'ansm') throw notFoundFor(kind, id)
      assertAction(kind, r, latest.status, 'approve')
      if (r.version !== pre.version) throw new AppError('RECALL_INVALID_TRANSITION', { label: LABEL[kind].fr, labelEn: LABEL[kind].en, reference: r.reference, status: r.status, version: r.version, versionStatus: latest.status, action: 'approve', allowedText: '' })
      await q.updateVersion(tx, id, r.version, { status: 'approved', decided_at: now, updated_at: now })
      await closeRound(tx, id, r.version, 'approved', mode.approve.comment, actor, now)
      await q.addMessage(tx, id, r.version, 'approved', mode.approve.comment, actor, now)
      await audit(tx, actor, { action: `${kind}.approved`, objectType: LABEL[kind].object, objectId: id, changes: { version: r.version, comment: mode.approve.comment } }, now)
      await publish(tx, { type: `${kind}.reviewed`, payload: { kind, id, reference: r.reference, version: r.version, title: latest.content.title, decision: 'approved', comment: mode.approve.comment }, audience: { orgs: [r.lab_id] }, senderOrg: actor.org, subject: { type: LABEL[kind].object, id } }, now)
      if (!immediate) {
        await q.updateRecall(tx, id, { status: 'approved', updated_at: now })
        // The time is part of the job: after a cancelled schedule, a new approval for another time queues its own job,
        // and the stale one finds a different time (or no longer an approved version) and broadcasts nothing.
        const at = scheduledFor!.toISOString()
        await enqueue(tx, QUEUE_BROADCAST, { recallId: id, kind, version: r.version, scheduledAt: at }, { runAt: scheduledFor!, singletonKey: `${id}:${r.version}:${at}`, maxAttempts: 10 })
        await q.addMessage(tx, id, r.version, 'scheduled', scheduledFor!.toISOString(), actor, now)
        return { broadcast: false }
      }
    } else {
      // The scheduled job: only if this version is still the approved one waiting, for this job's time (a schedule
      // cancelled puts the version back to draft; approved again, it may wait for another time).
      // Thrown, not returned: the transaction (and the blocks applyBlocks would set) must roll back.
      const stale = mode.scheduled.scheduledAt !== undefined && (latest.content.scheduledAt === null || new Date(latest.content.scheduledAt).getTime() !== new Date(mode.scheduled.scheduledAt).getTime())
      if (r.version !== mode.scheduled.version || latest.status !== 'approved' || r.status !== 'approved' || r.version !== pre.version || stale) throw new NothingToBroadcast()
    }
    await broadcastVersion(tx, kind, r, r.version, actor, now)
    return { broadcast: true }
  })
  return run.catch((err) => {
    if (err instanceof NothingToBroadcast) return { broadcast: false }
    throw err
  })
}
class NothingToBroadcast extends Error {}

/** The reminder job: once per configured delay, to the recipients still lagging, while the message is in force. */
export async function remind(app: FastifyInstance, payload: { recallId: string; kind: PipelineKind; step: number }, now: Date) {
  await inTransaction(app.db, async (tx) => {
    const r = await q.recallById(tx, payload.recallId, { forUpdate: true })
    if (!r || r.status !== 'broadcast' || r.live_version === null) return
    const kind = r.kind
    const rows = await recipientStates(tx, r.id).execute()
    const laggards = rows.filter((row) => lagging(kind, row)).map((row) => row.org_id)
    if (laggards.length === 0) return
    const live = await q.versionOf(tx, r.id, r.live_version)
    const payloadOut = eventPayload(kind, r, r.live_version, live.content, false)
    payloadOut.notice.title = `Relance — ${kind === 'recall' ? 'Rappel de lots' : 'Alerte'} ${r.reference} : ${live.content.title}`
    const ev = await publish(
      tx,
      { type: `${kind}.reminder`, payload: { ...payloadOut, reminder: payload.step + 1 }, audience: { orgs: laggards }, senderOrg: r.lab_id, subject: { type: LABEL[kind].object, id: r.id }, fax: true },
      now,
    )
    await markReminded(tx, r.id, laggards, now)
    await q.addMessage(tx, r.id, r.live_version, 'reminder', String(laggards.length), SYSTEM, now)
    await audit(tx, SYSTEM, { action: `${kind}.reminded`, objectType: LABEL[kind].object, objectId: r.id, changes: { step: payload.step + 1, recipients: laggards.length, eventId: ev.id } }, now)
  })
}

/** The end of a message: the lab closes it (see closeRecall), and the report is read as JSON or PDF. */
import type { FastifyInstance } from 'fastify'
import { type Actor, audit } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import { conflict } from '../../platform/errors.ts'
import { publish } from '../../platform/events/publish.ts'
import type { Lang } from '../../platform/i18n.ts'
import type { PipelineKind, RecallStatus } from '../db.ts'
import * as q from '../queries/messages.ts'
import { buildReport, insertReport, storedReport } from '../queries/report.ts'
import { localiseReport } from '../report-labels.ts'
import { reportPdf } from '../report-pdf.ts'
import { closeRound } from '../queries/rounds.ts'
import { assertAction } from '../rules/actions.ts'
import { targetDepartments } from '../rules/content.ts'
import { LABEL, notFoundFor } from '../rules/kinds.ts'
import { blocksTarget, closedNotice } from '../rules/notices.ts'
import { withBlocksIfAny } from './broadcast.ts'
import { actor, type Deps, viewFor, type Who } from './context.ts'

export async function closeMessage(deps: Deps, kind: PipelineKind, who: Who, id: string, reason: string | null) {
  const { principal } = who
  await closeRecall(deps.app, kind, id, principal, actor(who), reason)
  return viewFor(deps.db, kind, await q.visibleRecall(deps.db, kind, id, principal), principal)
}

/** Closes a message in force: cancels a pending revision, unblocks, makes the report and sends it to ANSM. */
async function closeRecall(app: FastifyInstance, kind: PipelineKind, id: string, principal: Principal, actor: Actor, reason: string | null) {
  const now = app.now()
  const pre = await q.visibleRecall(app.db, kind, id, principal)
  if (principal.role !== 'lab') throw notFoundFor(kind, id)
  const target = kind === 'recall' && pre.blocking ? blocksTarget(pre, pre.live_version ?? pre.version, null) : null
  return withBlocksIfAny(app, target, actor, async (tx) => {
    const r = await q.visibleRecall(tx, kind, id, principal, { forUpdate: true })
    const latest = await q.versionOf(tx, id, r.version)
    assertAction(kind, r, latest.status, 'close')
    if (['draft', 'submitted', 'changes_requested'].includes(latest.status)) {
      await q.updateVersion(tx, id, r.version, { status: 'cancelled', updated_at: now })
      if (latest.status === 'submitted') await closeRound(tx, id, r.version, 'cancelled', reason, actor, now)
    }
    // A blocking version was broadcast between the first read and the lock: its batches must be unblocked too.
    if (kind === 'recall' && !target && r.blocking) throw conflict('Le rappel vient de changer ; recommencez la clôture.', 'The recall just changed; close it again.')
    await q.updateRecall(tx, id, { status: 'closed', closed_at: now, updated_at: now })
    await q.addMessage(tx, id, r.live_version!, 'closed', reason, actor, now)
    const closed = { ...r, status: 'closed' as RecallStatus, closed_at: now }
    const report = await buildReport(tx, kind, closed, { at: now, reason, actor })
    const live = await q.versionOf(tx, id, r.live_version!)
    const departments = targetDepartments(live.content)
    await publish(
      tx,
      {
        type: `${kind}.closed`,
        payload: {
          kind, id, reference: r.reference, version: r.live_version, title: live.content.title, closedAt: now.toISOString(), closureReason: reason,
          ...(kind === 'recall' ? { batches: live.content.batches, unblocked: r.blocking } : {}),
          notice: closedNotice(kind, r, live.content, reason),
        },
        audience: { roles: live.content.recipients.categories, ...(departments.length ? { departments } : {}) },
        senderOrg: r.lab_id,
        subject: { type: LABEL[kind].object, id },
        fax: true,
      },
      now,
    )
    const ev = await publish(
      tx,
      { type: `${kind}.report`, payload: { ...localiseReport(report, 'fr'), reportUrl: `/v1/${LABEL[kind].path}/${id}/report`, reportPdfUrl: `/v1/${LABEL[kind].path}/${id}/report/pdf` }, audience: { roles: ['ansm'] }, senderOrg: r.lab_id, subject: { type: LABEL[kind].object, id } },
      now,
    )
    await insertReport(tx, id, report, ev.id, now)
    await audit(tx, actor, { action: `${kind}.closed`, objectType: LABEL[kind].object, objectId: id, changes: { reason, coverage: report.coverage, quantities: report.quantities, reportEventId: ev.id } }, now)
    return closed
  })
}

/** The stored report in the caller's language, and when it was made; 404 until closed. */
async function loadReport(deps: Deps, kind: PipelineKind, principal: Principal, id: string, lang: Lang) {
  const r = await q.visibleRecall(deps.db, kind, id, principal)
  const { report, createdAt } = await storedReport(deps.db, kind, r)
  return { report: localiseReport(report, lang), createdAt }
}

export async function getReport(deps: Deps, kind: PipelineKind, principal: Principal, id: string, lang: Lang) {
  return (await loadReport(deps, kind, principal, id, lang)).report
}

export async function getReportPdf(deps: Deps, kind: PipelineKind, principal: Principal, id: string, lang: Lang) {
  const { report, createdAt } = await loadReport(deps, kind, principal, id, lang)
  return { reference: report.reference, pdf: await reportPdf(report, createdAt) }
}

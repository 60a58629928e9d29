/** The end of a message: the lab closes it (see closeRecall), and the report is read as JSON or PDF. */
import type { Principal } from '../../platform/auth.ts'
import type { Lang } from '../../platform/i18n.ts'
import type { PipelineKind } from '../db.ts'
import { closeRecall, storedReport, visibleRecall } from '../pipeline.ts'
import { localiseReport } from '../report-labels.ts'
import { reportPdf } from '../report-pdf.ts'
import { actor, type Deps, viewFor, type Who } from './context.ts'

export async function closeMessage(deps: Deps, kind: PipelineKind, who: Who, id: string, reason: string | null) {
  const { principal } = who
  await closeRecall(deps.app, kind, id, principal, actor(who), reason)
  return viewFor(deps.db, kind, await visibleRecall(deps.db, kind, id, principal), principal)
}

/** The stored report in the caller's language, and when it was made; 404 until closed. */
async function loadReport(deps: Deps, kind: PipelineKind, principal: Principal, id: string, lang: Lang) {
  const r = await visibleRecall(deps.db, kind, id, principal)
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

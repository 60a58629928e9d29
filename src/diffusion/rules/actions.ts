/** The life of a message: which actions its state and its latest version allow. */
import { AppError } from '../../platform/errors.ts'
import type { PipelineKind, RecallRow, VersionStatus } from '../db.ts'
import { PIPELINE_ACTIONS } from '../schemas.ts'
import { LABEL } from './kinds.ts'

export type PipelineAction = (typeof PIPELINE_ACTIONS)[number]

/**
 * What may be done next, whoever may do it (the route's roles say who). `discard` (lab): a version never
 * broadcast, while the lab may still edit it or ANSM has not decided yet. `cancel-schedule` (lab or ANSM): a first
 * version approved and waiting for its scheduled time. Closed, rejected and discarded messages allow nothing.
 */
export function allowedActions(r: Pick<RecallRow, 'status' | 'live_version'>, latest: VersionStatus): PipelineAction[] {
  if (r.status === 'closed' || r.status === 'rejected' || r.status === 'discarded') return []
  const live = r.live_version !== null
  const out: PipelineAction[] = []
  if (latest === 'draft' || latest === 'changes_requested') out.push('edit', 'submit', 'discard')
  else if (latest === 'submitted') out.push('approve', 'request-changes', 'reject', 'discard')
  else if (latest === 'approved' && !live) out.push('cancel-schedule')
  else if (live && (latest === 'broadcast' || latest === 'rejected' || latest === 'cancelled' || latest === 'discarded')) out.push('edit')
  if (live) out.push('close')
  return out
}

export function assertAction(kind: PipelineKind, r: RecallRow, latest: VersionStatus, action: PipelineAction) {
  const allowed = allowedActions(r, latest)
  if (!allowed.includes(action)) {
    throw new AppError(
      'RECALL_INVALID_TRANSITION',
      { label: LABEL[kind].fr, labelEn: LABEL[kind].en, reference: r.reference, status: r.status, version: r.version, versionStatus: latest, action, allowedText: allowed.join(', ') },
      { allowedActions: allowed, currentStatus: r.status, versionStatus: latest },
    )
  }
}

/** Following a message in force: coverage, recipients, and the recipients' acknowledgements (their own or on paper). */
import type { Principal } from '../../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import type { PipelineKind } from '../db.ts'
import { type AckInput, acknowledgementHistory, coverageOf, notFoundFor, type OnBehalf, recipientsOf, type RecipientFilter, RECIPIENT_ROLES, recordAck, visibleRecall } from '../pipeline.ts'
import { actor, type Deps, type Who } from './context.ts'

export async function getCoverage(deps: Deps, kind: PipelineKind, principal: Principal, id: string) {
  return coverageOf(deps.db, await visibleRecall(deps.db, kind, id, principal))
}

/** One page of recipients by organisation identifier; the cursor is bound to the message and the filter. */
export async function listRecipients(deps: Deps, kind: PipelineKind, principal: Principal, id: string, page: { status: RecipientFilter | undefined; limit: number; cursor: string | undefined }) {
  const r = await visibleRecall(deps.db, kind, id, principal)
  const { status, limit, cursor } = page
  const filter = { id: r.id, status }
  const after = cursor ? decodeCursor<{ org: string }>(cursor, filter).org : null
  const { items, last } = await recipientsOf(deps.db, kind, r, status, after, limit)
  return { items, nextCursor: last ? encodeCursor({ org: last }, filter) : null }
}

/** A recipient's acknowledgement, or the lab recording one sent back on paper (onBehalf). */
export async function acknowledge(deps: Deps, kind: PipelineKind, who: Who, id: string, body: AckInput, onBehalf?: OnBehalf) {
  const { view } = await recordAck(deps.app, kind, id, who.principal, actor(who), body, who.lang, onBehalf)
  return view
}

/** The caller's own acknowledgement and its history: recipients only, anyone else 404. */
export async function getOwnAcknowledgement(deps: Deps, kind: PipelineKind, principal: Principal, id: string) {
  if (!RECIPIENT_ROLES.includes(principal.role)) throw notFoundFor(kind, id)
  const r = await visibleRecall(deps.db, kind, id, principal)
  return acknowledgementHistory(deps.db, kind, r, principal.org)
}

/** One recipient's acknowledgement and its history, for the lab and ANSM. */
export async function getRecipientAcknowledgement(deps: Deps, kind: PipelineKind, principal: Principal, id: string, orgId: string) {
  const r = await visibleRecall(deps.db, kind, id, principal)
  return acknowledgementHistory(deps.db, kind, r, orgId)
}

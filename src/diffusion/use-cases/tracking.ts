/** Following a message in force: coverage, recipients, and the recipients' acknowledgements (their own or on paper). */
import type { FastifyInstance } from 'fastify'
import { type Actor, audit } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import { AppError } from '../../platform/errors.ts'
import { acknowledge as acknowledgeEvent } from '../../platform/events/publish.ts'
import type { Lang } from '../../platform/i18n.ts'
import type { PipelineKind } from '../db.ts'
import { visibleRecall } from '../queries/messages.ts'
import { acknowledgementHistory, ackView, coverageOf, lockRecipient, recipientsOf, recordAcknowledgement } from '../queries/recipients.ts'
import { type AckInput, ackContent, type OnBehalf, type RecipientFilter } from '../rules/acknowledgements.ts'
import { fieldProblem } from '../rules/content.ts'
import { LABEL, notFoundFor, RECIPIENT_ROLES } from '../rules/kinds.ts'
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

const parisDate = (d: Date) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit' }).format(d)

/**
 * Records a recipient's acknowledgement. The same acknowledgement twice is one record; a different one
 * replaces it and the previous stays in the history. 'read' after 'done' changes nothing.
 */
async function recordAck(app: FastifyInstance, kind: PipelineKind, id: string, principal: Principal, actor: Actor, body: AckInput, lang: Lang, onBehalf?: OnBehalf) {
  const ack = ackContent(kind, body, lang)
  const now = app.now()
  let recipient = principal.org
  if (onBehalf) {
    // The owning lab, for a recipient the message was addressed to (checked below); anyone else: 404.
    if (principal.role !== 'lab') throw notFoundFor(kind, id)
    await visibleRecall(app.db, kind, id, principal)
    recipient = onBehalf.org
    if (onBehalf.signedOn > parisDate(now)) {
      throw fieldProblem('body.signedOn', 'future', { fr: 'la date de signature ne peut pas être dans le futur', en: 'the date signed cannot be in the future' }, lang)
    }
  } else if (!RECIPIENT_ROLES.includes(principal.role)) {
    // The write every recipient makes when a recall goes out, thousands within minutes: few round trips.
    // Only recipients acknowledge; anyone else is told the recall does not exist, without a query.
    throw notFoundFor(kind, id)
  }
  return inTransaction(app.db, async (tx) => {
    const rec = await lockRecipient(tx, kind, id, recipient)
    if (!rec) throw notFoundFor(kind, id)
    if (rec.status !== 'broadcast') throw new AppError('RECALL_NOT_IN_FORCE', { reference: rec.reference, status: rec.status })
    const prev = rec.ack
    const same =
      rec.ack_status === body.status && prev !== null &&
      prev.quarantined === ack.quarantined && prev.returned === ack.returned && prev.destroyed === ack.destroyed && prev.noStock === ack.noStock && (prev.comment ?? null) === ack.comment
    const downgrade = rec.ack_status === 'done' && body.status === 'read'
    if (same || downgrade) return { view: await ackView(tx, id, rec), changed: false }
    const updated = await recordAcknowledgement(tx, {
      recallId: id,
      org: recipient,
      status: body.status,
      ack,
      version: rec.live_version!,
      user: principal.user,
      at: now,
      source: onBehalf?.source ?? 'recipient',
      recordedBy: onBehalf ? principal.org : null,
      signedBy: onBehalf?.signedBy ?? null,
      signedOn: onBehalf?.signedOn ?? null,
    })
    await acknowledgeEvent(tx, recipient, rec.last_event_id, { status: body.status, ...ack }, now)
    // The history now holds `seq` entries: the count the view gives, without asking again.
    const view = await ackView(tx, id, updated, updated.seq)
    // Last: the audit chain's lock is held from here to the commit, and other writes on that chain wait for it.
    await audit(tx, actor, { action: `${kind}.acknowledged`, objectType: LABEL[kind].object, objectId: id, changes: { org: recipient, ...(onBehalf ? { source: onBehalf.source, signedBy: onBehalf.signedBy, signedOn: onBehalf.signedOn } : {}), before: rec.ack_status ? { status: rec.ack_status, ...rec.ack } : null, after: { status: body.status, ...ack } } }, now)
    return { view, changed: true }
  })
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

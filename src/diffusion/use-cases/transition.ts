/** The shared shape of a state change of a message's latest version (submit, decide, discard, cancel a schedule). */
import type { Transaction } from 'kysely'
import { audit } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { publish } from '../../platform/events/publish.ts'
import type { PipelineKind, RecallContent, RecallRow, VersionStatus } from '../db.ts'
import { addMessage, versionOf, visibleRecall } from '../queries/messages.ts'
import { assertAction, type PipelineAction } from '../rules/actions.ts'
import { LABEL } from '../rules/kinds.ts'
import { actor, type Deps, viewFor, type Who } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

export interface Latest {
  status: VersionStatus
  submitted_at: Date | null
  content: RecallContent
}

/** What a change did: the history message, the audit changes, and the event for the other side if any. */
export interface Change {
  message: string
  text: string | null
  changes: Record<string, unknown>
  notify?: { type: string; to: { orgs: string[] } | { roles: ['ansm'] }; payload: Record<string, unknown> }
}

/**
 * One state change of the latest version: lock, check the action is allowed (409 naming the allowed ones),
 * apply, then the history message, the audit entry and the event for the other side, in one transaction.
 * Answers the message as the caller now sees it.
 */
export function transition(
  deps: Deps,
  kind: PipelineKind,
  who: Who,
  id: string,
  action: PipelineAction,
  apply: (tx: Transaction<DB>, r: RecallRow, latest: Latest, now: Date) => Promise<Change>,
) {
  const { principal } = who
  const by = actor(who)
  const now = deps.now()
  const object = LABEL[kind].object
  return inTransaction(deps.db, async (tx) => {
    const r = await visibleRecall(tx, kind, id, principal, { forUpdate: true })
    const latest = await versionOf(tx, r.id, r.version)
    assertAction(kind, r, latest.status, action)
    const out = await apply(tx, r, latest, now)
    await addMessage(tx, r.id, r.version, out.message, out.text, by, now)
    if (out.notify) {
      const payload = { kind, id: r.id, reference: r.reference, version: r.version, title: latest.content.title, ...out.notify.payload }
      await publish(tx, { type: `${kind}.${out.notify.type}`, payload, audience: out.notify.to, senderOrg: principal.org, subject: { type: object, id: r.id } }, now)
    }
    const answer = await viewFor(tx, kind, await visibleRecall(tx, kind, r.id, principal), principal)
    // Last: the audit chain's lock is held until the commit.
    await audit(tx, by, { action: `${kind}.${out.message}`, objectType: object, objectId: r.id, changes: { version: r.version, ...out.changes } }, now)
    return answer
  })
}

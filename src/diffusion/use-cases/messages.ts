/** The message itself: the lab drafts, edits (or corrects one in force) and discards it; its readers list and read it. */
import { randomUUID } from 'node:crypto'
import { audit, diff } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import type { Lang } from '../../platform/i18n.ts'
import type { PipelineKind, RecallContent, RecallStatus } from '../db.ts'
import * as q from '../queries/messages.ts'
import { closeRound } from '../queries/rounds.ts'
import { contentChanges } from '../rules/changes.ts'
import { assertAction } from '../rules/actions.ts'
import { buildContent, checkFields, checkProducts, type ContentInput } from '../rules/content.ts'
import { LABEL } from '../rules/kinds.ts'
import { actor, type Deps, viewFor, type Who } from './context.ts'
import { transition } from './transition.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

type Body = ContentInput

/** What the schema cannot say: products are the lab's own, no batch twice, places exist, delays in order. */
async function checkContent(db: q.Db, kind: PipelineKind, c: RecallContent, labId: string, lang: Lang, now: Date, touched: Body) {
  checkFields(kind, c, lang, now, touched)
  if (kind !== 'recall') return
  const cip13s = [...new Set(c.batches.map((b) => b.cip13))]
  const products = cip13s.length ? await q.productLabs(db, cip13s) : []
  checkProducts(c, products, labId, lang)
}

/** Version 1 as a draft with the next reference; nothing is sent to anyone. */
export async function createMessage(deps: Deps, kind: PipelineKind, who: Who, body: Body) {
  const { principal } = who
  const now = deps.now()
  const content = buildContent(kind, body, null)
  await checkContent(deps.db, kind, content, principal.org, who.lang, now, body)
  const id = randomUUID()
  const by = actor(who)
  return inTransaction(deps.db, async (tx) => {
    const reference = await q.nextReference(tx, kind, now)
    await q.insertRecall(tx, { id, kind, reference, lab_id: principal.org, status: 'draft', version: 1, live_version: null, created_at: now, updated_at: now })
    await q.insertVersion(tx, { recall_id: id, version: 1, status: 'draft', content: JSON.stringify(content), created_at: now, updated_at: now })
    await q.addMessage(tx, id, 1, 'created', null, by, now)
    await audit(tx, by, { action: `${kind}.created`, objectType: LABEL[kind].object, objectId: id, changes: { reference, content } }, now)
    return viewFor(tx, kind, await q.visibleRecall(tx, kind, id, principal), principal)
  })
}

/** One page of what the caller may see, newest first; the cursor is bound to the filter it was made with. */
export async function listMessages(deps: Deps, kind: PipelineKind, principal: Principal, page: { status: RecallStatus | undefined; limit: number; cursor: string | undefined }) {
  const { status, limit, cursor } = page
  const filter = { kind, status, org: principal.org }
  const after = cursor ? decodeCursor<{ c: string; id: string }>(cursor, filter) : null
  const rows = await q.listRecalls(deps.db, kind, principal, { status, after, limit: limit + 1 })
  const shown = rows.slice(0, limit)
  const items = []
  for (const r of shown) items.push(await viewFor(deps.db, kind, r, principal))
  const last = shown[shown.length - 1]
  return { items, nextCursor: rows.length > limit && last ? encodeCursor({ c: last.created_at.toISOString(), id: last.id }, filter) : null }
}

export async function getMessage(deps: Deps, kind: PipelineKind, principal: Principal, id: string) {
  return viewFor(deps.db, kind, await q.visibleRecall(deps.db, kind, id, principal), principal)
}

/**
 * A draft (or a version sent back for changes) is edited in place; once broadcast, a new version is drafted from
 * the one in force, which stays in force until the new one is approved.
 */
export async function editMessage(deps: Deps, kind: PipelineKind, who: Who, id: string, body: Body) {
  const { principal } = who
  const now = deps.now()
  const by = actor(who)
  const object = LABEL[kind].object
  return inTransaction(deps.db, async (tx) => {
    const r = await q.visibleRecall(tx, kind, id, principal, { forUpdate: true })
    const latest = await q.versionOf(tx, r.id, r.version)
    assertAction(kind, r, latest.status, 'edit')
    let content: RecallContent
    if (latest.status === 'draft' || latest.status === 'changes_requested') {
      content = buildContent(kind, body, latest.content)
      await checkContent(tx, kind, content, principal.org, who.lang, now, body)
      await q.updateVersion(tx, r.id, r.version, { content: JSON.stringify(content), updated_at: now })
      await q.updateRecall(tx, r.id, { updated_at: now })
      await q.addMessage(tx, r.id, r.version, 'edited', null, by, now, contentChanges(latest.content, content))
      await audit(tx, by, { action: `${kind}.edited`, objectType: object, objectId: r.id, changes: { version: r.version, ...diff(latest.content as never, content as never) } }, now)
    } else {
      const live = await q.versionOf(tx, r.id, r.live_version!)
      content = buildContent(kind, body, live.content)
      await checkContent(tx, kind, content, principal.org, who.lang, now, body)
      const version = r.version + 1
      await q.insertVersion(tx, { recall_id: r.id, version, status: 'draft', content: JSON.stringify(content), created_at: now, updated_at: now })
      await q.updateRecall(tx, r.id, { version, updated_at: now })
      await q.addMessage(tx, r.id, version, 'revision', null, by, now, contentChanges(live.content, content))
      await audit(tx, by, { action: `${kind}.revision`, objectType: object, objectId: r.id, changes: { version, from: r.live_version, ...diff(live.content as never, content as never) } }, now)
    }
    return viewFor(tx, kind, await q.visibleRecall(tx, kind, r.id, principal), principal)
  })
}

/**
 * Drops a version never broadcast: a first version makes the whole message discarded, a correction only itself.
 * A version waiting in ANSM's queue is withdrawn from it; ANSM hears of it only if it ever saw this version.
 */
export function discardMessage(deps: Deps, kind: PipelineKind, who: Who, id: string, reason: string | null) {
  return transition(deps, kind, who, id, 'discard', async (tx, r, latest, now) => {
    const whole = r.live_version === null
    await q.updateVersion(tx, r.id, r.version, { status: 'discarded', updated_at: now })
    await q.updateRecall(tx, r.id, { updated_at: now, ...(whole ? { status: 'discarded' as const } : {}) })
    const withdrawn = latest.status === 'submitted'
    if (withdrawn) await closeRound(tx, r.id, r.version, 'withdrawn', reason, actor(who), now)
    return {
      message: 'discarded',
      text: reason,
      changes: { reason, from: latest.status, whole },
      ...(latest.submitted_at ? { notify: { type: 'discarded', to: { roles: ['ansm'] as ['ansm'] }, payload: { reason, withdrawn, revision: !whole } } } : {}),
    }
  })
}

// A declaration's versions: writing a new one (change sequence, snapshot, audit, the pharmacies told) and reading them.
import type { Transaction } from 'kysely'
import type { Static } from 'typebox'
import { type Actor, audit, diff } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { publish } from '../../platform/events/publish.ts'
import type { DeclarationRow } from '../db.ts'
import * as q from '../queries/declarations.ts'
import { labResponsesFor } from '../queries/responses.ts'
import { type Db, itemsOf } from '../queries/rows.ts'
import { markFirstResponses, openSignalsOn } from '../queries/signals.ts'
import { OBJECT_DECLARATION } from '../rules/common.ts'
import { isClosed } from '../rules/declarations.ts'
import { snapshotOf, summaryOf, toResponse } from '../rules/views.ts'
import type { DeclarationSnapshot } from '../schemas.ts'

/**
 * Writes a new version of a declaration (already inserted or updated by the caller, with its new version
 * number): refreshes MITM/ATC from the referential, gives it a change sequence, keeps the snapshot with who
 * made it, audits, and tells every pharmacy with an open signal on its presentations (never for a draft).
 */
export async function recordVersion(
  tx: Transaction<DB>,
  id: string,
  opts: { action: string; reason?: string | undefined; actor: Actor; now: Date; previous: Static<typeof DeclarationSnapshot> | null },
) {
  const seq = await q.nextChangeSeq(tx)
  const flags = await q.referentialFlags(tx, id)
  await q.updateDeclaration(tx, id, { change_seq: seq, mitm: flags.mitm, atc: flags.atc })
  const row = await q.writtenDeclaration(tx, id)
  const snapshot = snapshotOf(row, (await itemsOf(tx, [id])).get(id) ?? [])
  await q.insertVersion(tx, {
    declaration_id: id,
    version: row.version,
    change_seq: seq,
    status: row.status,
    action: opts.action,
    reason: opts.reason ?? null,
    snapshot: JSON.stringify(snapshot),
    actor_role: opts.actor.role,
    actor_org: opts.actor.org,
    actor_user: opts.actor.user,
    request_id: opts.actor.requestId ?? null,
    at: opts.now,
  })
  const { updatedAt: _a, ...after } = snapshot
  const { updatedAt: _b, ...before } = opts.previous ?? ({} as Record<string, unknown>)
  await audit(
    tx,
    opts.actor,
    { action: `${OBJECT_DECLARATION}.${opts.action}`, objectType: OBJECT_DECLARATION, objectId: id, changes: { version: row.version, ...diff(opts.previous ? before : null, after), ...(opts.reason ? { reason: opts.reason } : {}) } },
    opts.now,
  )
  if (row.status !== 'draft') await notifyDeclaration(tx, row, snapshot.presentations.map((p) => p.cip13), opts.now)
  return row
}

export async function versionsOf(db: Db, id: string) {
  const rows = await q.versionRows(db, id)
  let previous: Record<string, unknown> | null = null
  return rows.map((r) => {
    const snapshot = r.snapshot as Static<typeof DeclarationSnapshot>
    const { updatedAt: _u, version: _v, ...cmp } = snapshot
    const changes = diff(previous, cmp)
    previous = cmp
    return {
      version: r.version,
      status: r.status,
      action: r.action,
      reason: r.reason,
      at: r.at.toISOString(),
      actor: { role: r.actor_role, org: r.actor_org, user: r.actor_user },
      changes,
      snapshot,
    }
  })
}

/** A new version of a (non-draft) declaration reaches every pharmacy with an open signal on one of its presentations. */
async function notifyDeclaration(tx: Transaction<DB>, row: DeclarationRow, cip13s: string[], now: Date) {
  if (cip13s.length === 0) return
  const open = await openSignalsOn(tx, cip13s)
  if (open.length === 0) return
  const responses = await labResponsesFor(tx, row.lab_id, row.id, cip13s)
  const response = responses.find((r) => r.declaration_id) ?? responses[0]
  await publish(
    tx,
    {
      type: isClosed(row.status) ? 'shortage.declaration_closed' : 'shortage.declaration_updated',
      payload: { presentations: cip13s, declaration: summaryOf(row), automaticResponse: response ? toResponse(response) : null },
      audience: { orgs: [...new Set(open.map((s) => s.pharmacy_id))] },
      senderOrg: row.lab_id,
      subject: { type: OBJECT_DECLARATION, id: row.id },
    },
    now,
  )
  await markFirstResponses(tx, open.map((s) => s.id), now)
}

import type { Kysely, Transaction } from 'kysely'
import { sql } from 'kysely'
import type { Static } from 'typebox'
import { type Actor, audit, diff } from '../platform/audit.ts'
import type { DB } from '../platform/db/schema.ts'
import { publish } from '../platform/events/publish.ts'
import { toGtin14 } from '../platform/identifiers.ts'
import type { DeclarationRow } from './db.ts'
import { OBJECT_DECLARATION } from './rules/common.ts'
import { isClosed } from './rules/declarations.ts'
import { snapshotOf, summaryOf, toResponse } from './rules/views.ts'
import { type Declaration, type DeclarationSnapshot, TRANSITIONS } from './schemas.ts'

export type Db = Kysely<DB> | Transaction<DB>

export async function presentationInfo(db: Db, cip13s: string[]) {
  if (cip13s.length === 0) return []
  return db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['p.cip13', 'p.label', 'm.name', 'm.lab_id', 'm.mitm', 'm.atc'])
    .where('p.cip13', 'in', cip13s)
    .execute()
}

// ---- declarations ----------------------------------------------------------------------------------------

/**
 * The change sequence of a new declaration version. The single counter row is updated inside the writing
 * transaction; its row lock is held until commit, so a transaction that gets N+1 can only commit after the
 * one that got N. A reader that sees N therefore already sees every version below N: the ANSM pull can
 * resume "after N" without skipping a version committed late (which a plain sequence or an updated_at
 * keyset would allow: numbers are handed out in start order, not commit order). The cost is one writer at a
 * time per instance of this counter, which the audit trail's own lock already imposes on every write.
 */
export async function nextChangeSeq(tx: Transaction<DB>): Promise<number> {
  const row = await tx.updateTable('shortage_change_counter').set({ last_seq: sql`last_seq + 1` }).where('id', '=', 1).returning('last_seq').executeTakeFirstOrThrow()
  return Number(row.last_seq)
}

export function declarationRows(db: Db) {
  return db
    .selectFrom('shortage_declarations as d')
    .innerJoin('organisations as o', 'o.id', 'd.lab_id')
    .selectAll('d')
    .select('o.name as lab_name')
}

export async function itemsOf(db: Db, ids: string[]) {
  if (ids.length === 0) return new Map<string, Array<{ cip13: string; gtin: string; name: string; label: string }>>()
  const rows = await db
    .selectFrom('shortage_declaration_items as i')
    .innerJoin('presentations as p', 'p.cip13', 'i.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['i.declaration_id', 'i.cip13', 'p.label', 'm.name'])
    .where('i.declaration_id', 'in', ids)
    .orderBy('i.cip13')
    .execute()
  const out = new Map<string, Array<{ cip13: string; gtin: string; name: string; label: string }>>()
  for (const r of rows) {
    const list = out.get(r.declaration_id) ?? []
    list.push({ cip13: r.cip13, gtin: toGtin14(r.cip13), name: r.name, label: r.label })
    out.set(r.declaration_id, list)
  }
  return out
}

/** Declarations by id, in the given order, with presentations and automatic responses. */
export async function loadDeclarations(db: Db, rows: DeclarationRow[]): Promise<Array<Static<typeof Declaration>>> {
  const ids = rows.map((r) => r.id)
  const items = await itemsOf(db, ids)
  const responses = ids.length
    ? await responseQuery(db).where('r.declaration_id', 'in', ids).execute()
    : []
  const byDeclaration = new Map(responses.map((r) => [r.declaration_id!, toResponse(r)]))
  return rows.map((r) => ({
    ...snapshotOf(r, items.get(r.id) ?? []),
    automaticResponse: byDeclaration.get(r.id) ?? null,
    allowedTransitions: TRANSITIONS[r.status],
  }))
}

export async function getDeclaration(db: Db, id: string, labId: string | null) {
  let q = declarationRows(db).where('d.id', '=', id)
  if (labId) q = q.where('d.lab_id', '=', labId)
  const row = await q.executeTakeFirst()
  if (!row) return null
  return (await loadDeclarations(db, [row]))[0]!
}

/** MITM and ATC of the declaration's presentations, from the referential. */
async function referentialFlags(tx: Transaction<DB>, id: string) {
  const r = await tx
    .selectFrom('shortage_declaration_items as i')
    .innerJoin('presentations as p', 'p.cip13', 'i.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select((eb) => [eb.fn.max(sql<number>`case when m.mitm then 1 else 0 end`).as('mitm'), eb.fn.min('m.atc').as('atc')])
    .where('i.declaration_id', '=', id)
    .executeTakeFirst()
  return { mitm: Number(r?.mitm ?? 0) === 1, atc: (r?.atc as string | null) ?? null }
}

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
  const seq = await nextChangeSeq(tx)
  const flags = await referentialFlags(tx, id)
  await tx.updateTable('shortage_declarations').set({ change_seq: seq, mitm: flags.mitm, atc: flags.atc }).where('id', '=', id).execute()
  const row = await declarationRows(tx).where('d.id', '=', id).executeTakeFirstOrThrow()
  const snapshot = snapshotOf(row, (await itemsOf(tx, [id])).get(id) ?? [])
  await tx
    .insertInto('shortage_declaration_versions')
    .values({
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
    .execute()
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
  const rows = await db.selectFrom('shortage_declaration_versions').selectAll().where('declaration_id', '=', id).orderBy('version').execute()
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

// ---- automatic responses ---------------------------------------------------------------------------------

export function responseQuery(db: Db) {
  return db
    .selectFrom('shortage_automatic_responses as r')
    .innerJoin('organisations as o', 'o.id', 'r.lab_id')
    .selectAll('r')
    .select('o.name as lab_name')
}

/**
 * What a pharmacy signalling this presentation is told: the lab's current (non-draft) declaration and the
 * automatic response — the declaration's own when set, else the presentation's. Only from a subscribed lab
 * that still exploits the product.
 */
export async function answerFor(db: Db, cip13: string) {
  const declaration = await db
    .selectFrom('shortage_declaration_items as i')
    .innerJoin('shortage_declarations as d', 'd.id', 'i.declaration_id')
    .select(['d.id', 'd.kind', 'd.status', 'd.version', 'd.estimated_end', 'd.end_unknown', 'd.actual_end', 'd.allocation_in_place', 'd.advice', 'd.lab_id'])
    .where('i.cip13', '=', cip13)
    .where('i.active', '=', true)
    .where('d.status', '<>', 'draft')
    .executeTakeFirst()
  const responses = await responseQuery(db)
    .innerJoin('lab_subscriptions as s', (j) => j.onRef('s.lab_id', '=', 'r.lab_id').on('s.subscribed', '=', true))
    .where((eb) =>
      eb.or([
        ...(declaration ? [eb('r.declaration_id', '=', declaration.id)] : []),
        eb.and([
          eb('r.cip13', '=', cip13),
          eb.exists(eb.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select('p.cip13').where('p.cip13', '=', cip13).whereRef('m.lab_id', '=', 'r.lab_id')),
        ]),
      ]),
    )
    .execute()
  const response = responses.find((r) => r.declaration_id) ?? responses[0]
  return {
    automaticResponse: response ? toResponse(response) : null,
    declaration: declaration ? summaryOf(declaration) : null,
    labId: response?.lab_id ?? declaration?.lab_id ?? null,
  }
}

/** A new version of a (non-draft) declaration reaches every pharmacy with an open signal on one of its presentations. */
async function notifyDeclaration(tx: Transaction<DB>, row: DeclarationRow, cip13s: string[], now: Date) {
  if (cip13s.length === 0) return
  const open = await tx.selectFrom('shortage_signals').select(['id', 'pharmacy_id']).where('cip13', 'in', cip13s).where('status', '=', 'open').execute()
  if (open.length === 0) return
  const responses = await responseQuery(tx)
    .where('r.lab_id', '=', row.lab_id)
    .where((eb) => eb.or([eb('r.declaration_id', '=', row.id), eb('r.cip13', 'in', cip13s)]))
    .execute()
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
  await tx.updateTable('shortage_signals').set({ first_response_at: now }).where('id', 'in', open.map((s) => s.id)).where('first_response_at', 'is', null).execute()
}

/**
 * Tells every pharmacy with an open signal on these presentations what the lab now says (declaration and
 * automatic response), on its feed, in the caller's transaction. Pharmacies without an open signal get nothing.
 */
export async function notifySignallers(tx: Transaction<DB>, cip13s: string[], now: Date) {
  if (cip13s.length === 0) return 0
  const open = await tx.selectFrom('shortage_signals').select(['id', 'pharmacy_id', 'cip13']).where('cip13', 'in', cip13s).where('status', '=', 'open').execute()
  let sent = 0
  for (const cip13 of [...new Set(open.map((s) => s.cip13))]) {
    const answer = await answerFor(tx, cip13)
    if (!answer.automaticResponse && !answer.declaration) continue
    const signals = open.filter((s) => s.cip13 === cip13)
    await publish(
      tx,
      {
        type: 'shortage.automatic_response',
        payload: { cip13, automaticResponse: answer.automaticResponse, declaration: answer.declaration },
        audience: { orgs: [...new Set(signals.map((s) => s.pharmacy_id))] },
        senderOrg: answer.labId,
        subject: { type: 'shortage-presentation', id: cip13 },
      },
      now,
    )
    await tx
      .updateTable('shortage_signals')
      .set({ first_response_at: now })
      .where('id', 'in', signals.map((s) => s.id))
      .where('first_response_at', 'is', null)
      .execute()
    sent += signals.length
  }
  return sent
}

/**
 * The SQL of the diffusion use cases: messages and their versions, the caller's list, the ANSM review queue,
 * references and the history's entries. Functions take a Kysely or a Transaction; the reads for a caller filter by
 * its tenancy themselves.
 */
import { randomUUID } from 'node:crypto'
import { type Insertable, type Kysely, sql, type Transaction, type Updateable } from 'kysely'
import type { Actor } from '../../platform/audit.ts'
import type { Principal } from '../../platform/auth.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { FieldChange, PipelineKind, RecallRow, RecallStatus, RecallsTable, RecallVersionsTable } from '../db.ts'
import { notFoundFor, RECIPIENT_ROLES } from '../rules/kinds.ts'

export type Db = Kysely<DB> | Transaction<DB>

export async function insertRecall(tx: Transaction<DB>, row: Insertable<RecallsTable>) {
  await tx.insertInto('recalls').values(row).execute()
}

export async function insertVersion(tx: Transaction<DB>, row: Insertable<RecallVersionsTable>) {
  await tx.insertInto('recall_versions').values(row).execute()
}

export async function updateRecall(tx: Transaction<DB>, id: string, set: Updateable<RecallsTable>) {
  await tx.updateTable('recalls').set(set).where('id', '=', id).execute()
}

export async function updateVersion(tx: Transaction<DB>, recallId: string, version: number, set: Updateable<RecallVersionsTable>) {
  await tx.updateTable('recall_versions').set(set).where('recall_id', '=', recallId).where('version', '=', version).execute()
}

/**
 * One page of the messages of a kind the caller may see, newest first: a lab its own, ANSM those submitted at
 * least once, a recipient those in force addressed to it. Discarded ones only when asked for by status.
 */
export async function listRecalls(
  db: Db,
  kind: PipelineKind,
  principal: Pick<Principal, 'role' | 'org'>,
  opts: { status: RecallStatus | undefined; after: { c: string; id: string } | null; limit: number },
): Promise<RecallRow[]> {
  let q = db.selectFrom('recalls as r').innerJoin('organisations as o', 'o.id', 'r.lab_id').selectAll('r').select('o.name as lab_name').where('r.kind', '=', kind)
  if (principal.role === 'lab') q = q.where('r.lab_id', '=', principal.org)
  else if (principal.role === 'ansm') q = q.where('r.first_submitted_at', 'is not', null)
  else {
    q = q.where('r.live_version', 'is not', null).where((eb) =>
      eb.exists(eb.selectFrom('recall_recipients as rr').select('rr.org_id').whereRef('rr.recall_id', '=', 'r.id').where('rr.org_id', '=', principal.org)),
    )
  }
  if (opts.status) q = q.where('r.status', '=', opts.status)
  else q = q.where('r.status', '<>', 'discarded')
  const p = opts.after
  if (p) q = q.where((eb) => eb.or([eb('r.created_at', '<', new Date(p.c)), eb.and([eb('r.created_at', '=', new Date(p.c)), eb('r.id', '<', p.id)])]))
  return (await q.orderBy('r.created_at', 'desc').orderBy('r.id', 'desc').limit(opts.limit).execute()) as RecallRow[]
}

/** The versions of a message in order; only those submitted to ANSM with submittedOnly. */
export async function versionsOf(db: Db, recallId: string, opts: { submittedOnly: boolean }) {
  let q = db.selectFrom('recall_versions').selectAll().where('recall_id', '=', recallId)
  if (opts.submittedOnly) q = q.where('submitted_at', 'is not', null)
  return q.orderBy('version').execute()
}

/** Every version waiting for ANSM's decision, recalls and alerts together, oldest submission first. */
export async function submittedVersions(db: Db) {
  return db
    .selectFrom('recall_versions as v')
    .innerJoin('recalls as r', 'r.id', 'v.recall_id')
    .innerJoin('organisations as o', 'o.id', 'r.lab_id')
    .select(['r.id', 'r.kind', 'r.reference', 'r.lab_id', 'o.name as lab_name', 'r.live_version', 'v.version', 'v.content', 'v.submitted_at'])
    .where('v.status', '=', 'submitted')
    .orderBy('v.submitted_at')
    .orderBy('r.reference')
    .limit(1000)
    .execute()
}

function recallQuery(db: Db) {
  return db.selectFrom('recalls as r').innerJoin('organisations as o', 'o.id', 'r.lab_id').selectAll('r').select('o.name as lab_name')
}

/** A message by its id, whoever asks (the scheduled jobs, a broadcast's first read); of this kind if given, locked if asked. */
export async function recallById(db: Db, id: string, opts: { kind?: PipelineKind; forUpdate?: boolean } = {}): Promise<RecallRow | undefined> {
  let q = recallQuery(db).where('r.id', '=', id)
  if (opts.kind) q = q.where('r.kind', '=', opts.kind)
  if (opts.forUpdate) q = q.forUpdate('r') as typeof q
  return (await q.executeTakeFirst()) as RecallRow | undefined
}

/**
 * The recall as the caller may see it, or 404: the lab its own, ANSM once submitted, a recipient once it was
 * addressed to it. Another tenant cannot tell it from one that does not exist.
 */
export async function visibleRecall(db: Db, kind: PipelineKind, id: string, principal: Principal, opts: { forUpdate?: boolean } = {}): Promise<RecallRow> {
  let q = recallQuery(db).where('r.id', '=', id).where('r.kind', '=', kind)
  if (principal.role === 'lab') q = q.where('r.lab_id', '=', principal.org)
  else if (principal.role === 'ansm') q = q.where('r.first_submitted_at', 'is not', null)
  else if (RECIPIENT_ROLES.includes(principal.role)) {
    q = q.where('r.live_version', 'is not', null).where((eb) =>
      eb.exists(eb.selectFrom('recall_recipients as rr').select('rr.org_id').whereRef('rr.recall_id', '=', 'r.id').where('rr.org_id', '=', principal.org)),
    )
  } else throw notFoundFor(kind, id)
  if (opts.forUpdate) q = q.forUpdate('r') as typeof q
  const row = await q.executeTakeFirst()
  if (!row) throw notFoundFor(kind, id)
  return row as RecallRow
}

export async function versionOf(db: Db, recallId: string, version: number) {
  const v = await db.selectFrom('recall_versions').selectAll().where('recall_id', '=', recallId).where('version', '=', version).executeTakeFirstOrThrow()
  return v
}

/** The lab of each of these presentations, among those that exist. */
export function productLabs(db: Db, cip13s: string[]) {
  return db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select(['p.cip13', 'm.lab_id']).where('p.cip13', 'in', cip13s).execute()
}

const parisYear = (d: Date) => Number(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', year: 'numeric' }).format(d))

/** R-2026-0001 / A-2026-0001: gapless per kind and year (the counter row is taken in the creating transaction). */
export async function nextReference(tx: Transaction<DB>, kind: PipelineKind, now: Date) {
  const year = parisYear(now)
  const row = await tx
    .insertInto('recall_reference_counters')
    .values({ kind, year, last: 1 })
    .onConflict((oc) => oc.columns(['kind', 'year']).doUpdateSet({ last: sql`recall_reference_counters.last + 1` }))
    .returning('last')
    .executeTakeFirstOrThrow()
  return `${kind === 'recall' ? 'R' : 'A'}-${year}-${String(row.last).padStart(4, '0')}`
}

/** An entry of the history; an edit or a new version says what it changed (`changes`). */
export async function addMessage(tx: Transaction<DB>, recallId: string, version: number, kind: string, text: string | null, actor: Actor | null, now: Date, changes?: FieldChange[]) {
  await tx
    .insertInto('recall_messages')
    .values({
      id: randomUUID(), recall_id: recallId, version, kind, text, author_role: actor?.role ?? null, author_org: actor?.org ?? null, author_user: actor?.user ?? null, at: now,
      changes: changes ? JSON.stringify(changes) : null,
    })
    .execute()
}

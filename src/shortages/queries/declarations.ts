/**
 * The declarations' SQL beyond the shared reads of rows.ts (declarationRows, itemsOf): the change sequence and
 * the versions, locks, writes and the list queries. A query scoped to a lab takes the lab and filters on it.
 */
import type { Insertable, Transaction, Updateable } from 'kysely'
import { sql } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import type { DeclarationStatus, ShortageDeclarationVersionsTable, ShortageDeclarationsTable } from '../db.ts'
import { type Db, declarationRows } from './rows.ts'
import { type DeclarationFilter, filtered } from './search.ts'
import { escapeLike } from '../../platform/db/like.ts'

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

/** MITM and ATC of the declaration's presentations, from the referential. */
export async function referentialFlags(tx: Transaction<DB>, id: string) {
  const r = await tx
    .selectFrom('shortage_declaration_items as i')
    .innerJoin('presentations as p', 'p.cip13', 'i.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select((eb) => [eb.fn.max(sql<number>`case when m.mitm then 1 else 0 end`).as('mitm'), eb.fn.min('m.atc').as('atc')])
    .where('i.declaration_id', '=', id)
    .executeTakeFirst()
  return { mitm: Number(r?.mitm ?? 0) === 1, atc: (r?.atc as string | null) ?? null }
}

/** A declaration just written in this transaction (it must be there). */
export const writtenDeclaration = (tx: Transaction<DB>, id: string) => declarationRows(tx).where('d.id', '=', id).executeTakeFirstOrThrow()

/** A declaration, the lab's own when labId is given. */
export function declarationById(db: Db, id: string, labId: string | null) {
  let q = declarationRows(db).where('d.id', '=', id)
  if (labId) q = q.where('d.lab_id', '=', labId)
  return q.executeTakeFirst()
}

export async function insertVersion(tx: Transaction<DB>, values: Insertable<ShortageDeclarationVersionsTable>) {
  await tx.insertInto('shortage_declaration_versions').values(values).execute()
}

/** Every version of a declaration, in version order. */
export const versionRows = (db: Db, id: string) => db.selectFrom('shortage_declaration_versions').selectAll().where('declaration_id', '=', id).orderBy('version').execute()

/** The presentation's current (non-draft) declaration, whichever lab made it. */
export const currentDeclarationOf = (db: Db, cip13: string) =>
  db
    .selectFrom('shortage_declaration_items as i')
    .innerJoin('shortage_declarations as d', 'd.id', 'i.declaration_id')
    .select(['d.id', 'd.kind', 'd.status', 'd.version', 'd.estimated_end', 'd.end_unknown', 'd.actual_end', 'd.allocation_in_place', 'd.advice', 'd.lab_id'])
    .where('i.cip13', '=', cip13)
    .where('i.active', '=', true)
    .where('d.status', '<>', 'draft')
    .executeTakeFirst()

/** The lab's declaration, locked for the transaction; undefined when it is not the lab's. */
export function lockOwnDeclaration(tx: Transaction<DB>, id: string, labId: string) {
  return declarationRows(tx).where('d.id', '=', id).where('d.lab_id', '=', labId).forUpdate('d').executeTakeFirst()
}

/** An open declaration already covering one of these presentations (its item row locked). */
export function lockActiveItem(tx: Transaction<DB>, cip13s: string[]) {
  return tx.selectFrom('shortage_declaration_items').select(['cip13', 'declaration_id']).where('cip13', 'in', cip13s).where('active', '=', true).forUpdate().executeTakeFirst()
}

export async function insertDeclaration(tx: Transaction<DB>, values: Insertable<ShortageDeclarationsTable>) {
  await tx.insertInto('shortage_declarations').values(values).execute()
}

export async function insertItems(tx: Transaction<DB>, declarationId: string, cip13s: string[], active = true) {
  await tx.insertInto('shortage_declaration_items').values(cip13s.map((cip13) => ({ declaration_id: declarationId, cip13, active }))).execute()
}

/** Presentations a declaration no longer covers. */
export async function removeItems(tx: Transaction<DB>, declarationId: string, cip13s: string[]) {
  await tx.deleteFrom('shortage_declaration_items').where('declaration_id', '=', declarationId).where('cip13', 'in', cip13s).execute()
}

export async function updateDeclaration(tx: Transaction<DB>, id: string, set: Updateable<ShortageDeclarationsTable>) {
  await tx.updateTable('shortage_declarations').set(set).where('id', '=', id).execute()
}

/** A closed declaration frees its presentations for a new one. */
export async function deactivateItems(tx: Transaction<DB>, declarationId: string) {
  await tx.updateTable('shortage_declaration_items').set({ active: false }).where('declaration_id', '=', declarationId).execute()
}

/**
 * One page (limit + 1 rows) of a declaration list, most recently changed first: the lab's own (drafts
 * included) when labId is given, else every lab's but drafts.
 */
export function declarationPage(db: Db, filter: DeclarationFilter, opts: { labId: string | null; beforeSeq: number | null; limit: number }) {
  let q = filtered(declarationRows(db), filter).orderBy('d.change_seq', 'desc').limit(opts.limit + 1)
  q = opts.labId !== null ? q.where('d.lab_id', '=', opts.labId) : q.where('d.status', '<>', 'draft')
  if (opts.beforeSeq !== null) q = q.where('d.change_seq', '<', opts.beforeSeq)
  return q.execute()
}

/** Id and status of a declaration, the lab's own when labId is given. */
export function declarationStatus(db: Db, id: string, labId: string | null) {
  let q = db.selectFrom('shortage_declarations').select(['id', 'status']).where('id', '=', id)
  if (labId !== null) q = q.where('lab_id', '=', labId)
  return q.executeTakeFirst()
}

export interface MitmFilter {
  status?: Exclude<DeclarationStatus, 'draft'> | undefined
  labId?: string | undefined
  atc?: string | undefined
  changedSince?: string | undefined
  startFrom?: string | undefined
  startTo?: string | undefined
}

/** The MITM declarations (never a draft) changed after a change sequence, oldest change first (limit + 1 rows). */
export function mitmAfter(db: Db, afterSeq: number, filters: MitmFilter, limit: number) {
  let query = declarationRows(db).where('d.mitm', '=', true).where('d.status', '<>', 'draft').where('d.change_seq', '>', afterSeq).orderBy('d.change_seq').limit(limit + 1)
  if (filters.status) query = query.where('d.status', '=', filters.status)
  if (filters.labId) query = query.where('d.lab_id', '=', filters.labId)
  if (filters.atc) query = query.where('d.atc', 'like', `${escapeLike(filters.atc.toUpperCase())}%`)
  if (filters.changedSince) query = query.where('d.updated_at', '>', new Date(filters.changedSince))
  const start = (eb: any) => eb.fn.coalesce('d.actual_start', 'd.anticipated_start')
  if (filters.startFrom) query = query.where((eb) => eb(start(eb), '>=', filters.startFrom!))
  if (filters.startTo) query = query.where((eb) => eb(start(eb), '<=', filters.startTo!))
  return query.execute()
}

/** The versions of these declarations made after a change sequence, in version order. */
export function versionsAfter(db: Db, ids: string[], afterSeq: number) {
  return db.selectFrom('shortage_declaration_versions').selectAll().where('declaration_id', 'in', ids).where('change_seq', '>', afterSeq).orderBy('version').execute()
}

/** One page (limit + 1 rows) of the public list: the given statuses, most recently changed first. */
export function publicPage(db: Db, filter: DeclarationFilter, opts: { updatedSince: string | undefined; beforeSeq: number | null; limit: number }) {
  let q = filtered(declarationRows(db), filter)
  if (opts.updatedSince) q = q.where('d.updated_at', '>=', new Date(opts.updatedSince))
  if (opts.beforeSeq !== null) q = q.where('d.change_seq', '<', opts.beforeSeq)
  return q.orderBy('d.change_seq', 'desc').limit(opts.limit + 1).execute()
}

/**
 * Per presentation, its open declaration (declared or ongoing) first, then the closed ones, most recently
 * closed first; never a draft. With the role of whoever wrote the current version.
 */
export function declarationsOfPresentations(db: Db, cip13s: string[]) {
  return db
    .selectFrom('shortage_declaration_items as i')
    .innerJoin('shortage_declarations as d', 'd.id', 'i.declaration_id')
    .innerJoin('shortage_declaration_versions as v', (j) => j.onRef('v.declaration_id', '=', 'd.id').onRef('v.version', '=', 'd.version'))
    .select(['i.cip13', 'i.active', 'd.id', 'd.kind', 'd.status', 'd.actual_start', 'd.anticipated_start', 'd.estimated_end', 'd.actual_end', 'd.closed_at', 'v.actor_role'])
    .where('i.cip13', 'in', cip13s)
    .where('d.status', '<>', 'draft')
    // The open one first (one at most per presentation), then the most recently closed.
    .orderBy('i.active', 'desc')
    .orderBy('d.closed_at', (ob) => ob.desc().nullsLast())
    .execute()
}

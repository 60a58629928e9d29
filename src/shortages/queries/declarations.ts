/**
 * The declarations' SQL beyond the shared reads of core.ts (declarationRows, itemsOf, recordVersion): locks,
 * writes and the list queries. A query scoped to a lab takes the lab and filters on it.
 */
import type { Insertable, Transaction, Updateable } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import { type Db, declarationRows } from '../core.ts'
import type { DeclarationStatus, ShortageDeclarationsTable } from '../db.ts'
import { type DeclarationFilter, filtered } from './search.ts'

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

export async function insertItems(tx: Transaction<DB>, declarationId: string, cip13s: string[]) {
  await tx.insertInto('shortage_declaration_items').values(cip13s.map((cip13) => ({ declaration_id: declarationId, cip13, active: true }))).execute()
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
  if (filters.atc) query = query.where('d.atc', 'like', `${filters.atc.toUpperCase()}%`)
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

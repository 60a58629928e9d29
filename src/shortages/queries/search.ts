/**
 * Filters of the declaration lists (the lab's and ANSM's list, the public list), applied in SQL to
 * declarationRows (rows.ts). The tenancy filter (lab_id, drafts) is the caller's.
 */
import { escapeLike } from '../../platform/db/like.ts'
import { searchName } from '../../referential/rules/search-name.ts'
import type { DeclarationKind, DeclarationStatus } from '../db.ts'
import type { declarationRows } from './rows.ts'

export interface DeclarationFilter {
  status?: DeclarationStatus | DeclarationStatus[] | undefined
  kind?: DeclarationKind | undefined
  /** One of its presentations (CIP13, canonical). */
  cip13?: string | undefined
  labId?: string | undefined
  /** ATC code or prefix. */
  atc?: string | undefined
  mitm?: boolean | undefined
  /** Words of the medicine's name, accents and case ignored. */
  q?: string | undefined
  updatedSince?: Date | undefined
}

type Query = ReturnType<typeof declarationRows>

export function filtered(query: Query, f: DeclarationFilter): Query {
  let q = query
  if (Array.isArray(f.status)) q = q.where('d.status', 'in', f.status)
  else if (f.status) q = q.where('d.status', '=', f.status)
  if (f.kind) q = q.where('d.kind', '=', f.kind)
  if (f.labId) q = q.where('d.lab_id', '=', f.labId)
  if (f.atc) q = q.where('d.atc', 'like', `${escapeLike(f.atc.toUpperCase())}%`)
  if (f.mitm !== undefined) q = q.where('d.mitm', '=', f.mitm)
  if (f.updatedSince) q = q.where('d.updated_at', '>', f.updatedSince)
  const cip13 = f.cip13
  if (cip13) q = q.where((eb) => eb.exists(eb.selectFrom('shortage_declaration_items as i').select('i.cip13').whereRef('i.declaration_id', '=', 'd.id').where('i.cip13', '=', cip13)))
  const words = f.q ? searchName(f.q).split(/\s+/).filter(Boolean) : []
  if (words.length > 0) {
    q = q.where((eb) => {
      let names = eb.selectFrom('shortage_declaration_items as i').innerJoin('presentations as p', 'p.cip13', 'i.cip13').innerJoin('medicines as m', 'm.cis', 'p.cis').select('i.cip13').whereRef('i.declaration_id', '=', 'd.id')
      for (const word of words) names = names.where('m.search_name', 'like', `%${escapeLike(word)}%`)
      return eb.exists(names)
    })
  }
  return q
}

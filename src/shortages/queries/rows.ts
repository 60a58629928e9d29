// Shared reads: declarations and automatic responses with their lab's name, declarations' presentations, product facts.
import type { Kysely, Transaction } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import { toGtin14 } from '../../platform/identifiers.ts'

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

export function responseQuery(db: Db) {
  return db
    .selectFrom('shortage_automatic_responses as r')
    .innerJoin('organisations as o', 'o.id', 'r.lab_id')
    .selectAll('r')
    .select('o.name as lab_name')
}

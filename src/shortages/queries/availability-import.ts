/**
 * The availability import's SQL: the lock that serialises imports, the referential for the file's CIS, the line
 * records the import keeps, the declarations it owns (locked), and the presentations other declarations hold, in
 * chunks. All run in the import's transaction; the declarations' own writes are queries/declarations.ts.
 */
import type { Insertable, Transaction, Updateable } from 'kysely'
import { sql } from 'kysely'
import { LOCKS } from '../../platform/db/locks.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { ShortageBdpmLinesTable } from '../db.ts'
import { declarationRows } from './rows.ts'

const chunks = <T>(rows: T[], size = 500): T[][] => Array.from({ length: Math.ceil(rows.length / size) }, (_, i) => rows.slice(i * size, (i + 1) * size))

/** One statement per chunk of the keys, one after the other; their rows in that order. */
async function inChunks<K, R>(keys: K[], read: (part: K[]) => Promise<R[]>): Promise<R[]> {
  const out: R[] = []
  for (const part of chunks(keys)) for (const row of await read(part)) out.push(row)
  return out
}

/** Serialises availability imports. */
export async function lockAvailabilityImports(tx: Transaction<DB>) {
  await sql`select pg_advisory_xact_lock(${LOCKS.availabilityImport})`.execute(tx)
}

// ---- the referential for the file's CIS ------------------------------------------------------------------

export const medicinesOf = (tx: Transaction<DB>, cisList: string[]) =>
  inChunks(cisList, (part) => tx.selectFrom('medicines').select(['cis', 'lab_id', 'holder']).where('cis', 'in', part).execute())

export const presentationsOfCis = (tx: Transaction<DB>, cisList: string[]) =>
  inChunks(cisList, (part) => tx.selectFrom('presentations').select(['cip13', 'cis', 'administrative_status']).where('cis', 'in', part).orderBy('cip13').execute())

export const presentationsByCip13 = (tx: Transaction<DB>, cip13s: string[]) =>
  inChunks(cip13s, (part) => tx.selectFrom('presentations').select(['cip13', 'cis']).where('cip13', 'in', part).execute())

// ---- what the import already holds -----------------------------------------------------------------------

/**
 * Every line record, oldest first, with its declaration's status and version and the user who wrote that version
 * when it was a system actor.
 */
export function lineRecords(tx: Transaction<DB>) {
  return tx
    .selectFrom('shortage_bdpm_lines as b')
    .innerJoin('shortage_declarations as d', 'd.id', 'b.declaration_id')
    .select(['b.declaration_id', 'b.cis', 'b.cip13', 'b.fingerprint', 'b.bdpm_updated_on', 'b.closed_reason', 'd.status', 'd.version'])
    .select((eb) =>
      eb
        .selectFrom('shortage_declaration_versions as v')
        .select('v.actor_user')
        .whereRef('v.declaration_id', '=', 'd.id')
        .whereRef('v.version', '=', 'd.version')
        .where('v.actor_role', 'is', null)
        .as('last_user'),
    )
    .orderBy('b.imported_at')
    .orderBy('b.declaration_id')
    .execute()
}

/** These declarations, locked for the transaction. */
export const lockDeclarations = (tx: Transaction<DB>, ids: string[]) => inChunks(ids, (part) => declarationRows(tx).where('d.id', 'in', part).forUpdate('d').execute())

/** The open declarations' items on these presentations. */
export const activeItemsOn = (tx: Transaction<DB>, cip13s: string[]) =>
  inChunks(cip13s, (part) => tx.selectFrom('shortage_declaration_items').select(['cip13', 'declaration_id']).where('cip13', 'in', part).where('active', '=', true).execute())

// ---- line records ----------------------------------------------------------------------------------------

export async function insertLineRecord(tx: Transaction<DB>, values: Insertable<ShortageBdpmLinesTable>) {
  await tx.insertInto('shortage_bdpm_lines').values(values).execute()
}

export async function updateLineRecord(tx: Transaction<DB>, declarationId: string, set: Updateable<ShortageBdpmLinesTable>) {
  await tx.updateTable('shortage_bdpm_lines').set(set).where('declaration_id', '=', declarationId).execute()
}

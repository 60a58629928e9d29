/** The automatic responses' SQL: reads by presentation, declaration or lab, and the writes. */
import { randomUUID } from 'node:crypto'
import type { Transaction, Updateable } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import { type Db, responseQuery } from '../core.ts'
import type { ShortageAutomaticResponsesTable } from '../db.ts'

/** What a set writes besides its scope (lab, presentation or declaration). */
export type ResponseValues = Required<Pick<Updateable<ShortageAutomaticResponsesTable>, 'message' | 'expected_return' | 'alternatives' | 'emergency_contact' | 'allocation_rules' | 'updated_at' | 'updated_by'>>

export const responsesOfLab = (db: Db, labId: string) => responseQuery(db).where('r.lab_id', '=', labId).orderBy('r.updated_at', 'desc').execute()

/** The presentation's own response, whichever lab set it. */
export const responseOfPresentation = (db: Db, cip13: string) => responseQuery(db).where('r.cip13', '=', cip13).executeTakeFirst()

/** The presentation's own response, when this lab set it. */
export const labResponseOfPresentation = (db: Db, cip13: string, labId: string) => responseQuery(db).where('r.cip13', '=', cip13).where('r.lab_id', '=', labId).executeTakeFirst()

export const responseOfDeclaration = (db: Db, declarationId: string) => responseQuery(db).where('r.declaration_id', '=', declarationId).executeTakeFirst()

/** The response just written in this transaction (it must be there). */
export const writtenPresentationResponse = (tx: Transaction<DB>, cip13: string) => responseQuery(tx).where('r.cip13', '=', cip13).executeTakeFirstOrThrow()
export const writtenDeclarationResponse = (tx: Transaction<DB>, declarationId: string) => responseQuery(tx).where('r.declaration_id', '=', declarationId).executeTakeFirstOrThrow()

export async function updateResponse(tx: Transaction<DB>, id: string, set: Updateable<ShortageAutomaticResponsesTable>) {
  await tx.updateTable('shortage_automatic_responses').set(set).where('id', '=', id).execute()
}

export async function insertResponse(tx: Transaction<DB>, scope: { lab_id: string; cip13: string | null; declaration_id: string | null }, values: ResponseValues) {
  await tx.insertInto('shortage_automatic_responses').values({ id: randomUUID(), ...scope, ...values }).execute()
}

export async function deleteResponse(tx: Transaction<DB>, id: string) {
  await tx.deleteFrom('shortage_automatic_responses').where('id', '=', id).execute()
}

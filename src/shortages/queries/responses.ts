/** The automatic responses' SQL: reads by presentation, declaration or lab, what a signalling pharmacy is told, and the writes. */
import { randomUUID } from 'node:crypto'
import type { Transaction, Updateable } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import type { ShortageAutomaticResponsesTable } from '../db.ts'
import { type Db, responseQuery } from './rows.ts'

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

/** The responses of these declarations. */
export const responsesOfDeclarations = (db: Db, ids: string[]) => responseQuery(db).where('r.declaration_id', 'in', ids).execute()

/**
 * The responses a pharmacy signalling the presentation may be told, from subscribed labs: the declaration's own
 * (when one is given), and the presentation's own from the lab that still exploits the product.
 */
export function subscribedResponses(db: Db, cip13: string, declarationId: string | undefined) {
  return responseQuery(db)
    .innerJoin('lab_subscriptions as s', (j) => j.onRef('s.lab_id', '=', 'r.lab_id').on('s.subscribed', '=', true))
    .where((eb) =>
      eb.or([
        ...(declarationId !== undefined ? [eb('r.declaration_id', '=', declarationId)] : []),
        eb.and([
          eb('r.cip13', '=', cip13),
          eb.exists(eb.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select('p.cip13').where('p.cip13', '=', cip13).whereRef('m.lab_id', '=', 'r.lab_id')),
        ]),
      ]),
    )
    .execute()
}

/** The lab's responses to a declaration or to one of its presentations. */
export function labResponsesFor(tx: Transaction<DB>, labId: string, declarationId: string, cip13s: string[]) {
  return responseQuery(tx)
    .where('r.lab_id', '=', labId)
    .where((eb) => eb.or([eb('r.declaration_id', '=', declarationId), eb('r.cip13', 'in', cip13s)]))
    .execute()
}

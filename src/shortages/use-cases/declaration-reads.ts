// Declarations as every answer shows them: with their presentations, automatic response and allowed transitions.
import type { Static } from 'typebox'
import type { DeclarationRow } from '../db.ts'
import { declarationById } from '../queries/declarations.ts'
import { responsesOfDeclarations } from '../queries/responses.ts'
import { type Db, itemsOf } from '../queries/rows.ts'
import { snapshotOf, toResponse } from '../rules/views.ts'
import { type Declaration, TRANSITIONS } from '../schemas.ts'

/** Declarations by id, in the given order, with presentations and automatic responses. */
export async function loadDeclarations(db: Db, rows: DeclarationRow[]): Promise<Array<Static<typeof Declaration>>> {
  const ids = rows.map((r) => r.id)
  const items = await itemsOf(db, ids)
  const responses = ids.length ? await responsesOfDeclarations(db, ids) : []
  const byDeclaration = new Map(responses.map((r) => [r.declaration_id!, toResponse(r)]))
  return rows.map((r) => ({
    ...snapshotOf(r, items.get(r.id) ?? []),
    automaticResponse: byDeclaration.get(r.id) ?? null,
    allowedTransitions: TRANSITIONS[r.status],
  }))
}

export async function getDeclaration(db: Db, id: string, labId: string | null) {
  const row = await declarationById(db, id, labId)
  if (!row) return null
  return (await loadDeclarations(db, [row]))[0]!
}

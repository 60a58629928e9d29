// What the lab says to a pharmacy signalling a presentation: read for one presentation, and sent to those with an open signal.
import type { Transaction } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import { publish } from '../../platform/events/publish.ts'
import { currentDeclarationOf } from '../queries/declarations.ts'
import { subscribedResponses } from '../queries/responses.ts'
import type { Db } from '../queries/rows.ts'
import { markFirstResponses, openSignalsWithPresentation } from '../queries/signals.ts'
import { summaryOf, toResponse } from '../rules/views.ts'

/**
 * What a pharmacy signalling this presentation is told: the lab's current (non-draft) declaration and the
 * automatic response — the declaration's own when set, else the presentation's. Only from a subscribed lab
 * that still exploits the product.
 */
export async function answerFor(db: Db, cip13: string) {
  const declaration = await currentDeclarationOf(db, cip13)
  const responses = await subscribedResponses(db, cip13, declaration?.id)
  const response = responses.find((r) => r.declaration_id) ?? responses[0]
  return {
    automaticResponse: response ? toResponse(response) : null,
    declaration: declaration ? summaryOf(declaration) : null,
    labId: response?.lab_id ?? declaration?.lab_id ?? null,
  }
}

/**
 * Tells every pharmacy with an open signal on these presentations what the lab now says (declaration and
 * automatic response), on its feed, in the caller's transaction. Pharmacies without an open signal get nothing.
 */
export async function notifySignallers(tx: Transaction<DB>, cip13s: string[], now: Date) {
  if (cip13s.length === 0) return 0
  const open = await openSignalsWithPresentation(tx, cip13s)
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
    await markFirstResponses(tx, signals.map((s) => s.id), now)
    sent += signals.length
  }
  return sent
}

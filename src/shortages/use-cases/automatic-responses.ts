/**
 * A lab's automatic responses, per presentation or per declaration: set, remove, list. Setting one tells the
 * pharmacies whose signal is open now, in the same transaction.
 */
import type { Static } from 'typebox'
import { audit, diff } from '../../platform/audit.ts'
import { notFound } from '../../platform/errors.ts'
import { cip13Of, unknownProduct } from '../../referential/rules/product-code.ts'
import * as q from '../queries/responses.ts'
import { itemsOf, presentationInfo } from '../queries/rows.ts'
import { OBJECT_RESPONSE } from '../rules/common.ts'
import { toResponse } from '../rules/views.ts'
import type { AutomaticResponseInput } from '../schemas.ts'
import { notifySignallers } from './answers.ts'
import { actor, assertSubscribed, type Deps, type Who } from './context.ts'
import { assertOpen, lockOwn, normaliseAlternatives } from './declarations.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

type Input = Static<typeof AutomaticResponseInput>

const responseValues = (b: Input, user: string, now: Date): q.ResponseValues => ({
  message: b.message,
  expected_return: b.expectedReturn ?? null,
  alternatives: JSON.stringify(b.alternatives ?? []),
  emergency_contact: b.emergencyContact ?? null,
  allocation_rules: b.allocationRules ?? null,
  updated_at: now,
  updated_by: user,
})

export async function listResponses(deps: Deps, who: Who) {
  await assertSubscribed(deps.db, who.principal.org)
  const rows = await q.responsesOfLab(deps.db, who.principal.org)
  return { items: rows.map(toResponse) }
}

/** Sets the response of one of the lab's presentations (`code`: CIP13 or GTIN-14). */
export async function setPresentationResponse(deps: Deps, who: Who, code: string, b: Input) {
  const { principal, lang } = who
  await assertSubscribed(deps.db, principal.org)
  const cip13 = cip13Of(code, 'params.code', lang)
  normaliseAlternatives(b.alternatives, lang)
  const now = deps.now()
  return inTransaction(deps.db, async (tx) => {
    const [product] = await presentationInfo(tx, [cip13])
    if (!product || product.lab_id !== principal.org) throw unknownProduct(cip13, 'params.code', lang)
    const before = await q.responseOfPresentation(tx, cip13)
    const values = responseValues(b, principal.user, now)
    if (before) await q.updateResponse(tx, before.id, { ...values, lab_id: principal.org })
    else await q.insertResponse(tx, { lab_id: principal.org, cip13, declaration_id: null }, values)
    const after = toResponse(await q.writtenPresentationResponse(tx, cip13))
    await audit(tx, actor(who), { action: `${OBJECT_RESPONSE}.set`, objectType: OBJECT_RESPONSE, objectId: cip13, changes: diff(before ? toResponse(before) : null, after) }, now)
    await notifySignallers(tx, [cip13], now)
    return after
  })
}

/** Removes the lab's response on one of its presentations. */
export async function removePresentationResponse(deps: Deps, who: Who, code: string) {
  const { principal, lang } = who
  await assertSubscribed(deps.db, principal.org)
  const cip13 = cip13Of(code, 'params.code', lang)
  const now = deps.now()
  await inTransaction(deps.db, async (tx) => {
    const before = await q.labResponseOfPresentation(tx, cip13, principal.org)
    if (!before) throw notFound('La réponse automatique', 'The automatic response')
    await q.deleteResponse(tx, before.id)
    await audit(tx, actor(who), { action: `${OBJECT_RESPONSE}.removed`, objectType: OBJECT_RESPONSE, objectId: cip13, changes: { before: toResponse(before) } }, now)
  })
}

/** Sets the response of one of the lab's open declarations; it takes precedence over the presentations' own. */
export async function setDeclarationResponse(deps: Deps, who: Who, id: string, b: Input) {
  const { principal, lang } = who
  await assertSubscribed(deps.db, principal.org)
  normaliseAlternatives(b.alternatives, lang)
  const now = deps.now()
  return inTransaction(deps.db, async (tx) => {
    const row = await lockOwn(tx, id, principal.org)
    assertOpen(row.status)
    const before = await q.responseOfDeclaration(tx, row.id)
    const values = responseValues(b, principal.user, now)
    if (before) await q.updateResponse(tx, before.id, values)
    else await q.insertResponse(tx, { lab_id: principal.org, cip13: null, declaration_id: row.id }, values)
    const after = toResponse(await q.writtenDeclarationResponse(tx, row.id))
    await audit(tx, actor(who), { action: `${OBJECT_RESPONSE}.set`, objectType: OBJECT_RESPONSE, objectId: row.id, changes: diff(before ? toResponse(before) : null, after) }, now)
    if (row.status !== 'draft') {
      const items = (await itemsOf(tx, [row.id])).get(row.id) ?? []
      await notifySignallers(tx, items.map((i) => i.cip13), now)
    }
    return after
  })
}

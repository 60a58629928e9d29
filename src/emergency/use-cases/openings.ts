/** The lab opens and closes its presentations to emergency requests; everyone lists the openings they may see. */
import type { Static } from 'typebox'
import { audit, diff } from '../../platform/audit.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { AppError } from '../../platform/errors.ts'
import { cip13Of, unknownProduct } from '../../referential/rules/product-code.ts'
import * as q from '../queries.ts'
import { checkServiceHours } from '../rules.ts'
import type { OpeningInput } from '../schemas.ts'
import { OBJECT_OPENING, openingNotFound, toOpening } from '../service.ts'
import { actor, assertSubscribed, type Deps, type Who } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

/**
 * Opens the lab's own presentation (`cip13` as given in the path: CIP13 or GTIN-14), or replaces its opening:
 * hours left out return to office hours. `openedAt` is kept while it stays open for the same lab.
 */
export async function setOpening(deps: Deps, who: Who, rawCip13: string, b: Static<typeof OpeningInput>) {
  const { principal, lang } = who
  await assertSubscribed(deps, principal.org)
  const cip13 = cip13Of(rawCip13, 'params.cip13', lang)
  const serviceHours = b.serviceHours ? checkServiceHours(b.serviceHours, lang) : null
  const now = deps.now()
  return inTransaction(deps.db, async (tx) => {
    const product = await q.productOf(tx, cip13)
    if (!product || product.lab_id !== principal.org) throw unknownProduct(cip13, 'params.cip13', lang)
    const before = await q.lockOpening(tx, cip13)
    const values = {
      lab_id: principal.org,
      open: true,
      contact: JSON.stringify(b.contact),
      opening_hours: b.openingHours ?? null,
      service_hours: serviceHours ? JSON.stringify(serviceHours) : null,
      max_quantity: b.maxQuantity ?? null,
      escalation_business_hours: b.escalationBusinessHours ?? null,
      opened_at: before?.open && before.lab_id === principal.org ? before.opened_at : now,
      closed_at: null,
      updated_at: now,
    }
    if (before) await q.updateOpening(tx, cip13, values)
    else await q.insertOpening(tx, { cip13, ...values })
    const after = { open: true, labId: principal.org, contact: b.contact, openingHours: values.opening_hours, serviceHours, maxQuantity: values.max_quantity, escalationBusinessHours: values.escalation_business_hours }
    const prev = before ? { open: before.open, labId: before.lab_id, contact: before.contact, openingHours: before.opening_hours, serviceHours: before.service_hours, maxQuantity: before.max_quantity, escalationBusinessHours: before.escalation_business_hours } : null
    await audit(tx, actor(who), { action: `${OBJECT_OPENING}.${before?.open ? 'updated' : 'opened'}`, objectType: OBJECT_OPENING, objectId: cip13, changes: diff(prev, after) }, now)
    return toOpening(await q.openingOf(tx, cip13), deps.defaultHours)
  })
}

/** Closes the lab's own opening; closing a closed one changes nothing (and audits nothing). */
export async function closeOpening(deps: Deps, who: Who, rawCip13: string) {
  const { principal, lang } = who
  await assertSubscribed(deps, principal.org)
  const cip13 = cip13Of(rawCip13, 'params.cip13', lang)
  const now = deps.now()
  return inTransaction(deps.db, async (tx) => {
    const before = await q.lockLabOpening(tx, cip13, principal.org)
    if (!before) throw openingNotFound()
    if (before.open) {
      await q.updateOpening(tx, cip13, { open: false, closed_at: now, updated_at: now })
      await audit(tx, actor(who), { action: `${OBJECT_OPENING}.closed`, objectType: OBJECT_OPENING, objectId: cip13, changes: { open: [true, false] } }, now)
    }
    return toOpening(await q.openingOf(tx, cip13), deps.defaultHours)
  })
}

/** One page of openings: a lab's own (open and closed), or for anyone else those pharmacies may use now. */
export async function listOpenings(deps: Deps, who: Who, query: { cip13?: string; open?: boolean; limit?: number; cursor?: string }) {
  const { principal, lang } = who
  if (principal.role === 'lab') await assertSubscribed(deps, principal.org)
  const { limit = 50, cursor } = query
  const cip13 = query.cip13 ? cip13Of(query.cip13, 'querystring.cip13', lang) : undefined
  const filter = { cip13, open: query.open, role: principal.role }
  let afterCip13: string | undefined
  if (cursor) {
    const after = decodeCursor<{ c: string }>(cursor, filter)
    if (typeof after.c !== 'string') throw new AppError('INVALID_CURSOR')
    afterCip13 = after.c
  }
  const rows = await q.listOpenings(deps.db, principal, { cip13, open: query.open, afterCip13, limit })
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return { items: page.map((r) => toOpening(r, deps.defaultHours)), nextCursor: rows.length > limit && last ? encodeCursor({ c: last.cip13 }, filter) : null }
}

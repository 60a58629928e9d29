/** The lab holders' operations: list the BDPM holders with their lab, map one to a lab. */
import type { Kysely, Transaction } from 'kysely'
import type { Static } from 'typebox'
import { audit } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { normaliseHolder } from '../rules/bdpm-format.ts'
import * as q from '../queries/lab-holders.ts'
import type { LabHolder, LabHolderPut } from '../schemas/products.ts'
import { labOf } from '../views.ts'
import { actor, type Deps, type Who } from './context.ts'
import { assertLab } from './organisations.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

async function labHolder(db: Kysely<DB> | Transaction<DB>, holder: string): Promise<Static<typeof LabHolder>> {
  const mapping = await q.labHolderMapping(db, holder)
  const counts = await q.holderCounts(db, holder)
  return { holder, lab: labOf(mapping?.lab_id ?? null, mapping?.name ?? null), medicines: Number(counts.n), medicinesWithoutLab: Number(counts.without) }
}

export async function listLabHolders(deps: Deps, unmapped: boolean | undefined, afterHolder: string | null, limit: number) {
  const rows = await q.listLabHolders(deps.db, unmapped, afterHolder, limit)
  const page = rows.slice(0, limit)
  return {
    items: page.map((r) => ({ holder: r.holder ?? '', lab: labOf(r.lab_id, r.name), medicines: Number(r.n), medicinesWithoutLab: Number(r.without) })),
    next: rows.length > limit ? { h: page[page.length - 1]!.holder } : null,
  }
}

/**
 * Maps a holder (compared normalised) to a lab or to none, and reassigns every medicine it covers; audited when
 * the mapping is new or changed, or when a medicine moved.
 */
export async function mapLabHolder(deps: Deps, who: Who, rawHolder: string, { labId, reason }: Static<typeof LabHolderPut>) {
  const holder = normaliseHolder(rawHolder)
  return inTransaction(deps.db, async (tx) => {
    if (labId) await assertLab(tx, labId, 'body.labId', who.lang)
    const before = await q.lockLabHolder(tx, holder)
    await q.upsertLabHolder(tx, holder, labId)
    const medicinesReassigned = await q.reassignMedicines(tx, holder, labId)
    if (!before || before.lab_id !== labId || medicinesReassigned > 0) {
      await audit(tx, actor(who), {
        action: 'lab-holder.mapped',
        objectType: 'lab-holder',
        objectId: holder,
        changes: { labId: [before?.lab_id ?? null, labId], medicinesReassigned, ...(reason ? { reason } : {}) },
      })
    }
    return labHolder(tx, holder)
  })
}

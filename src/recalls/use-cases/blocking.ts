import type { FastifyInstance } from 'fastify'
import type { Transaction } from 'kysely'
import { normaliseBatch } from '../../dispensation/rules/batch.ts'
import { awaitInstances, bumpGeneration } from '../../dispensation/use-cases/facts.ts'
import type { DB } from '../../platform/db/schema.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import * as q from '../queries.ts'

// DP-Rappels' side of the blocking of dispensation: a recall that blocks dispensation announces its batches to every
// API instance before the change that makes it visible (broadcast, new version, close) commits. What blocking means
// for a box, and how the instances hold it, is in src/dispensation/ (rule.ts, registry.ts, use-cases/facts.ts).

const keyOf = (cip13: string, batch: string) => `${cip13}\u0000${normaliseBatch(batch)}`

export interface BlockedBatch {
  cip13: string
  batch: string
  /** YYYY-MM-DD, informative: a batch number identifies the batch. */
  expiry: string | null
}

export interface RecallBlocks {
  recallId: string
  reference: string
  version: number
  labId: string
  /** What the pharmacist sees at the counter. */
  messageFr: string
  messageEn?: string | null
  /** The complete set blocked from now on; [] unblocks everything (the recall is closed). */
  batches: BlockedBatch[]
}

class AnnouncementLost extends Error {}

/**
 * Sets the recall's blocked batches to exactly target.batches and runs fn in the same transaction (the
 * broadcast, a new version, the close). Newly blocked batches are announced to every instance before that
 * transaction commits. Nothing is copied into serialization: verification reads these rows (dispensation/rule.ts),
 * so a batch uploaded after the broadcast is blocked too, and lifting a recall leaves the lab's own status as it is.
 */
export async function applyBlocks<T>(app: FastifyInstance, target: RecallBlocks, fn: (tx: Transaction<DB>) => Promise<T>): Promise<T> {
  const wanted = new Map<string, BlockedBatch & { norm: string }>()
  for (const b of target.batches) wanted.set(keyOf(b.cip13, b.batch), { ...b, norm: normaliseBatch(b.batch) })

  for (let attempt = 1; ; attempt++) {
    // 1. Announce the batches not yet blocked by this recall.
    const existing = await q.blockedBatches(app.db, target.recallId)
    const existingKeys = new Set(existing.map((r) => keyOf(r.cip13, r.batch)))
    const additions = [...wanted.entries()].filter(([k]) => !existingKeys.has(k)).map(([, b]) => b)
    let announced: Array<{ cip13: string; batch: string }> = []
    if (additions.length > 0) {
      const now = app.now()
      const g = await inTransaction(app.db, async (tx) => {
        announced = await q.insertBlocks(
          tx,
          additions.map((b) => ({ cip13: b.cip13, batch: b.norm, recall_id: target.recallId, reference: target.reference, version: target.version, lab_id: target.labId, expiry: b.expiry, message_fr: target.messageFr, message_en: target.messageEn ?? null, state: 'pending' as const, since: now })),
        )
        return bumpGeneration(tx)
      })
      try {
        await awaitInstances(app, g)
      } catch (err) {
        await withdrawAnnouncement(app, target.recallId, announced)
        throw err
      }
    }

    // 2. The use case and the final set, in one transaction.
    try {
      return await inTransaction(app.db, async (tx) => {
        const result = await fn(tx)
        const rows = await q.lockBlocks(tx, target.recallId)
        const present = new Set(rows.map((r) => keyOf(r.cip13, r.batch)))
        // Another attempt's clean-up removed a row this one relied on: announce again.
        for (const k of wanted.keys()) if (!present.has(k)) throw new AnnouncementLost()
        const removed = rows.filter((r) => !wanted.has(keyOf(r.cip13, r.batch)))
        if (removed.length > 0) await q.deleteBlocks(tx, target.recallId, removed)
        if (wanted.size > 0) {
          await q.activateBlocks(tx, target.recallId, { reference: target.reference, version: target.version, lab_id: target.labId, message_fr: target.messageFr, message_en: target.messageEn ?? null })
        }
        if (additions.length > 0 || removed.length > 0 || rows.some((r) => r.state === 'pending')) await bumpGeneration(tx)
        return result
      })
    } catch (err) {
      await withdrawAnnouncement(app, target.recallId, announced)
      if (err instanceof AnnouncementLost && attempt < 3) continue
      throw err
    }
  }
}

/** Removes the rows announced by an attempt that did not commit (only those still pending). */
async function withdrawAnnouncement(app: FastifyInstance, recallId: string, rows: Array<{ cip13: string; batch: string }>) {
  if (rows.length === 0) return
  await inTransaction(app.db, async (tx) => {
    if ((await q.deletePendingBlocks(tx, recallId, rows)) > 0) await bumpGeneration(tx)
  })
}

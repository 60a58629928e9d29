/**
 * Changing what the dispensation check reads: every change to the blocking facts (a recall's blocked batches, the
 * lab's statuses, the referential's prescription conditions, the products under serialization) bumps the
 * generation in its transaction, and waits, when it may block a box, until every live instance has loaded it.
 * Why, and how the instances hold the facts: registry.ts.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Transaction } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import { AppError } from '../../platform/errors.ts'
import * as q from '../queries.ts'
import { LEASE_MS } from '../registry.ts'

/** A broadcast gives up (and blocks nothing) if the instances have not all loaded its batches by then. */
const ANNOUNCE_TIMEOUT_MS = 3 * LEASE_MS

/** Bumps the generation in the transaction that changes the facts, and tells every instance (at commit). */
export async function bumpGeneration(tx: Transaction<DB>): Promise<number> {
  const generation = await q.nextGeneration(tx)
  await q.notifyGeneration(tx, generation)
  return Number(generation)
}

/**
 * Waits until every instance holding a valid lease has loaded generation g. `orLeaseEnd`: for a change already
 * committed, the wait may also end LEASE_MS after it began (see the top of registry.ts); otherwise (a recall's
 * announcement, not committed yet) it fails with 503 after ANNOUNCE_TIMEOUT_MS.
 */
export async function awaitInstances(app: FastifyInstance, g: number, opts: { orLeaseEnd?: boolean } = {}) {
  void app.blockRegistry?.reload().catch(() => {})
  const started = performance.now()
  const deadline = started + (opts.orLeaseEnd ? LEASE_MS : ANNOUNCE_TIMEOUT_MS)
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    const behind = await q.instancesBehind(app.database, g)
    if (behind.length === 0) return
    if (performance.now() > deadline) {
      if (opts.orLeaseEnd) {
        app.log.warn({ instances: behind.map((b) => b.id), generation: g }, 'dispensation blocks: instances did not load a change in time; their leases have run out')
        return
      }
      app.log.error({ instances: behind.map((b) => b.id), generation: g }, 'dispensation blocks: instances did not load a new block in time')
      throw new AppError('SERVICE_UNAVAILABLE')
    }
    await sleep(pause)
  }
}

/**
 * Runs fn — a change to the lab's statuses or to the serialized products — in a transaction that bumps the
 * generation when fn says the facts changed. When the change may block a box (`blocks`), the caller is answered
 * only once every live instance has loaded it (or its lease has run out).
 */
export async function changeFacts<T>(app: FastifyInstance, fn: (tx: Transaction<DB>) => Promise<{ result: T; changed: boolean; blocks: boolean }>): Promise<T> {
  let generation = -1
  const out = await inTransaction(app.db, async (tx) => {
    const r = await fn(tx)
    if (r.changed) generation = await bumpGeneration(tx)
    return r
  })
  if (out.changed && out.blocks) await awaitInstances(app, generation, { orLeaseEnd: true })
  return out.result
}

/** The lab's reads and status changes on its batches: the product is checked to be the lab's, then the figures read. */
import type { FastifyInstance } from 'fastify'
import type { Kysely } from 'kysely'
import type { Actor } from '../../platform/audit.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import type { DB } from '../../platform/db/schema.ts'
import { notFound } from '../../platform/errors.ts'
import { parisDay } from '../../platform/paris-time.ts'
import type { BatchStatus } from '../db.ts'
import { assertLabProduct, batchFigures, setBatchStatus } from '../service.ts'

export interface LabDeps {
  db: Kysely<DB>
  now: () => Date
  /** The instance: a blocking status answers once every instance blocks it (setBatchStatus). */
  instance: FastifyInstance
}

const batchNotFound = (batch: string) => notFound(`Le lot ${batch}`, `Batch ${batch}`)

/** A page of the lab's batches of its product, in batch order. */
export async function listBatches(deps: LabDeps, lab: string, cip13: string, query: { limit?: number | undefined; cursor?: string | undefined }) {
  await assertLabProduct(deps.db, lab, cip13)
  const limit = query.limit ?? 50
  const after = query.cursor ? decodeCursor<{ batch: string }>(query.cursor, { cip13 }).batch : undefined
  const items = await batchFigures(deps.db, cip13, { limit, today: parisDay(deps.now()), ...(after !== undefined ? { after } : {}) })
  return { items, nextCursor: items.length === limit ? encodeCursor({ batch: items.at(-1)!.batch }, { cip13 }) : null }
}

export async function getBatch(deps: LabDeps, lab: string, cip13: string, batch: string) {
  await assertLabProduct(deps.db, lab, cip13)
  const [figures] = await batchFigures(deps.db, cip13, { batch, limit: 1, today: parisDay(deps.now()) })
  if (!figures) throw batchNotFound(batch)
  return figures
}

/** Sets the lab's status of the batch, then answers its figures (read after the change is committed). */
export async function changeBatchStatus(deps: LabDeps, actor: Actor & { org: string }, input: { cip13: string; batch: string; status: BatchStatus; reason: string | null }) {
  const previous = await setBatchStatus(deps.instance, actor, input, deps.now())
  if (previous === null) throw batchNotFound(input.batch)
  const [figures] = await batchFigures(deps.db, input.cip13, { batch: input.batch, limit: 1, today: parisDay(deps.now()) })
  return figures!
}

/**
 * The SQL of the diffusion use cases: messages and their versions, the caller's list, the ANSM review queue.
 * Functions take a Kysely or a Transaction; the list filters by the caller's tenancy itself.
 */
import type { Insertable, Kysely, Transaction, Updateable } from 'kysely'
import type { Principal } from '../platform/auth.ts'
import type { DB } from '../platform/db/schema.ts'
import type { PipelineKind, RecallStatus, RecallsTable, RecallVersionsTable } from './db.ts'
import type { RecallRow } from './pipeline.ts'

export type Db = Kysely<DB> | Transaction<DB>

export async function insertRecall(tx: Transaction<DB>, row: Insertable<RecallsTable>) {
  await tx.insertInto('recalls').values(row).execute()
}

export async function insertVersion(tx: Transaction<DB>, row: Insertable<RecallVersionsTable>) {
  await tx.insertInto('recall_versions').values(row).execute()
}

export async function updateRecall(tx: Transaction<DB>, id: string, set: Updateable<RecallsTable>) {
  await tx.updateTable('recalls').set(set).where('id', '=', id).execute()
}

export async function updateVersion(tx: Transaction<DB>, recallId: string, version: number, set: Updateable<RecallVersionsTable>) {
  await tx.updateTable('recall_versions').set(set).where('recall_id', '=', recallId).where('version', '=', version).execute()
}

/**
 * One page of the messages of a kind the caller may see, newest first: a lab its own, ANSM those submitted at
 * least once, a recipient those in force addressed to it. Discarded ones only when asked for by status.
 */
export async function listRecalls(
  db: Db,
  kind: PipelineKind,
  principal: Pick<Principal, 'role' | 'org'>,
  opts: { status: RecallStatus | undefined; after: { c: string; id: string } | null; limit: number },
): Promise<RecallRow[]> {
  let q = db.selectFrom('recalls as r').innerJoin('organisations as o', 'o.id', 'r.lab_id').selectAll('r').select('o.name as lab_name').where('r.kind', '=', kind)
  if (principal.role === 'lab') q = q.where('r.lab_id', '=', principal.org)
  else if (principal.role === 'ansm') q = q.where('r.first_submitted_at', 'is not', null)
  else {
    q = q.where('r.live_version', 'is not', null).where((eb) =>
      eb.exists(eb.selectFrom('recall_recipients as rr').select('rr.org_id').whereRef('rr.recall_id', '=', 'r.id').where('rr.org_id', '=', principal.org)),
    )
  }
  if (opts.status) q = q.where('r.status', '=', opts.status)
  else q = q.where('r.status', '<>', 'discarded')
  const p = opts.after
  if (p) q = q.where((eb) => eb.or([eb('r.created_at', '<', new Date(p.c)), eb.and([eb('r.created_at', '=', new Date(p.c)), eb('r.id', '<', p.id)])]))
  return (await q.orderBy('r.created_at', 'desc').orderBy('r.id', 'desc').limit(opts.limit).execute()) as RecallRow[]
}

/** The versions of a message in order; only those submitted to ANSM with submittedOnly. */
export async function versionsOf(db: Db, recallId: string, opts: { submittedOnly: boolean }) {
  let q = db.selectFrom('recall_versions').selectAll().where('recall_id', '=', recallId)
  if (opts.submittedOnly) q = q.where('submitted_at', 'is not', null)
  return q.orderBy('version').execute()
}

/** Every version waiting for ANSM's decision, recalls and alerts together, oldest submission first. */
export async function submittedVersions(db: Db) {
  return db
    .selectFrom('recall_versions as v')
    .innerJoin('recalls as r', 'r.id', 'v.recall_id')
    .innerJoin('organisations as o', 'o.id', 'r.lab_id')
    .select(['r.id', 'r.kind', 'r.reference', 'r.lab_id', 'o.name as lab_name', 'r.live_version', 'v.version', 'v.content', 'v.submitted_at'])
    .where('v.status', '=', 'submitted')
    .orderBy('v.submitted_at')
    .orderBy('r.reference')
    .limit(1000)
    .execute()
}

/**
 * The report of a closed message: made from the records at closure (coverage, what each recipient did, every batch
 * recalled, the timeline) and stored; read back as stored.
 */
import { sql, type Transaction } from 'kysely'
import type { Actor } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { PipelineKind, RecallRow } from '../db.ts'
import type { localiseReport } from '../report-labels.ts'
import { lagging } from '../rules/acknowledgements.ts'
import { notFoundFor } from '../rules/kinds.ts'
import { type Db, versionOf } from './messages.ts'
import { coverageOf, recipientStates } from './recipients.ts'

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null)

/** At most this many recipients are listed by name in a report (not acting, acknowledgements); the counts cover all. */
export const REPORT_LIST_MAX = 1000

export interface Closure {
  at: Date
  reason: string | null
  actor: Actor | null
}

/**
 * Every batch recalled by any version that was in force, with what happened to it: recalled until closure, or
 * removed by a correction (in which version, when). `blocked`: dispensation was blocked while it was recalled.
 */
async function batchOutcomes(db: Db, r: RecallRow) {
  const versions = await db
    .selectFrom('recall_versions')
    .select(['version', 'content', 'broadcast_at'])
    .where('recall_id', '=', r.id)
    .where('broadcast_at', 'is not', null)
    .orderBy('version')
    .execute()
  const out = new Map<string, { cip13: string; batch: string; expiry: string | null; versions: number[]; blocked: boolean }>()
  for (const v of versions) {
    for (const b of v.content.batches) {
      const key = `${b.cip13}/${b.batch}`
      const o = out.get(key) ?? { cip13: b.cip13, batch: b.batch, expiry: b.expiry, versions: [], blocked: false }
      o.expiry = b.expiry
      o.versions.push(v.version)
      o.blocked ||= v.content.blockDispensation
      out.set(key, o)
    }
  }
  const final = versions.at(-1)?.version
  const names = new Map<string, string>()
  const cip13s = [...new Set([...out.values()].map((b) => b.cip13))]
  if (cip13s.length) {
    const rows = await db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select(['p.cip13', 'm.name']).where('p.cip13', 'in', cip13s).execute()
    for (const p of rows) names.set(p.cip13, p.name)
  }
  return [...out.values()].map((b) => {
    const last = b.versions.at(-1)!
    const removedBy = last === final ? undefined : versions.find((v) => v.version > last)
    return {
      cip13: b.cip13,
      batch: b.batch,
      expiry: b.expiry,
      name: names.get(b.cip13) ?? null,
      versions: b.versions,
      status: (removedBy ? 'removed' : 'recalled') as 'removed' | 'recalled',
      removedInVersion: removedBy?.version ?? null,
      removedAt: removedBy ? iso(removedBy.broadcast_at) : null,
      blocked: b.blocked,
    }
  })
}

export async function buildReport(db: Db, kind: PipelineKind, r: RecallRow, closure: Closure) {
  const coverage = await coverageOf(db, r)
  const live = await versionOf(db, r.id, r.live_version!)
  const rows = await recipientStates(db, r.id)
    .select([
      sql<number | null>`(select h.version from recall_ack_history h where h.recall_id = rr.recall_id and h.org_id = rr.org_id order by h.seq desc limit 1)`.as('ack_version'),
      sql<number>`(select count(*)::int from recall_ack_history h where h.recall_id = rr.recall_id and h.org_id = rr.org_id)`.as('ack_changes'),
    ])
    .orderBy('rr.org_id')
    .execute()
  const lag = rows.filter((row) => lagging(kind, row))
  const notActing = lag.slice(0, REPORT_LIST_MAX).map((row) => ({ id: row.org_id, name: row.name, role: row.role, department: row.department }))
  const done = rows.filter((row) => row.ack_status === 'done' && row.ack && row.acked_at)
  const acknowledgements = done.slice(0, REPORT_LIST_MAX).map((row) => ({
    org: { id: row.org_id, name: row.name, role: row.role, department: row.department },
    quarantined: row.ack!.quarantined,
    returned: row.ack!.returned,
    destroyed: row.ack!.destroyed,
    noStock: row.ack!.noStock,
    comment: row.ack!.comment ?? null,
    acknowledgedAt: iso(row.acked_at)!,
    version: Number(row.ack_version ?? r.live_version),
    changes: Number(row.ack_changes),
  }))
  const messages = await db.selectFrom('recall_messages').select(['at', 'version', 'kind']).where('recall_id', '=', r.id).where('kind', '<>', 'comment').orderBy('seq').execute()
  const timeline = messages.map((m) => ({ at: iso(m.at)!, version: m.version, event: m.kind }))
  const { recipients, reached, read, acknowledged, done: doneCount } = coverage
  return {
    id: r.id,
    kind,
    reference: r.reference,
    lab: { id: r.lab_id, name: r.lab_name },
    title: live.content.title,
    finalVersion: r.live_version!,
    closure: {
      at: closure.at.toISOString(),
      reason: closure.reason,
      by: closure.actor && (closure.actor.role || closure.actor.org || closure.actor.user) ? { role: closure.actor.role, org: closure.actor.org, user: closure.actor.user } : null,
    },
    batches: kind === 'recall' ? await batchOutcomes(db, r) : [],
    coverage: { recipients, reached, read, acknowledged, done: doneCount },
    quantities: coverage.quantities,
    byCategory: coverage.byCategory,
    byDepartment: coverage.byDepartment,
    notActing,
    notActingTotal: lag.length,
    acknowledgements,
    acknowledgementsTotal: done.length,
    timeline,
    createdAt: iso(r.created_at)!,
    broadcastAt: iso(r.broadcast_at),
    closedAt: closure.at.toISOString(),
  }
}
export type ReportData = Awaited<ReturnType<typeof buildReport>>
export type LocalisedReport = ReturnType<typeof localiseReport<ReportData>>

/**
 * The report made at closure, as stored. A report made before it held the closure, every batch and the
 * acknowledgements is completed from the records (they no longer change once closed).
 */
export async function storedReport(db: Db, kind: PipelineKind, r: RecallRow) {
  const row = await db.selectFrom('recall_reports').select(['report', 'created_at']).where('recall_id', '=', r.id).executeTakeFirst()
  if (!row) throw notFoundFor(kind, `${r.reference} (bilan)`)
  const stored = row.report as ReportData
  if (stored.closure && Array.isArray(stored.acknowledgements)) return { report: stored, createdAt: row.created_at }
  const closed = await db.selectFrom('recall_messages').selectAll().where('recall_id', '=', r.id).where('kind', '=', 'closed').orderBy('seq', 'desc').executeTakeFirst()
  const at = closed?.at ?? r.closed_at ?? row.created_at
  const rebuilt = await buildReport(db, kind, r, { at, reason: closed?.text ?? null, actor: closed ? { role: closed.author_role, org: closed.author_org, user: closed.author_user } : null })
  const { closure, batches, byCategory, notActingTotal, acknowledgements, acknowledgementsTotal } = rebuilt
  return { report: { ...rebuilt, ...stored, closure, batches, byCategory, notActingTotal, acknowledgements, acknowledgementsTotal }, createdAt: row.created_at }
}

/** Stores the report made at closure, with the event that sent it to ANSM. */
export async function insertReport(tx: Transaction<DB>, recallId: string, report: ReportData, eventId: string, now: Date) {
  await tx.insertInto('recall_reports').values({ recall_id: recallId, report: JSON.stringify(report), event_id: eventId, created_at: now }).execute()
}

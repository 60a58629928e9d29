// The review rounds of a version (each submission to ANSM and its decision) and the history read from them.
import type { Kysely, Selectable, Transaction } from 'kysely'
import type { Actor } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { RecallContent, RecallMessagesTable, RecallSubmissionsTable, RecallVersionsTable, RoundDecision } from '../db.ts'
import { contentChanges } from '../rules/changes.ts'

type Db = Kysely<DB> | Transaction<DB>
const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null)

// ---- rounds ----------------------------------------------------------------------------------------------

/** A submission to ANSM opens a round holding the content as submitted. */
export async function openRound(tx: Transaction<DB>, recallId: string, version: number, content: RecallContent, actor: Actor, now: Date) {
  const last = await tx
    .selectFrom('recall_submissions')
    .select((eb) => eb.fn.max('round').as('round'))
    .where('recall_id', '=', recallId)
    .where('version', '=', version)
    .executeTakeFirst()
  const round = Number(last?.round ?? 0) + 1
  await tx
    .insertInto('recall_submissions')
    .values({
      recall_id: recallId, version, round, content: JSON.stringify(content), submitted_at: now,
      submitted_by_role: actor.role, submitted_by_org: actor.org, submitted_by_user: actor.user,
    })
    .execute()
  return round
}

/** ANSM's decision (or the lab withdrawing, or the closing of the recall) ends the version's open round. */
export async function closeRound(tx: Transaction<DB>, recallId: string, version: number, decision: RoundDecision, comment: string | null, actor: Actor, now: Date) {
  await tx
    .updateTable('recall_submissions')
    .set({ decision, decided_at: now, decided_by_role: actor.role, decided_by_org: actor.org, decided_by_user: actor.user, comment })
    .where('recall_id', '=', recallId)
    .where('version', '=', version)
    .where('decision', 'is', null)
    .execute()
}

// ---- history -------------------------------------------------------------------------------------------

type MessageRow = Selectable<RecallMessagesTable>
type VersionRow = Selectable<RecallVersionsTable>
type RoundRow = Selectable<RecallSubmissionsTable>

const author = (role: string | null, org: string | null, user: string | null) => (role || org || user ? { role, org, user } : null)

export function threadEntry(m: MessageRow) {
  return { at: m.at.toISOString(), version: m.version, kind: m.kind, text: m.text, author: author(m.author_role, m.author_org, m.author_user), changes: m.changes ?? null }
}

/**
 * The versions with their review rounds, and the whole exchange thread. Each round: the content as submitted,
 * what changed since the round before (for a correction's first round: since the version it corrects), ANSM's
 * decision, and the exchanges from that submission to the next. `versions` are those the caller may see.
 */
export async function historyOf(db: Db, recallId: string, versions: VersionRow[]) {
  const [rounds, thread] = await Promise.all([
    db.selectFrom('recall_submissions').selectAll().where('recall_id', '=', recallId).orderBy('version').orderBy('round').execute(),
    db.selectFrom('recall_messages').selectAll().where('recall_id', '=', recallId).orderBy('seq').execute(),
  ])
  const byVersion = new Map<number, RoundRow[]>()
  for (const r of rounds) byVersion.set(r.version, [...(byVersion.get(r.version) ?? []), r])
  // The exchanges of a round: the entries of its version from its submission up to the next one.
  const exchanges = new Map<string, MessageRow[]>()
  const seen = new Map<number, number>()
  for (const m of thread) {
    if (m.kind === 'submitted') seen.set(m.version, (seen.get(m.version) ?? 0) + 1)
    const round = seen.get(m.version)
    if (!round) continue
    const key = `${m.version}/${round}`
    exchanges.set(key, [...(exchanges.get(key) ?? []), m])
  }
  const all = await db.selectFrom('recall_versions').select(['version', 'content', 'broadcast_at']).where('recall_id', '=', recallId).orderBy('version').execute()
  // What a version's first round is compared with: the last content of the version in force when it was drafted.
  const baseOf = (version: number) => {
    const base = [...all].reverse().find((v) => v.version < version && v.broadcast_at !== null)
    if (!base) return null
    const last = byVersion.get(base.version)?.at(-1)
    return { version: base.version, round: last?.round ?? null, content: last?.content ?? base.content }
  }
  return {
    versions: versions.map((v) => {
      const own = byVersion.get(v.version) ?? []
      return {
        version: v.version,
        status: v.status,
        createdAt: v.created_at.toISOString(),
        submittedAt: iso(v.submitted_at),
        decidedAt: iso(v.decided_at),
        broadcastAt: iso(v.broadcast_at),
        content: v.content,
        rounds: own.map((r, i) => {
          const previous = i > 0 ? { version: v.version, round: own[i - 1]!.round, content: own[i - 1]!.content } : baseOf(v.version)
          return {
            round: r.round,
            submittedAt: r.submitted_at.toISOString(),
            submittedBy: author(r.submitted_by_role, r.submitted_by_org, r.submitted_by_user),
            content: r.content,
            reconstructed: r.reconstructed,
            comparedWith: previous ? { version: previous.version, round: previous.round } : null,
            changes: previous ? contentChanges(previous.content, r.content) : [],
            decision: r.decision,
            decidedAt: iso(r.decided_at),
            decidedBy: author(r.decided_by_role, r.decided_by_org, r.decided_by_user),
            comment: r.comment,
            exchanges: (exchanges.get(`${v.version}/${i + 1}`) ?? []).map(threadEntry),
          }
        }),
      }
    }),
    thread: thread.map(threadEntry),
  }
}

import { createHash } from 'node:crypto'
import { canonicalJson } from './canonical-json.ts'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Principal } from './auth.ts'
import type { DB } from './db/schema.ts'

/** Who acted: a user of an organisation, or the system itself (jobs, imports). */
export interface Actor {
  role: string | null
  org: string | null
  user: string | null
  requestId?: string | null
}
export const SYSTEM: Actor = { role: null, org: null, user: 'system' }
export const actorOf = (principal: Principal | null, requestId?: string): Actor =>
  principal ? { role: principal.role, org: principal.org, user: principal.user, requestId: requestId ?? null } : { ...SYSTEM, requestId: requestId ?? null }

export interface AuditInput {
  action: string
  objectType: string
  objectId: string
  /** What changed: { field: [before, after] } or any JSON the service finds telling. */
  changes: unknown
}

const GENESIS = '0'.repeat(64)
// Every append takes this transaction-scoped lock: it orders the chain and keeps `seq` without gaps, so that a
// deleted row shows as a hole. It is held until commit, which bounds audited writes to one chain at a time.
const AUDIT_LOCK = 7_203_114

function entryHash(prevHash: string, e: { seq: number; at: Date; actor_role: string | null; actor_org: string | null; actor_user: string | null; action: string; object_type: string; object_id: string; changes: unknown; request_id: string | null }) {
  const canonical = canonicalJson({
    seq: e.seq,
    at: e.at.toISOString(),
    actor_role: e.actor_role,
    actor_org: e.actor_org,
    actor_user: e.actor_user,
    action: e.action,
    object_type: e.object_type,
    object_id: e.object_id,
    changes: e.changes ?? null,
    request_id: e.request_id,
  })
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex')
}

/** Appends to the audit trail inside the caller's transaction: the record commits or rolls back with the change. */
export async function audit(tx: Transaction<DB>, actor: Actor, input: AuditInput, at: Date = new Date()) {
  await sql`select pg_advisory_xact_lock(${AUDIT_LOCK})`.execute(tx)
  const last = await tx.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst()
  // JSON round trip: what is hashed is exactly what jsonb will give back (no undefined, dates as strings).
  const changes = JSON.parse(JSON.stringify(input.changes ?? null))
  const row = {
    seq: (last?.seq ?? 0) + 1,
    at: new Date(Math.floor(at.getTime())),
    actor_role: actor.role,
    actor_org: actor.org,
    actor_user: actor.user,
    action: input.action,
    object_type: input.objectType,
    object_id: input.objectId,
    changes,
    request_id: actor.requestId ?? null,
  }
  const prev_hash = last?.hash ?? GENESIS
  const hash = entryHash(prev_hash, row)
  await tx.insertInto('audit_log').values({ ...row, changes: JSON.stringify(changes), prev_hash, hash }).execute()
  return { seq: row.seq, hash }
}

export interface AuditVerification {
  ok: boolean
  checked: number
  lastSeq: number
  lastHash: string
  /** First entry where the chain breaks, and why. */
  broken?: { seq: number; reason: 'modified' | 'missing' | 'relinked' }
}

/**
 * Walks the whole chain. A modified row fails its hash; a deleted row leaves a hole in `seq`; a row whose
 * predecessor was swapped fails the link. Deleting the newest rows only shortens the chain: compare lastSeq
 * and lastHash with a value kept elsewhere (the operator's printed report) to detect that.
 */
export async function verifyAudit(db: Kysely<DB>, batch = 2000): Promise<AuditVerification> {
  let expectedSeq = 1
  let prevHash = GENESIS
  let checked = 0
  for (;;) {
    const rows = await db.selectFrom('audit_log').selectAll().where('seq', '>=', expectedSeq).orderBy('seq').limit(batch).execute()
    if (rows.length === 0) break
    for (const r of rows) {
      if (r.seq !== expectedSeq) return { ok: false, checked, lastSeq: expectedSeq - 1, lastHash: prevHash, broken: { seq: expectedSeq, reason: 'missing' } }
      if (r.prev_hash !== prevHash) return { ok: false, checked, lastSeq: r.seq - 1, lastHash: prevHash, broken: { seq: r.seq, reason: 'relinked' } }
      if (entryHash(prevHash, r) !== r.hash) return { ok: false, checked, lastSeq: r.seq - 1, lastHash: prevHash, broken: { seq: r.seq, reason: 'modified' } }
      prevHash = r.hash
      expectedSeq++
      checked++
    }
  }
  return { ok: true, checked, lastSeq: expectedSeq - 1, lastHash: prevHash }
}

export async function auditHistory(db: Kysely<DB>, objectType: string, objectId: string) {
  const rows = await db
    .selectFrom('audit_log')
    .select(['seq', 'at', 'actor_role', 'actor_org', 'actor_user', 'action', 'changes', 'request_id'])
    .where('object_type', '=', objectType)
    .where('object_id', '=', objectId)
    .orderBy('seq')
    .execute()
  return rows.map((r) => ({
    seq: r.seq,
    at: r.at.toISOString(),
    actor: { role: r.actor_role, org: r.actor_org, user: r.actor_user },
    action: r.action,
    changes: r.changes,
    requestId: r.request_id,
  }))
}

/** { field: [before, after] } for the fields that differ. */
export function diff(before: Record<string, unknown> | null | undefined, after: Record<string, unknown>) {
  const out: Record<string, [unknown, unknown]> = {}
  for (const [k, v] of Object.entries(after)) {
    const b = before?.[k]
    if (JSON.stringify(b ?? null) !== JSON.stringify(v ?? null)) out[k] = [b ?? null, v ?? null]
  }
  return out
}

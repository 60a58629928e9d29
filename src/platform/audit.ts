import { createHash } from 'node:crypto'
import { canonicalJson } from './canonical-json.ts'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Principal } from './auth.ts'
import { LOCKS } from './db/locks.ts'
import { executeNamed } from './db/named.ts'
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
// The trail is AUDIT_CHAINS hash chains. An append takes its chain's transaction-scoped lock: it orders the chain
// and keeps `chain_seq` without gaps, so that a deleted row shows as a hole. The lock is held until commit, so a
// chain takes one write at a time; writes on different chains commit side by side.
export const AUDIT_CHAINS = 16

/**
 * The chain of an actor's entries: by organisation (FNV-1a), so that many organisations acting at once (every
 * pharmacy acknowledging a recall) spread over the chains; the system's own work is chain 0. One transaction
 * keeps to the chain of its first entry: holding two chain locks could deadlock with a transaction taking them
 * in the other order.
 */
const chainOfTransaction = new WeakMap<object, number>()
function chainFor(tx: Transaction<DB>, actor: Actor): number {
  const known = chainOfTransaction.get(tx)
  if (known !== undefined) return known
  let chain = 0
  if (actor.org) {
    let h = 0x811c9dc5
    for (let i = 0; i < actor.org.length; i++) h = Math.imul(h ^ actor.org.charCodeAt(i), 0x01000193)
    chain = (h >>> 0) % AUDIT_CHAINS
  }
  chainOfTransaction.set(tx, chain)
  return chain
}

type HashedFields = { seq: number; at: Date; actor_role: string | null; actor_org: string | null; actor_user: string | null; action: string; object_type: string; object_id: string; changes: unknown; request_id: string | null }
/**
 * The canonical text an entry's hash covers, up to its number: `seq` sorts last of its keys, so the whole text is
 * this, the number, and "}". The writer hands it to SQL, which appends the number it draws; the verifier appends
 * the stored one.
 */
function canonicalBeforeSeq(e: Omit<HashedFields, 'seq'>): string {
  const canonical = canonicalJson({
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
  return `${canonical.slice(0, -1)},"seq":`
}
/** The hash as the verifier recomputes it: SHA-256 of the previous hash, a newline and the canonical entry. */
function entryHash(prevHash: string, e: HashedFields) {
  return createHash('sha256').update(prevHash).update('\n').update(`${canonicalBeforeSeq(e)}${e.seq}}`).digest('hex')
}

/**
 * Appends to the audit trail inside the caller's transaction: the record commits or rolls back with the change.
 *
 * One statement: audit_chain_head (migration 0019) takes the chain's lock and reads its head with a snapshot taken
 * after the lock, then the statement draws the entry's number and writes the entry with its hash. The hash is
 * computed there, by SQL, from the canonical text prepared here: `seq` is the last key of the canonical form, so
 * the text is this prefix, the number PostgreSQL draws, and "}". (It was three statements, then two: each a round
 * trip while the chain's lock is held or awaited, and every audited transaction of the service holds one.) The
 * verifier recomputes the hash in JavaScript (entryHash), and the audit tests check that the two agree.
 */
export async function audit(tx: Transaction<DB>, actor: Actor, input: AuditInput, at: Date = new Date()) {
  const chain = chainFor(tx, actor)
  // JSON round trip: what is hashed is exactly what jsonb will give back (no undefined, dates as strings).
  const changes = JSON.parse(JSON.stringify(input.changes ?? null))
  const row = {
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
  const prefix = canonicalBeforeSeq(row)
  // The number is drawn after the lock: the select list is computed once the join has called audit_chain_head.
  const { rows } = await executeNamed(tx, 'audit_append', sql<{ seq: string | number; chain_seq: string | number; hash: string }>`
    with head as (
      select nextval('audit_log_seq') as seq, coalesce(h.head_seq, 0) + 1 as chain_seq, coalesce(h.head_hash, ${GENESIS}::text) as prev_hash
      from (select 1) one
      left join lateral audit_chain_head(${LOCKS.auditChain}::int, ${chain}::int) h on true
    )
    insert into audit_log (seq, at, actor_role, actor_org, actor_user, action, object_type, object_id, changes, request_id, chain, chain_seq, prev_hash, hash)
    select seq, ${row.at}::timestamptz, ${row.actor_role}, ${row.actor_org}, ${row.actor_user}, ${row.action}, ${row.object_type}, ${row.object_id},
      ${JSON.stringify(changes)}::jsonb, ${row.request_id}, ${chain}::int, chain_seq, prev_hash,
      encode(sha256(convert_to(prev_hash || chr(10) || ${prefix}::text || seq::text || '}', 'UTF8')), 'hex')
    from head
    returning seq, chain_seq, hash`)
  const r = rows[0]!
  return { seq: Number(r.seq), chain, chainSeq: Number(r.chain_seq), hash: r.hash }
}

export interface ChainVerification {
  chain: number
  checked: number
  /** Position of the last entry of the intact part of the chain (0 when empty). */
  lastPosition: number
  lastHash: string
  /** First entry where the chain breaks, and why. */
  broken?: { position: number; reason: 'modified' | 'missing' | 'relinked' }
}

export interface AuditVerification {
  ok: boolean
  checked: number
  chains: ChainVerification[]
  /** The first break found (lowest chain). */
  broken?: { chain: number; position: number; reason: 'modified' | 'missing' | 'relinked' }
}

/**
 * Walks every chain. A modified row fails its hash; a deleted row leaves a hole in its chain's positions; a row
 * whose predecessor was swapped fails the link. Deleting the newest rows of a chain only shortens it: compare
 * each chain's lastPosition and lastHash with the values kept from an earlier run (the operator's printed report).
 */
export async function verifyAudit(db: Kysely<DB>, batch = 2000): Promise<AuditVerification> {
  const present = await db.selectFrom('audit_log').select('chain').distinct().execute()
  const ids = [...new Set([...Array.from({ length: AUDIT_CHAINS }, (_, i) => i), ...present.map((r) => r.chain)])].sort((a, b) => a - b)
  const chains: ChainVerification[] = []
  for (const chain of ids) chains.push(await verifyChain(db, chain, batch))
  const first = chains.find((c) => c.broken)
  return {
    ok: !first,
    checked: chains.reduce((n, c) => n + c.checked, 0),
    chains,
    ...(first ? { broken: { chain: first.chain, ...first.broken! } } : {}),
  }
}

async function verifyChain(db: Kysely<DB>, chain: number, batch: number): Promise<ChainVerification> {
  let expected = 1
  let prevHash = GENESIS
  let checked = 0
  const stop = (position: number, reason: 'modified' | 'missing' | 'relinked') => ({ chain, checked, lastPosition: expected - 1, lastHash: prevHash, broken: { position, reason } })
  for (;;) {
    const rows = await db.selectFrom('audit_log').selectAll().where('chain', '=', chain).where('chain_seq', '>=', expected).orderBy('chain_seq').limit(batch).execute()
    if (rows.length === 0) break
    for (const r of rows) {
      if (Number(r.chain_seq) !== expected) return stop(expected, 'missing')
      if (r.prev_hash !== prevHash) return stop(expected, 'relinked')
      if (entryHash(prevHash, r) !== r.hash) return stop(expected, 'modified')
      prevHash = r.hash
      expected++
      checked++
    }
  }
  return { chain, checked, lastPosition: expected - 1, lastHash: prevHash }
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

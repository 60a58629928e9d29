import { randomUUID } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Static } from 'typebox'
import type { FastifyInstance } from 'fastify'
import { changeFacts, bumpGeneration } from '../dispensation/registry.ts'
import { type Actor, audit } from '../platform/audit.ts'
import type { DatabaseHandle } from '../platform/db/index.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError, defineErrors, errorDef, notFound } from '../platform/errors.ts'
import { parisDay } from '../platform/paris-time.ts'
import { BLOCKED_CODE, type Blocking, blockingSql } from '../dispensation/rule.ts'
import { raisesAlert } from './rules/alerts.ts'
import type { ReturnCodeName } from './rules/codes.ts'
import type { ChangeBatcher } from './change-batch.ts'
import type { BatchStatus, PackState } from './db.ts'
import type { Scanner } from './rules/pseudonyms.ts'
import './db.ts'
import { type FieldError, type Gs1Error, parseDataMatrix, parsePackFields } from './rules/gs1.ts'
import type { PackUploadReport } from './schemas/packs.ts'

defineErrors({
  // The serialization return code of the same name, as an HTTP answer: the request was not processed.
  TOO_MANY_REQUESTS: errorDef(429, 'Trop de requêtes', 'Too many requests', (p) => ({
    fr: `Votre organisation a dépassé ${p.max} vérifications ou changements d’état de boîtes par minute : rien n’a été fait ; réessayez dans ${p.after}.`,
    en: `Your organisation went over ${p.max} pack verifications or state changes per minute: nothing was done; retry in ${p.after}.`,
  })),
  BATCH_EXPIRY_CONFLICT: errorDef(409, 'Lot déjà déclaré avec une autre date de péremption', 'Batch already declared with another expiry date', (p) => ({
    fr: `Le lot ${p.batch} de ce produit est déjà déclaré avec la date de péremption ${p.expiry} : un lot a une seule date. Vérifiez le numéro de lot ou la date.`,
    en: `Batch ${p.batch} of this product is already declared with expiry date ${p.expiry}: a batch has one date. Check the batch number or the date.`,
  })),
})

type Db = Kysely<DB> | Transaction<DB>

/** Undo is allowed for 10 days (240 hours) after the change. */
export const UNDO_WINDOW_MS = 10 * 24 * 3600_000
const UNDOABLE: readonly PackState[] = ['supplied', 'sample', 'free_sample', 'locked', 'exported']
const FINAL: readonly PackState[] = ['destroyed', 'stolen']

/** The state changes a pharmacy, hospital or wholesaler may ask for. */
export { ACTIONS, type Action } from './db.ts'
import type { Action } from './db.ts'
import { inTransaction } from '../platform/db/transaction.ts'
const TARGET: Record<Exclude<Action, 'undo' | 'unlock'>, PackState> = {
  supply: 'supplied',
  destroy: 'destroyed',
  stolen: 'stolen',
  sample: 'sample',
  free_sample: 'free_sample',
  lock: 'locked',
  export: 'exported',
}
/** Allowed even when the batch or product is recalled, withdrawn or expired: they take the box out for good. */
const ALLOWED_WHEN_BLOCKED: readonly Action[] = ['destroy', 'stolen']

// ---- the pack as given ----------------------------------------------------------------------------------

export interface PackInput {
  dataMatrix?: string
  product?: string
  serial?: string
  batch?: string
  expiry?: string
}

export interface PackRef {
  /** null when the code is not a French medicine's (the GTIN is not 0 + a CIP13). */
  cip13: string | null
  gtin: string
  serial: string
  batch: string
  expiry: string
  /** The DataMatrix as scanned (an alert keeps it), and whether it came with its AIM prefix (]d2…). */
  scan?: { raw: string; aim: boolean }
}

export type ResolvedPack = { ok: true; pack: PackRef } | { ok: false; errors: Array<{ field: string; code: string; position?: number; fr: string; en: string }> }

/** A DataMatrix string or separate fields, never both: read before any pack is touched. */
export function resolvePack(input: PackInput, now: Date): ResolvedPack {
  const hasFields = input.product !== undefined || input.serial !== undefined || input.batch !== undefined || input.expiry !== undefined
  if (input.dataMatrix !== undefined) {
    if (hasFields) return { ok: false, errors: [{ field: 'dataMatrix', code: 'AMBIGUOUS_INPUT', fr: 'donnez soit « dataMatrix », soit les champs product, serial, batch et expiry, pas les deux', en: 'give either "dataMatrix" or the fields product, serial, batch and expiry, not both' }] }
    const r = parseDataMatrix(input.dataMatrix, { now })
    if (!r.ok) return { ok: false, errors: r.errors.map((e: Gs1Error) => ({ field: 'dataMatrix', code: e.code, position: e.position, fr: e.fr, en: e.en })) }
    const v = r.value
    return { ok: true, pack: { cip13: v.cip13, gtin: v.gtin, serial: v.serial!, batch: v.batch!, expiry: v.expiry!, scan: { raw: input.dataMatrix, aim: v.symbology !== null } } }
  }
  const r = parsePackFields(input, now)
  if (!r.ok) return { ok: false, errors: r.errors.map((e: FieldError) => ({ field: e.field, code: e.code, fr: e.fr, en: e.en })) }
  return { ok: true, pack: { cip13: r.value.cip13, gtin: r.value.gtin, serial: r.value.serial, batch: r.value.batch, expiry: r.value.expiry } }
}


// ---- verification (read-only) ----------------------------------------------------------------------------

interface PackRow {
  product_known: boolean | null
  /** The scanned batch exists for the product (tells an unknown batch from an unknown serial). */
  batch_known?: boolean | null
  state: PackState | null
  batch: string | null
  state_at: Date | null
  last_txn: string | null
  expiry: string | null
  /** What blocks dispensation of the pack's batch (dispensation/rule.ts), or null. */
  blocking: Blocking | null
  /** When the pack is inactive: the pseudonym of the organisation whose change made it so (never shown). */
  last_org?: string | null
}

// One statement whatever the outcome: whether the product has packs at all, the pack, its batch and what blocks it.
const PACK_SQL = `
  select exists (select 1 from serial_batches where cip13 = $1) as product_known,
         exists (select 1 from serial_batches where cip13 = $1 and batch = $4) as batch_known,
         p.state, p.batch, p.state_at, p.last_txn, b.expiry,
         ${blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: 'sp.status', expiry: 'b.expiry', today: '$3::date' })} as blocking,
         case when p.state <> 'active' then (select t.org_pseudonym from pack_transactions t where t.cip13 = p.cip13 and t.id = p.last_txn and t.serial = p.serial) end as last_org
  from (select 1) as one
  left join packs p on p.cip13 = $1 and p.serial = $2
  left join serial_batches b on b.cip13 = p.cip13 and b.batch = p.batch
  left join serial_products sp on sp.cip13 = $1`

export interface PackResult {
  ok: boolean
  code: ReturnCodeName
  /** The pack as the repository knows it (state: its own state when inactive, else the batch's or product's blocking status, else active). */
  pack: {
    product: string | null
    gtin: string
    serial: string
    batch: string
    expiry: string
    state: PackState | BatchStatus | 'not_found'
    batchStatus: BatchStatus | null
    dispensable: boolean
  }
  /** The transaction of a state change (keep it: an undo names it). */
  transactionId?: string
  /** The transaction an undo reverted. */
  undid?: string
  /** This answer raises an alert (rules/alerts.ts): the pharmacy quarantines the box, the lab investigates. */
  alert: boolean
  /** The alert raised by this answer (alerts.ts): quote it to the lab. */
  alertReference?: string
}

export function packView(ref: PackRef, row: PackRow | null): PackResult['pack'] {
  const found = !!row?.state
  const state = !found ? 'not_found' : row!.state !== 'active' ? row!.state! : (row!.blocking ?? 'active')
  return {
    product: ref.cip13,
    gtin: ref.gtin,
    serial: ref.serial,
    batch: ref.batch,
    expiry: ref.expiry,
    state,
    batchStatus: found ? (row!.blocking ?? 'active') : null,
    dispensable: state === 'active',
  }
}

/** What the repository says about the scanned pack: data checks first (a mismatch may be a falsification), then status. */
function judge(ref: PackRef, row: PackRow | null): ReturnCodeName {
  if (!ref.cip13 || !row?.product_known) return 'UNKNOWN_PRODUCT'
  if (!row.state) return row.batch_known === false ? 'BATCH_UNKNOWN' : 'UNKNOWN_SERIAL'
  if (row.batch !== ref.batch) return 'BATCH_MISMATCH'
  if (row.expiry !== ref.expiry) return 'EXPIRY_MISMATCH'
  if (row.blocking) return BLOCKED_CODE[row.blocking]
  if (row.state !== 'active') return 'ALREADY_INACTIVE'
  return 'PACK_ACTIVE'
}

export async function readPack(database: DatabaseHandle, ref: PackRef, today: string): Promise<PackRow | null> {
  if (!ref.cip13) return null
  const rows = await database.prepared<PackRow>('serial_pack', PACK_SQL, [ref.cip13, ref.serial, today, ref.batch])
  return rows[0] ?? null
}

// ---- state changes -----------------------------------------------------------------------------------------

// Exactly once: the change is one conditional UPDATE on the pack's row (state = 'active'); PostgreSQL re-checks
// the condition on the latest row version after waiting for a concurrent writer, so of many concurrent requests
// exactly one updates the row. The transaction row and the scan-log row are written by the same statement.
export const CHANGE_SQL = `
  with u as (
    update packs p set state = $3, state_at = $4, last_txn = $5
    from serial_batches b
    where p.cip13 = $1 and p.serial = $2 and p.state = 'active'
      and b.cip13 = p.cip13 and b.batch = p.batch
      and p.batch = $6 and b.expiry = $7::date
      and ($8::boolean or ${blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: '(select sp.status from serial_products sp where sp.cip13 = p.cip13)', expiry: 'b.expiry', today: '$9::date' })} is null)
    returning p.cip13, p.serial, ${blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: '(select sp.status from serial_products sp where sp.cip13 = p.cip13)', expiry: 'b.expiry', today: '$9::date' })} as blocking
  ), t as (
    insert into pack_transactions (cip13, id, serial, action, from_state, to_state, org_pseudonym, user_pseudonym, role, undoes, at)
    select cip13, $5, serial, $10, 'active', $3, $11, $12, $13, null, $4 from u
    returning id
  ), s as (
    insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
    select cip13, $14::uuid, $4, serial, $6, $7::date, $10, 'STATE_CHANGED', $13, $11, $5, null from u
  )
  select t.id, u.blocking from t, u`

// Undo: the pack must still be in the state the named transaction set, that transaction must be its last change,
// made by the same organisation and user (compared as pseudonyms) less than 10 days ago, and nothing may block the
// pack's batch (dispensation/rule.ts).
const UNDO_SQL = `
  with o as (
    select t.id, t.to_state from pack_transactions t
    where t.cip13 = $1 and t.id = $3 and t.serial = $2 and t.org_pseudonym = $4 and t.user_pseudonym = $5
      and t.at > $6 and t.to_state = any($7::text[])
  ), u as (
    update packs p set state = 'active', state_at = $8, last_txn = $9
    from o, serial_batches b
    where p.cip13 = $1 and p.serial = $2 and p.last_txn = o.id and p.state = o.to_state
      and b.cip13 = p.cip13 and b.batch = p.batch
      and p.batch = $10 and b.expiry = $11::date
      and ${blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: '(select sp.status from serial_products sp where sp.cip13 = p.cip13)', expiry: 'b.expiry', today: '$12::date' })} is null
    returning p.cip13, p.serial, o.to_state
  ), t as (
    insert into pack_transactions (cip13, id, serial, action, from_state, to_state, org_pseudonym, user_pseudonym, role, undoes, at)
    select cip13, $9, serial, $13, to_state, 'active', $4, $5, $14, $3, $8 from u
    returning id
  )
  select id from t`

export interface ChangeRequest {
  action: Action
  pack: PackRef
  /** For undo and unlock: the transaction that set the state being reverted. */
  transactionId?: string | undefined
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The answer of a state change; `logged`: its scan-log row is already written (by the change's own statement). */
export interface ChangeOutcome {
  outcome: PackResult
  logged: boolean
}

/**
 * Changes a pack's state. The success of a non-undo change is ONE statement (one round trip): the conditional
 * UPDATE, its transaction row and its pseudonymised scan-log row, committed together. Refusals are diagnosed with a
 * second read and logged by the caller (alerts.ts recordScan), as they may raise an alert (rules/alerts.ts).
 */
export async function changePackState(database: DatabaseHandle, scanner: Scanner, request: ChangeRequest, now: Date, batcher?: ChangeBatcher): Promise<ChangeOutcome> {
  const { pack: ref, action } = request
  const today = parisDay(now)
  if (!ref.cip13) return { outcome: { ok: false, code: 'UNKNOWN_PRODUCT', alert: false, pack: packView(ref, null) }, logged: false }
  const isUndo = action === 'undo' || action === 'unlock'
  // A concurrent change can make the diagnosis see an active pack after the UPDATE missed it: try again (bounded).
  for (let attempt = 0; attempt < 3; attempt++) {
    const id = randomUUID()
    if (!isUndo) {
      const target = TARGET[action as keyof typeof TARGET]
      const force = ALLOWED_WHEN_BLOCKED.includes(action)
      // The first attempt joins the other changes in flight (change-batch.ts); a retry after a race goes alone.
      const done =
        batcher && attempt === 0
          ? await batcher.change({ scanner, cip13: ref.cip13, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, target, action, force, id, scanId: randomUUID(), now, today })
          : (
              await database.prepared<{ id: string; blocking: Blocking | null }>('serial_change', CHANGE_SQL, [
                ref.cip13, ref.serial, target, now, id, ref.batch, ref.expiry, force, today, action, scanner.org, scanner.user, scanner.role, randomUUID(),
              ])
            )[0]
      if (done) {
        const row: PackRow = { product_known: true, state: target, batch: ref.batch, state_at: now, last_txn: id, expiry: ref.expiry, blocking: done.blocking }
        return { outcome: { ok: true, code: 'STATE_CHANGED', alert: false, pack: packView(ref, row), transactionId: id }, logged: true }
      }
      const row = await readPack(database, ref, today)
      const code = diagnoseChange(action, ref, row, scanner)
      if (code) return { outcome: { ok: false, code, alert: raisesAlert(code, 'decommission'), pack: packView(ref, row) }, logged: false }
      continue
    }
    let rows: Array<{ id: string }> = []
    if (request.transactionId && UUID.test(request.transactionId)) {
      const states = action === 'unlock' ? ['locked'] : UNDOABLE
      rows = await database.prepared('serial_undo', UNDO_SQL, [
        ref.cip13, ref.serial, request.transactionId, scanner.org, scanner.user, new Date(now.getTime() - UNDO_WINDOW_MS), states, now, id, ref.batch, ref.expiry, today, action, scanner.role,
      ])
    }
    const row = await readPack(database, ref, today)
    if (rows[0]) return { outcome: { ok: true, code: 'STATE_CHANGED', alert: false, pack: packView(ref, row), transactionId: id, undid: request.transactionId! }, logged: false }
    const code = await diagnoseUndo(database.db, scanner, request, row, now)
    if (code) return { outcome: { ok: false, code, alert: raisesAlert(code, 'undo'), pack: packView(ref, row) }, logged: false }
  }
  throw new Error('pack state change: no outcome after 3 attempts')
}

/** Why a decommission did not happen (null: the pack is active and nothing blocks it, try again). */
function diagnoseChange(action: Action, ref: PackRef, row: PackRow | null, scanner: Scanner): ReturnCodeName | null {
  const code = judge(ref, row)
  if (code === 'PACK_ACTIVE') return null
  if (BLOCKED.has(code) && ALLOWED_WHEN_BLOCKED.includes(action)) {
    if (row!.state === 'active') return null
  } else if (code !== 'ALREADY_INACTIVE') return code
  // Inactive: the same organisation repeating its own change is told the status is already set; any other attempt
  // is ALREADY_INACTIVE (an alert: rules/alerts.ts).
  return row!.last_org === scanner.org && row!.state === TARGET[action as keyof typeof TARGET] ? 'STATUS_ALREADY_SET' : 'ALREADY_INACTIVE'
}
const BLOCKED: ReadonlySet<ReturnCodeName> = new Set(Object.values(BLOCKED_CODE))

async function diagnoseUndo(db: Db, scanner: Scanner, request: ChangeRequest, row: PackRow | null, now: Date): Promise<ReturnCodeName | null> {
  const ref = request.pack
  const code = judge(ref, row)
  if (['UNKNOWN_PRODUCT', 'UNKNOWN_SERIAL', 'BATCH_UNKNOWN', 'BATCH_MISMATCH', 'EXPIRY_MISMATCH'].includes(code)) return code
  if (row!.state === 'active') return 'STATUS_ALREADY_SET'
  if (FINAL.includes(row!.state!)) return 'UNDO_NOT_ALLOWED'
  if (!request.transactionId || !UUID.test(request.transactionId) || row!.last_txn !== request.transactionId) return 'UNKNOWN_TRANSACTION'
  const txn = await db
    .selectFrom('pack_transactions')
    .select(['org_pseudonym', 'user_pseudonym', 'to_state', 'at'])
    .where('cip13', '=', ref.cip13!)
    .where('id', '=', request.transactionId)
    .where('serial', '=', ref.serial)
    .executeTakeFirst()
  if (!txn) return 'UNKNOWN_TRANSACTION'
  // Another organisation's change: the undo code, never its details (who, when).
  if (txn.org_pseudonym !== scanner.org) return 'UNDO_OTHER_ORGANISATION'
  if (txn.user_pseudonym !== scanner.user) return 'UNDO_OTHER_USER'
  if (!UNDOABLE.includes(txn.to_state) || (request.action === 'unlock' && txn.to_state !== 'locked')) return 'UNDO_NOT_ALLOWED'
  if (txn.at.getTime() <= now.getTime() - UNDO_WINDOW_MS) return 'UNDO_WINDOW_EXCEEDED'
  if (code !== 'ALREADY_INACTIVE') return code // batch or product recalled, withdrawn or expired: never undone
  return null
}

// ---- the lab's side ----------------------------------------------------------------------------------------

/** The product, if the lab exploits it; otherwise 404 as if it did not exist. */
export async function assertLabProduct(db: Db, labId: string, cip13: string) {
  const row = await db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['p.cip13'])
    .where('p.cip13', '=', cip13)
    .where('m.lab_id', '=', labId)
    .executeTakeFirst()
  if (!row) throw notFound(`Le produit ${cip13}`, `Product ${cip13}`)
}

export interface UploadInput {
  cip13: string
  batch: string
  expiry: string
  serials: string[]
}

export type UploadReport = Static<typeof PackUploadReport>

/**
 * The batch row of an upload: created with this expiry, or checked to have it (409 BATCH_EXPIRY_CONFLICT: a batch
 * has one date). A concurrent upload of the same new batch waits here until the first one commits.
 */
export async function ensureBatch(tx: Transaction<DB>, labId: string, input: { cip13: string; batch: string; expiry: string }, now: Date) {
  const known = await tx.selectFrom('serial_batches').select('batch').where('cip13', '=', input.cip13).limit(1).executeTakeFirst()
  const created = await tx
    .insertInto('serial_batches')
    .values({ cip13: input.cip13, batch: input.batch, lab_id: labId, expiry: input.expiry, created_at: now, updated_at: now })
    .onConflict((oc) => oc.columns(['cip13', 'batch']).doNothing())
    .returning('batch')
    .executeTakeFirst()
  // The product's first batch: it is now under serialization, and the dispensation check must ask its DataMatrix for
  // a serial (dispensation/registry.ts). Nothing new is blocked: the instances learn it at their next reload.
  if (!known && created) await bumpGeneration(tx)
  const batch = await tx.selectFrom('serial_batches').select(['expiry']).where('cip13', '=', input.cip13).where('batch', '=', input.batch).executeTakeFirstOrThrow()
  if (batch.expiry !== input.expiry) throw new AppError('BATCH_EXPIRY_CONFLICT', { batch: input.batch, expiry: batch.expiry })
}

/** What one chunk of serials did: each distinct serial is created, unchanged (already in this batch) or a conflict. */
export interface ChunkOutcome {
  /** Distinct serials of the chunk. */
  distinct: number
  created: number
  unchanged: number
  /** Serials already uploaded in another batch of the product: left as they were. */
  conflicts: Array<{ serial: string; batch: string }>
}

/**
 * Inserts one chunk of serials (up to a few tens of thousands: one array parameter) into a batch that ensureBatch
 * made sure of. Shared by the JSON upload and the streamed one. Serials are inserted in sorted order, so two uploads
 * that overlap lock their rows in the same order (no deadlock within a chunk).
 */
export async function insertSerialChunk(tx: Transaction<DB>, target: { cip13: string; batch: string }, serials: readonly string[], now: Date): Promise<ChunkOutcome> {
  const distinct = [...new Set(serials)].sort()
  if (distinct.length === 0) return { distinct: 0, created: 0, unchanged: 0, conflicts: [] }
  const inserted = await sql<{ serial: string }>`
    insert into packs (cip13, serial, batch, state, state_at, last_txn, created_at)
    select ${target.cip13}, s, ${target.batch}, 'active', ${now}::timestamptz, null, ${now}::timestamptz from unnest(${distinct}::text[]) as s
    on conflict (cip13, serial) do nothing
    returning serial`.execute(tx)
  const created = inserted.rows.length
  if (created === distinct.length) return { distinct: distinct.length, created, unchanged: 0, conflicts: [] }
  // A second statement (a new snapshot): it sees the rows a concurrent upload committed while this insert waited.
  const fresh = new Set(inserted.rows.map((r) => r.serial))
  const rest = distinct.filter((s) => !fresh.has(s))
  const existing = await sql<{ serial: string; batch: string }>`
    select serial, batch from packs where cip13 = ${target.cip13} and serial = any(${rest}::text[])`.execute(tx)
  const conflicts = existing.rows.filter((e) => e.batch !== target.batch).map((e) => ({ serial: e.serial, batch: e.batch }))
  return { distinct: distinct.length, created, unchanged: existing.rows.length - conflicts.length, conflicts }
}

/** Uploads packs of one batch: idempotent (a serial already in this batch is unchanged; in another batch, a conflict). */
export async function uploadPacks(db: Kysely<DB>, actor: Actor & { org: string }, input: UploadInput, now: Date): Promise<UploadReport> {
  return inTransaction(db, async (tx) => {
    await assertLabProduct(tx, actor.org, input.cip13)
    await ensureBatch(tx, actor.org, input, now)
    const chunk = await insertSerialChunk(tx, input, input.serials, now)
    const report: UploadReport = {
      product: input.cip13,
      batch: input.batch,
      expiry: input.expiry,
      received: input.serials.length,
      created: chunk.created,
      unchanged: chunk.unchanged,
      duplicatesInRequest: input.serials.length - chunk.distinct,
      conflicts: chunk.conflicts,
    }
    if (report.created > 0 || report.conflicts.length > 0) {
      await audit(tx, actor, { action: 'serialization.packs.uploaded', objectType: 'serial_batch', objectId: `${input.cip13}/${input.batch}`, changes: { ...report, conflicts: report.conflicts.length } }, now)
    }
    return report
  })
}

/**
 * The lab sets a batch's status: its own fact, kept apart from DP-Rappels (a recall's blocking is read from the
 * recall, never copied here). A status that blocks answers only once every API instance blocks it too
 * (dispensation/registry.ts changeFacts). Returns the previous status, or null if the batch is unknown.
 */
export async function setBatchStatus(app: FastifyInstance, actor: Actor & { org: string }, input: { cip13: string; batch: string; status: BatchStatus; reason: string | null }, now: Date) {
  return changeFacts(app, async (tx) => {
    await assertLabProduct(tx, actor.org, input.cip13)
    const before = await tx.selectFrom('serial_batches').select(['status']).where('cip13', '=', input.cip13).where('batch', '=', input.batch).forUpdate().executeTakeFirst()
    if (!before) return { result: null, changed: false, blocks: false }
    const changed = before.status !== input.status
    if (changed) {
      await tx.updateTable('serial_batches').set({ status: input.status, status_reason: input.reason, updated_at: now }).where('cip13', '=', input.cip13).where('batch', '=', input.batch).execute()
      await audit(tx, actor, { action: 'serialization.batch.status', objectType: 'serial_batch', objectId: `${input.cip13}/${input.batch}`, changes: { status: [before.status, input.status], reason: input.reason } }, now)
    }
    return { result: before.status, changed, blocks: input.status !== 'active' }
  })
}

/** The lab sets the status of a whole product (every batch follows; their own statuses apply again once active). */
export async function setProductStatus(app: FastifyInstance, actor: Actor & { org: string }, input: { cip13: string; status: BatchStatus; reason: string | null }, now: Date) {
  return changeFacts(app, async (tx) => {
    await assertLabProduct(tx, actor.org, input.cip13)
    const before = await tx.selectFrom('serial_products').select(['status']).where('cip13', '=', input.cip13).forUpdate().executeTakeFirst()
    const previous = before?.status ?? 'active'
    const changed = previous !== input.status
    if (changed) {
      await tx
        .insertInto('serial_products')
        .values({ cip13: input.cip13, lab_id: actor.org, status: input.status, status_reason: input.reason, updated_at: now })
        .onConflict((oc) => oc.column('cip13').doUpdateSet({ status: input.status, status_reason: input.reason, lab_id: actor.org, updated_at: now }))
        .execute()
      await audit(tx, actor, { action: 'serialization.product.status', objectType: 'serial_product', objectId: input.cip13, changes: { status: [previous, input.status], reason: input.reason } }, now)
    }
    // A first serial_products row also puts the product under serialization: a change the instances must load.
    return { result: previous, changed: changed || !before, blocks: input.status !== 'active' }
  })
}

/** A YYYY-MM-DD of ours as an SQL literal (checked: it is spliced into the statement). */
function dateLiteral(day: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new Error(`not a date: ${day}`)
  return `'${day}'::date`
}

export interface BatchFigures {
  product: string
  batch: string
  expiry: string
  /** What its packs answer (dispensation/rule.ts). */
  status: BatchStatus
  labStatus: BatchStatus
  statusReason: string | null
  productStatus: BatchStatus
  recalls: string[]
  packs: number
  byState: Record<string, number>
}

/** Batches of a product with their counts per pack state; `after`: keyset on the batch number. */
export async function batchFigures(db: Db, cip13: string, opts: { batch?: string; after?: string; limit: number; today: string }): Promise<BatchFigures[]> {
  let q = db
    .selectFrom('serial_batches as b')
    .leftJoin('serial_products as sp', 'sp.cip13', 'b.cip13')
    .select(['b.batch', 'b.expiry', 'b.status', 'b.status_reason', 'sp.status as product_status'])
    .select(sql<Blocking | null>`${sql.raw(blockingSql({ cip13: 'b.cip13', batch: 'b.batch', batchStatus: 'b.status', productStatus: 'sp.status', expiry: 'b.expiry', today: dateLiteral(opts.today) }))}`.as('blocking'))
    .select(sql<string[]>`array(select d.reference from dispensation_blocks d where d.cip13 = b.cip13 and d.batch = upper(b.batch) order by d.reference)`.as('recalls'))
    .where('b.cip13', '=', cip13)
    .orderBy('b.batch')
    .limit(opts.limit)
  if (opts.batch !== undefined) q = q.where('b.batch', '=', opts.batch)
  if (opts.after !== undefined) q = q.where('b.batch', '>', opts.after)
  const batches = await q.execute()
  if (batches.length === 0) return []
  const counts = await db
    .selectFrom('packs')
    .select(['batch', 'state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('cip13', '=', cip13)
    .where('batch', 'in', batches.map((b) => b.batch))
    .groupBy(['batch', 'state'])
    .execute()
  return batches.map((b) => {
    const byState: Record<string, number> = {}
    for (const c of counts) if (c.batch === b.batch) byState[c.state] = Number(c.n)
    return {
      product: cip13,
      batch: b.batch,
      expiry: b.expiry,
      status: b.blocking ?? 'active',
      labStatus: b.status,
      statusReason: b.status_reason,
      productStatus: b.product_status ?? 'active',
      recalls: b.recalls ?? [],
      packs: Object.values(byState).reduce((a, n) => a + n, 0),
      byState,
    }
  })
}


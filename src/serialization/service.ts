import { randomUUID } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import type { Static } from 'typebox'
import { type Actor, audit } from '../platform/audit.ts'
import type { Principal } from '../platform/auth.ts'
import type { DatabaseHandle } from '../platform/db/index.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError, defineErrors, errorDef, notFound } from '../platform/errors.ts'
import { parisDay } from '../platform/paris-time.ts'
import type { ReturnCodeName } from './codes.ts'
import type { ChangeBatcher } from './change-batch.ts'
import type { BatchStatus, PackState } from './db.ts'
import './db.ts'
import { type FieldError, type Gs1Error, parseDataMatrix, parsePackFields } from './gs1.ts'
import type { PackUploadReport } from './schemas.ts'

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
export const ACTIONS = ['supply', 'destroy', 'stolen', 'sample', 'free_sample', 'lock', 'export', 'unlock', 'undo'] as const
export type Action = (typeof ACTIONS)[number]
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
    return { ok: true, pack: { cip13: v.cip13, gtin: v.gtin, serial: v.serial!, batch: v.batch!, expiry: v.expiry! } }
  }
  const r = parsePackFields(input, now)
  if (!r.ok) return { ok: false, errors: r.errors.map((e: FieldError) => ({ field: e.field, code: e.code, fr: e.fr, en: e.en })) }
  return { ok: true, pack: { cip13: r.value.cip13, gtin: r.value.gtin, serial: r.value.serial, batch: r.value.batch, expiry: r.value.expiry } }
}


// ---- verification (read-only) ----------------------------------------------------------------------------

interface PackRow {
  product_known: boolean | null
  state: PackState | null
  batch: string | null
  state_at: Date | null
  last_txn: string | null
  expiry: string | null
  batch_status: BatchStatus | null
  product_status: BatchStatus | null
  /** When the pack is supplied: the organisation that supplied it (never shown: it decides the alert). */
  supplied_by?: string | null
}

// One statement whatever the outcome: whether the product has packs at all, the pack, its batch, the product status.
const PACK_SQL = `
  select exists (select 1 from serial_batches where cip13 = $1) as product_known,
         p.state, p.batch, p.state_at, p.last_txn, b.expiry, b.status as batch_status, sp.status as product_status,
         case when p.state = 'supplied' then (select t.org_id from pack_transactions t where t.cip13 = p.cip13 and t.id = p.last_txn and t.serial = p.serial) end as supplied_by
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
  /** The alert raised by this answer (alerts.ts): quote it to the lab. */
  alertReference?: string
  /**
   * ALREADY_INACTIVE for a pack that another organisation supplied (dispensed): the domain's "already dispensed
   * elsewhere" signal, a possible duplicated serial (falsification), so it raises an alert. Never for the
   * organisation that supplied it (its own retries and re-scans).
   */
  dispensedElsewhere?: boolean
}

function blockingStatus(row: PackRow, today: string): BatchStatus | null {
  if (row.product_status && row.product_status !== 'active') return row.product_status
  if (row.batch_status && row.batch_status !== 'active') return row.batch_status
  if (row.expiry && row.expiry < today) return 'expired'
  return null
}
const BLOCKED_CODE: Record<Exclude<BatchStatus, 'active'>, ReturnCodeName> = { recalled: 'BATCH_RECALLED', withdrawn: 'WITHDRAWN', expired: 'EXPIRED' }

export function packView(ref: PackRef, row: PackRow | null, today: string): PackResult['pack'] {
  const blocked = row?.state ? blockingStatus(row, today) : null
  const state = !row?.state ? 'not_found' : row.state !== 'active' ? row.state : (blocked ?? 'active')
  return {
    product: ref.cip13,
    gtin: ref.gtin,
    serial: ref.serial,
    batch: ref.batch,
    expiry: ref.expiry,
    state,
    batchStatus: row?.state ? (row.product_status && row.product_status !== 'active' ? row.product_status : row.batch_status) : null,
    dispensable: state === 'active',
  }
}

/** What the repository says about the scanned pack: data checks first (a mismatch may be a falsification), then status. */
function judge(ref: PackRef, row: PackRow | null, today: string): ReturnCodeName {
  if (!ref.cip13 || !row?.product_known) return 'UNKNOWN_PRODUCT'
  if (!row.state) return 'UNKNOWN_SERIAL'
  if (row.batch !== ref.batch) return 'BATCH_MISMATCH'
  if (row.expiry !== ref.expiry) return 'EXPIRY_MISMATCH'
  const blocked = blockingStatus(row, today)
  if (blocked) return BLOCKED_CODE[blocked as Exclude<BatchStatus, 'active'>]
  if (row.state !== 'active') return 'ALREADY_INACTIVE'
  return 'PACK_ACTIVE'
}

export async function readPack(database: DatabaseHandle, ref: PackRef): Promise<PackRow | null> {
  if (!ref.cip13) return null
  const rows = await database.prepared<PackRow>('serial_pack', PACK_SQL, [ref.cip13, ref.serial])
  return rows[0] ?? null
}

/** Read-only verification, without logging (the routes use verify-batch.ts, which logs in the same statement). */
export async function verifyPack(database: DatabaseHandle, ref: PackRef, now: Date, org?: string): Promise<PackResult> {
  const today = parisDay(now)
  const row = await readPack(database, ref)
  const code = judge(ref, row, today)
  return { ok: code === 'PACK_ACTIVE', code, pack: packView(ref, row, today), ...(org !== undefined && elsewhere(code, row, org) ? { dispensedElsewhere: true } : {}) }
}

/** A pack supplied by another organisation than the one asking (see PackResult.dispensedElsewhere). */
const elsewhere = (code: ReturnCodeName, row: PackRow | null, org: string) =>
  code === 'ALREADY_INACTIVE' && row?.state === 'supplied' && !!row.supplied_by && row.supplied_by !== org

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
      and ($8::boolean or (b.status = 'active' and b.expiry >= $9::date
           and not exists (select 1 from serial_products sp where sp.cip13 = p.cip13 and sp.status <> 'active')))
    returning p.cip13, p.serial, b.status as batch_status, (select sp.status from serial_products sp where sp.cip13 = p.cip13) as product_status
  ), t as (
    insert into pack_transactions (cip13, id, serial, action, from_state, to_state, org_id, user_id, role, undoes, at)
    select cip13, $5, serial, $10, 'active', $3, $11, $12, $13, null, $4 from u
    returning id
  ), s as (
    insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
    select cip13, $14::uuid, $4, serial, $6, $7::date, $10, 'STATE_CHANGED', $13, $15::text, $5, null from u
  )
  select t.id, u.batch_status, u.product_status from t, u`

// Undo: the pack must still be in the state the named transaction set, that transaction must be its last change,
// made by the same organisation and user less than 10 days ago, and the batch and product must not be blocked.
const UNDO_SQL = `
  with o as (
    select t.id, t.to_state from pack_transactions t
    where t.cip13 = $1 and t.id = $3 and t.serial = $2 and t.org_id = $4 and t.user_id = $5
      and t.at > $6 and t.to_state = any($7::text[])
  ), u as (
    update packs p set state = 'active', state_at = $8, last_txn = $9
    from o, serial_batches b
    where p.cip13 = $1 and p.serial = $2 and p.last_txn = o.id and p.state = o.to_state
      and b.cip13 = p.cip13 and b.batch = p.batch
      and p.batch = $10 and b.expiry = $11::date
      and b.status = 'active' and b.expiry >= $12::date
      and not exists (select 1 from serial_products sp where sp.cip13 = p.cip13 and sp.status <> 'active')
    returning p.cip13, p.serial, o.to_state
  ), t as (
    insert into pack_transactions (cip13, id, serial, action, from_state, to_state, org_id, user_id, role, undoes, at)
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
 * UPDATE, its transaction row and its pseudonymised scan-log row (`pseudonym`), committed together. Refusals are
 * diagnosed with a second read and logged by the caller (alerts.ts recordScan), as they may raise an alert.
 */
export async function changePackState(database: DatabaseHandle, principal: Principal, request: ChangeRequest, now: Date, pseudonym: string, batcher?: ChangeBatcher): Promise<ChangeOutcome> {
  const { pack: ref, action } = request
  const today = parisDay(now)
  if (!ref.cip13) return { outcome: { ok: false, code: 'UNKNOWN_PRODUCT', pack: packView(ref, null, today) }, logged: false }
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
          ? await batcher.change({ principal, cip13: ref.cip13, serial: ref.serial, batch: ref.batch, expiry: ref.expiry, target, action, force, id, scanId: randomUUID(), pseudonym, now, today })
          : (
              await database.prepared<{ id: string; batch_status: BatchStatus; product_status: BatchStatus | null }>('serial_change', CHANGE_SQL, [
                ref.cip13, ref.serial, target, now, id, ref.batch, ref.expiry, force, today, action, principal.org, principal.user, principal.role, randomUUID(), pseudonym,
              ])
            )[0]
      if (done) {
        const row: PackRow = { product_known: true, state: target, batch: ref.batch, state_at: now, last_txn: id, expiry: ref.expiry, batch_status: done.batch_status, product_status: done.product_status }
        return { outcome: { ok: true, code: 'STATE_CHANGED', pack: packView(ref, row, today), transactionId: id }, logged: true }
      }
      const row = await readPack(database, ref)
      const code = diagnoseChange(action, ref, row, today)
      if (code) return { outcome: { ok: false, code, pack: packView(ref, row, today), ...(elsewhere(code, row, principal.org) ? { dispensedElsewhere: true } : {}) }, logged: false }
      continue
    }
    let rows: Array<{ id: string }> = []
    if (request.transactionId && UUID.test(request.transactionId)) {
      const states = action === 'unlock' ? ['locked'] : UNDOABLE
      rows = await database.prepared('serial_undo', UNDO_SQL, [
        ref.cip13, ref.serial, request.transactionId, principal.org, principal.user, new Date(now.getTime() - UNDO_WINDOW_MS), states, now, id, ref.batch, ref.expiry, today, action, principal.role,
      ])
    }
    const row = await readPack(database, ref)
    if (rows[0]) return { outcome: { ok: true, code: 'STATE_CHANGED', pack: packView(ref, row, today), transactionId: id, undid: request.transactionId! }, logged: false }
    const code = await diagnoseUndo(database.db, principal, request, row, today, now)
    if (code) return { outcome: { ok: false, code, pack: packView(ref, row, today) }, logged: false }
  }
  throw new Error('pack state change: no outcome after 3 attempts')
}

function diagnoseChange(action: Action, ref: PackRef, row: PackRow | null, today: string): ReturnCodeName | null {
  const code = judge(ref, row, today)
  if (code === 'PACK_ACTIVE') return null
  if (['BATCH_RECALLED', 'WITHDRAWN', 'EXPIRED'].includes(code) && ALLOWED_WHEN_BLOCKED.includes(action)) {
    return row!.state !== 'active' ? 'ALREADY_INACTIVE' : null
  }
  return code
}

async function diagnoseUndo(db: Db, principal: Principal, request: ChangeRequest, row: PackRow | null, today: string, now: Date): Promise<ReturnCodeName | null> {
  const ref = request.pack
  const code = judge(ref, row, today)
  if (['UNKNOWN_PRODUCT', 'UNKNOWN_SERIAL', 'BATCH_MISMATCH', 'EXPIRY_MISMATCH'].includes(code)) return code
  if (row!.state === 'active') return 'STATUS_ALREADY_SET'
  if (FINAL.includes(row!.state!)) return 'UNDO_NOT_ALLOWED'
  if (!request.transactionId || !UUID.test(request.transactionId) || row!.last_txn !== request.transactionId) return 'UNKNOWN_TRANSACTION'
  const txn = await db
    .selectFrom('pack_transactions')
    .select(['org_id', 'user_id', 'to_state', 'at'])
    .where('cip13', '=', ref.cip13!)
    .where('id', '=', request.transactionId)
    .where('serial', '=', ref.serial)
    .executeTakeFirst()
  if (!txn) return 'UNKNOWN_TRANSACTION'
  // Another organisation's change: the undo code, never its details (who, when).
  if (txn.org_id !== principal.org) return 'UNDO_OTHER_ORGANISATION'
  if (txn.user_id !== principal.user) return 'UNDO_OTHER_USER'
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
  await tx
    .insertInto('serial_batches')
    .values({ cip13: input.cip13, batch: input.batch, lab_id: labId, expiry: input.expiry, created_at: now, updated_at: now })
    .onConflict((oc) => oc.columns(['cip13', 'batch']).doNothing())
    .execute()
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
  return db.transaction().execute(async (tx) => {
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
 * Sets a batch's status. Used by the lab's route and meant for DP-Rappels too (a recall validated there calls it
 * inside its own transaction, so both services share one truth). Returns the previous status, or null if unknown.
 */
export async function setBatchStatus(tx: Transaction<DB>, actor: Actor, input: { cip13: string; batch: string; status: BatchStatus; reason: string | null }, now: Date) {
  const before = await tx.selectFrom('serial_batches').select(['status']).where('cip13', '=', input.cip13).where('batch', '=', input.batch).forUpdate().executeTakeFirst()
  if (!before) return null
  if (before.status !== input.status) {
    await tx.updateTable('serial_batches').set({ status: input.status, status_reason: input.reason, updated_at: now }).where('cip13', '=', input.cip13).where('batch', '=', input.batch).execute()
    await audit(tx, actor, { action: 'serialization.batch.status', objectType: 'serial_batch', objectId: `${input.cip13}/${input.batch}`, changes: { status: [before.status, input.status], reason: input.reason } }, now)
  }
  return before.status
}

export async function setProductStatus(tx: Transaction<DB>, actor: Actor & { org: string }, input: { cip13: string; status: BatchStatus; reason: string | null }, now: Date) {
  const before = await tx.selectFrom('serial_products').select(['status']).where('cip13', '=', input.cip13).forUpdate().executeTakeFirst()
  const previous = before?.status ?? 'active'
  if (previous !== input.status) {
    await tx
      .insertInto('serial_products')
      .values({ cip13: input.cip13, lab_id: actor.org, status: input.status, status_reason: input.reason, updated_at: now })
      .onConflict((oc) => oc.column('cip13').doUpdateSet({ status: input.status, status_reason: input.reason, lab_id: actor.org, updated_at: now }))
      .execute()
    await audit(tx, actor, { action: 'serialization.product.status', objectType: 'serial_product', objectId: input.cip13, changes: { status: [previous, input.status], reason: input.reason } }, now)
  }
  return previous
}

export interface BatchFigures {
  product: string
  batch: string
  expiry: string
  status: BatchStatus
  statusReason: string | null
  productStatus: BatchStatus
  packs: number
  byState: Record<string, number>
}

/** Batches of a product with their counts per pack state; `after`: keyset on the batch number. */
export async function batchFigures(db: Db, cip13: string, opts: { batch?: string; after?: string; limit: number }): Promise<BatchFigures[]> {
  let q = db
    .selectFrom('serial_batches as b')
    .leftJoin('serial_products as sp', 'sp.cip13', 'b.cip13')
    .select(['b.batch', 'b.expiry', 'b.status', 'b.status_reason', 'sp.status as product_status'])
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
      status: b.status,
      statusReason: b.status_reason,
      productStatus: b.product_status ?? 'active',
      packs: Object.values(byState).reduce((a, n) => a + n, 0),
      byState,
    }
  })
}


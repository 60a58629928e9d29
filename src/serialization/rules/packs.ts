/**
 * A pack as given (a DataMatrix or separate fields), as the repository holds it, and what the repository answers
 * about it: the return code (judge) and the pack as shown (packView). No database here: the rows are read by
 * queries/packs.ts and queries/verify-batch.ts.
 */
import { BLOCKED_CODE, type Blocking } from '../../dispensation/rule.ts'
import type { BatchStatus, PackState } from '../db.ts'
import type { ReturnCodeName } from './codes.ts'
import { type FieldError, type Gs1Error, parseDataMatrix, parsePackFields } from './gs1.ts'

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

export interface PackRow {
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
  /** The alert raised by this answer (use-cases/alert-raising.ts): quote it to the lab. */
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
export function judge(ref: PackRef, row: PackRow | null): ReturnCodeName {
  if (!ref.cip13 || !row?.product_known) return 'UNKNOWN_PRODUCT'
  if (!row.state) return row.batch_known === false ? 'BATCH_UNKNOWN' : 'UNKNOWN_SERIAL'
  if (row.batch !== ref.batch) return 'BATCH_MISMATCH'
  if (row.expiry !== ref.expiry) return 'EXPIRY_MISMATCH'
  if (row.blocking) return BLOCKED_CODE[row.blocking]
  if (row.state !== 'active') return 'ALREADY_INACTIVE'
  return 'PACK_ACTIVE'
}

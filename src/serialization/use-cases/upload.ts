/**
 * The lab's uploads of a batch's packs, each in one transaction: the JSON upload (up to 10,000 serials) and the
 * streamed one (one serial per line of a text body, inserted in chunks as the lines arrive: memory stays bounded,
 * and bad input changes nothing). Both are idempotent: a serial already in this batch is unchanged; in another
 * batch of the product, a conflict left as it was.
 */
import type { Readable } from 'node:stream'
import type { Kysely, Transaction } from 'kysely'
import type { Static } from 'typebox'
import { type Actor, audit } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import { AppError, type FieldError } from '../../platform/errors.ts'
import type { Lang, Text } from '../../platform/i18n.ts'
import '../errors.ts'
import * as q from '../queries/lab.ts'
import { MAX_VARIABLE_LENGTH } from '../rules/gs1.ts'
import { INVALID_LINES_LISTED, LineSplitter, lineError, MAX_STREAMED_SERIALS, SERIAL, STREAM_CHUNK } from '../rules/stream-upload.ts'
import { type PackStreamReport as PackStreamReportSchema, type PackUploadReport, STREAM_CONFLICTS_LISTED } from '../schemas/packs.ts'
import { assertLabProduct, ensureBatch } from './lab.ts'

export interface UploadInput {
  cip13: string
  batch: string
  expiry: string
  serials: string[]
}

export type UploadReport = Static<typeof PackUploadReport>
export type PackStreamReport = Static<typeof PackStreamReportSchema>

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
  const inserted = await q.insertPacks(tx, target, distinct, now)
  const created = inserted.rows.length
  if (created === distinct.length) return { distinct: distinct.length, created, unchanged: 0, conflicts: [] }
  // A second statement (a new snapshot): it sees the rows a concurrent upload committed while this insert waited.
  const fresh = new Set(inserted.rows.map((r) => r.serial))
  const rest = distinct.filter((s) => !fresh.has(s))
  const existing = await q.batchesOfSerials(tx, target.cip13, rest)
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

// ---- the streamed upload ------------------------------------------------------------------------------------

export interface StreamUploadInput {
  cip13: string
  batch: string
  expiry: string
}

/**
 * Uploads the serials of one batch read from `body`, one per line, in one transaction: the product must be the
 * lab's (404), the batch is created or must have this expiry (409), then the lines are read and inserted in chunks
 * of STREAM_CHUNK as they arrive. Any invalid line: the rest is still read to list them all (400), and nothing is
 * recorded. Same semantics as uploadPacks, with one difference: a serial repeated in the body counts as `unchanged`
 * (its first line created it) rather than apart, so that no set of the serials seen has to be kept in memory.
 */
export async function uploadPackStream(
  db: Kysely<DB>,
  actor: Actor & { org: string },
  input: StreamUploadInput,
  body: Readable,
  opts: { maxBytes: number; now: Date; lang: Lang },
): Promise<PackStreamReport> {
  const { now, lang } = opts
  return inTransaction(db, async (tx) => {
    await assertLabProduct(tx, actor.org, input.cip13)
    await ensureBatch(tx, actor.org, input, now)

    const report: PackStreamReport = { product: input.cip13, batch: input.batch, expiry: input.expiry, received: 0, created: 0, unchanged: 0, conflictCount: 0, conflicts: [] }
    const errors: FieldError[] = []
    let invalid = 0
    let pending: string[] = []
    const splitter = new LineSplitter((number, bytes, length) => {
      if (length === 0) return // empty line (or the end of a body ending with a newline)
      if (++report.received > MAX_STREAMED_SERIALS) throw new AppError('TOO_MANY_SERIALS', { max: MAX_STREAMED_SERIALS.toLocaleString(lang === 'fr' ? 'fr-FR' : 'en') })
      const text = length <= MAX_VARIABLE_LENGTH ? bytes.toString('latin1') : ''
      if (SERIAL.test(text)) {
        if (invalid === 0) pending.push(text)
      } else if (++invalid <= INVALID_LINES_LISTED) {
        const error = lineError(number, bytes, length)
        errors.push({ field: `body.line.${number}`, code: error.code, message: error.text[lang] })
      }
    })
    const insert = async (serials: string[]) => {
      const chunk = await insertSerialChunk(tx, input, serials, now)
      report.created += chunk.created
      // Per line, not per distinct serial: a repeated line is unchanged, or a conflict again.
      let conflicting = 0
      if (chunk.conflicts.length > 0) {
        const elsewhere = new Map(chunk.conflicts.map((c) => [c.serial, c.batch]))
        for (const serial of serials) {
          const batch = elsewhere.get(serial)
          if (batch === undefined) continue
          conflicting++
          if (report.conflicts.length < STREAM_CONFLICTS_LISTED) report.conflicts.push({ serial, batch })
        }
      }
      report.conflictCount += conflicting
      report.unchanged += serials.length - chunk.created - conflicting
    }

    // The stream is not destroyed when reading stops early (413): the answer must still reach the client.
    const chunks = body.iterator({ destroyOnReturn: false })
    let bytes = 0
    for (;;) {
      let next: IteratorResult<Buffer | string>
      try {
        next = await chunks.next()
      } catch {
        throw new AppError('MALFORMED_BODY', {}, { detail: INTERRUPTED[lang] })
      }
      if (next.done) break
      const buf = typeof next.value === 'string' ? Buffer.from(next.value) : next.value
      bytes += buf.length
      if (bytes > opts.maxBytes) throw new AppError('PAYLOAD_TOO_LARGE')
      splitter.push(buf)
      if (invalid > 0) {
        pending = []
        continue
      }
      while (pending.length >= STREAM_CHUNK) await insert(pending.splice(0, STREAM_CHUNK))
    }
    splitter.end()

    if (invalid > 0) throw new AppError('VALIDATION_FAILED', { count: invalid }, { errors, invalidLines: invalid })
    if (report.received === 0) {
      throw new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field: 'body', code: 'FIELD_EMPTY', message: EMPTY[lang] }], invalidLines: 0 })
    }
    if (pending.length > 0) await insert(pending)
    if (report.created > 0 || report.conflictCount > 0) {
      const { conflicts: _listed, conflictCount, ...figures } = report
      await audit(tx, actor, { action: 'serialization.packs.uploaded', objectType: 'serial_batch', objectId: `${input.cip13}/${input.batch}`, changes: { ...figures, conflicts: conflictCount, streamed: true } }, now)
    }
    return report
  })
}

const INTERRUPTED: Text = {
  fr: 'Le corps de la requête a été interrompu avant sa fin : rien n’a été enregistré ; renvoyez-le en entier.',
  en: 'The request body was cut off before its end: nothing was recorded; send it again, whole.',
}
const EMPTY: Text = {
  fr: 'aucun numéro de série : envoyez-en au moins un, un par ligne',
  en: 'no serial number: send at least one, one per line',
}


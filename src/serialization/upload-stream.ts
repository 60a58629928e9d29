// The streamed upload of a batch's serials: one serial per line of a text body of up to a few million lines,
// inserted in chunks as the lines arrive (memory stays bounded), all in one transaction (bad input changes nothing).
// The line splitter is written here rather than taken from node:readline: readline keeps a whole line in memory
// however long it is (one 24 MB body without a newline would be held as one string) and decodes every line to a
// string first; this one keeps at most KEPT_BYTES of a line and hands the lines of a buffer on without copying.
import type { Readable } from 'node:stream'
import type { Kysely } from 'kysely'
import type { Static } from 'typebox'
import { type Actor, audit } from '../platform/audit.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError, defineErrors, errorDef, type FieldError } from '../platform/errors.ts'
import type { Lang, Text } from '../platform/i18n.ts'
import { describeChar, isSet82, MAX_VARIABLE_LENGTH } from './rules/gs1.ts'
import { type PackStreamReport as PackStreamReportSchema, Serial, STREAM_CONFLICTS_LISTED } from './schemas/packs.ts'
import { assertLabProduct, ensureBatch, insertSerialChunk } from './service.ts'
import { inTransaction } from '../platform/db/transaction.ts'

/**
 * At most this many serials (non-empty lines) in one streamed upload. The body is read only as fast as it is
 * inserted, and the whole request must arrive within the server's request timeout (server.ts): measured here, a
 * million new serials take about 22 s, the same million sent again about 39 s. A batch of several million boxes
 * is sent in several uploads (each idempotent). Beyond: 413, nothing recorded.
 */
export const MAX_STREAMED_SERIALS = 1_000_000
/** The body limit of the streamed upload (route option bodyLimit): room for MAX_STREAMED_SERIALS lines of 20 characters with CRLF. */
export const STREAM_BODY_LIMIT = 24 * 1024 * 1024
/** Serials per insert statement (one array parameter): the memory held is about one chunk. */
export const STREAM_CHUNK = 10_000
/** Invalid lines listed in a 400 answer (`invalidLines` counts them all). */
export const INVALID_LINES_LISTED = 100

defineErrors({
  TOO_MANY_SERIALS: errorDef(413, 'Trop de numéros de série', 'Too many serial numbers', (p) => ({
    fr: `Un envoi contient au plus ${p.max} numéros de série : rien n’a été enregistré. Découpez le lot en plusieurs envois (les numéros déjà reçus sont comptés « unchanged »).`,
    en: `One upload holds at most ${p.max} serial numbers: nothing was recorded. Split the batch into several uploads (serials already received count as "unchanged").`,
  })),
})

export type PackStreamReport = Static<typeof PackStreamReportSchema>

// ---- lines ----------------------------------------------------------------------------------------------

const LF = 0x0a
const CR = 0x0d
/** Enough of a line to judge it: 20 characters of up to 4 UTF-8 bytes, a byte-order mark and a CR. */
const KEPT_BYTES = MAX_VARIABLE_LENGTH * 4 + 3 + 1
/** The same rule as the JSON upload's `Serial` schema: 1 to 20 characters of the GS1 character set 82 (all ASCII). */
const SERIAL = new RegExp((Serial as { pattern?: string }).pattern!)

/**
 * Splits a byte stream into lines ending with \n (a \r before it is part of the line end); a last line without \n
 * counts too. Each line is handed on with its 1-based number (empty lines included in the numbering) and its first
 * KEPT_BYTES bytes; `length` is its whole length in bytes. A UTF-8 byte-order mark opening the body is dropped.
 */
export class LineSplitter {
  private parts: Buffer[] = []
  private kept = 0
  private length = 0
  private last = -1
  private number = 0

  constructor(private readonly onLine: (number: number, bytes: Buffer, length: number) => void) {}

  push(buf: Buffer) {
    let start = 0
    for (;;) {
      const nl = buf.indexOf(LF, start)
      const end = nl === -1 ? buf.length : nl
      if (nl !== -1 && this.length === 0) {
        // The usual case: a whole line inside this buffer, handed on without copying.
        this.emit(buf.subarray(start, end), end - start, end > start ? buf[end - 1]! : -1, true)
      } else {
        this.add(buf.subarray(start, end))
        if (nl === -1) return
        this.flush(true)
      }
      start = nl + 1
      if (start === buf.length) return
    }
  }

  /** The end of the body: a last line without \n. */
  end() {
    if (this.length > 0) this.flush(false)
  }

  private add(part: Buffer) {
    if (part.length === 0) return
    if (this.kept < KEPT_BYTES) {
      const take = part.subarray(0, KEPT_BYTES - this.kept)
      this.parts.push(take)
      this.kept += take.length
    }
    this.length += part.length
    this.last = part[part.length - 1]!
  }

  private flush(terminated: boolean) {
    const bytes = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts)
    const { length, last } = this
    this.parts = []
    this.kept = 0
    this.length = 0
    this.last = -1
    this.emit(bytes, length, last, terminated)
  }

  private emit(bytes: Buffer, length: number, last: number, terminated: boolean) {
    this.number++
    if (terminated && last === CR) {
      length--
      if (bytes.length > length) bytes = bytes.subarray(0, length)
    }
    if (this.number === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
      bytes = bytes.subarray(3)
      length -= 3
    }
    this.onLine(this.number, bytes, length)
  }
}

/** Why a non-empty line that is not a serial is not one. Never echoes the line: at most the offending character. */
function lineError(number: number, bytes: Buffer, length: number): { code: string; text: Text } {
  const tooLong = { code: 'FIELD_TOO_LONG', text: { fr: `ligne ${number} : numéro de série de plus de ${MAX_VARIABLE_LENGTH} caractères`, en: `line ${number}: serial number longer than ${MAX_VARIABLE_LENGTH} characters` } }
  if (length > MAX_VARIABLE_LENGTH * 4) return tooLong
  const chars = [...bytes.toString('utf8')]
  if (chars.length > MAX_VARIABLE_LENGTH) return tooLong
  const at = chars.findIndex((c) => !isSet82(c))
  if (at < 0) return tooLong // not reached: 20 characters of the set, all ASCII, would have been a serial
  const bad = chars[at]!
  return {
    code: 'INVALID_CHARACTER',
    text: {
      fr: `ligne ${number} : caractère ${describeChar(bad)} en position ${at + 1}, hors du jeu GS1 (lettres, chiffres, ponctuation simple ; pas d’espace)`,
      en: `line ${number}: character ${describeChar(bad)} at position ${at + 1}, outside the GS1 character set (letters, digits, simple punctuation; no space)`,
    },
  }
}

// ---- the upload -------------------------------------------------------------------------------------------

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

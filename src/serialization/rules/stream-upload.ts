// The streamed upload's limits, and how its body is read: split into lines, each a serial or an invalid line.
// The line splitter is written here rather than taken from node:readline: readline keeps a whole line in memory
// however long it is (one 24 MB body without a newline would be held as one string) and decodes every line to a
// string first; this one keeps at most KEPT_BYTES of a line and hands the lines of a buffer on without copying.
import type { Text } from '../../platform/i18n.ts'
import { Serial } from '../schemas/packs.ts'
import { describeChar, isSet82, MAX_VARIABLE_LENGTH } from './gs1.ts'

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

// ---- lines ----------------------------------------------------------------------------------------------

const LF = 0x0a
const CR = 0x0d
/** Enough of a line to judge it: 20 characters of up to 4 UTF-8 bytes, a byte-order mark and a CR. */
const KEPT_BYTES = MAX_VARIABLE_LENGTH * 4 + 3 + 1
/** The same rule as the JSON upload's `Serial` schema: 1 to 20 characters of the GS1 character set 82 (all ASCII). */
export const SERIAL = new RegExp((Serial as { pattern?: string }).pattern!)

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
export function lineError(number: number, bytes: Buffer, length: number): { code: string; text: Text } {
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

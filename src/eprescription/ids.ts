import { randomBytes } from 'node:crypto'

/**
 * Typable identifiers: Crockford base 32 (no I, L, O, U; case-insensitive; I/L read as 1 and O as 0), with a
 * check character computed by the Damm algorithm over GF(32).
 *
 * Written by hand because no maintained library offers a check character in the Crockford alphabet that
 * catches adjacent transpositions (Crockford's own mod-37 symbol adds `*~$=U`, awkward to type and in URLs;
 * Luhn mod N misses some transpositions). Damm's quasigroup x∘y = 2·x ⊕ y in GF(2⁵) (polynomial x⁵+x²+1) is
 * totally anti-symmetric: every single-character substitution and every swap of two adjacent different
 * characters (the check character included) changes the result. The tests check both exhaustively.
 */
export const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const VALUE = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]))
VALUE.set('O', 0).set('I', 1).set('L', 1)

const times2 = (x: number) => ((x << 1) & 32 ? (x << 1) ^ 0b100101 : x << 1)
const op = (interim: number, digit: number) => times2(interim) ^ digit

function interim(values: number[]) {
  let i = 0
  for (const v of values) i = op(i, v)
  return i
}

export function checkCharacter(data: string): string {
  const values = [...data].map((c) => VALUE.get(c)!)
  return ALPHABET[times2(interim(values))]!
}

/** Upper case, separators removed, I/L → 1, O → 0; null when a character is outside the alphabet. */
export function normalise(input: string): string | null {
  const s = input.replace(/[\s-]/g, '').toUpperCase()
  let out = ''
  for (const c of s) {
    const v = VALUE.get(c)
    if (v === undefined) return null
    out += ALPHABET[v]
  }
  return out
}

export const isValidChecked = (normalised: string) => normalised.length > 1 && interim([...normalised].map((c) => VALUE.get(c)!)) === 0

function randomSymbols(n: number): string {
  const bytes = randomBytes(n)
  let s = ''
  for (const b of bytes) s += ALPHABET[b & 31]
  return s
}

export const ID_LENGTH = 12
export const ACCESS_CODE_LENGTH = 20

/** 11 random symbols (55 bits: the ID is not a secret) + check. */
export const newPrescriptionId = () => withCheck(randomSymbols(ID_LENGTH - 1))
/** 19 random symbols (95 bits) + check: a typo is caught before it counts as a wrong attempt. */
export const newAccessCode = () => withCheck(randomSymbols(ACCESS_CODE_LENGTH - 1))
export const withCheck = (data: string) => data + checkCharacter(data)

/** Groups of four separated by dashes, as printed. */
export const display = (s: string) => s.match(/.{1,4}/g)!.join('-')

export type ParseResult = { ok: true; value: string } | { ok: false; reason: 'length' | 'character' | 'check' }

export function parseChecked(input: string, length: number): ParseResult {
  const n = normalise(input)
  if (n === null) return { ok: false, reason: 'character' }
  if (n.length !== length) return { ok: false, reason: 'length' }
  if (!isValidChecked(n)) return { ok: false, reason: 'check' }
  return { ok: true, value: n }
}

export const QR_PREFIX = 'ORDO1'
export const qrPayload = (id: string, accessCode: string) => `${QR_PREFIX}:${id}:${accessCode}`

/**
 * The QR content: `ORDO1:<ID>:<access code>`. Anything else is refused as a whole; the content is never
 * echoed back (QR codes are attacker-controlled input).
 */
export function parseQr(content: string): { id: string; accessCode: string } | null {
  if (content.length > 64) return null
  const m = /^ORDO1:([0-9A-Za-z]{12}):([0-9A-Za-z]{20})$/.exec(content.trim())
  if (!m) return null
  const id = parseChecked(m[1]!, ID_LENGTH)
  const code = parseChecked(m[2]!, ACCESS_CODE_LENGTH)
  if (!id.ok || !code.ok) return null
  return { id: id.value, accessCode: code.value }
}

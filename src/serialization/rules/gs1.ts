/**
 * Strict reader of GS1 element strings as a DataMatrix scanner returns them (EU falsified-medicines packs).
 *
 * Written here rather than taken from npm: the published parsers (gs1-barcode-parser-mod and its forks) accept
 * serials and batches longer than 20 characters, keep the last of two duplicated AIs, skip unknown AIs or
 * guess their length, accept characters outside the GS1 character set 82, report errors as thrown strings that
 * echo the input, and know nothing about CIP13 or the AZERTY/Caps-Lock corruption that keyboard-wedge scanners
 * produce in French pharmacies. Most verification alerts are scanning errors, so this reader refuses anything
 * ambiguous, says precisely what is wrong and where, and never repeats the scanned text in its messages (it
 * may hold anything: the messages are shown to pharmacists and logged).
 *
 * Accepted:
 * - an optional AIM symbology identifier: `]d2` (GS1 DataMatrix), `]Q3` (GS1 QR Code), `]C1` (GS1-128);
 *   `]D2`, `]q3`, `]c1` (case swapped by Caps Lock) and any other identifier are refused;
 * - the group separator ASCII 29 (FNC1), and these textual renderings that scanners and test tools emit:
 *   `{GS}`, `[GS]`, `^]`, `\x1d`, `\u001d` (case-insensitive). They cannot be part of a field, because `{`,
 *   `}`, `[`, `]`, `^` and `\` are outside the GS1 character set 82. `<GS>` is refused (with its own error):
 *   `<`, `G`, `S` and `>` are legal serial characters, so it is ambiguous;
 * - one leading separator (FNC1 in first position, as some scanners send it), a separator after a fixed-length
 *   field, one trailing separator and one trailing CR, LF or CRLF (the Enter key of a keyboard wedge);
 * - AIs 01 (GTIN-14, fixed 14 digits, check digit verified; 13 digits forming a valid CIP13 followed by a
 *   separator or the end are read as the GTIN 0 + CIP13), 17 (expiry YYMMDD, day 00 = last day of the month,
 *   century by the GS1 sliding window), 10 (batch, 1–20), 21 (serial, 1–20), 710–715 (national reimbursement
 *   numbers, NHRN, 1–20), in any order. A variable-length field ends at a separator or at the end.
 *
 * Refused, each with a code, a position (1-based, in the input as received) and a French and English message:
 * unknown AI, duplicated AI, missing AI, field too long (typically a missing separator: the message says so
 * when another AI seems to be swallowed), empty field, characters outside set 82, letters in the GTIN, bad
 * check digit, impossible date, trailing data after the last field, input too long, and keyboard corruption.
 */
import { cip13Problem, gs1CheckDigit, isCip13 } from '../../platform/identifiers.ts'
import type { Text } from '../../platform/i18n.ts'

export const GS = '\x1d'
/** No legitimate pack code is near this long (the four AIs and an NHRN fit in about 100). */
export const MAX_INPUT_LENGTH = 200
export const MAX_VARIABLE_LENGTH = 20

export type Gs1ErrorCode =
  | 'INPUT_EMPTY'
  | 'INPUT_TOO_LONG'
  | 'SYMBOLOGY_CORRUPTED'
  | 'SYMBOLOGY_UNSUPPORTED'
  | 'KEYBOARD_LAYOUT'
  | 'SEPARATOR_AMBIGUOUS'
  | 'INVALID_CHARACTER'
  | 'AI_EXPECTED'
  | 'UNKNOWN_AI'
  | 'DUPLICATE_AI'
  | 'MISSING_AI'
  | 'FIELD_EMPTY'
  | 'FIELD_TOO_LONG'
  | 'FIELD_TOO_SHORT'
  | 'GTIN_NOT_NUMERIC'
  | 'GTIN_CHECK_DIGIT'
  | 'CIP13_INVALID'
  | 'DATE_NOT_NUMERIC'
  | 'DATE_INVALID'
  | 'MISSING_SEPARATOR'

export interface Gs1Error extends Text {
  code: Gs1ErrorCode
  /** 1-based position in the input as received (0 when it concerns the whole input). */
  position: number
  ai?: string
}

export interface PackCode {
  /** GTIN-14 as read (0 + CIP13 for a French product). */
  gtin: string
  /** The CIP13 when the GTIN is 0 + a valid CIP13, else null (a foreign or non-medicine product). */
  cip13: string | null
  serial: string | null
  batch: string | null
  /** YYYY-MM-DD; day 00 is read as the last day of the month. */
  expiry: string | null
  /** National reimbursement numbers (AIs 710–715) when present. */
  nhrn: Array<{ ai: string; value: string }>
  /** Every element as read, in order. */
  ais: Array<{ ai: string; value: string }>
  symbology: ']d2' | ']Q3' | ']C1' | null
}

export type Gs1Result = { ok: true; value: PackCode } | { ok: false; errors: Gs1Error[] }

/** GS1 character set 82 (GS1 General Specifications, figure 7.11-1). */
const SET82 = /^[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]$/
export const isSet82 = (s: string) => s.length > 0 && isSet82Codes(s)

const FIXED: Record<string, number> = { '01': 14, '17': 6 }
const VARIABLE = new Set(['10', '21', '710', '711', '712', '713', '714', '715'])
const NAMES: Record<string, Text> = {
  '01': { fr: 'code produit (GTIN)', en: 'product code (GTIN)' },
  '17': { fr: 'date de péremption', en: 'expiry date' },
  '10': { fr: 'numéro de lot', en: 'batch number' },
  '21': { fr: 'numéro de série', en: 'serial number' },
}
const nameOf = (ai: string): Text => NAMES[ai] ?? { fr: `numéro national (NHRN, AI ${ai})`, en: `national number (NHRN, AI ${ai})` }

/** A character named without echoing it: printable ASCII in quotes, anything else as its code point. */
export function describeChar(c: string): string {
  const cp = c.codePointAt(0)!
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`
  return cp >= 0x21 && cp <= 0x7e ? `« ${c} » (${hex})` : hex
}

/** Keyboard wedge on an AZERTY layout without Shift: the digit row gives these characters. */
const AZERTY_DIGITS: Record<string, string> = { 'à': '0', '&': '1', 'é': '2', '"': '3', "'": '4', '(': '5', '-': '6', 'è': '7', '_': '8', 'ç': '9' }

const TEXT_SEPARATORS = ['{gs}', '[gs]', '^]', '\\x1d', '\\u001d']

interface Char {
  c: string
  /** 1-based position in the original input. */
  at: number
}

export interface ParseOptions {
  /** AIs that must be present; default: 01, 21, 10, 17 (a pack's unique identifier). */
  require?: string[]
  /** For the century of YYMMDD (GS1 sliding window); default: now. */
  now?: Date
}

export function parseDataMatrix(input: unknown, options: ParseOptions = {}): Gs1Result {
  return readWellFormed(input, options) ?? parseDataMatrixDetailed(input, options)
}

// ---- fast path: a well-formed scan, read without allocating per character -------------------------------

/** The AIs of a pack's unique identifier: what a verification requires unless told otherwise. */
export const PACK_AIS: readonly string[] = ['01', '21', '10', '17']
const SET82_CODES = new Uint8Array(128)
for (let c = 0; c < 128; c++) SET82_CODES[c] = SET82.test(String.fromCharCode(c)) ? 1 : 0
const isDigitCode = (c: number) => c >= 48 && c <= 57
const GS_CODE = 0x1d

/**
 * The common case, on the checkout's hot path (verification, dispensation check): an input with nothing to
 * report. Returns null at the first thing that is not plainly well formed (a written separator, a CIP13 in
 * place of the GTIN, a duplicated AI, anything the detailed reader would refuse or comment on), and the detailed
 * reader then gives the answer and its reasons. Both agree wherever this one answers (test/gs1.test.ts).
 */
function readWellFormed(input: unknown, options: ParseOptions): Gs1Result | null {
  if (typeof input !== 'string' || input.length === 0 || input.length > MAX_INPUT_LENGTH) return null
  let i = 0
  let symbology: PackCode['symbology'] = null
  if (input.charCodeAt(0) === 93 /* ] */) {
    const id = input.slice(0, 3)
    if (id !== ']d2' && id !== ']Q3' && id !== ']C1') return null
    symbology = id
    i = 3
  }
  let end = input.length
  if (input.endsWith('\r\n')) end -= 2
  else if (input.endsWith('\n') || input.endsWith('\r')) end -= 1
  if (i < end && input.charCodeAt(i) === GS_CODE) i++
  // Not a keyboard-corrupted start, nor an empty one: the detailed reader names those.
  if (i + 1 >= end || !isDigitCode(input.charCodeAt(i)) || !isDigitCode(input.charCodeAt(i + 1))) return null
  const ais: Array<{ ai: string; value: string }> = []
  let gtin: string | null = null
  let serial: string | null = null
  let batch: string | null = null
  let expiryRaw: string | null = null
  let expiry: string | null = null
  let nhrn = false
  while (i < end) {
    const c0 = input.charCodeAt(i)
    if (c0 === GS_CODE) {
      i++
      continue
    }
    const c1 = input.charCodeAt(i + 1)
    if (!isDigitCode(c0) || !isDigitCode(c1)) return null
    let ai = input.slice(i, i + 2)
    if (ai === '01' || ai === '17') {
      const len = ai === '01' ? 14 : 6
      if (i + 2 + len > end) return null
      for (let k = i + 2; k < i + 2 + len; k++) if (!isDigitCode(input.charCodeAt(k))) return null
      const value = input.slice(i + 2, i + 2 + len)
      if (ai === '01') {
        if (gtin !== null || Number(value[13]) !== gs1CheckDigit(value.slice(0, 13))) return null
        gtin = value
      } else {
        if (expiryRaw !== null) return null
        expiry = expiryDate(value, options.now ?? new Date())
        if (expiry === null) return null
        expiryRaw = value
      }
      ais.push({ ai, value })
      i += 2 + len
      continue
    }
    if (ai === '71') {
      const c2 = input.charCodeAt(i + 2)
      if (c2 < 48 || c2 > 53) return null
      ai = input.slice(i, i + 3)
    } else if (ai !== '10' && ai !== '21') return null
    let j = i + ai.length
    const from = j
    while (j < end && input.charCodeAt(j) !== GS_CODE) {
      const c = input.charCodeAt(j)
      if (c >= 128 || SET82_CODES[c] === 0) return null
      j++
    }
    if (j === from || j - from > MAX_VARIABLE_LENGTH) return null
    const value = input.slice(from, j)
    if (ai === '10') {
      if (batch !== null) return null
      batch = value
    } else if (ai === '21') {
      if (serial !== null) return null
      serial = value
    } else {
      if (ais.some((a) => a.ai === ai)) return null
      nhrn = true
    }
    ais.push({ ai, value })
    i = j
  }
  const required = options.require ?? PACK_AIS
  for (let k = 0; k < required.length; k++) {
    const ai = required[k]!
    const present = ai === '01' ? gtin !== null : ai === '10' ? batch !== null : ai === '21' ? serial !== null : ai === '17' ? expiryRaw !== null : ais.some((a) => a.ai === ai)
    if (!present) return null
  }
  const cip13 = gtin !== null && gtin.charCodeAt(0) === 48 && isCip13(gtin.slice(1)) ? gtin.slice(1) : null
  return {
    ok: true,
    value: {
      gtin: gtin ?? '',
      cip13,
      serial,
      batch,
      expiry,
      nhrn: nhrn ? ais.filter((a) => a.ai.startsWith('71')) : [],
      ais,
      symbology,
    },
  }
}

type Fail = (code: Gs1ErrorCode, position: number, fr: string, en: string, ai?: string) => void
/** An element as read, with the position of its AI in the input. */
interface Field {
  ai: string
  value: string
  at: number
}

/**
 * The full reader: every refusal with its code, position and messages. Exported for the tests. In three steps:
 * the input normalised to characters with their positions (normalise), its elements (readFields), then the AIs
 * the caller requires (requireAis); every refusal of a step is reported, a step that cannot go on ends the reading.
 */
export function parseDataMatrixDetailed(input: unknown, options: ParseOptions = {}): Gs1Result {
  const errors: Gs1Error[] = []
  const fail: Fail = (code, position, fr, en, ai) => {
    errors.push({ code, position, fr, en, ...(ai ? { ai } : {}) })
  }
  const normalised = normalise(input, fail)
  if (!normalised) return { ok: false, errors }
  const now = options.now ?? new Date()
  const { fields, complete } = readFields(normalised.chars, fail, now)
  // What followed an unreadable AI is unknown, not missing.
  if (complete) requireAis(fields, options.require ?? PACK_AIS, fail)
  if (errors.length > 0) return { ok: false, errors }

  const byAi = new Map(fields.map((a) => [a.ai, a.value]))
  const gtin = byAi.get('01') ?? ''
  const cip13 = gtin.startsWith('0') && isCip13(gtin.slice(1)) ? gtin.slice(1) : null
  return {
    ok: true,
    value: {
      gtin,
      cip13,
      serial: byAi.get('21') ?? null,
      batch: byAi.get('10') ?? null,
      expiry: byAi.has('17') ? expiryDate(byAi.get('17')!, now) : null,
      nhrn: fields.filter((a) => a.ai.startsWith('71')).map(({ ai, value }) => ({ ai, value })),
      ais: fields.map(({ ai, value }) => ({ ai, value })),
      symbology: normalised.symbology,
    },
  }
}

/**
 * The input as characters, each with its position as received: without its symbology identifier, its trailing
 * Enter and a leading FNC1, written separators read as GS. Null (after reporting why) when nothing can be read:
 * empty or too long, a foreign or corrupted symbology identifier, the ambiguous `<GS>`, an AZERTY-corrupted start.
 */
function normalise(input: unknown, fail: Fail): { chars: Char[]; symbology: PackCode['symbology'] } | null {
  if (typeof input !== 'string' || input.length === 0) {
    fail('INPUT_EMPTY', 0, 'Le code lu est vide : scannez de nouveau le DataMatrix.', 'The scanned code is empty: scan the DataMatrix again.')
    return null
  }
  if (input.length > MAX_INPUT_LENGTH) {
    fail('INPUT_TOO_LONG', 0, `Le code lu compte ${input.length} caractères (au plus ${MAX_INPUT_LENGTH}) : ce n’est pas un DataMatrix de boîte de médicament.`, `The scanned code has ${input.length} characters (at most ${MAX_INPUT_LENGTH}): this is not a medicine pack DataMatrix.`)
    return null
  }
  let start = 0
  let symbology: PackCode['symbology'] = null
  if (input.startsWith(']')) {
    const id = input.slice(0, 3)
    if (id === ']d2' || id === ']Q3' || id === ']C1') {
      symbology = id
      start = 3
    } else if (['d2', 'q3', 'c1'].includes(id.slice(1).toLowerCase())) {
      fail('SYMBOLOGY_CORRUPTED', 1, 'L’identifiant de symbologie a sa casse inversée (touche Verr. Maj. activée ?) : désactivez-la et scannez de nouveau.', 'The symbology identifier has its case swapped (Caps Lock on?): turn it off and scan again.')
      return null
    } else {
      fail('SYMBOLOGY_UNSUPPORTED', 1, 'Identifiant de symbologie non GS1 : le code lu n’est pas un DataMatrix GS1 (attendu ]d2, ]Q3 ou ]C1).', 'Not a GS1 symbology identifier: the code is not a GS1 DataMatrix (expected ]d2, ]Q3 or ]C1).')
      return null
    }
  }
  let end = input.length
  if (input.endsWith('\r\n')) end -= 2
  else if (input.endsWith('\n') || input.endsWith('\r')) end -= 1

  const chars: Char[] = []
  // Most scans hold no character that can start a written separator: skip that search (hot path).
  const plain = !/[{[\\^<]/.test(input)
  for (let i = start; i < end && plain; ) {
    const c = input.charCodeAt(i) >= 0xd800 ? String.fromCodePoint(input.codePointAt(i)!) : input[i]!
    chars.push({ c, at: i + 1 })
    i += c.length
  }
  for (let i = start; i < end && !plain; ) {
    const rest = input.slice(i, i + 6).toLowerCase()
    const textual = TEXT_SEPARATORS.find((t) => rest.startsWith(t))
    if (textual) {
      chars.push({ c: GS, at: i + 1 })
      i += textual.length
      continue
    }
    if (rest.startsWith('<gs>')) {
      fail('SEPARATOR_AMBIGUOUS', i + 1, `Séparateur écrit « <GS> » au caractère ${i + 1} : ambigu (ces caractères sont admis dans un numéro de série). Configurez le lecteur pour transmettre le caractère ASCII 29.`, `Separator written "<GS>" at character ${i + 1}: ambiguous (these characters are legal in a serial). Configure the scanner to send ASCII 29.`)
      return null
    }
    const cp = input.codePointAt(i)!
    const c = String.fromCodePoint(cp)
    chars.push({ c, at: i + 1 })
    i += c.length
  }
  if (chars[0]?.c === GS) chars.shift() // FNC1 in first position
  if (chars.length === 0) {
    fail('INPUT_EMPTY', 0, 'Le code lu ne contient aucune donnée : scannez de nouveau le DataMatrix.', 'The scanned code holds no data: scan the DataMatrix again.')
    return null
  }
  // AZERTY keyboard without Shift: "01" arrives as "à&", "17" as "&è"…
  const head = chars.slice(0, 2).map((x) => x.c).join('')
  if (head.length === 2 && [...head].every((c) => AZERTY_DIGITS[c] !== undefined)) {
    fail('KEYBOARD_LAYOUT', chars[0]!.at, 'Les chiffres sont arrivés comme sur un clavier AZERTY sans Maj. (ex. « à& » au lieu de « 01 ») : configurez le lecteur (émulation clavier, disposition, Verr. Maj.) et scannez de nouveau.', 'The digits arrived as on an AZERTY keyboard without Shift (e.g. "à&" instead of "01"): configure the scanner (keyboard emulation, layout, Caps Lock) and scan again.')
    return null
  }
  return { chars, symbology }
}

const textOf = (chars: Char[], from: number, to: number) => chars.slice(from, to).map((x) => x.c).join('')
/** The input position of the k-th character (of the last one past the end). */
const positionOf = (chars: Char[], k: number) => chars[Math.min(k, chars.length - 1)]!.at

/**
 * The elements, in order, each with what is wrong with it reported. Reading stops at what cannot be an AI (the
 * length of what follows it is unknown): `complete` is false then.
 */
function readFields(chars: Char[], fail: Fail, now: Date): { fields: Field[]; complete: boolean } {
  const fields: Field[] = []
  const seen = new Set<string>()
  let i = 0
  while (i < chars.length) {
    if (chars[i]!.c === GS) {
      i++ // separator after a fixed-length field, or doubled: tolerated
      continue
    }
    const ai = readAi(chars, i, fail)
    if (!ai) return { fields, complete: false }
    const at = positionOf(chars, i)
    if (seen.has(ai)) fail('DUPLICATE_AI', at, `L’identifiant d’application ${ai} (${nameOf(ai).fr}) apparaît deux fois (caractère ${at}).`, `Application identifier ${ai} (${nameOf(ai).en}) appears twice (character ${at}).`, ai)
    seen.add(ai)
    const read = FIXED[ai] ? readFixed(chars, i + ai.length, ai, at, fail, now) : readVariable(chars, i + ai.length, ai, at, seen, fail)
    fields.push({ ai, value: read.value, at })
    i = read.next
  }
  return { fields, complete: true }
}

/** The AI starting at character i, or null after reporting why there is none. */
function readAi(chars: Char[], i: number, fail: Fail): string | null {
  const two = textOf(chars, i, i + 2)
  if (/^\d\d$/.test(two) && (FIXED[two] || VARIABLE.has(two))) return two
  const three = textOf(chars, i, i + 3)
  if (/^71[0-5]$/.test(three)) return three
  const at = positionOf(chars, i)
  if (two.length === 2 && /^\d\d$/.test(two)) {
    fail('UNKNOWN_AI', at, `Identifiant d’application ${two} inconnu au caractère ${at} : seuls 01, 17, 10, 21 et 710–715 sont lus. Le code n’est pas celui d’une boîte de médicament, ou un séparateur manque.`, `Unknown application identifier ${two} at character ${at}: only 01, 17, 10, 21 and 710–715 are read. Not a medicine pack code, or a separator is missing.`, two)
  } else {
    const k = /^\d/.test(two) && two.length === 2 ? i + 1 : i
    const bad = chars[k]!
    const letter = /[a-z]/i.test(bad.c)
    fail('AI_EXPECTED', bad.at, `Identifiant d’application (chiffres) attendu au caractère ${at} ; trouvé ${describeChar(bad.c)} au caractère ${bad.at}${letter ? ' (lettre à la place d’un chiffre : disposition du clavier ou Verr. Maj. ?)' : ' (données en trop ou séparateur mal placé)'}.`, `Application identifier (digits) expected at character ${at}; found ${describeChar(bad.c)} at character ${bad.at}${letter ? ' (a letter instead of a digit: keyboard layout or Caps Lock?)' : ' (trailing data or misplaced separator)'}.`)
  }
  return null
}

/** A fixed-length field (01, 17) starting at character i: its value and the character after it. */
function readFixed(chars: Char[], i: number, ai: string, at: number, fail: Fail, now: Date): { value: string; next: number } {
  const fixed = FIXED[ai]!
  let len = fixed
  // 13 digits then a separator or the end: a CIP13 given instead of the GTIN-14.
  if (ai === '01') {
    const thirteen = textOf(chars, i, i + 13)
    const after = chars[i + 13]?.c
    if (/^\d{13}$/.test(thirteen) && (after === undefined || after === GS)) {
      const problem = cip13Problem(thirteen)
      if (problem) {
        fail('CIP13_INVALID', at, `Code produit (AI 01) de 13 chiffres, lu comme un CIP13 : ${problem.fr}.`, `13-digit product code (AI 01), read as a CIP13: ${problem.en}.`, ai)
        return { value: `0${thirteen}`, next: i + 13 }
      }
      len = 13
    }
  }
  let value = textOf(chars, i, i + len)
  if (value.includes(GS) || value.length < len) {
    const got = value.includes(GS) ? value.indexOf(GS) : value.length
    fail('FIELD_TOO_SHORT', at, `${cap(nameOf(ai).fr)} (AI ${ai}) : ${fixed} caractères attendus, ${got} lus.`, `${cap(nameOf(ai).en)} (AI ${ai}): ${fixed} characters expected, ${got} read.`, ai)
    value = value.split(GS)[0]!
    return { value, next: i + value.length }
  }
  const bad = [...value].findIndex((c) => !/\d/.test(c))
  if (bad >= 0) {
    const where = positionOf(chars, i + bad)
    if (ai === '01') fail('GTIN_NOT_NUMERIC', where, `Code produit (AI 01) : ${describeChar(value[bad]!)} au caractère ${where} au lieu d’un chiffre (disposition du clavier ou Verr. Maj. ?).`, `Product code (AI 01): ${describeChar(value[bad]!)} at character ${where} instead of a digit (keyboard layout or Caps Lock?).`, ai)
    else fail('DATE_NOT_NUMERIC', where, `Date de péremption (AI 17) : ${describeChar(value[bad]!)} au caractère ${where} au lieu d’un chiffre.`, `Expiry date (AI 17): ${describeChar(value[bad]!)} at character ${where} instead of a digit.`, ai)
  } else if (ai === '01') {
    if (len === 13) value = `0${value}`
    const expected = gs1CheckDigit(value.slice(0, 13))
    if (Number(value[13]) !== expected) fail('GTIN_CHECK_DIGIT', positionOf(chars, i + len - 1), `Code produit (AI 01) : clé de contrôle ${value[13]} incorrecte (attendue : ${expected}) ; le code est mal lu ou falsifié.`, `Product code (AI 01): check digit ${value[13]} is wrong (expected ${expected}); misread or falsified code.`, ai)
  } else if (!expiryDate(value, now)) {
    fail('DATE_INVALID', at, `Date de péremption (AI 17) impossible : mois ${value.slice(2, 4)}, jour ${value.slice(4, 6)} (format AAMMJJ).`, `Impossible expiry date (AI 17): month ${value.slice(2, 4)}, day ${value.slice(4, 6)} (format YYMMDD).`, ai)
  }
  return { value, next: i + len }
}

/** A variable-length field starting at character i, up to the separator or the end: its value and where it ends. */
function readVariable(chars: Char[], i: number, ai: string, at: number, seen: Set<string>, fail: Fail): { value: string; next: number } {
  let j = i
  while (j < chars.length && chars[j]!.c !== GS) j++
  const value = textOf(chars, i, j)
  const length = j - i
  if (length === 0) {
    fail('FIELD_EMPTY', at, `${cap(nameOf(ai).fr)} (AI ${ai}) vide au caractère ${at}.`, `Empty ${nameOf(ai).en} (AI ${ai}) at character ${at}.`, ai)
    return { value, next: j }
  }
  const badAt = chars.slice(i, j).findIndex((x) => !SET82.test(x.c))
  if (badAt >= 0) {
    const x = chars[i + badAt]!
    fail('INVALID_CHARACTER', x.at, `${cap(nameOf(ai).fr)} (AI ${ai}) : caractère ${describeChar(x.c)} au caractère ${x.at} hors du jeu GS1 (lettres, chiffres et ponctuation simple).`, `${cap(nameOf(ai).en)} (AI ${ai}): character ${describeChar(x.c)} at character ${x.at} is outside the GS1 character set (letters, digits, simple punctuation).`, ai)
  }
  if (length > MAX_VARIABLE_LENGTH) {
    const swallowed = swallowedAi(value, seen)
    if (swallowed) fail('MISSING_SEPARATOR', at, `${cap(nameOf(ai).fr)} (AI ${ai}) de ${length} caractères (au plus ${MAX_VARIABLE_LENGTH}) : il semble contenir l’AI ${swallowed} (${nameOf(swallowed).fr}) ; le séparateur GS manque. Configurez le lecteur pour transmettre le caractère ASCII 29.`, `${cap(nameOf(ai).en)} (AI ${ai}) of ${length} characters (at most ${MAX_VARIABLE_LENGTH}): it seems to contain AI ${swallowed} (${nameOf(swallowed).en}); the GS separator is missing. Configure the scanner to send ASCII 29.`, ai)
    else fail('FIELD_TOO_LONG', at, `${cap(nameOf(ai).fr)} (AI ${ai}) de ${length} caractères : au plus ${MAX_VARIABLE_LENGTH}.`, `${cap(nameOf(ai).en)} (AI ${ai}) of ${length} characters: at most ${MAX_VARIABLE_LENGTH}.`, ai)
  }
  return { value, next: j }
}

/** Each required AI that was not read. */
function requireAis(fields: Field[], required: readonly string[], fail: Fail) {
  for (const ai of required) {
    if (fields.some((f) => f.ai === ai)) continue
    // A required AI missing while a variable field holds its digits: the separator was probably lost.
    const holder = fields.find((a) => VARIABLE.has(a.ai) && a.value.includes(ai))
    fail('MISSING_AI', 0, `Champ manquant : ${nameOf(ai).fr} (AI ${ai})${holder ? ` ; le champ AI ${holder.ai} l’a peut-être absorbé (séparateur GS manquant)` : ''}.`, `Missing field: ${nameOf(ai).en} (AI ${ai})${holder ? `; field AI ${holder.ai} may have swallowed it (missing GS separator)` : ''}.`, ai)
  }
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

/** Inside an over-long variable field: the first AI that seems swallowed (not yet read, plausible content). */
function swallowedAi(value: string, seen: Set<string>): string | null {
  for (let k = 1; k < value.length - 1; k++) {
    const rest = value.slice(k)
    if (!seen.has('17') && /^17\d{6}/.test(rest)) return '17'
    if (!seen.has('01') && /^01\d{14}/.test(rest)) return '01'
    if (!seen.has('10') && /^10./.test(rest)) return '10'
    if (!seen.has('21') && /^21./.test(rest)) return '21'
  }
  return null
}

/** Another reading of a batch that may have swallowed the field after it. */
export interface BatchReading {
  batch: string
  /** The expiry this reading gives (the swallowed 17, or the one read elsewhere). */
  expiry: string | null
  /** The AI that seems swallowed, and its 1-based offset in the batch as read. */
  ai: '17' | '21'
  offset: number
}

/**
 * The other ways to read a batch when a separator may have been lost after it: for each position k ≥ 1 of the
 * batch where what follows reads as an AI the element string does not otherwise carry (`21` and at least one
 * character; `17` and a valid YYMMDD), the batch up to k. A scan like `…10LOT4221SERIAL` reads as batch
 * LOT4221SERIAL, or as batch LOT42 followed by serial SERIAL: when the two readings do not lead to the same answer,
 * the box cannot be read at the counter (dispensation/routes.ts).
 */
export function batchReadings(value: PackCode, now: Date = new Date()): BatchReading[] {
  const batch = value.batch
  if (batch === null || batch.length < 3) return []
  const out: BatchReading[] = []
  for (let k = 1; k < batch.length - 2; k++) {
    const c0 = batch.charCodeAt(k)
    const c1 = batch.charCodeAt(k + 1)
    if (c0 === 50 /* 2 */ && c1 === 49 /* 1 */ && value.serial === null) {
      out.push({ batch: batch.slice(0, k), expiry: value.expiry, ai: '21', offset: k + 1 })
    } else if (c0 === 49 /* 1 */ && c1 === 55 /* 7 */ && value.expiry === null && k + 8 <= batch.length) {
      const expiry = expiryDate(batch.slice(k + 2, k + 8), now)
      if (expiry) out.push({ batch: batch.slice(0, k), expiry, ai: '17', offset: k + 1 })
    }
  }
  return out
}

/** YYMMDD → YYYY-MM-DD (day 00: last day of the month), century by the GS1 sliding window; null if impossible. */
export function expiryDate(yymmdd: string, now: Date = new Date()): string | null {
  if (yymmdd.length !== 6) return null
  for (let k = 0; k < 6; k++) if (!isDigitCode(yymmdd.charCodeAt(k))) return null
  const yy = (yymmdd.charCodeAt(0) - 48) * 10 + yymmdd.charCodeAt(1) - 48
  const mm = (yymmdd.charCodeAt(2) - 48) * 10 + yymmdd.charCodeAt(3) - 48
  const dd = (yymmdd.charCodeAt(4) - 48) * 10 + yymmdd.charCodeAt(5) - 48
  const current = now.getUTCFullYear()
  let year = Math.floor(current / 100) * 100 + yy
  const diff = yy - (current % 100)
  if (diff >= 51) year -= 100
  else if (diff <= -50) year += 100
  if (mm < 1 || mm > 12) return null
  const last = daysInMonth(year, mm)
  if (dd > last) return null
  // The month and day are already two digits in the input, except day 00 (the last day of the month).
  return `${year}-${yymmdd.slice(2, 4)}-${dd === 0 ? last : yymmdd.slice(4, 6)}`
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

// ---- the same data given as separate fields -------------------------------------------------------------

export interface FieldError extends Text {
  field: string
  code: Gs1ErrorCode
}

/** A product code given as a CIP13 or a GTIN-14 (0 + CIP13): the CIP13, or the reason it is refused. */
export function productCode(value: unknown, field = 'product'): { cip13: string } | { error: FieldError } {
  const v = typeof value === 'string' ? value : ''
  if ((v.length !== 13 && v.length !== 14) || !allDigits(v)) return { error: { field, code: 'GTIN_NOT_NUMERIC', fr: 'un CIP13 (13 chiffres) ou un GTIN-14 (14 chiffres) est attendu', en: 'a CIP13 (13 digits) or a GTIN-14 (14 digits) is expected' } }
  const gtin = v.length === 13 ? `0${v}` : v
  const check = gs1CheckDigit(gtin.slice(0, 13))
  if (gtin.charCodeAt(13) - 48 !== check) return { error: { field, code: 'GTIN_CHECK_DIGIT', fr: `clé de contrôle incorrecte (attendue : ${check})`, en: `wrong check digit (expected ${check})` } }
  if (!gtin.startsWith('0') || !isCip13(gtin.slice(1))) return { error: { field, code: 'CIP13_INVALID', fr: 'ce code n’est pas celui d’un médicament français (CIP13 commençant par 3400)', en: 'not a French medicine code (CIP13 starting with 3400)' } }
  return { cip13: gtin.slice(1) }
}

function allDigits(v: string): boolean {
  for (let k = 0; k < v.length; k++) if (!isDigitCode(v.charCodeAt(k))) return false
  return true
}

function variableField(value: unknown, field: string, what: Text): FieldError | null {
  if (typeof value !== 'string' || value.length === 0) return { field, code: 'FIELD_EMPTY', fr: `${what.fr} obligatoire`, en: `${what.en} required` }
  if (value.length > MAX_VARIABLE_LENGTH) return { field, code: 'FIELD_TOO_LONG', fr: `${what.fr} : au plus ${MAX_VARIABLE_LENGTH} caractères`, en: `${what.en}: at most ${MAX_VARIABLE_LENGTH} characters` }
  if (!isSet82Codes(value)) {
    const bad = [...value].find((c) => !SET82.test(c))!
    return { field, code: 'INVALID_CHARACTER', fr: `${what.fr} : caractère ${describeChar(bad)} hors du jeu GS1`, en: `${what.en}: character ${describeChar(bad)} outside the GS1 character set` }
  }
  return null
}

function isSet82Codes(value: string): boolean {
  for (let k = 0; k < value.length; k++) {
    const c = value.charCodeAt(k)
    if (c >= 128 || SET82_CODES[c] === 0) return false
  }
  return true
}

/** Expiry given as YYYY-MM-DD or YYMMDD (day 00 = end of month) → YYYY-MM-DD. */
export function expiryField(value: unknown, field = 'expiry', now: Date = new Date()): { expiry: string } | { error: FieldError } {
  const v = typeof value === 'string' ? value : ''
  let date: string | null = null
  if (/^\d{6}$/.test(v)) date = expiryDate(v, now)
  else {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v)
    if (m) date = expiryDate(`${m[1]!.slice(2)}${m[2]}${m[3]}`, new Date(Date.UTC(Number(m[1]), 0, 1)))
  }
  if (!date) return { error: { field, code: 'DATE_INVALID', fr: 'date de péremption attendue : AAAA-MM-JJ ou AAMMJJ (jour 00 = fin du mois)', en: 'expiry date expected: YYYY-MM-DD or YYMMDD (day 00 = end of month)' } }
  return { expiry: date }
}

/** The "product + batch" form (recall blocking check): a CIP13 or GTIN-14 and a batch. */
export function parseProductAndBatch(input: { product?: unknown; batch?: unknown }): { ok: true; value: { cip13: string; gtin: string; batch: string } } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = []
  const product = productCode(input.product)
  if ('error' in product) errors.push(product.error)
  const batchError = variableField(input.batch, 'batch', { fr: 'numéro de lot', en: 'batch number' })
  if (batchError) errors.push(batchError)
  if (errors.length > 0 || 'error' in product) return { ok: false, errors }
  return { ok: true, value: { cip13: product.cip13, gtin: `0${product.cip13}`, batch: input.batch as string } }
}

/** A pack given as separate fields: product (CIP13 or GTIN-14), serial, batch, expiry. */
export function parsePackFields(
  input: { product?: unknown; serial?: unknown; batch?: unknown; expiry?: unknown },
  now: Date = new Date(),
): { ok: true; value: { cip13: string; gtin: string; serial: string; batch: string; expiry: string } } | { ok: false; errors: FieldError[] } {
  const pb = parseProductAndBatch(input)
  const errors: FieldError[] = pb.ok ? [] : [...pb.errors]
  const serialError = variableField(input.serial, 'serial', { fr: 'numéro de série', en: 'serial number' })
  if (serialError) errors.push(serialError)
  const expiry = expiryField(input.expiry, 'expiry', now)
  if ('error' in expiry) errors.push(expiry.error)
  if (!pb.ok || errors.length > 0 || 'error' in expiry) return { ok: false, errors }
  return { ok: true, value: { ...pb.value, serial: input.serial as string, expiry: expiry.expiry } }
}

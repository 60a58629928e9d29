import t from 'tap'
import { gs1CheckDigit } from '../src/platform/identifiers.ts'
import { expiryDate, type Gs1Result, parseDataMatrix, parsePackFields, parseProductAndBatch } from '../src/serialization/rules/gs1.ts'

const GS = '\x1d'
const NOW = new Date('2026-06-01T10:00:00Z')
const GTIN = '03400949497294' // ROSUVASTATINE BIOGARAN, CIP13 3400949497294
const base = (serial = 'K7D9Q2M1X4', batch = 'LOT2026A', exp = '271231') => `01${GTIN}21${serial}${GS}10${batch}${GS}17${exp}`
const foreign = (() => {
  const body = '0400638133393' // a non-French GTIN (indicator 0, German prefix)
  return `${body}${gs1CheckDigit(body)}`
})()

interface Ok {
  ok: { serial?: string; batch?: string; expiry?: string; gtin?: string; cip13?: string | null; nhrn?: Array<{ ai: string; value: string }>; symbology?: string | null }
}
interface Refused {
  codes: string[]
  /** Text of the input that must never appear in a message. */
  hidden?: string[]
}
type Case = [name: string, input: unknown, expected: Ok | Refused]

const CASES: Case[] = [
  // ---- real-world, accepted
  [']d2 prefix, GS separators', `]d2${base()}`, { ok: { serial: 'K7D9Q2M1X4', batch: 'LOT2026A', expiry: '2027-12-31', gtin: GTIN, cip13: '3400949497294', symbology: ']d2' } }],
  ['no prefix', base(), { ok: { serial: 'K7D9Q2M1X4', symbology: null } }],
  [']Q3 prefix (GS1 QR)', `]Q3${base()}`, { ok: { symbology: ']Q3' } }],
  [']C1 prefix (GS1-128)', `]C1${base()}`, { ok: { symbology: ']C1' } }],
  ['fields in another order, serial last', `]d201${GTIN}17271231${GS}10LOT2026A${GS}21K7D9Q2M1X4`, { ok: { serial: 'K7D9Q2M1X4', batch: 'LOT2026A', expiry: '2027-12-31' } }],
  ['expiry first, batch last', `17271231${GS}01${GTIN}21ABC${GS}10L1`, { ok: { serial: 'ABC', batch: 'L1' } }],
  ['GS after a fixed-length field is tolerated', `01${GTIN}${GS}17271231${GS}21ABC${GS}10L1`, { ok: { serial: 'ABC' } }],
  ['FNC1 sent as a leading GS', `${GS}${base()}`, { ok: { serial: 'K7D9Q2M1X4' } }],
  ['trailing GS', `${base()}${GS}`, { ok: { expiry: '2027-12-31' } }],
  ['trailing CRLF from a keyboard wedge', `${base()}\r\n`, { ok: { expiry: '2027-12-31' } }],
  ['textual {GS}', `01${GTIN}21ABC{GS}10L1{gs}17271231`, { ok: { serial: 'ABC', batch: 'L1' } }],
  ['textual [GS]', `01${GTIN}21ABC[GS]10L1[GS]17271231`, { ok: { serial: 'ABC', batch: 'L1' } }],
  ['textual \\x1d', `01${GTIN}21ABC\\x1d10L1\\x1D17271231`, { ok: { serial: 'ABC', batch: 'L1' } }],
  ['textual \\u001d', `01${GTIN}21ABC\\u001d10L1\\u001d17271231`, { ok: { serial: 'ABC', batch: 'L1' } }],
  ['caret ^]', `01${GTIN}21ABC^]10L1^]17271231`, { ok: { serial: 'ABC', batch: 'L1' } }],
  ['day 00 is the last day of the month (leap February)', base('A', 'B', '280200'), { ok: { expiry: '2028-02-29' } }],
  ['day 00 in a 30-day month', base('A', 'B', '270600'), { ok: { expiry: '2027-06-30' } }],
  ['CIP13 instead of the GTIN-14, ended by a separator', `013400949497294${GS}21ABC${GS}10L1${GS}17271231`, { ok: { gtin: GTIN, cip13: '3400949497294' } }],
  // Without a separator, 13 digits then "21…" read as a 14-digit GTIN: ambiguous, refused (wrong check digit).
  ['CIP13 instead of the GTIN-14 without a separator', `01340094949729421ABC${GS}10L1${GS}17271231`, { codes: ['GTIN_CHECK_DIGIT', 'AI_EXPECTED'] }],
  ['CIP13 instead of the GTIN-14, at the end', `17271231${GS}21ABC${GS}10L1${GS}013400949497294`, { ok: { gtin: GTIN } }],
  ['serial of exactly 20 characters', base('ABCDEFGHIJ0123456789'), { ok: { serial: 'ABCDEFGHIJ0123456789' } }],
  ['serial with set-82 punctuation and mixed case', base(`a!"%&'()*+,-./:;<=>?_`.slice(0, 20)), { ok: { serial: `a!"%&'()*+,-./:;<=>?_`.slice(0, 20) } }],
  ['Caps Lock swapped case in a serial is legal (the repository decides)', base('k7d9q2m1x4'), { ok: { serial: 'k7d9q2m1x4' } }],
  ['NHRN 714 (Portugal) is read', `${base()}${GS}7141234567`, { ok: { nhrn: [{ ai: '714', value: '1234567' }] } }],
  ['a foreign GTIN reads, without CIP13', `01${foreign}21ABC${GS}10L1${GS}17271231`, { ok: { gtin: foreign, cip13: null } }],
  // ---- scanner configuration and keyboard corruption
  [']D2: Caps Lock on the symbology identifier', `]D2${base()}`, { codes: ['SYMBOLOGY_CORRUPTED'] }],
  [']q3: case swapped', `]q3${base()}`, { codes: ['SYMBOLOGY_CORRUPTED'] }],
  [']d1: DataMatrix without GS1', `]d1${base()}`, { codes: ['SYMBOLOGY_UNSUPPORTED'] }],
  ['AZERTY digits without Shift', 'à&à"(((é&é(é(&(((', { codes: ['KEYBOARD_LAYOUT'] }],
  ['letter O instead of zero in the GTIN', `01O34OO949497294${GS}21ABC${GS}10L1${GS}17271231`, { codes: ['GTIN_NOT_NUMERIC'] }],
  ['letter O in the AI', `O1${GTIN}21ABC${GS}10L1${GS}17271231`, { codes: ['AI_EXPECTED'] }],
  ['<GS> written as text is ambiguous', `01${GTIN}21ABC<GS>10L1<GS>17271231`, { codes: ['SEPARATOR_AMBIGUOUS'] }],
  // ---- structure
  ['missing separator: the serial swallows the batch and the expiry', `01${GTIN}21ABCDEFGHIJ10LOT2026A17271231`, { codes: ['MISSING_SEPARATOR', 'MISSING_AI', 'MISSING_AI'] }],
  ['missing separator: a short serial swallows the batch', `01${GTIN}17271231${GS}21ABC10L1`, { codes: ['MISSING_AI'] }],
  ['serial of 21 characters', base('ABCDEFGHIJ01234567890'), { codes: ['FIELD_TOO_LONG'] }],
  ['batch of 21 characters', base('A', 'ABCDEFGHIJ01234567890'), { codes: ['FIELD_TOO_LONG'] }],
  ['duplicated serial AI', `${base()}${GS}21OTHER`, { codes: ['DUPLICATE_AI'] }],
  ['duplicated GTIN with the same value', `01${GTIN}${base()}`, { codes: ['DUPLICATE_AI'] }],
  ['unknown AI 11 (production date)', `11260101${base()}`, { codes: ['UNKNOWN_AI'] }],
  ['unknown AI 99', `${base()}${GS}99XYZ`, { codes: ['UNKNOWN_AI'] }],
  ['wrong GTIN check digit', `010340094949729521ABC${GS}10L1${GS}17271231`, { codes: ['GTIN_CHECK_DIGIT'] }],
  ['CIP13 with a wrong key', `013400934012308${GS}21ABC${GS}10L1${GS}17271231`, { codes: ['CIP13_INVALID'] }],
  ['month 13', base('A', 'B', '271301'), { codes: ['DATE_INVALID'] }],
  ['30 February', base('A', 'B', '270230'), { codes: ['DATE_INVALID'] }],
  ['letters in the date', base('A', 'B', '27I23l'), { codes: ['DATE_NOT_NUMERIC'] }],
  ['expiry cut short by a separator', `01${GTIN}1727123${GS}21A${GS}10B`, { codes: ['FIELD_TOO_SHORT'] }],
  ['GTIN cut short at the end', '01034009494', { codes: ['FIELD_TOO_SHORT', 'MISSING_AI', 'MISSING_AI', 'MISSING_AI'] }],
  ['empty serial', `01${GTIN}21${GS}10L1${GS}17271231`, { codes: ['FIELD_EMPTY'] }],
  ['expiry missing', `01${GTIN}21ABC${GS}10L1`, { codes: ['MISSING_AI'] }],
  ['only the GTIN', `01${GTIN}`, { codes: ['MISSING_AI', 'MISSING_AI', 'MISSING_AI'] }],
  ['trailing garbage after a fixed field', `01${GTIN}21ABC${GS}10L1${GS}17271231 xyz`, { codes: ['AI_EXPECTED'] }],
  ['trailing digits after the expiry', `01${GTIN}21ABC${GS}10L1${GS}171`, { codes: ['FIELD_TOO_SHORT'] }],
  ['NHRN over 20 characters', `${base()}${GS}714123456789012345678901`, { codes: ['FIELD_TOO_LONG'] }],
  // ---- hostile input
  ['empty string', '', { codes: ['INPUT_EMPTY'] }],
  ['only a symbology identifier', ']d2', { codes: ['INPUT_EMPTY'] }],
  ['not a string', 12345, { codes: ['INPUT_EMPTY'] }],
  ['null', null, { codes: ['INPUT_EMPTY'] }],
  ['very long input', `01${GTIN}21${'A'.repeat(100_000)}`, { codes: ['INPUT_TOO_LONG'] }],
  ['SQL injection in the serial', base("' OR 1=1 --"), { codes: ['INVALID_CHARACTER'], hidden: ['OR 1=1', "' OR"] }],
  ['SQL injection in the batch', base('A', "x'; DROP TABLE packs;--"), { codes: ['INVALID_CHARACTER', 'FIELD_TOO_LONG'], hidden: ['DROP TABLE'] }],
  ['HTML in the batch (legal characters, too long)', base('A', '<script>alert(1)</script>'), { codes: ['FIELD_TOO_LONG'], hidden: ['<script>', 'alert'] }],
  ['HTML with a space', base('<img src=x>'), { codes: ['INVALID_CHARACTER'], hidden: ['<img', 'src='] }],
  ['NUL byte in the serial', base('AB\x00CD'), { codes: ['INVALID_CHARACTER'], hidden: ['\x00'] }],
  ['ANSI escape sequence', base('\x1b[31mRED'), { codes: ['INVALID_CHARACTER'], hidden: ['\x1b[31m'] }],
  ['line feed in the middle', `01${GTIN}21AB\nCD${GS}10L1${GS}17271231`, { codes: ['INVALID_CHARACTER'], hidden: ['\n'] }],
  ['zero-width space', base('AB\u200bCD'), { codes: ['INVALID_CHARACTER'], hidden: ['\u200b'] }],
  ['emoji', base('AB😀'), { codes: ['INVALID_CHARACTER'], hidden: ['😀'] }],
  ['accented letter', base('ÉTÉ'), { codes: ['INVALID_CHARACTER'] }],
  ['path traversal / template injection in an unknown AI', `${base()}${GS}99\${jndi:ldap://x}`, { codes: ['UNKNOWN_AI'], hidden: ['jndi', 'ldap'] }],
]

t.ok(CASES.length >= 40, `${CASES.length} cases`)

for (const [name, input, expected] of CASES) {
  t.test(name, async (t) => {
    const r: Gs1Result = parseDataMatrix(input, { now: NOW })
    if ('ok' in expected) {
      t.ok(r.ok, 'accepted')
      if (r.ok) t.match(r.value, expected.ok)
      else t.fail(JSON.stringify(r.errors))
      return
    }
    t.notOk(r.ok, 'refused')
    if (r.ok) return
    t.same(r.errors.map((e) => e.code).sort(), [...expected.codes].sort(), 'error codes')
    for (const e of r.errors) {
      t.ok(e.fr.length > 10 && e.en.length > 10, 'a French and an English message')
      t.type(e.position, 'number')
      t.ok(e.position >= 0 && e.position <= (typeof input === 'string' ? input.length : 0), 'position within the input')
      for (const secret of expected.hidden ?? []) {
        t.notOk(e.fr.includes(secret) || e.en.includes(secret), 'the message does not echo the input')
      }
      t.notMatch(e.fr + e.en, /[\x00-\x08\x0b-\x1f\x7f]/, 'no control character in messages')
    }
  })
}

t.test('errors point at the right character', async (t) => {
  const input = `01${GTIN}21ABC\x07D${GS}10L1${GS}17271231`
  const r = parseDataMatrix(input, { now: NOW })
  t.notOk(r.ok)
  if (!r.ok) {
    t.equal(r.errors[0]!.position, input.indexOf('\x07') + 1)
    t.match(r.errors[0]!.fr, /U\+0007/)
  }
  const check = parseDataMatrix(`]d2010340094949729521A${GS}10L1${GS}17271231`, { now: NOW })
  t.notOk(check.ok)
  if (!check.ok) t.match(check.errors[0]!.fr, /attendue : 4/, 'the expected check digit is named')
})

t.test('YYMMDD century by the GS1 sliding window', async (t) => {
  t.equal(expiryDate('271231', new Date('2026-01-01')), '2027-12-31')
  t.equal(expiryDate('990101', new Date('2026-01-01')), '1999-01-01', 'more than 50 years ahead: previous century')
  t.equal(expiryDate('760101', new Date('2026-01-01')), '2076-01-01')
  t.equal(expiryDate('270229', new Date('2026-01-01')), null, '2027 is not a leap year')
})

t.test('product and batch form (recall blocking check)', async (t) => {
  t.same(parseProductAndBatch({ product: '3400949497294', batch: 'LOT1' }), { ok: true, value: { cip13: '3400949497294', gtin: GTIN, batch: 'LOT1' } })
  t.same(parseProductAndBatch({ product: GTIN, batch: 'LOT1' }), { ok: true, value: { cip13: '3400949497294', gtin: GTIN, batch: 'LOT1' } })
  const bad = parseProductAndBatch({ product: '3400934012308', batch: 'LOT 1' })
  t.notOk(bad.ok)
  if (!bad.ok) t.same(bad.errors.map((e) => [e.field, e.code]), [['product', 'GTIN_CHECK_DIGIT'], ['batch', 'INVALID_CHARACTER']])
  const foreignProduct = parseProductAndBatch({ product: foreign, batch: 'L' })
  t.notOk(foreignProduct.ok, 'a non-French GTIN is not a medicine code here')
  const missing = parseProductAndBatch({})
  t.notOk(missing.ok)
  if (!missing.ok) t.same(missing.errors.map((e) => e.code), ['GTIN_NOT_NUMERIC', 'FIELD_EMPTY'])
})

t.test('pack fields form', async (t) => {
  const ok = parsePackFields({ product: GTIN, serial: 'ABC', batch: 'L1', expiry: '270600' }, NOW)
  t.same(ok, { ok: true, value: { cip13: '3400949497294', gtin: GTIN, serial: 'ABC', batch: 'L1', expiry: '2027-06-30' } })
  t.same(parsePackFields({ product: '3400949497294', serial: 'ABC', batch: 'L1', expiry: '2027-06-30' }, NOW), ok)
  const bad = parsePackFields({ product: '3400949497294', serial: 'A'.repeat(21), batch: 'L1', expiry: '2027-02-30' }, NOW)
  t.notOk(bad.ok)
  if (!bad.ok) t.same(bad.errors.map((e) => [e.field, e.code]), [['serial', 'FIELD_TOO_LONG'], ['expiry', 'DATE_INVALID']])
})

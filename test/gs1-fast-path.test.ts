import t from 'tap'
import { cip13Problem, isCip13 } from '../src/platform/identifiers.ts'
import { normaliseBatch } from '../src/dispensation/rules/batch.ts'
import { expiryDate, parseDataMatrix, parseDataMatrixDetailed, parseProductAndBatch } from '../src/serialization/rules/gs1.ts'

// parseDataMatrix answers well-formed scans on a fast path and hands anything else to the detailed reader.
// Whatever the input, both must give the same answer: checked on generated inputs, valid and hostile.

const GS = '\x1d'
const now = new Date('2026-11-22T10:00:00Z')

// A small deterministic generator (mulberry32), so that a failure can be replayed.
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const GTINS = ['03400949497294', '03400936128149', '03400949497295', '13400949497294', '05012345678900', '3400949497294', '0340094949729X']
const pieces = (r: () => number) => {
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!
  const text = (alphabet: string, max: number) => Array.from({ length: Math.floor(r() * max) }, () => pick([...alphabet])).join('')
  const field = () =>
    pick([
      () => `01${pick(GTINS)}`,
      () => `17${pick(['271231', '270200', '271300', '991231', '2712', 'ABCDEF', '000000'])}`,
      () => `10${text('AB12-./_xyz', 24)}`,
      () => `21${text('0123456789ABCDEFabc<>é ', 24)}`,
      () => `71${pick(['0', '1', '5', '6', '9'])}${text('0123456789', 22)}`,
      () => pick(['99ABC', '', 'à&', GS, `${GS}${GS}`, '{GS}', '^]', '\\x1d', '<GS>', '\r\n', '\n']),
    ])()
  const sep = () => pick([GS, GS, GS, '', '{GS}', '[gs]'])
  const prefix = pick(['', '', ']d2', ']Q3', ']C1', ']D2', ']X9', GS])
  const n = 1 + Math.floor(r() * 5)
  const body = Array.from({ length: n }, field).join(sep() === '' ? '' : sep())
  return prefix + body + pick(['', '', GS, '\r\n', '\n', 'garbage'])
}

/** A well-formed scan (fields in a random order), then with even odds one random edit from a hostile alphabet. */
const mutated = (r: () => number) => {
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!
  const text = (alphabet: string, min: number, max: number) => Array.from({ length: min + Math.floor(r() * (max - min + 1)) }, () => pick([...alphabet])).join('')
  const fields = [`01${pick(GTINS.slice(0, 2))}`, `17${pick(['271231', '270200', '300630'])}`, `10${text('AB12-./_xyz', 1, 20)}${GS}`, `21${text('0123456789ABCDEFabc', 1, 20)}${GS}`]
  if (r() < 0.3) fields.push(`71${pick(['0', '4'])}${text('0123456789', 1, 20)}${GS}`)
  fields.sort(() => r() - 0.5)
  let s = pick(['', ']d2', GS]) + fields.join('')
  if (r() < 0.5) {
    const at = Math.floor(r() * (s.length + 1))
    const c = pick([GS, '0', '1', '7', 'A', 'a', ' ', 'é', '<', '{', '\n', '%', '"'])
    s = pick([() => s.slice(0, at) + c + s.slice(at), () => s.slice(0, at) + s.slice(at + 1), () => s.slice(0, at) + c + s.slice(at + 1)])()
  }
  return s
}

t.test('fast path and detailed reader agree on 20,000 generated inputs', async (t) => {
  const r = rng(20261122)
  let fast = 0
  let disagreements = 0
  for (let k = 0; k < 20_000; k++) {
    const input = k % 2 === 0 ? pieces(r) : mutated(r)
    for (const require of [undefined, ['01', '10']]) {
      const a = parseDataMatrix(input, { now, require })
      const b = parseDataMatrixDetailed(input, { now, require })
      if (a.ok) fast++
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        disagreements++
        if (disagreements <= 5) t.fail(`disagreement on ${JSON.stringify(input)} (require ${require})`, { fast: a, detailed: b })
      }
    }
  }
  t.equal(disagreements, 0, 'no disagreement')
  t.ok(fast > 500, `the generator produces enough well-formed inputs to exercise the fast path (${fast})`)
})

// Whatever the scanner sends, the reader answers: a reading, or refusals that each say where (a position within the
// input) and why (in French and English), without repeating what was scanned (messages are shown and logged).
t.test('the reader answers every generated input with placed refusals that never echo it', async (t) => {
  const r = rng(20261207)
  const SECRET = 'QZXSECRETQZX' // a serial's content; set 82, so it may be read, never repeated
  const bad: string[] = []
  let refused = 0
  for (let k = 0; k < 20_000; k++) {
    let input = k % 2 === 0 ? pieces(r) : mutated(r)
    if (k % 3 === 0) input = input.replace(/21/, `21${SECRET}`)
    const result = parseDataMatrixDetailed(input, { now })
    if (result.ok) continue
    refused++
    if (result.errors.length === 0) bad.push(`${JSON.stringify(input)}: refused without a reason`)
    for (const e of result.errors) {
      if (!Number.isInteger(e.position) || e.position < 0 || e.position > input.length) bad.push(`${JSON.stringify(input)}: ${e.code} at ${e.position}`)
      if (!e.fr || !e.en) bad.push(`${JSON.stringify(input)}: ${e.code} without its messages`)
      if (e.fr.includes(SECRET) || e.en.includes(SECRET)) bad.push(`${JSON.stringify(input)}: ${e.code} repeats the scanned serial`)
    }
  }
  t.same(bad.slice(0, 5), [], 'every refusal placed, explained and without echo')
  t.ok(refused > 5000, `enough refusals to exercise the reader (${refused})`)
})

t.test('typical scans take the fast path and read the same fields', async (t) => {
  for (const input of [
    `]d201034009494972942110000000001${GS}10LOT2026A${GS}17271231`,
    `010340094949729417271231${GS}10LOT2026A${GS}2110000000001`,
    `${GS}01034009494972942110000000001${GS}10LOT2026A${GS}17271200${GS}7140123456789`,
    `]d2010340094949729421SER${GS}10B${GS}17271231\r\n`,
  ]) {
    const a = parseDataMatrix(input, { now })
    t.ok(a.ok, JSON.stringify(input))
    t.same(a, parseDataMatrixDetailed(input, { now }))
  }
})

// The small readers on the same hot path were rewritten without regular expressions or Date; each is checked
// here against the plain formulation it replaced.

t.test('isCip13 agrees with cip13Problem', async (t) => {
  const r = rng(7)
  const digits = (n: number) => Array.from({ length: n }, () => String(Math.floor(r() * 10))).join('')
  let valid = 0
  for (let k = 0; k < 20_000; k++) {
    const v = [
      () => `3400${digits(9)}`,
      () => `3400${digits(8)}`,
      () => `3400${digits(10)}`,
      () => digits(13),
      () => `340${digits(9)}x`,
      () => `3400${digits(4)}${String.fromCharCode(40 + Math.floor(r() * 30))}${digits(4)}`,
      () => '',
    ][k % 7]!()
    if (isCip13(v) !== (cip13Problem(v) === null)) t.fail(`disagreement on ${JSON.stringify(v)}`)
    if (isCip13(v)) valid++
  }
  t.ok(valid > 200, `enough valid codes generated (${valid})`)
})

t.test('expiryDate agrees with the Date-based reading on every YYMMDD form', async (t) => {
  const reference = (yymmdd: string, at: Date) => {
    if (!/^\d{6}$/.test(yymmdd)) return null
    const yy = Number(yymmdd.slice(0, 2))
    const mm = Number(yymmdd.slice(2, 4))
    const dd = Number(yymmdd.slice(4, 6))
    const current = at.getUTCFullYear()
    let year = Math.floor(current / 100) * 100 + yy
    const diff = yy - (current % 100)
    if (diff >= 51) year -= 100
    else if (diff <= -50) year += 100
    if (mm < 1 || mm > 12) return null
    const last = new Date(Date.UTC(year, mm, 0)).getUTCDate()
    if (dd > last) return null
    return `${year}-${String(mm).padStart(2, '0')}-${String(dd === 0 ? last : dd).padStart(2, '0')}`
  }
  let checked = 0
  for (const at of [now, new Date('2000-06-01T00:00:00Z'), new Date('2099-12-31T00:00:00Z')]) {
    for (let yy = 0; yy < 100; yy++) {
      for (let mm = 0; mm <= 13; mm++) {
        for (let dd = 0; dd <= 32; dd++) {
          const v = [yy, mm, dd].map((n) => String(n).padStart(2, '0')).join('')
          if (expiryDate(v, at) !== reference(v, at)) t.fail(`disagreement on ${v} at ${at.toISOString()}`)
          checked++
        }
      }
    }
  }
  for (const v of ['', '27123', '2712310', '27a231', ' 71231', '２７１２３１']) t.equal(expiryDate(v, now), reference(v, now), JSON.stringify(v))
  t.equal(checked, 3 * 100 * 14 * 33)
})

t.test('normaliseBatch is trim and upper case, and product + batch reads as before', async (t) => {
  const r = rng(11)
  const alphabet = [...'ABCabcz019-._ /\t\u00a0éÉß\u0001']
  for (let k = 0; k < 20_000; k++) {
    const v = Array.from({ length: Math.floor(r() * 12) }, () => alphabet[Math.floor(r() * alphabet.length)]).join('')
    if (normaliseBatch(v) !== v.trim().toUpperCase()) t.fail(`disagreement on ${JSON.stringify(v)}`)
  }
  t.same(parseProductAndBatch({ product: '3400949497294', batch: 'LOT-1' }), { ok: true, value: { cip13: '3400949497294', gtin: '03400949497294', batch: 'LOT-1' } })
  t.same(parseProductAndBatch({ product: '03400949497294', batch: 'lot 1' }).ok, false, 'a space is outside the GS1 character set')
  const wrong = parseProductAndBatch({ product: '3400949497295', batch: 'LOT' })
  t.same(!wrong.ok && wrong.errors.map((e) => [e.field, e.code]), [['product', 'GTIN_CHECK_DIGIT']])
  const letters = parseProductAndBatch({ product: '340094949729A', batch: 'LOT' })
  t.same(!letters.ok && letters.errors.map((e) => [e.field, e.code]), [['product', 'GTIN_NOT_NUMERIC']])
})

import t from 'tap'
import { ALPHABET, ACCESS_CODE_LENGTH, display, ID_LENGTH, isValidChecked, newAccessCode, newPrescriptionId, normalise, parseChecked, parseQr, qrPayload, withCheck } from '../src/eprescription/ids.ts'

const substitutions = (s: string) => {
  const out: string[] = []
  for (let i = 0; i < s.length; i++) for (const c of ALPHABET) if (c !== s[i]) out.push(s.slice(0, i) + c + s.slice(i + 1))
  return out
}
const adjacentSwaps = (s: string) => {
  const out: string[] = []
  for (let i = 0; i + 1 < s.length; i++) if (s[i] !== s[i + 1]) out.push(s.slice(0, i) + s[i + 1] + s[i] + s.slice(i + 2))
  return out
}

t.test('generated IDs and access codes are valid, of the right length and alphabet', async (t) => {
  for (let k = 0; k < 200; k++) {
    const id = newPrescriptionId()
    const code = newAccessCode()
    t.equal(id.length, ID_LENGTH)
    t.equal(code.length, ACCESS_CODE_LENGTH)
    t.ok(isValidChecked(id) && isValidChecked(code))
    t.match(id + code, /^[0-9ABCDEFGHJKMNPQRSTVWXYZ]+$/)
  }
})

t.test('the check character catches every single-character typo (exhaustive, 500 identifiers)', async (t) => {
  let tried = 0
  let missed: string[] = []
  for (let k = 0; k < 500; k++) {
    const id = k % 2 ? newPrescriptionId() : newAccessCode()
    for (const typo of substitutions(id)) {
      tried++
      if (isValidChecked(typo)) missed.push(`${id} -> ${typo}`)
    }
  }
  t.same(missed, [], `${tried} typos, none accepted`)
  // Fixed cases, so that a change of algorithm shows.
  t.equal(withCheck('00000000000'), '000000000000')
  t.notOk(isValidChecked('000000000001'))
  missed = []
})

t.test('the check character catches every swap of two adjacent characters, the check character included', async (t) => {
  let tried = 0
  const missed: string[] = []
  for (let k = 0; k < 500; k++) {
    const id = k % 2 ? newPrescriptionId() : newAccessCode()
    for (const swap of adjacentSwaps(id)) {
      tried++
      if (isValidChecked(swap)) missed.push(`${id} -> ${swap}`)
    }
  }
  t.ok(tried > 5000)
  t.same(missed, [], `${tried} swaps, none accepted`)
})

t.test('exhaustively over all pairs: every data pair differing in one place or swapped differs in check', async (t) => {
  // Two-symbol prefix × every position of a fixed tail: all 32×32 pairs.
  for (const a of ALPHABET)
    for (const b of ALPHABET) {
      if (a === b) continue
      const base = `${a}${b}7K3M9QXZ2`
      const swapped = `${b}${a}7K3M9QXZ2`
      t.not(withCheck(base).at(-1), withCheck(swapped).at(-1), `${a}${b}`)
    }
})

t.test('reading typed input: case, dashes, spaces and Crockford look-alikes', async (t) => {
  const id = newPrescriptionId()
  t.same(parseChecked(display(id).toLowerCase(), ID_LENGTH), { ok: true, value: id })
  t.same(parseChecked(` ${display(id)} `, ID_LENGTH), { ok: true, value: id })
  t.equal(normalise('o1-il'), '0111')
  t.same(parseChecked('ABCD', ID_LENGTH), { ok: false, reason: 'length' })
  t.same(parseChecked('ABCD-EFGH-UUUU', ID_LENGTH), { ok: false, reason: 'character' })
  t.same(parseChecked(substitutions(id)[5]!, ID_LENGTH), { ok: false, reason: 'check' })
  t.equal(display('ABCDEFGHJKMN'), 'ABCD-EFGH-JKMN')
})

t.test('QR content: ours is read; anything else is refused', async (t) => {
  const id = newPrescriptionId()
  const code = newAccessCode()
  t.same(parseQr(qrPayload(id, code)), { id, accessCode: code })
  t.same(parseQr(qrPayload(id, code).toLowerCase().replace('ordo1', 'ORDO1')), { id, accessCode: code })
  for (const hostile of [
    '',
    '<script>alert(1)</script>',
    `ORDO1:${id}:${code}' OR '1'='1`,
    `ORDO1:${id}:${code}\u0000`,
    `ORDO1:${substitutions(id)[0]}:${code}`,
    `ORDO1:${id}:${adjacentSwaps(code)[0]}`,
    `ORDO2:${id}:${code}`,
    `https://evil.example/?u=ORDO1:${id}:${code}`,
    `ORDO1:${id}:${code}:extra`,
    '{{7*7}}',
    '\u202eORDO1',
    'A'.repeat(10_000),
  ]) {
    t.equal(parseQr(hostile), null, JSON.stringify(hostile.slice(0, 40)))
  }
})

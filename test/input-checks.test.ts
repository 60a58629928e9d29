// The validators' extra checks (platform/input.ts): the quick pass that every request part goes through and the
// detailed one that names the fields must agree, whatever the input, or a bad string would slip through unnamed.
import fc from 'fast-check'
import t from 'tap'
import { anyBadInput, inputErrors } from '../src/platform/input.ts'
import { ORG, testApp } from './helpers.ts'

// Strings with the characters that matter (NUL, lone and paired surrogates) among ordinary ones.
const tricky = fc.oneof(
  fc.string(),
  fc.constantFrom('\u0000', '\uD800', '\uDC00', '\uD83D\uDE00', 'é', '~/', ''),
  fc.array(fc.constantFrom('a', '\u0000', '\uD800', '\uDFFF', '\uD83D\uDE00', '/'), { maxLength: 6 }).map((cs) => cs.join('')),
)
const value = fc.letrec((tie) => ({
  any: fc.oneof({ depthSize: 'small' }, tricky, fc.double(), fc.integer(), fc.boolean(), fc.constant(null), tie('arr'), tie('obj')),
  arr: fc.array(tie('any'), { maxLength: 4 }),
  obj: fc.dictionary(tricky, tie('any'), { maxKeys: 4 }),
})).any

t.test('the quick pass finds something exactly when the detailed one does', async (t) => {
  fc.assert(
    fc.property(value, (v) => anyBadInput(v) === inputErrors(v).length > 0),
    { seed: 20261207, numRuns: 2000 },
  )
  t.equal(anyBadInput({ a: ['x', { b: 'ok\u0000' }] }), true, 'a NUL deep in a body')
  t.equal(anyBadInput({ ['k\uD800']: 1 }), true, 'a lone surrogate in a key')
  t.equal(anyBadInput({ n: Infinity }), true, 'a non-finite number')
  t.equal(anyBadInput({ boxes: [{ dataMatrix: ']d2010340094949729421ABC\u001d10L1' }] }), false, 'a counter request')
})

// Found by the contract fuzzer (FUZZ_N=8): `wait=0x1F` was read as a 31-second wait. Numbers in a query string are
// written in decimal by every client; "0x1F", "1e1", " 5" or "5.0" read as numbers would hide a client's bug. They
// are refused with the field named, and a plain decimal within the bounds is read as before.
t.test('an integer in a query string is read only from plain decimal digits', async (t) => {
  const { app, auth } = await testApp(t)
  const headers = auth('pharmacy', ORG.pharmacyParis)
  const read = (limit: string) => app.inject({ method: 'GET', url: `/v1/feed?after=0&limit=${encodeURIComponent(limit)}`, headers })
  for (const limit of ['0x1F', '1e1', '0b11', '0o7', ' 5', '5 ', '5.0', '+5', '１２']) {
    const res = await read(limit)
    t.equal(res.statusCode, 400, JSON.stringify(limit))
    t.match(res.json(), { errors: [{ field: 'querystring.limit' }] }, `${JSON.stringify(limit)}: the field named`)
  }
  t.equal((await read('039')).statusCode, 200, 'leading zeros are still decimal')
  t.equal((await app.inject({ method: 'GET', url: '/v1/feed?after=0x10', headers })).statusCode, 400, 'every integer field of the query')
  const decimal = fc.oneof(fc.integer({ min: -5, max: 600 }).map(String), fc.string({ maxLength: 6 }), fc.constantFrom('0x1F', '1e2', '2E1', '.5', '5.', '-0', 'Infinity', 'NaN', '100\u0000'))
  await fc.assert(
    fc.asyncProperty(decimal, async (limit) => {
      const res = await read(limit)
      const accepted = /^\d+$/.test(limit) && Number(limit) >= 1 && Number(limit) <= 500
      return accepted ? res.statusCode === 200 : res.statusCode === 400 && res.json().errors.some((e: { field: string }) => e.field === 'querystring.limit')
    }),
    { seed: 20261207, numRuns: 150 },
  )
})

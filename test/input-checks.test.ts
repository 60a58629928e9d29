// The validators' extra checks (platform/input.ts): the quick pass that every request part goes through and the
// detailed one that names the fields must agree, whatever the input, or a bad string would slip through unnamed.
import fc from 'fast-check'
import t from 'tap'
import { anyBadInput, inputErrors } from '../src/platform/input.ts'

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

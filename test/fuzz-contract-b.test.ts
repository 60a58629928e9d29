import t from 'tap'
import { FUZZ_N, fuzzApp, hostilePhase, summary, validPhase } from './fuzz/engine.ts'

// Contract fuzzing, second half (see fuzz-contract-a): valid requests (which also find identifiers to use in
// paths), then hostile mutations of the other half of the operations.
t.test('contract fuzzing (b): valid requests, hostile requests on the other half of the operations', async (t) => {
  const started = Date.now()
  const f = await fuzzApp(t)
  await validPhase(f, 2 * FUZZ_N, 1)
  await hostilePhase(f, 30 * FUZZ_N, { part: 1, of: 2 })
  await f.checkProblemTypes()
  for (const line of summary(f, started)) t.comment(line)
  t.ok(f.requests >= 2500 * FUZZ_N, `${f.requests} requests`)
  t.equal(f.failures.length, 0, 'every answer is in the contract')
})

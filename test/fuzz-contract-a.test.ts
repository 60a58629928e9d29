import t from 'tap'
import { FUZZ_N, fuzzApp, hostilePhase, racePhase, summary, validPhase } from './fuzz/engine.ts'

// Contract fuzzing, first half (the second is fuzz-contract-b; tap runs them side by side): every operation
// with valid requests for each role it allows, concurrent duplicates of every write, PUT racing DELETE, then
// hostile mutations of half of the operations. The engine (fuzz/engine.ts) says what is checked.
t.test('contract fuzzing (a): valid requests, races, hostile requests on half of the operations', async (t) => {
  const started = Date.now()
  const f = await fuzzApp(t)
  await validPhase(f, FUZZ_N)
  await racePhase(f)
  await hostilePhase(f, 30 * FUZZ_N, { part: 0, of: 2 })
  await f.checkProblemTypes()
  for (const line of summary(f, started)) t.comment(line)
  t.ok(f.requests >= 2500 * FUZZ_N, `${f.requests} requests`)
  t.equal(f.failures.length, 0, 'every answer is in the contract')
})

import t from 'tap'
import { FUZZ_N, fuzzApp, hostilePhase, summary, validPhase } from './fuzz/engine.ts'

// Contract fuzzing over HTTP/2 (the other fuzz files call the app without a network): valid requests for every
// operation and role, then hostile mutations of every operation, each over one shared HTTP/2 connection to the
// listening app. The same checks (fuzz/engine.ts): no 5xx, every answer documented and valid against the contract.
t.test('contract fuzzing over HTTP/2: valid and hostile requests on every operation', async (t) => {
  const started = Date.now()
  const f = await fuzzApp(t, { http2: true })
  await validPhase(f, FUZZ_N)
  await hostilePhase(f, 6 * FUZZ_N)
  for (const line of summary(f, started)) t.comment(line)
  t.comment(`${f.notSent} not sent: headers over HTTP/2's 64 KiB (Node resets such a stream)`)
  t.ok(f.requests >= 1500 * FUZZ_N, `${f.requests} requests`)
  t.equal(f.failures.length, 0, 'every answer is in the contract')
})

import t from 'tap'
import pino from 'pino'
import { enqueue, JobRunner, RetryAt } from '../src/platform/jobs.ts'
import { testDatabase } from './helpers.ts'

const log = pino({ level: 'silent' })

t.test('job mechanism', async (t) => {
  const database = await testDatabase(t)
  const db = database.db
  let now = new Date('2026-11-22T10:00:00Z')
  const clock = () => now

  t.test('two runners on one database never run a job twice', async (t) => {
    const ran: string[] = []
    const handler = async (p: { n: number }) => {
      ran.push(String(p.n))
      await new Promise((r) => setTimeout(r, 5))
    }
    const a = new JobRunner({ db, log, now: clock, batch: 5 })
    const b = new JobRunner({ db, log, now: clock, batch: 5 })
    a.register('test.once', handler)
    b.register('test.once', handler)
    for (let n = 0; n < 40; n++) await enqueue(db, 'test.once', { n }, { runAt: now })
    const [ra, rb] = await Promise.all([a.runDue(), b.runDue()])
    t.equal(ra + rb, 40)
    t.equal(ran.length, 40)
    t.equal(new Set(ran).size, 40, 'each job ran exactly once')
    const states = await db.selectFrom('jobs').select('state').where('queue', '=', 'test.once').execute()
    t.ok(states.every((s) => s.state === 'done'))
  })

  t.test('a job is not run before its time; a failure is retried with backoff, then given up', async (t) => {
    let calls = 0
    const r = new JobRunner({ db, log, now: clock })
    r.register('test.flaky', async () => {
      calls++
      throw new Error('gateway down')
    })
    await enqueue(db, 'test.flaky', {}, { runAt: new Date(now.getTime() + 60_000), maxAttempts: 3 })
    t.equal(await r.runDue(), 0, 'not yet due')
    now = new Date(now.getTime() + 61_000)
    t.equal(await r.runDue(), 1)
    const job = await db.selectFrom('jobs').selectAll().where('queue', '=', 'test.flaky').executeTakeFirstOrThrow()
    t.match(job, { state: 'pending', attempts: 1, last_error: 'gateway down' })
    t.ok(job.run_at.getTime() > now.getTime(), 'rescheduled later')
    now = new Date(now.getTime() + 3_600_000)
    await r.runDue()
    now = new Date(now.getTime() + 3_600_000)
    await r.runDue()
    const failed = await db.selectFrom('jobs').selectAll().where('queue', '=', 'test.flaky').executeTakeFirstOrThrow()
    t.match(failed, { state: 'failed', attempts: 3 })
    t.equal(calls, 3)
  })

  t.test('RetryAt reschedules without counting a failure', async (t) => {
    const r = new JobRunner({ db, log, now: clock })
    let calls = 0
    r.register('test.later', async (_p, ctx) => {
      calls++
      if (calls === 1) throw new RetryAt(new Date(ctx.now.getTime() + 30_000), 'Retry-After: 30')
    })
    await enqueue(db, 'test.later', {}, { runAt: now, maxAttempts: 1 })
    await r.runDue()
    const job = await db.selectFrom('jobs').selectAll().where('queue', '=', 'test.later').executeTakeFirstOrThrow()
    t.match(job, { state: 'pending', attempts: 0 })
    t.equal(job.run_at.getTime(), now.getTime() + 30_000)
    now = new Date(now.getTime() + 30_000)
    await r.runDue()
    t.equal((await db.selectFrom('jobs').select('state').where('queue', '=', 'test.later').executeTakeFirstOrThrow()).state, 'done')
  })

  t.test('a job whose instance died is taken over after its lease', async (t) => {
    await enqueue(db, 'test.lease', { x: 1 }, { runAt: now })
    // Instance A claims it and dies before finishing.
    const dead = new JobRunner({ db, log, now: clock, leaseMs: 60_000 })
    dead.register('test.lease', () => new Promise(() => {}))
    void dead.runDue()
    await new Promise((r) => setTimeout(r, 100))
    const survivor = new JobRunner({ db, log, now: clock })
    let ran = 0
    survivor.register('test.lease', async () => {
      ran++
    })
    t.equal(await survivor.runDue(), 0, 'still leased')
    now = new Date(now.getTime() + 61_000)
    t.equal(await survivor.runDue(), 1, 'taken over after the lease')
    t.equal(ran, 1)
  })

  t.test('a singleton key keeps one pending job', async (t) => {
    const first = await enqueue(db, 'test.single', { a: 1 }, { singletonKey: 'recall-42', runAt: now })
    const second = await enqueue(db, 'test.single', { a: 2 }, { singletonKey: 'recall-42', runAt: now })
    t.ok(first)
    t.equal(second, null)
    const r = new JobRunner({ db, log, now: clock })
    r.register('test.single', async () => {})
    await r.runDue()
    t.ok(await enqueue(db, 'test.single', { a: 3 }, { singletonKey: 'recall-42', runAt: now }), 'a new one once the first is done')
  })

  t.test('jobs survive a restart: a new runner finds what was enqueued', async (t) => {
    await enqueue(db, 'test.restart', { y: 1 }, { runAt: now })
    const fresh = new JobRunner({ db, log, now: clock })
    let got: unknown
    fresh.register('test.restart', async (p) => {
      got = p
    })
    await fresh.runDue()
    t.same(got, { y: 1 })
  })
})

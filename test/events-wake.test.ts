// A publication in a transaction started by inTransaction wakes this instance's sequencer after the commit, without
// a NOTIFY from inside the transaction (PostgreSQL's notification lock would make such commits one at a time); the
// sequencer's own notification then wakes the other instances. Elsewhere, publish() still NOTIFYs at commit.
import fc from 'fast-check'
import pg from 'pg'
import t from 'tap'
import { buildApp } from '../src/app.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { inTransaction } from '../src/platform/db/transaction.ts'
import { CHANNEL_PUBLISHED, publish } from '../src/platform/events/publish.ts'
import { ORG, testApp } from './helpers.ts'

const until = async (what: string, pred: () => Promise<boolean> | boolean, ms = 10_000) => {
  const end = Date.now() + ms
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`not met: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('publications wake the sequencer after commit, in process, and the other instances through it', { skip: !process.env.DATABASE_URL && 'needs PostgreSQL (notifications seen by another connection)' }, async (t) => {
  const a = await testApp(t)
  const second = await createDatabase({ databaseUrl: a.database.connectionString!, poolMax: 5 })
  const b = await buildApp({ config: a.config, database: second, background: 'manual-jobs' })
  await b.ready()
  const listener = new pg.Client({ connectionString: a.database.connectionString! })
  await listener.connect()
  const published: string[] = []
  listener.on('notification', (n) => n.channel === CHANNEL_PUBLISHED && published.push(n.payload ?? ''))
  await listener.query(`listen ${CHANNEL_PUBLISHED}`)
  t.teardown(async () => {
    await listener.end()
    await b.close()
    await second.close()
  })
  const feed = async (app: typeof a.app, org: string) =>
    (await app.inject({ method: 'GET', url: '/v1/feed', headers: a.auth('pharmacy', org) })).json().items.map((e: { type: string }) => e.type)

  await inTransaction(a.app.db, (tx) => publish(tx, { type: 'test.coalesced', payload: { n: 1 }, audience: { roles: ['pharmacy'] } }))
  // Sequenced by A's own hub (no test call to runSequencer) and seen by B's readers.
  await until('instance A sequenced the publication', async () => (await feed(a.app, ORG.pharmacyParis)).includes('test.coalesced'))
  await until('instance B serves it', async () => (await feed(b, ORG.pharmacyLyon)).includes('test.coalesced'))

  // A rolled-back transaction publishes nothing and wakes nothing.
  await t.rejects(
    inTransaction(a.app.db, async (tx) => {
      await publish(tx, { type: 'test.rolled-back', payload: {}, audience: { orgs: [ORG.pharmacyParis] } })
      throw new Error('rule failed')
    }),
  )

  // Outside inTransaction: the transactional NOTIFY, as before.
  await a.app.db.transaction().execute((tx) => publish(tx, { type: 'test.notified', payload: {}, audience: { orgs: [ORG.pharmacyParis] } }))
  await until('the plain transaction notified', () => published.length === 1)
  await until('and was sequenced', async () => (await feed(a.app, ORG.pharmacyParis)).includes('test.notified'))
  t.equal(published.length, 1, 'one notification: the plain transaction’s; none from the inTransaction ones')
  t.notOk((await feed(a.app, ORG.pharmacyParis)).includes('test.rolled-back'))
})

// Whatever mix of transactions commits or rolls back, concurrently, through inTransaction or not: every committed
// publication reaches the feed exactly once, in the instance that published it, without a test call to the sequencer,
// and no rolled-back one ever does. Seeded: FC_SEED replays a failure, FC_RUNS enlarges the run.
t.test('property: committed publications reach the feed once, rolled-back ones never', async (t) => {
  const ctx = await testApp(t)
  const feedIds = async () => {
    const ids: string[] = []
    let cursor = ''
    for (;;) {
      const page = (await ctx.app.inject({ method: 'GET', url: `/v1/feed?limit=500${cursor}`, headers: ctx.auth('pharmacy', ORG.pharmacyParis) })).json()
      for (const e of page.items) if (e.type === 'test.property') ids.push(e.payload.id)
      if (!page.nextCursor) return ids
      cursor = `&cursor=${encodeURIComponent(page.nextCursor)}`
    }
  }
  let run = 0
  await fc.assert(
    fc.asyncProperty(fc.array(fc.record({ commit: fc.boolean(), through: fc.constantFrom('inTransaction', 'plain') }), { minLength: 1, maxLength: 12 }), async (txs) => {
      run++
      const ids = txs.map((_, i) => `${run}-${i}`)
      await Promise.allSettled(
        txs.map(({ commit, through }, i) => {
          const body = async (tx: Parameters<Parameters<typeof inTransaction>[1]>[0]) => {
            await publish(tx, { type: 'test.property', payload: { id: ids[i] }, audience: { orgs: [ORG.pharmacyParis] } })
            if (!commit) throw new Error('rolled back')
          }
          return through === 'inTransaction' ? inTransaction(ctx.app.db, body) : ctx.app.db.transaction().execute(body)
        }),
      )
      const committed = ids.filter((_, i) => txs[i]!.commit)
      await until('every committed publication is on the feed', async () => {
        const seen = new Set(await feedIds())
        return committed.every((id) => seen.has(id))
      })
      const mine = (await feedIds()).filter((id) => id.startsWith(`${run}-`))
      return mine.length === committed.length && new Set(mine).size === mine.length && mine.every((id) => committed.includes(id))
    }),
    { seed: Number(process.env.FC_SEED ?? 20261206), numRuns: Number(process.env.FC_RUNS ?? 15) },
  )
})

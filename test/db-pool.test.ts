// The pools open their minimum of connections when the database is created, so that the first requests after a
// start do not each wait for one; a database that cannot be reached then is reported, not fatal.
import t from 'tap'
import net from 'node:net'
import pg from 'pg'
import { createDatabase } from '../src/platform/db/index.ts'
import { testDatabase } from './helpers.ts'

const url = process.env.DATABASE_URL

t.test('the minimum of connections is open before the first query', { skip: url ? false : 'needs DATABASE_URL (the embedded database has one connection)' }, async (t) => {
  const database = await testDatabase(t, { poolMin: 4 })
  const name = new URL(database.connectionString!).pathname.slice(1)
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  t.teardown(() => admin.end())
  const count = async () => Number((await admin.query('select count(*) from pg_stat_activity where datname = $1', [name])).rows[0].count)
  t.same(database.usage(), { total: 4, idle: 4, waiting: 0, max: 10 }, 'the general pool: 4 open and idle')
  t.equal(await count(), 6, 'and 2 on the counter\'s pool (half), before any query')
  await database.db.selectFrom('feed_sequence').select('last_pos').execute()
  t.equal(await count(), 6, 'a query takes one of them')
})

t.test('an unreachable database at start is reported, and the handle is still made', async (t) => {
  // A port nobody listens on: open one, note its number, close it.
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })
  const errors: Error[] = []
  const database = await createDatabase({ databaseUrl: `postgres://postgres@127.0.0.1:${port}/none`, poolMin: 2, connectTimeoutMs: 1000, onConnectionError: (err) => errors.push(err) })
  t.teardown(() => database.close())
  t.equal(errors.length, 1, 'told once')
  t.match(errors[0]!.message, /ECONNREFUSED/)
  t.equal(database.usage().total, 0)
  await t.rejects(database.db.selectFrom('feed_sequence').select('last_pos').execute(), /ECONNREFUSED/, 'queries fail until it can be reached')
})

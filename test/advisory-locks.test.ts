// The service's advisory locks: each serialises one thing, and nothing else waits on it.
import { randomUUID } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { sql } from 'kysely'
import t from 'tap'
import { inTransaction } from '../src/platform/db/transaction.ts'
import { publish } from '../src/platform/events/publish.ts'
import { lockImports } from '../src/referential/queries/bdpm-import.ts'
import { ORG, testApp } from './helpers.ts'

// A BDPM import holds its lock for its whole transaction (seconds for the full database): the feed must not wait
// for it. The import's lock and the sequencer's had the same key, so every event published meanwhile (a recall)
// got no feed position, and reached no pharmacy, until the import committed.
t.test('an import in progress does not hold back the feed', { skip: !process.env.DATABASE_URL && 'the embedded database runs one transaction at a time' }, async (t) => {
  const { app } = await testApp(t)
  let release!: () => void
  let locked!: (pid: number) => void
  const held = new Promise<number>((resolve) => (locked = resolve))
  const importing = inTransaction(app.db, async (tx) => {
    await lockImports(tx)
    locked((await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(tx)).rows[0]!.pid)
    await new Promise<void>((resolve) => (release = resolve))
  })
  t.teardown(async () => {
    release?.()
    await importing
  })
  const importer = await held
  const { id } = await inTransaction(app.db, (tx) =>
    publish(tx, { type: 'shortage.signal_lapsed', payload: { signalId: randomUUID(), cip13: '3400936128149' }, audience: { orgs: [ORG.pharmacyParis] }, senderOrg: null }),
  )
  // The commit woke the instance's sequencer. Either the event gets its feed position, or something waits for a
  // lock the import holds: whichever comes first.
  let settled = false
  const poll = async <T>(read: () => Promise<T | null>): Promise<T | null> => {
    while (!settled) {
      const found = await read()
      if (found !== null) return found
      await new Promise((r) => setTimeout(r, 20))
    }
    return null
  }
  const positioned = poll(async () => {
    const row = await app.db.selectFrom('event_deliveries').select('pos').where('event_id', '=', id).executeTakeFirst()
    return row?.pos != null ? 'positioned' : null
  })
  const blocked = poll(async () => {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_locks w
      join pg_locks h on h.locktype = 'advisory' and h.granted and h.pid = ${importer}
        and h.classid = w.classid and h.objid = w.objid and h.objsubid = w.objsubid
      where w.locktype = 'advisory' and not w.granted`.execute(app.db)
    return rows[0]!.n > 0 ? 'waiting for the import' : null
  })
  t.equal(await Promise.race([positioned, blocked]), 'positioned', 'the event got its feed position while the import held its lock')
  settled = true
  release()
  await Promise.all([importing, positioned, blocked])
})

// Every advisory lock key of the service is in platform/db/locks.ts, each its own.
t.test('each advisory lock has a key of its own', async (t) => {
  const { LOCKS } = await import('../src/platform/db/locks.ts')
  const keys = Object.values(LOCKS)
  t.equal(new Set(keys).size, keys.length, `distinct keys: ${JSON.stringify(LOCKS)}`)
  const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(path.join(dir, f)).isDirectory() ? files(path.join(dir, f)) : [path.join(dir, f)]))
  const stray: string[] = []
  for (const file of files('src').filter((f) => f.endsWith('.ts') && !f.endsWith(path.join('db', 'locks.ts')))) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/pg_advisory(?:_xact)?_lock\(([^)]*)\)/g)) {
      if (!/LOCKS\.\w+/.test(m[1]!)) stray.push(`${file}: ${m[0]}`)
    }
    if (/\b7_203_\d{3}\b/.test(text)) stray.push(`${file}: a lock key outside platform/db/locks.ts`)
  }
  t.same(stray, [], 'every advisory lock names its key from LOCKS')
})

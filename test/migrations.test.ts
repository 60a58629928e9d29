// The migrations' list (src/platform/db/migrations.ts) against the folder it stands for: the same names, in the same
// order, under the names databases migrated before the list existed have recorded (their files' names).
import { readdir } from 'node:fs/promises'
import t from 'tap'
import { sql } from 'kysely'
import { MIGRATIONS_DIR, migrator } from '../src/platform/db/migrate.ts'
import { MIGRATIONS } from '../src/platform/db/migrations.ts'
import { testDatabase } from './helpers.ts'

const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -'.ts'.length)).sort()

t.test('the list names every file of migrations/, and nothing else', async (t) => {
  t.ok(files.length > 0)
  t.same(Object.keys(MIGRATIONS).sort(), files)
  for (const [name, m] of Object.entries(MIGRATIONS)) t.type(m.up, 'function', `${name} has an up()`)
})

t.test('a database migrated from the list has recorded the files’ names, in their order', async (t) => {
  const database = await testDatabase(t)
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by timestamp, name`.execute(database.db)
  t.same(rows.map((r) => r.name), files)
  const listed = await migrator(database.db).getMigrations()
  t.same(listed.map((m) => m.name), files, 'in the order the migrator applies them')
  t.ok(listed.every((m) => m.executedAt), 'all applied')
})

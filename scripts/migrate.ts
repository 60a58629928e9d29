// npm run migrate            apply pending migrations (DATABASE_URL, or the embedded database)
// npm run migrate:status     list migrations and whether they are applied
import { loadConfig } from '../src/platform/config.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { migrateToLatest, migrator } from '../src/platform/db/migrate.ts'

const config = loadConfig()
const database = await createDatabase({ databaseUrl: config.DATABASE_URL, pgliteDir: config.PGLITE_DIR })
try {
  if (process.argv.includes('--status')) {
    const list = await migrator(database.db).getMigrations()
    for (const m of list) console.log(`${m.executedAt ? `applied ${m.executedAt.toISOString()}` : 'pending                         '}  ${m.name}`)
    console.log(`${list.filter((m) => !m.executedAt).length} pending of ${list.length}`)
  } else {
    const result = await migrateToLatest(database.db)
    for (const r of result.results ?? []) console.log(`${r.status.padEnd(8)} ${r.migrationName}`)
    if (!result.results?.length) console.log('up to date')
  }
} finally {
  await database.close()
}

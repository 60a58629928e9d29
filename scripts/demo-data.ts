// npm run demo:data — loads the demo organisations and the demo BDPM products (scripts/fixtures/bdpm-demo)
// into a database that has none. Migrations are not run here: `npm run migrate` first on PostgreSQL.
import { loadConfig } from '../src/platform/config.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { DEMO_BDPM_DIR, loadDemoData } from '../src/demo/seed.ts'

const config = loadConfig()
const database = await createDatabase({ databaseUrl: config.DATABASE_URL, pgliteDir: config.PGLITE_DIR })
try {
  const loaded = await loadDemoData(database.db)
  if (loaded) console.log(`Demo data loaded: ${loaded.organisations} organisations, ${loaded.products} products (from ${DEMO_BDPM_DIR}).`)
  else console.log('Demo data already present (organisation ORDRE exists): nothing loaded.')
} catch (err) {
  console.error(`Demo data not loaded: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
} finally {
  await database.close()
}

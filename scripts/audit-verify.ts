// npm run audit:verify — walks the audit trail's hash chain; exit code 1 when it is broken.
import { loadConfig } from '../src/platform/config.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { verifyAudit } from '../src/platform/audit.ts'

const config = loadConfig()
const database = await createDatabase({ databaseUrl: config.DATABASE_URL, pgliteDir: config.PGLITE_DIR })
try {
  const r = await verifyAudit(database.db)
  console.log(JSON.stringify(r, null, 2))
  if (!r.ok) {
    console.error(`Audit trail broken at entry ${r.broken!.seq} (${r.broken!.reason}).`)
    process.exitCode = 1
  } else console.log(`Audit trail intact: ${r.checked} entries, last ${r.lastSeq} ${r.lastHash}`)
} finally {
  await database.close()
}

// npm run audit:verify — walks the audit trail's hash chains; exit code 1 when one is broken.
import { loadConfig } from '../src/platform/config.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { verifyAudit } from '../src/platform/audit.ts'

const config = loadConfig()
const database = await createDatabase({ databaseUrl: config.DATABASE_URL, pgliteDir: config.PGLITE_DIR })
try {
  const r = await verifyAudit(database.db)
  console.log(JSON.stringify(r, null, 2))
  if (!r.ok) {
    console.error(`Audit trail broken in chain ${r.broken!.chain} at position ${r.broken!.position} (${r.broken!.reason}).`)
    process.exitCode = 1
  } else {
    console.log(`Audit trail intact: ${r.checked} entries in ${r.chains.length} chains. Keep these lines: a later run must show the same hashes at the same positions.`)
    for (const c of r.chains) console.log(`  chain ${c.chain}: position ${c.lastPosition} ${c.lastHash}`)
  }
} finally {
  await database.close()
}

// npm run openapi          writes the contract to openapi/openapi.json
// npm run openapi:check    fails when the committed file differs from what the code produces
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/platform/config.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { eventCatalogueGuide } from '../src/platform/events/catalogue-guide.ts'

const FILE = new URL('../openapi/openapi.json', import.meta.url)
const CATALOGUE = new URL('../openapi/guides/09-event-catalogue.md', import.meta.url)

export async function generateOpenApi(): Promise<string> {
  // The document does not depend on data: a pool that is never used (pg connects lazily) is enough.
  const database = await createDatabase({ databaseUrl: 'postgres://unused@127.0.0.1:1/unused' })
  const app = await buildApp({ config: loadConfig({ NODE_ENV: 'test', MAX_EVENT_LOOP_DELAY_MS: '0' }), database, background: 'off' })
  await app.ready()
  const doc = JSON.stringify(app.swagger(), null, 2) + '\n'
  await app.close()
  await database.close()
  return doc
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const doc = await generateOpenApi()
  const guide = eventCatalogueGuide()
  if (process.argv.includes('--check')) {
    let committedGuide = ''
    try {
      committedGuide = readFileSync(CATALOGUE, 'utf8')
    } catch {}
    if (committedGuide !== guide) {
      console.error('openapi/guides/09-event-catalogue.md is out of date: run `npm run openapi` and commit the result.')
      process.exit(1)
    }
    let committed = ''
    try {
      committed = readFileSync(FILE, 'utf8')
    } catch {}
    if (committed !== doc) {
      const a = committed.split('\n')
      const b = doc.split('\n')
      const i = a.findIndex((line, n) => line !== b[n])
      console.error(`openapi/openapi.json is out of date (first difference at line ${i + 1}):`)
      console.error(`  committed: ${a[i] ?? '<end of file>'}\n  code:      ${b[i] ?? '<end of file>'}`)
      console.error('Run `npm run openapi` and commit the result.')
      process.exit(1)
    }
    console.log('openapi/openapi.json matches the code')
  } else {
    mkdirSync(new URL('../openapi/', import.meta.url), { recursive: true })
    writeFileSync(FILE, doc)
    writeFileSync(CATALOGUE, guide)
    console.log(`wrote openapi/openapi.json (${doc.length} bytes)`)
  }
}

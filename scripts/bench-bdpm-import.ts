// npm run bench:bdpm [-- <folder>]
// Loads a whole BDPM (by default the spring 2021 one beside the repository) into a fresh database, twice, and
// prints the time and memory of each run: the first inserts everything, the second must find everything
// unchanged. Runs on a new database created beside DATABASE_URL when set, else on a fresh embedded one; it
// never touches an existing database.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { seedDemoOrganisations } from '../src/demo/seed.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { createDatabase } from '../src/platform/db/index.ts'
import { migrateToLatest } from '../src/platform/db/migrate.ts'
import { importBdpm, readBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { BDPM_FILES, type BdpmFile } from '../src/referential/rules/bdpm-format.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const candidates = [process.argv[2], path.join(root, '../shared/data/bdpm-2021'), path.join(root, '../../shared/data/bdpm-2021')].filter((d): d is string => !!d)
const dir = candidates.find((d) => existsSync(d))
if (!dir) {
  console.error(`Dossier BDPM introuvable (essayés : ${candidates.join(', ')})`)
  process.exit(1)
}

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} Mo`

async function main(folder: string) {
  const url = process.env.DATABASE_URL
  let drop = async () => {}
  let database
  if (url) {
    const name = `bench_bdpm_${randomBytes(4).toString('hex')}`
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    await admin.query(`create database ${name}`)
    await admin.end()
    const u = new URL(url)
    u.pathname = `/${name}`
    database = await createDatabase({ databaseUrl: u.toString() })
    drop = async () => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.end()
    }
  } else database = await createDatabase({ pgliteDir: 'memory://' })
  try {
    await migrateToLatest(database.db)
    await seedDemoOrganisations(database.db)
    const files = await readBdpmDirectory(folder)
    console.log(`BDPM ${folder} — ${url ? 'PostgreSQL' : 'base embarquée'}`)
    for (const run of ['premier import', 'second import (identique)']) {
      const rssBefore = process.memoryUsage().rss
      const started = performance.now()
      const report = await importBdpm(database.db, files, { ...SYSTEM, user: 'bench-bdpm' })
      const ms = performance.now() - started
      const counts = (Object.keys(BDPM_FILES) as BdpmFile[])
        .filter((k) => report[k].read > 0)
        .map((k) => `${BDPM_FILES[k].name} ${report[k].read} lues, ${report[k].inserted} ajoutées, ${report[k].unchanged} inchangées, ${report[k].rejected} rejetées`)
      console.log(`${run} : ${(ms / 1000).toFixed(1)} s, RSS ${mb(process.memoryUsage().rss)} (avant ${mb(rssBefore)}), pic RSS du processus ${mb(process.resourceUsage().maxRSS * 1024)}`)
      for (const c of counts) console.log(`  ${c}`)
    }
  } finally {
    await database.close()
    await drop()
  }
}

main(dir).catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})

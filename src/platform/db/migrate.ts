import { promises as fs } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { FileMigrationProvider, type MigrationResultSet, Migrator } from 'kysely'
import type { Database } from './index.ts'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url))

export function migrator(db: Database) {
  return new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }),
  })
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Database): Promise<MigrationResultSet> {
  const result = await migrator(db).migrateToLatest()
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')
    throw new Error(`Migration ${failed?.migrationName ?? '?'} failed: ${String(result.error)}`, { cause: result.error })
  }
  return result
}

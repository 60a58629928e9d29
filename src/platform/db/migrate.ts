import { fileURLToPath } from 'node:url'
import { type MigrationResultSet, Migrator } from 'kysely'
import type { Database } from './index.ts'
import { MIGRATIONS } from './migrations.ts'

/** Where the migrations' files are (their contents identify a migrated template in the tests). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url))

export function migrator(db: Database) {
  return new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
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

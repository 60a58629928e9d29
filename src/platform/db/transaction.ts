import type { Kysely, Transaction } from 'kysely'
import type { DB } from './schema.ts'

/**
 * A transaction that can run work after its commit: Kysely has no commit hook, so the scope of a transaction
 * started here is kept by identity of its `tx` for what runs inside (a publication wakes this instance's
 * sequencer after the commit instead of sending a NOTIFY from inside it: see events/publish.ts). Nothing runs
 * after a rollback; a callback that throws is not the caller's failure (its transaction committed).
 */
export interface CommitScope {
  db: Kysely<DB>
  after: Array<() => void>
}

const scopes = new WeakMap<Transaction<DB>, CommitScope>()

export async function inTransaction<T>(db: Kysely<DB>, fn: (tx: Transaction<DB>) => Promise<T>): Promise<T> {
  const scope: CommitScope = { db, after: [] }
  const result = await db.transaction().execute((tx) => {
    scopes.set(tx, scope)
    return fn(tx)
  })
  for (const run of scope.after) {
    try {
      run()
    } catch {
      // the work after commit is a wake-up; its own sweep catches up
    }
  }
  return result
}

/** The scope of a transaction started by inTransaction, or undefined for any other. */
export const commitScope = (tx: Transaction<DB> | Kysely<DB>): CommitScope | undefined => scopes.get(tx as Transaction<DB>)

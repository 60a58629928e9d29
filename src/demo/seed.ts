import { fileURLToPath } from 'node:url'
import { actorOf, audit, SYSTEM } from '../platform/audit.ts'
import type { Database } from '../platform/db/index.ts'
import { regionOfDepartment } from '../platform/identifiers.ts'
import { DEMO_ORGANISATIONS } from './organisations.ts'
import { inTransaction } from '../platform/db/transaction.ts'

export const DEMO_BDPM_DIR = fileURLToPath(new URL('../../scripts/fixtures/bdpm-demo', import.meta.url))

/** Inserts the demo organisations (and their subscriptions) that are missing. Returns how many were added. */
export async function seedDemoOrganisations(db: Database): Promise<number> {
  return inTransaction(db, async (tx) => {
    let added = 0
    for (const { subscribedSince, ...o } of DEMO_ORGANISATIONS) {
      const row = await tx
        .insertInto('organisations')
        .values({ ...o, region: regionOfDepartment(o.department), updated_at: new Date() })
        .onConflict((oc) => oc.column('id').doNothing())
        .returning('id')
        .executeTakeFirst()
      if (!row) continue
      added++
      if (subscribedSince) {
        await tx.insertInto('lab_subscriptions').values({ lab_id: o.id, subscribed: true, since: subscribedSince, updated_at: new Date() }).execute()
      }
      await audit(tx, { ...SYSTEM, user: 'demo-seed' }, { action: 'organisation.created', objectType: 'organisation', objectId: o.id, changes: { ...o, subscribedSince } })
    }
    return added
  })
}

/** Demo data on a database that has none: organisations, then the BDPM-format demo products. */
export async function loadDemoData(db: Database): Promise<{ organisations: number; products: number; shortages: number } | null> {
  const already = await db.selectFrom('organisations').select('id').where('id', '=', 'ORDRE').executeTakeFirst()
  if (already) return null
  const organisations = await seedDemoOrganisations(db)
  const { importBdpmDirectory } = await import('../referential/use-cases/bdpm-import.ts')
  const report = await importBdpmDirectory(db, DEMO_BDPM_DIR, actorOf(null))
  // The country's shortages as the BDPM availability file gives them, as declarations of the products' labs.
  const { importActor, AVAILABILITY_FILE } = await import('../shortages/rules/availability-file.ts')
  const { importAvailability } = await import('../shortages/use-cases/availability-import.ts')
  const { readFile } = await import('node:fs/promises')
  const path = await import('node:path')
  const shortages = await importAvailability(db, await readFile(path.join(DEMO_BDPM_DIR, AVAILABILITY_FILE)), { now: new Date(), actor: importActor('demo-seed'), file: AVAILABILITY_FILE, partial: false })
  return { organisations, products: report.presentations.inserted + report.presentations.updated, shortages: shortages.created }
}

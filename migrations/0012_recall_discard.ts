// Frozen: never edit a migration that has been released; add a new one.
// DP-Rappels / DP-Alertes: a draft the lab discards keeps its row (references are gapless) with the terminal
// status `discarded`; a discarded correction keeps its version row with the version status `discarded`.
import { type Kysely, sql } from 'kysely'

const RECALL = ['draft', 'submitted', 'changes_requested', 'rejected', 'approved', 'broadcast', 'closed']
const VERSION = ['draft', 'submitted', 'changes_requested', 'rejected', 'approved', 'broadcast', 'superseded', 'cancelled']

async function statuses(db: Kysely<any>, table: string, values: string[]) {
  // The constraint 0008 declared inline on the column, named by PostgreSQL `<table>_status_check`.
  await sql`alter table ${sql.table(table)} drop constraint ${sql.id(`${table}_status_check`)}`.execute(db)
  await sql`alter table ${sql.table(table)} add constraint ${sql.id(`${table}_status_check`)} check (status in (${sql.join(values.map((v) => sql.lit(v)))}))`.execute(db)
}

export async function up(db: Kysely<any>): Promise<void> {
  await statuses(db, 'recalls', [...RECALL, 'discarded'])
  await statuses(db, 'recall_versions', [...VERSION, 'discarded'])
}

export async function down(db: Kysely<any>): Promise<void> {
  await statuses(db, 'recalls', RECALL)
  await statuses(db, 'recall_versions', VERSION)
}

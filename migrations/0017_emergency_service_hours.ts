// Frozen: never edit a migration that has been released; add a new one.
// Emergency requests: the hours a lab's emergency service declares, which the escalation clock follows.
import type { Kysely } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  // { slots: [{ days: [1..7], from: 'HH:MM', to: 'HH:MM' }], publicHolidays: 'closed' | 'open' }, Europe/Paris;
  // null: the default office hours (Monday to Friday, 09:00–18:00, national public holidays closed).
  await db.schema.alterTable('emergency_openings').addColumn('service_hours', 'jsonb').execute()
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('emergency_openings').dropColumn('service_hours').execute()
}

// The data the 0018 migrations find in place: review rounds rebuilt from the history of submissions, a version's
// stale decision time cleared, a letter to send for every fax already given up.
import { randomUUID } from 'node:crypto'
import { type Kysely, sql } from 'kysely'
import t from 'tap'
import { migrateToLatest } from '../src/platform/db/migrate.ts'
import { testDatabase } from './helpers.ts'

t.test('rounds, decision times and paper letters from the data already there', async (t) => {
  const { db: typed } = await testDatabase(t, { upTo: '0013_audit_chains' })
  const db = typed as unknown as Kysely<any>
  const at = (min: number) => new Date(Date.UTC(2026, 10, 22, 9, min))
  await db.insertInto('organisations').values([
    { id: '412345670', role: 'lab', name: 'BIOGARAN', updated_at: at(0) },
    { id: 'ANSM', role: 'ansm', name: 'ANSM', updated_at: at(0) },
    { id: '920100070', role: 'wholesaler', name: 'Répartition Île-de-France', updated_at: at(0) },
  ]).execute()
  const recall = randomUUID()
  const content = (message: string) => JSON.stringify({ title: 'Rappel', reason: 'Défaut', message, messageEn: null, action: 'destroy', recipients: { categories: ['wholesaler'], regions: [], departments: [] }, contacts: [], batches: [], blockDispensation: false, scheduledAt: null, reminderDelaysHours: [] })
  await db.insertInto('recalls').values({ id: recall, kind: 'recall', reference: 'R-2026-0001', lab_id: '412345670', status: 'submitted', version: 1, live_version: null, created_at: at(0), updated_at: at(5) }).execute()
  // Submitted at 09:01, changes asked at 09:02, submitted again at 09:05: the old code left decided_at at 09:02.
  await db.insertInto('recall_versions').values({ recall_id: recall, version: 1, status: 'submitted', content: content('Version soumise deux fois'), created_at: at(0), updated_at: at(5), submitted_at: at(5), decided_at: at(2) }).execute()
  const message = (kind: string, min: number, text: string | null, role: string, org: string) =>
    db.insertInto('recall_messages').values({ id: randomUUID(), recall_id: recall, version: 1, kind, text, author_role: role, author_org: org, author_user: `${role}-user`, at: at(min) }).execute()
  await message('created', 0, null, 'lab', '412345670')
  await message('submitted', 1, null, 'lab', '412345670')
  await message('changes_requested', 2, 'Précisez.', 'ansm', 'ANSM')
  await message('comment', 3, 'Entendu.', 'lab', '412345670')
  await message('edited', 4, null, 'lab', '412345670')
  await message('submitted', 5, null, 'lab', '412345670')

  const event = randomUUID()
  await db.insertInto('events').values({ id: event, type: 'recall.broadcast', sender_org: '412345670', subject_type: 'recall', subject_id: recall, payload: JSON.stringify({ reference: 'R-2026-0001' }), audience: JSON.stringify({ roles: ['wholesaler'] }), recipients: 1, created_at: at(10) }).execute()
  await db.insertInto('event_deliveries').values({ event_id: event, org_id: '920100070', role: 'wholesaler', fax: true, fax_status: 'paper_letter', fax_attempts: 5, created_at: at(10) }).execute()

  await migrateToLatest(typed)

  const rounds = await db.selectFrom('recall_submissions').selectAll().where('recall_id', '=', recall).orderBy('round').execute()
  t.equal(rounds.length, 2, 'one round per submission')
  t.match(rounds[0], { round: 1, decision: 'changes_requested', comment: 'Précisez.', decided_by_org: 'ANSM', submitted_by_user: 'lab-user', reconstructed: true })
  t.equal(new Date(rounds[0]!.submitted_at).getTime(), at(1).getTime())
  t.equal(new Date(rounds[0]!.decided_at).getTime(), at(2).getTime())
  t.match(rounds[1], { round: 2, decision: null, decided_at: null, reconstructed: true })
  t.equal(rounds[1]!.content.message, 'Version soumise deux fois', 'the content known: the version’s latest')
  const version = await db.selectFrom('recall_versions').select(['decided_at', 'submitted_at']).where('recall_id', '=', recall).executeTakeFirstOrThrow()
  t.equal(version.decided_at, null, 'the earlier round’s decision time is no longer the version’s')
  const changes = await db.selectFrom('recall_messages').select('changes').where('recall_id', '=', recall).execute()
  t.ok(changes.every((c) => c.changes === null), 'history entries have a changes column, empty for the old ones')

  const letters = await db.selectFrom('paper_letters').selectAll().execute()
  t.match(letters, [{ event_id: event, org_id: '920100070', sender_org: '412345670', status: 'pending', fax_attempts: 5 }])
  const org = await db.selectFrom('organisations').select(['address_line1', 'postal_code']).where('id', '=', '920100070').executeTakeFirstOrThrow()
  t.same(org, { address_line1: null, postal_code: null }, 'addresses start empty')
  const acks = await sql<{ column_name: string }>`select column_name from information_schema.columns where table_name = 'recall_ack_history' order by column_name`.execute(db)
  t.ok(['source', 'signed_by', 'signed_on', 'recorded_by_org'].every((c) => acks.rows.some((r) => r.column_name === c)))
})

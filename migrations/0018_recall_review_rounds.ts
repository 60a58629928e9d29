// Frozen: never edit a migration that has been released; add a new one.
// DP-Rappels / DP-Alertes: every submission to ANSM (a review round) keeps the content as submitted, its decision
// and who made it; a version's row keeps only its latest content. History entries (an edit, a new version) keep
// the field-level changes they made.
import { type Kysely, sql } from 'kysely'

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('recall_submissions')
    .addColumn('recall_id', 'uuid', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('round', 'integer', (c) => c.notNull()) // 1, 2… within the version
    .addColumn('content', 'jsonb', (c) => c.notNull()) // the whole content as submitted
    .addColumn('submitted_at', 'timestamptz', (c) => c.notNull())
    .addColumn('submitted_by_role', 'text')
    .addColumn('submitted_by_org', 'text')
    .addColumn('submitted_by_user', 'text')
    // approved, changes_requested, rejected, withdrawn (the lab discarded it), cancelled (closed meanwhile); null while pending
    .addColumn('decision', 'text', (c) => c.check(sql`decision in ('approved','changes_requested','rejected','withdrawn','cancelled')`))
    .addColumn('decided_at', 'timestamptz')
    .addColumn('decided_by_role', 'text')
    .addColumn('decided_by_org', 'text')
    .addColumn('decided_by_user', 'text')
    .addColumn('comment', 'text')
    // Rounds rebuilt from the history of submissions made before this table existed: their content is the
    // version's latest content, which may differ from what was submitted then.
    .addColumn('reconstructed', 'boolean', (c) => c.notNull().defaultTo(false))
    .addPrimaryKeyConstraint('recall_submissions_pk', ['recall_id', 'version', 'round'])
    .addForeignKeyConstraint('recall_submissions_version_fk', ['recall_id', 'version'], 'recall_versions', ['recall_id', 'version'])
    .execute()

  await sql`alter table recall_messages add column changes jsonb`.execute(db)

  // Earlier submissions, one round per 'submitted' entry of the history, with the first decision that followed it.
  await sql`
    insert into recall_submissions (recall_id, version, round, content, submitted_at, submitted_by_role, submitted_by_org, submitted_by_user,
                                    decision, decided_at, decided_by_role, decided_by_org, decided_by_user, comment, reconstructed)
    select s.recall_id, s.version, s.round, v.content, s.at, s.author_role, s.author_org, s.author_user,
           coalesce(d.decision, case when s.next_seq is null and v.status = 'cancelled' then 'cancelled' end),
           d.at, d.author_role, d.author_org, d.author_user, d.text, true
    from (
      select m.recall_id, m.version, m.seq, m.at, m.author_role, m.author_org, m.author_user,
             row_number() over (partition by m.recall_id, m.version order by m.seq) as round,
             lead(m.seq) over (partition by m.recall_id, m.version order by m.seq) as next_seq
      from recall_messages m where m.kind = 'submitted'
    ) s
    join recall_versions v on v.recall_id = s.recall_id and v.version = s.version
    left join lateral (
      select case x.kind when 'discarded' then 'withdrawn' else x.kind end as decision, x.at, x.author_role, x.author_org, x.author_user, x.text
      from recall_messages x
      where x.recall_id = s.recall_id and x.version = s.version and x.seq > s.seq and (s.next_seq is null or x.seq < s.next_seq)
        and x.kind in ('approved', 'changes_requested', 'rejected', 'discarded')
      order by x.seq limit 1
    ) d on true`.execute(db)

  // A version submitted again after a decision kept that decision's time: it belongs to the earlier round.
  await sql`update recall_versions set decided_at = null where decided_at is not null and submitted_at is not null and decided_at < submitted_at`.execute(db)
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table recall_messages drop column changes`.execute(db)
  await db.schema.dropTable('recall_submissions').execute()
}

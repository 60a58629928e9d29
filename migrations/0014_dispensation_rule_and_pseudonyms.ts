// Frozen: never edit a migration that has been released; add a new one.
// One answer to "may this box be dispensed?" (src/dispensation/rule.ts) and pseudonyms everywhere in serialization.
//
// 1. A recall no longer copies its blocking into serial_batches.status (verification reads the recall's rows):
//    statuses written by that copy ('Rappel <reference>' while the recall still blocks the batch) go back to the
//    lab's own, active. The lab's non-active statuses get a small index: every API instance loads them.
// 2. No FINESS and no user identifier in clear in any serialization table: the organisation and the user of a pack
//    transaction, of an alert and of an alert message become keyed pseudonyms (HMAC-SHA256 with the
//    SCAN_PSEUDONYM_SECRET the service runs with, as the scan log already does), computed here for existing rows.
// 3. Alerts: escalation to ANSM, the raw scanned string, repeated failures counted on one alert.
import { createHmac } from 'node:crypto'
import { type Kysely, sql } from 'kysely'

// The service's development key (src/platform/config.ts): the same pseudonyms as the running service computes.
const DEV_SECRET = 'development-only-scan-pseudonym-key-never-in-production'
const secret = () => {
  const s = process.env.SCAN_PSEUDONYM_SECRET
  if (s) return s
  if (process.env.NODE_ENV === 'production') throw new Error('SCAN_PSEUDONYM_SECRET is required to pseudonymise existing serialization rows')
  return DEV_SECRET
}
// Same formulas as src/serialization/pseudonyms.ts (a migration never imports application code).
const orgPseudonym = (key: string, org: string) => createHmac('sha256', key).update(org, 'utf8').digest('base64url').slice(0, 22)
const userPseudonym = (key: string, org: string, user: string) => createHmac('sha256', key).update(`user\u0000${org}\u0000${user}`, 'utf8').digest('base64url').slice(0, 22)

async function backfill(db: Kysely<any>, table: string, withOrg: boolean) {
  const pairs = (await sql<{ org_id: string; user_id: string }>`select distinct org_id, user_id from ${sql.table(table)}`.execute(db)).rows
  if (pairs.length === 0) return
  const key = secret()
  for (let i = 0; i < pairs.length; i += 1000) {
    const chunk = pairs.slice(i, i + 1000)
    const orgs = chunk.map((p) => p.org_id)
    const users = chunk.map((p) => p.user_id)
    const po = chunk.map((p) => orgPseudonym(key, p.org_id))
    const pu = chunk.map((p) => userPseudonym(key, p.org_id, p.user_id))
    await sql`
      update ${sql.table(table)} t set user_pseudonym = v.pu ${withOrg ? sql`, org_pseudonym = v.po` : sql``}
      from unnest(${orgs}::text[], ${users}::text[], ${po}::text[], ${pu}::text[]) as v(org, usr, po, pu)
      where t.org_id = v.org and t.user_id = v.usr`.execute(db)
  }
}

export async function up(db: Kysely<any>): Promise<void> {
  // 1.
  await sql`
    update serial_batches b set status = 'active', status_reason = null
    where b.status = 'recalled'
      and exists (select 1 from dispensation_blocks d where d.cip13 = b.cip13 and d.batch = upper(b.batch) and b.status_reason = 'Rappel ' || d.reference)`.execute(db)
  await sql`create index serial_batches_not_active on serial_batches (cip13) where status <> 'active'`.execute(db)

  // 2. pack_transactions: organisation and user → pseudonyms.
  await sql`alter table pack_transactions add column org_pseudonym text, add column user_pseudonym text`.execute(db)
  await backfill(db, 'pack_transactions', true)
  await sql`alter table pack_transactions drop column org_id, drop column user_id`.execute(db)
  await sql`alter table pack_transactions alter column org_pseudonym set not null, alter column user_pseudonym set not null`.execute(db)
  await sql`create index pack_transactions_org on pack_transactions (org_pseudonym, at)`.execute(db)

  // Alert messages: the author's user → pseudonym (the organisation is the alert's lab or pharmacy).
  await sql`alter table serial_alert_messages add column user_pseudonym text`.execute(db)
  const messages = (await sql<{ id: number; org_id: string; user_id: string; author: string; lab_id: string }>`
    select m.id, m.user_id, m.author, a.org_id, a.lab_id from serial_alert_messages m join serial_alerts a on a.seq = m.alert_seq`.execute(db)).rows
  if (messages.length > 0) {
    const key = secret()
    for (const m of messages) {
      await sql`update serial_alert_messages set user_pseudonym = ${userPseudonym(key, m.author === 'lab' ? m.lab_id : m.org_id, m.user_id)} where id = ${m.id}`.execute(db)
    }
  }
  await sql`alter table serial_alert_messages drop column user_id`.execute(db)
  await sql`alter table serial_alert_messages alter column user_pseudonym set not null`.execute(db)
  await sql`alter table serial_alert_messages drop constraint if exists serial_alert_messages_author_check`.execute(db)
  await sql`alter table serial_alert_messages add constraint serial_alert_messages_author_check check (author in ('lab', 'pharmacy', 'ansm'))`.execute(db)

  // serial_alerts: the pharmacy is already its pseudonym; its user too now.
  await sql`alter table serial_alerts add column user_pseudonym text`.execute(db)
  await backfill(db, 'serial_alerts', false)
  await sql`alter table serial_alerts drop column org_id, drop column user_id`.execute(db)
  await sql`alter table serial_alerts alter column user_pseudonym set not null`.execute(db)
  await sql`create index serial_alerts_pharmacy on serial_alerts (pharmacy_pseudonym, seq)`.execute(db)

  // 3. Escalation: a lab concluding "falsification suspected" escalates the alert to ANSM, which closes it.
  await sql`alter table serial_alerts drop constraint if exists serial_alerts_status_check`.execute(db)
  await sql`alter table serial_alerts drop constraint if exists serial_alerts_closed`.execute(db)
  await sql`alter table serial_alerts add constraint serial_alerts_status_check check (status in ('new', 'under_investigation', 'escalated', 'closed'))`.execute(db)
  await sql`alter table serial_alerts add constraint serial_alerts_concluded check ((status in ('escalated', 'closed')) = (conclusion is not null))`.execute(db)
  await sql`
    alter table serial_alerts
      add column escalated_at timestamptz,
      add column ansm_conclusion text check (ansm_conclusion in ('falsification_confirmed', 'no_falsification', 'other')),
      add column ansm_note text,
      -- The DataMatrix as scanned (at most 200 characters: a longer input is never read), when the pack was scanned.
      add column scanned text check (length(scanned) <= 200),
      -- Identical failures of one pharmacy on one pack within a short window count here instead of new alerts.
      add column occurrences integer not null default 1,
      add column last_seen_at timestamptz`.execute(db)
  await sql`update serial_alerts set last_seen_at = created_at`.execute(db)
  await sql`alter table serial_alerts alter column last_seen_at set not null`.execute(db)
  await sql`create index serial_alerts_repeat on serial_alerts (cip13, serial, pharmacy_pseudonym, code) where status <> 'closed'`.execute(db)
}

export async function down(): Promise<void> {
  // Pseudonyms cannot be turned back into identifiers: restore from a backup taken before this migration.
  throw new Error('0014 cannot be undone')
}

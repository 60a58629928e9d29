/**
 * The SQL of a message's recipients: who it was addressed to, their acknowledgements (one row per recipient, every
 * one it gave in the history), the reminders they were sent, and the coverage of the message. Functions take a
 * Kysely or a Transaction; the caller has checked it may see the message.
 */
import { type Transaction, sql } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import type { AckContent, AckSource, PipelineKind, RecallRow } from '../db.ts'
import type { RecipientFilter } from '../rules/acknowledgements.ts'
import { LABEL, notFoundFor } from '../rules/kinds.ts'
import type { Db } from './messages.ts'

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null)

/** The recipient's acknowledgement as the API shows it; `changes` is its number of entries in the history (counted unless given). */
export async function ackView(db: Db, recallId: string, rec: { org_id: string; ack_status: string | null; ack: AckContent | null; acked_at: Date | null }, changes?: number) {
  if (!rec.ack_status || !rec.ack || !rec.acked_at) return null
  const n =
    changes ??
    (await db
      .selectFrom('recall_ack_history')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('recall_id', '=', recallId)
      .where('org_id', '=', rec.org_id)
      .executeTakeFirstOrThrow()).n
  return { status: rec.ack_status as 'read' | 'done', ...rec.ack, acknowledgedAt: iso(rec.acked_at)!, changes: Number(n) }
}

/** Every organisation an event of the message was delivered to is a recipient; what earlier ones did is kept. */
export async function addRecipients(tx: Transaction<DB>, recallId: string, version: number, eventId: string, now: Date) {
  await sql`
    insert into recall_recipients (recall_id, org_id, role, department, region, first_version, last_event_id, added_at)
    select ${recallId}::uuid, d.org_id, d.role, d.department, d.region, ${version}::int, d.event_id, ${now}::timestamptz
    from event_deliveries d where d.event_id = ${eventId}::uuid
    on conflict (recall_id, org_id) do update set last_event_id = excluded.last_event_id`.execute(tx)
}

/** Counts a reminder sent to these recipients. */
export async function markReminded(tx: Transaction<DB>, recallId: string, orgs: string[], now: Date) {
  await tx
    .updateTable('recall_recipients')
    .set({ reminders: sql`reminders + 1`, last_reminded_at: now })
    .where('recall_id', '=', recallId)
    .where('org_id', 'in', orgs)
    .execute()
}

/**
 * The message as this recipient sees it (visibleRecall's rule for recipients: in force once, addressed to it)
 * and its recipient row, locked so that its acknowledgements are numbered one after the other.
 */
export function lockRecipient(tx: Transaction<DB>, kind: PipelineKind, recallId: string, org: string) {
  return tx
    .selectFrom('recall_recipients as rr')
    .innerJoin('recalls as r', 'r.id', 'rr.recall_id')
    .select(['r.status', 'r.reference', 'r.live_version', 'rr.org_id', 'rr.ack_status', 'rr.ack', 'rr.acked_at', 'rr.last_event_id'])
    .where('rr.recall_id', '=', recallId)
    .where('rr.org_id', '=', org)
    .where('r.kind', '=', kind)
    .where('r.live_version', 'is not', null)
    .forUpdate('rr')
    .executeTakeFirst()
}

/** An acknowledgement to record: by the recipient itself, or by the lab from a paper form (`recordedBy`, signed). */
export interface AckRecord {
  recallId: string
  org: string
  status: 'read' | 'done'
  ack: AckContent
  version: number
  user: string
  at: Date
  source: AckSource
  recordedBy: string | null
  signedBy: string | null
  signedOn: string | null
}

/** One statement: the history entry, numbered after the recipient's previous ones, and the recipient's state. */
export function recordAcknowledgement(tx: Transaction<DB>, a: AckRecord) {
  const { recallId: id, org: recipient, status, ack, at: now } = a
  return tx
    .with('h', (db) =>
      db
        .insertInto('recall_ack_history')
        .columns(['recall_id', 'org_id', 'seq', 'status', 'ack', 'version', 'user_id', 'at', 'source', 'recorded_by_org', 'signed_by', 'signed_on'])
        .expression(
          db
            .selectFrom('recall_ack_history')
            .select((eb) => [
              eb.val(id).as('recall_id'),
              eb.val(recipient).as('org_id'),
              sql<number>`count(*)::int + 1`.as('seq'),
              eb.val(status).as('status'),
              sql<string>`${JSON.stringify(ack)}::jsonb`.as('ack'),
              eb.val(a.version).as('version'),
              eb.val(a.user).as('user_id'),
              sql<Date>`${now}::timestamptz`.as('at'),
              eb.val(a.source).as('source'),
              eb.val(a.recordedBy).as('recorded_by_org'),
              eb.val(a.signedBy).as('signed_by'),
              sql<string | null>`${a.signedOn}::date`.as('signed_on'),
            ])
            .where('recall_id', '=', id)
            .where('org_id', '=', recipient),
        )
        .returning('seq'),
    )
    .updateTable('recall_recipients')
    .from('h')
    .set({
      ack_status: status,
      ack: JSON.stringify(ack),
      acked_at: now,
      read_at: sql`coalesce(read_at, ${now}::timestamptz)`,
      done_at: status === 'done' ? sql`coalesce(done_at, ${now}::timestamptz)` : sql`done_at`,
    })
    .where('recall_recipients.recall_id', '=', id)
    .where('recall_recipients.org_id', '=', recipient)
    .returning(['recall_recipients.org_id', 'recall_recipients.ack_status', 'recall_recipients.ack', 'recall_recipients.acked_at', 'h.seq'])
    .executeTakeFirstOrThrow()
}

/**
 * A recipient's current acknowledgement and every one it gave, oldest first: read by the recipient itself, and by
 * the lab and ANSM for any recipient of the message (404 for an organisation it was not addressed to).
 */
export async function acknowledgementHistory(db: Db, kind: PipelineKind, r: RecallRow, orgId: string) {
  const rec = await db.selectFrom('recall_recipients').selectAll().where('recall_id', '=', r.id).where('org_id', '=', orgId).executeTakeFirst()
  if (!rec) throw notFoundFor(kind, r.id)
  const rows = await db.selectFrom('recall_ack_history').selectAll().where('recall_id', '=', r.id).where('org_id', '=', orgId).orderBy('seq').execute()
  return {
    id: r.id,
    reference: r.reference,
    current: await ackView(db, r.id, rec, rows.length),
    history: rows.map((h) => ({
      seq: h.seq, status: h.status as 'read' | 'done', ...h.ack, version: h.version, acknowledgedAt: h.at.toISOString(),
      by: { org: h.recorded_by_org ?? h.org_id, user: h.user_id },
      source: h.source,
      signedBy: h.signed_by,
      signedOn: h.signed_on,
    })),
  }
}

interface RecipientState {
  org_id: string
  role: string
  department: string | null
  region: string | null
  reached: boolean
  read: boolean
  acknowledged: boolean
  done: boolean
}

/** Per recipient: reached (any channel), read (feed read or acknowledgement), acknowledged, done. */
export function recipientStates(db: Db, recallId: string) {
  return db
    .selectFrom('recall_recipients as rr')
    .innerJoin('organisations as o', 'o.id', 'rr.org_id')
    // The latest paper letter asked for this recipient (a fax of one of the message's events given up).
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('paper_letters as l')
          .innerJoin('events as e', 'e.id', 'l.event_id')
          .select(['l.id as letter_id', 'l.status as letter_status', 'l.sent_at as letter_sent_at'])
          .whereRef('l.org_id', '=', 'rr.org_id')
          .where('e.subject_type', 'in', ['recall', 'alert'])
          .where(sql<boolean>`e.subject_id = rr.recall_id::text`)
          .orderBy('l.created_at', 'desc')
          .limit(1)
          .as('lt'),
      (join) => join.onTrue(),
    )
    .select(['lt.letter_id', 'lt.letter_status', 'lt.letter_sent_at'])
    .select([
      'rr.org_id', 'rr.role', 'rr.department', 'rr.region', 'rr.read_at', 'rr.ack_status', 'rr.ack', 'rr.acked_at', 'rr.reminders', 'o.name',
      sql<boolean>`rr.acked_at is not null or exists (select 1 from event_deliveries d join recall_versions v on v.event_id = d.event_id where v.recall_id = rr.recall_id and d.org_id = rr.org_id and (d.delivered_at is not null or d.read_at is not null))`.as('reached'),
      sql<Date | null>`coalesce(rr.read_at, (select min(d.read_at) from event_deliveries d join recall_versions v on v.event_id = d.event_id where v.recall_id = rr.recall_id and d.org_id = rr.org_id))`.as('first_read_at'),
      sql<string | null>`(select d.fax_status from event_deliveries d where d.event_id = rr.last_event_id and d.org_id = rr.org_id)`.as('fax_status'),
    ])
    .where('rr.recall_id', '=', recallId)
}

type Quantities = { quarantined: number; returned: number; destroyed: number; noStock: number }
const noQuantities = (): Quantities => ({ quarantined: 0, returned: 0, destroyed: 0, noStock: 0 })
function addQuantities(q: Quantities, ack: AckContent) {
  q.quarantined += ack.quarantined
  q.returned += ack.returned
  q.destroyed += ack.destroyed
  if (ack.noStock) q.noStock++
}

type Counts = { recipients: number; reached: number; read: number; acknowledged: number; done: number }
const zero = (): Counts => ({ recipients: 0, reached: 0, read: 0, acknowledged: 0, done: 0 })
function add(c: Counts, s: RecipientState) {
  c.recipients++
  if (s.reached) c.reached++
  if (s.read) c.read++
  if (s.acknowledged) c.acknowledged++
  if (s.done) c.done++
}

export async function coverageOf(db: Db, r: RecallRow) {
  const rows = await recipientStates(db, r.id).execute()
  const total = zero()
  const byCategory = new Map<string, Counts>()
  const byDepartment = new Map<string, Counts & { department: string | null; region: string | null }>()
  const quantities = noQuantities()
  const categoryQuantities = new Map<string, Quantities>()
  const faxes = { queued: 0, sent: 0, failed: 0, paperLetter: 0 }
  for (const row of rows) {
    const s: RecipientState = {
      org_id: row.org_id, role: row.role, department: row.department, region: row.region,
      reached: Boolean(row.reached), read: row.first_read_at !== null, acknowledged: row.ack_status !== null, done: row.ack_status === 'done',
    }
    add(total, s)
    if (!byCategory.has(s.role)) byCategory.set(s.role, zero())
    add(byCategory.get(s.role)!, s)
    const key = s.department ?? ''
    if (!byDepartment.has(key)) byDepartment.set(key, { department: s.department, region: s.region, ...zero() })
    add(byDepartment.get(key)!, s)
    if (!categoryQuantities.has(s.role)) categoryQuantities.set(s.role, noQuantities())
    if (row.ack_status === 'done' && row.ack) {
      addQuantities(quantities, row.ack)
      addQuantities(categoryQuantities.get(s.role)!, row.ack)
    }
    if (row.fax_status === 'queued') faxes.queued++
    else if (row.fax_status === 'sent') faxes.sent++
    else if (row.fax_status === 'failed') faxes.failed++
    else if (row.fax_status === 'paper_letter') faxes.paperLetter++
  }
  const letterRows = await db
    .selectFrom('paper_letters as l')
    .innerJoin('events as e', 'e.id', 'l.event_id')
    .select(['l.status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('e.subject_type', '=', LABEL[r.kind].object)
    .where('e.subject_id', '=', r.id)
    .groupBy('l.status')
    .execute()
  const letters = { pending: 0, sent: 0 }
  for (const l of letterRows) letters[l.status] = Number(l.n)
  return {
    id: r.id,
    reference: r.reference,
    status: r.status,
    ...total,
    quantities,
    byCategory: [...byCategory.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([category, c]) => ({ category, ...c, quantities: categoryQuantities.get(category)! })),
    byDepartment: [...byDepartment.values()].sort((a, b) => (a.department ?? '').localeCompare(b.department ?? '')),
    faxes,
    letters,
  }
}

export async function recipientsOf(db: Db, kind: PipelineKind, r: RecallRow, filter: RecipientFilter | undefined, after: string | null, limit: number) {
  let q = recipientStates(db, r.id).orderBy('rr.org_id').limit(limit + 1)
  if (after) q = q.where('rr.org_id', '>', after)
  const reachedSql = sql<boolean>`(rr.acked_at is not null or exists (select 1 from event_deliveries d join recall_versions v on v.event_id = d.event_id where v.recall_id = rr.recall_id and d.org_id = rr.org_id and (d.delivered_at is not null or d.read_at is not null)))`
  const readSql = sql<boolean>`(rr.read_at is not null or exists (select 1 from event_deliveries d join recall_versions v on v.event_id = d.event_id where v.recall_id = rr.recall_id and d.org_id = rr.org_id and d.read_at is not null))`
  if (filter === 'unreached') q = q.where(sql<boolean>`not ${reachedSql}`)
  else if (filter === 'unread') q = q.where(sql<boolean>`not ${readSql}`)
  else if (filter === 'not_acting') q = kind === 'recall' ? q.where((eb) => eb.or([eb('rr.ack_status', 'is', null), eb('rr.ack_status', '<>', 'done')])) : q.where(sql<boolean>`not ${readSql}`)
  const rows = await q.execute()
  const page = rows.slice(0, limit)
  const items = []
  for (const row of page) {
    items.push({
      org: { id: row.org_id, name: row.name, role: row.role, department: row.department, region: row.region },
      reached: Boolean(row.reached),
      readAt: iso(row.first_read_at),
      acknowledgement: await ackView(db, r.id, row),
      fax: row.fax_status,
      letter: row.letter_id ? { id: row.letter_id, status: row.letter_status!, sentAt: iso(row.letter_sent_at) } : null,
      reminders: row.reminders,
    })
  }
  return { items, last: rows.length > limit ? page[page.length - 1]!.org_id : null }
}

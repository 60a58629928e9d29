/**
 * A lab's DP-Ruptures figures and its quarterly summary per presentation (queries; the routes are in routes/statistics.ts).
 *
 * Shortage days are days of an actual shortage: a declaration counts from its actual start (an observed
 * shortage, or an anticipated one from the day it materialised, when it went `ongoing`), to its actual end or
 * today, whichever comes first. A risk that never materialised (kind `anticipated` without an actual start, such
 * as a BDPM supply tension), a discontinuation or a return to availability counts no shortage day.
 */
import { sql } from 'kysely'
import { DAY, parisStartOfDay } from '../platform/paris-time.ts'
import type { Db } from './queries/rows.ts'
import { KINDS, STATUSES } from './schemas.ts'

export interface Period {
  /** Paris days, inclusive; either may be missing. */
  from: string | null
  to: string | null
}

/** A calendar day plus some days (no time zone involved). */
const addDays = (day: string, days: number) => new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY).toISOString().slice(0, 10)

const num = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 100) / 100)

/**
 * The lab's figures, over a period or over all time. With a period: the declarations active during it (from
 * their start — actual, else anticipated, else the day they were made — to their actual end), the durations of
 * those that ended in it, the signals made in it and their times to a first answer.
 */
export async function labStatistics(db: Db, labId: string, period: Period) {
  const start = sql`coalesce(d.actual_start, d.anticipated_start, (d.created_at at time zone 'Europe/Paris')::date)`
  const decl = await sql<{ kind: string; status: string; n: string }>`
    select d.kind, d.status, count(*) as n from shortage_declarations d
    where d.lab_id = ${labId}
      ${period.to ? sql`and ${start} <= ${period.to}::date` : sql``}
      ${period.from ? sql`and (d.actual_end is null or d.actual_end >= ${period.from}::date)` : sql``}
    group by 1, 2`.execute(db)
  const byKind = Object.fromEntries(KINDS.map((x) => [x, 0])) as Record<string, number>
  const byStatus = Object.fromEntries(STATUSES.map((x) => [x, 0])) as Record<string, number>
  for (const r of decl.rows) {
    byKind[r.kind] = (byKind[r.kind] ?? 0) + Number(r.n)
    byStatus[r.status] = (byStatus[r.status] ?? 0) + Number(r.n)
  }
  const duration = await sql<{ d: string | null }>`
    select avg(d.actual_end - coalesce(d.actual_start, d.anticipated_start)) as d from shortage_declarations d
    where d.lab_id = ${labId} and d.status in ('resolved', 'discontinued') and d.actual_end is not null
      ${period.from ? sql`and d.actual_end >= ${period.from}::date` : sql``}
      ${period.to ? sql`and d.actual_end <= ${period.to}::date` : sql``}`.execute(db)
  const sig = await sql<{ received: string; open: string; answered: string; wait: string | null }>`
    select count(*) as received, count(*) filter (where s.status = 'open') as open, count(s.first_response_at) as answered,
      avg(extract(epoch from (s.first_response_at - s.created_at))) as wait
    from shortage_signals s join presentations p on p.cip13 = s.cip13 join medicines m on m.cis = p.cis
    where m.lab_id = ${labId}
      ${period.from ? sql`and s.created_at >= ${parisStartOfDay(period.from)}` : sql``}
      ${period.to ? sql`and s.created_at < ${parisStartOfDay(addDays(period.to, 1))}` : sql``}`.execute(db)
  const s = sig.rows[0]!
  return {
    from: period.from,
    to: period.to,
    declarations: { total: decl.rows.reduce((a, r) => a + Number(r.n), 0), byKind, byStatus },
    averageDurationDays: num(duration.rows[0]?.d),
    signals: { received: Number(s.received), open: Number(s.open), answered: Number(s.answered) },
    averageTimeToFirstResponseHours: s.wait === null ? null : num(Number(s.wait) / 3600),
  }
}

/** First and last day of a calendar quarter. */
export function quarterDays(year: number, quarter: number) {
  const first = `${year}-${String((quarter - 1) * 3 + 1).padStart(2, '0')}-01`
  const next = quarter === 4 ? `${year + 1}-01-01` : `${year}-${String(quarter * 3 + 1).padStart(2, '0')}-01`
  return { first, next, last: addDays(next, -1) }
}

/**
 * Per presentation (of one lab, or of every lab), for one quarter counted up to `today` (Paris day): the
 * declarations (not drafts) active in it, the days of actual shortage (see the top of this file) and the
 * signals made in it. Only presentations with a declaration or a signal in the quarter are listed.
 */
export async function quarterlySummary(db: Db, q: { labId: string | null; year: number; quarter: number; today: string }) {
  const { first, next, last } = quarterDays(q.year, q.quarter)
  const through = last < q.today ? last : q.today
  if (through < first) return { through, products: [] }
  const rows = await sql<{ cip13: string; name: string; lab_id: string | null; lab_name: string | null; declarations: string; days: string; signals: string }>`
    with d as (
      select i.cip13, d.id, d.kind, d.status, d.actual_start, d.actual_end
      from shortage_declaration_items i join shortage_declarations d on d.id = i.declaration_id
      where d.status <> 'draft' and coalesce(d.actual_start, d.anticipated_start) <= ${through}::date
        and (d.actual_end is null or d.actual_end >= ${first}::date)
    ), days as (
      select d.cip13, count(distinct g.day) as n
      from d cross join lateral generate_series(greatest(d.actual_start, ${first}::date), least(coalesce(d.actual_end, ${through}::date), ${through}::date), interval '1 day') as g(day)
      where d.kind in ('observed', 'anticipated') and d.actual_start is not null and d.status <> 'avoided'
      group by d.cip13
    ), s as (
      select cip13, count(*) as n from shortage_signals
      where created_at >= ${parisStartOfDay(first)} and created_at < ${parisStartOfDay(next)}
      group by cip13
    ), keys as (select cip13 from d union select cip13 from s)
    select p.cip13, m.name, m.lab_id, o.name as lab_name,
      (select count(distinct d.id) from d where d.cip13 = p.cip13) as declarations, coalesce(days.n, 0) as days, coalesce(s.n, 0) as signals
    from keys k join presentations p on p.cip13 = k.cip13 join medicines m on m.cis = p.cis left join organisations o on o.id = m.lab_id
      left join days on days.cip13 = p.cip13 left join s on s.cip13 = p.cip13
    ${q.labId ? sql`where m.lab_id = ${q.labId}` : sql``}
    order by m.lab_id nulls last, p.cip13`.execute(db)
  return {
    through,
    products: rows.rows.map((r) => ({
      cip13: r.cip13,
      name: r.name,
      lab: r.lab_id ? { id: r.lab_id, name: r.lab_name ?? r.lab_id } : null,
      declarations: Number(r.declarations),
      shortageDays: Number(r.days),
      signals: Number(r.signals),
    })),
  }
}

/**
 * The statistics' SQL: a lab's figures and its quarterly summary per presentation, the lab read, and the
 * profession-wide figures of one year.
 *
 * Shortage days are days of an actual shortage: a declaration counts from its actual start (an observed
 * shortage, or an anticipated one from the day it materialised, when it went `ongoing`), to its actual end or
 * today, whichever comes first. A risk that never materialised (kind `anticipated` without an actual start, such
 * as a BDPM supply tension), a discontinuation or a return to availability counts no shortage day.
 */
import { type Kysely, sql } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
import { parisStartOfDay } from '../../platform/paris-time.ts'
import { addDays, type Period } from '../rules/figures.ts'
import type { Db } from './rows.ts'

export const labOrganisation = (db: Db, labId: string) => db.selectFrom('organisations').select(['id', 'name']).where('id', '=', labId).where('role', '=', 'lab').executeTakeFirst()

/** The (ATC first level, MITM) pairs of the referential: public, so an attacker knows the pairs that are zero. */
export async function referentialPairs(db: Kysely<DB>) {
  const rows = await sql<{ atc: string; mitm: boolean }>`select distinct coalesce(upper(left(atc, 1)), '?') as atc, mitm from medicines`.execute(db)
  return rows.rows
}

/** Declarations (not drafts) by start month (Paris), ATC first level and MITM, for one year. */
export async function declarationsOfYear(db: Kysely<DB>, year: number) {
  const rows = await sql<{ month: string; atc: string; mitm: boolean; n: number }>`
        select to_char(coalesce(actual_start, anticipated_start, (declared_at at time zone 'Europe/Paris')::date), 'YYYY-MM') as month,
               coalesce(upper(left(atc, 1)), '?') as atc, mitm, count(*) as n
        from shortage_declarations
        where status <> 'draft' and coalesce(actual_start, anticipated_start, (declared_at at time zone 'Europe/Paris')::date) >= ${`${year}-01-01`}::date
          and coalesce(actual_start, anticipated_start, (declared_at at time zone 'Europe/Paris')::date) < ${`${year + 1}-01-01`}::date
        group by 1, 2, 3`.execute(db)
  return rows.rows
}

/** Signals made in [from, to) by month (Paris), ATC first level, MITM and pharmacy. */
export async function signalGroups(db: Kysely<DB>, from: Date, to: Date) {
  const rows = await sql<{ month: string; atc: string; mitm: boolean; pharmacy_id: string; n: number }>`
        select to_char(s.created_at at time zone 'Europe/Paris', 'YYYY-MM') as month, coalesce(upper(left(m.atc, 1)), '?') as atc, m.mitm, s.pharmacy_id, count(*) as n
        from shortage_signals s join presentations p on p.cip13 = s.cip13 join medicines m on m.cis = p.cis
        where s.created_at >= ${from}::timestamptz and s.created_at < ${to}::timestamptz
        group by 1, 2, 3, 4`.execute(db)
  return rows.rows
}

/** Average duration in days of the declarations closed (resolved or discontinued) in the year; null when none. */
export async function averageDurationOfYear(db: Kysely<DB>, year: number) {
  const rows = await sql<{ d: number | null }>`
        select avg(actual_end - coalesce(actual_start, anticipated_start)) as d from shortage_declarations
        where status in ('resolved', 'discontinued') and actual_end >= ${`${year}-01-01`}::date and actual_end < ${`${year + 1}-01-01`}::date`.execute(db)
  return rows.rows[0]?.d
}

// ---- a lab's figures -----------------------------------------------------------------------------------

/**
 * The lab's declarations by kind and status, over a period or over all time. With a period: those active during
 * it (from their start — actual, else anticipated, else the day they were made — to their actual end).
 */
export async function labDeclarationCounts(db: Db, labId: string, period: Period) {
  const start = sql`coalesce(d.actual_start, d.anticipated_start, (d.created_at at time zone 'Europe/Paris')::date)`
  const decl = await sql<{ kind: string; status: string; n: string }>`
    select d.kind, d.status, count(*) as n from shortage_declarations d
    where d.lab_id = ${labId}
      ${period.to ? sql`and ${start} <= ${period.to}::date` : sql``}
      ${period.from ? sql`and (d.actual_end is null or d.actual_end >= ${period.from}::date)` : sql``}
    group by 1, 2`.execute(db)
  return decl.rows
}

/** The average duration in days of the lab's declarations closed (resolved or discontinued) in the period. */
export async function labAverageDuration(db: Db, labId: string, period: Period) {
  const duration = await sql<{ d: string | null }>`
    select avg(d.actual_end - coalesce(d.actual_start, d.anticipated_start)) as d from shortage_declarations d
    where d.lab_id = ${labId} and d.status in ('resolved', 'discontinued') and d.actual_end is not null
      ${period.from ? sql`and d.actual_end >= ${period.from}::date` : sql``}
      ${period.to ? sql`and d.actual_end <= ${period.to}::date` : sql``}`.execute(db)
  return duration.rows[0]?.d
}

/** The signals made in the period on the lab's presentations: received, still open, answered, and the average wait in seconds. */
export async function labSignalCounts(db: Db, labId: string, period: Period) {
  const sig = await sql<{ received: string; open: string; answered: string; wait: string | null }>`
    select count(*) as received, count(*) filter (where s.status = 'open') as open, count(s.first_response_at) as answered,
      avg(extract(epoch from (s.first_response_at - s.created_at))) as wait
    from shortage_signals s join presentations p on p.cip13 = s.cip13 join medicines m on m.cis = p.cis
    where m.lab_id = ${labId}
      ${period.from ? sql`and s.created_at >= ${parisStartOfDay(period.from)}` : sql``}
      ${period.to ? sql`and s.created_at < ${parisStartOfDay(addDays(period.to, 1))}` : sql``}`.execute(db)
  return sig.rows[0]!
}

/**
 * Per presentation (of one lab, or of every lab), for the days of a quarter from `first` to `through`: the
 * declarations (not drafts) active in them, the days of actual shortage (see the top of this file) and the signals
 * made in the quarter (up to `next`, its first day after). Only presentations with a declaration or a signal in the
 * quarter are listed.
 */
export async function quarterRows(db: Db, q: { labId: string | null; first: string; next: string; through: string }) {
  const { first, next, through } = q
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
  return rows.rows
}

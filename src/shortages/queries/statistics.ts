/** The statistics' SQL besides lab-statistics.ts: the lab read, and the profession-wide figures of one year. */
import { type Kysely, sql } from 'kysely'
import type { DB } from '../../platform/db/schema.ts'
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

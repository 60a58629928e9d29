import { type Kysely, sql } from 'kysely'
import type { DB } from '../platform/db/schema.ts'
import { type Breakdown, cellId, marginsOf, type SignalGroup, withheldCells } from './disclosure.ts'
import { Type } from 'typebox'
import { principalOf } from '../platform/auth.ts'
import { problems } from '../platform/openapi.ts'
import { component } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import { KINDS, nullable, STATUSES } from './schemas.ts'
import { assertSubscribed, type ShortageOptions } from './signals.ts'
import { DAY, parisMonth, parisStartOfDay } from '../platform/paris-time.ts'

const Counts = (keys: readonly string[]) => Type.Object(Object.fromEntries(keys.map((k) => [k, Type.Integer()])))

const LabStatistics = component(
  Type.Object(
    {
      declarations: Type.Object({ total: Type.Integer(), byKind: Counts(KINDS), byStatus: Counts(STATUSES) }),
      averageDurationDays: nullable(Type.Number({ description: 'Closed declarations: actual end − start (actual, else anticipated).' })),
      signals: Type.Object({ received: Type.Integer({ description: 'Signals on the lab’s presentations.' }), open: Type.Integer(), answered: Type.Integer({ description: 'Signals that received an automatic response or a declaration update.' }) }),
      averageTimeToFirstResponseHours: nullable(Type.Number({ description: 'From the signal to the first answer it received (0 when an automatic response was already set).' })),
    },
    { $id: 'ShortageLabStatistics' },
  ),
)

const Quarterly = component(
  Type.Object(
    {
      year: Type.Integer(),
      quarter: Type.Integer(),
      products: Type.Array(
        Type.Object({
          cip13: Type.String(),
          name: Type.String(),
          declarations: Type.Integer({ description: 'Declarations (not drafts) active during the quarter.' }),
          shortageDays: Type.Integer({ description: 'Days of the quarter covered by a declaration (from its start to its actual end, or to the end of the quarter).' }),
          signals: Type.Integer({ description: 'Signals made during the quarter.' }),
        }),
      ),
    },
    { $id: 'ShortageQuarterlySummary', description: 'Per presentation of the lab, for one calendar quarter (Paris time).' },
  ),
)

const Cell = {
  declarations: Type.Integer(),
  signals: nullable(Type.Integer({ description: 'null when suppressed.' })),
  suppressed: Type.Boolean({ description: 'The signal figure is withheld: too few pharmacies behind it (or needed to protect another withheld figure).' }),
}
const PublicStatistics = component(
  Type.Object(
    {
      year: Type.Integer(),
      minPharmacies: Type.Integer({ description: 'A signal figure is published only when at least this many distinct pharmacies are behind it.' }),
      byMonth: Type.Array(Type.Object({ month: Type.String({ examples: ['2026-11'] }), ...Cell })),
      byAtc: Type.Array(Type.Object({ atc: Type.String({ description: 'ATC first level (anatomical main group), or "?" when unknown.' }), ...Cell })),
      byMitm: Type.Array(Type.Object({ mitm: Type.Boolean(), ...Cell })),
      averageDurationDays: nullable(Type.Number({ description: 'Declarations closed that year.' })),
    },
    {
      $id: 'ShortagePublicStatistics',
      description: 'Profession-wide figures. Declarations are counted by start month; signals by the month they were made (Paris time).',
      examples: [{ year: 2026, minPharmacies: 3, byMonth: [{ month: '2026-11', declarations: 4, signals: 12, suppressed: false }], byAtc: [], byMitm: [], averageDurationDays: 38.5 }],
    },
  ),
)

export interface PublicCell {
  breakdown: Breakdown
  key: string
  /** null when withheld. */
  signals: number | null
  suppressed: boolean
}

/**
 * The signal figures of the public statistics: by month (every month given), by ATC first level (the levels
 * with signals) and MITM or not, with the figures to withhold (disclosure.ts).
 */
export function publicSignalFigures(groups: SignalGroup[], months: string[], pairs: Array<{ atc: string; mitm: boolean }>, k: number): Record<Breakdown, PublicCell[]> {
  const tables = marginsOf(groups, months, pairs)
  const withheld = withheldCells(tables, k)
  const out: Record<Breakdown, PublicCell[]> = { month: [], atc: [], mitm: [] }
  for (const c of tables.cells) {
    const hidden = withheld.has(cellId(c.breakdown, c.key))
    out[c.breakdown].push({ breakdown: c.breakdown, key: c.key, signals: hidden ? null : c.signals, suppressed: hidden })
  }
  return out
}

/** The (ATC first level, MITM) pairs of the referential: public, so an attacker knows the pairs that are zero. */
export async function referentialPairs(db: Kysely<DB>) {
  const rows = await sql<{ atc: string; mitm: boolean }>`select distinct coalesce(upper(left(atc, 1)), '?') as atc, mitm from medicines`.execute(db)
  return rows.rows
}

export const statisticsRoutes: RoutePlugin<ShortageOptions> = async (app, opts) => {
  const k = opts.publicMinPharmacies ?? 3

  app.get(
    '/shortage-statistics',
    {
      config: { roles: ['lab'] },
      schema: { tags: ['shortages'], operationId: 'getShortageLabStatistics', summary: 'The lab’s own DP-Ruptures figures', response: { 200: LabStatistics } },
    },
    async (request) => {
      const labId = principalOf(request).org
      await assertSubscribed(app, labId)
      const decl = await app.db.selectFrom('shortage_declarations').select((eb) => ['kind', 'status', eb.fn.countAll<number>().as('n')]).where('lab_id', '=', labId).groupBy(['kind', 'status']).execute()
      const byKind = Object.fromEntries(KINDS.map((x) => [x, 0])) as Record<string, number>
      const byStatus = Object.fromEntries(STATUSES.map((x) => [x, 0])) as Record<string, number>
      for (const r of decl) {
        byKind[r.kind] = (byKind[r.kind] ?? 0) + Number(r.n)
        byStatus[r.status] = (byStatus[r.status] ?? 0) + Number(r.n)
      }
      const duration = await app.db
        .selectFrom('shortage_declarations')
        .select(sql<number | null>`avg(actual_end - coalesce(actual_start, anticipated_start))`.as('d'))
        .where('lab_id', '=', labId)
        .where('status', 'in', ['resolved', 'discontinued'])
        .where('actual_end', 'is not', null)
        .executeTakeFirst()
      const sig = await app.db
        .selectFrom('shortage_signals as s')
        .innerJoin('presentations as p', 'p.cip13', 's.cip13')
        .innerJoin('medicines as m', 'm.cis', 'p.cis')
        .select((eb) => [
          eb.fn.countAll<number>().as('received'),
          eb.fn.countAll<number>().filterWhere('s.status', '=', 'open').as('open'),
          eb.fn.countAll<number>().filterWhere('s.first_response_at', 'is not', null).as('answered'),
          sql<number | null>`avg(extract(epoch from (s.first_response_at - s.created_at)))`.as('wait'),
        ])
        .where('m.lab_id', '=', labId)
        .executeTakeFirstOrThrow()
      const num = (v: unknown) => (v === null || v === undefined ? null : Math.round(Number(v) * 100) / 100)
      return {
        declarations: { total: decl.reduce((a, r) => a + Number(r.n), 0), byKind, byStatus },
        averageDurationDays: num(duration?.d),
        signals: { received: Number(sig.received), open: Number(sig.open), answered: Number(sig.answered) },
        averageTimeToFirstResponseHours: sig.wait === null ? null : num(Number(sig.wait) / 3600),
      } as any
    },
  )

  app.get(
    '/shortage-statistics/quarterly',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageQuarterlySummary',
        summary: 'Quarterly summary per presentation of the lab',
        querystring: Type.Object({ year: Type.Integer({ minimum: 2000, maximum: 2100 }), quarter: Type.Integer({ minimum: 1, maximum: 4 }) }, { additionalProperties: false }),
        response: { 200: Quarterly, ...problems(400) },
      },
    },
    async (request) => {
      const labId = principalOf(request).org
      await assertSubscribed(app, labId)
      const { year, quarter } = request.query
      const first = `${year}-${String((quarter - 1) * 3 + 1).padStart(2, '0')}-01`
      const nextFirst = quarter === 4 ? `${year + 1}-01-01` : `${year}-${String(quarter * 3 + 1).padStart(2, '0')}-01`
      const last = new Date(new Date(`${nextFirst}T12:00:00Z`).getTime() - DAY).toISOString().slice(0, 10)
      const rows = await sql<{ cip13: string; name: string; declarations: number; days: number; signals: number }>`
        select p.cip13, m.name,
          (select count(*) from shortage_declaration_items i join shortage_declarations d on d.id = i.declaration_id
            where i.cip13 = p.cip13 and d.status <> 'draft' and coalesce(d.actual_start, d.anticipated_start) <= ${last}::date
              and (d.actual_end is null or d.actual_end >= ${first}::date)) as declarations,
          (select count(distinct g.day) from shortage_declaration_items i join shortage_declarations d on d.id = i.declaration_id
             cross join lateral generate_series(greatest(coalesce(d.actual_start, d.anticipated_start), ${first}::date),
                                                least(coalesce(d.actual_end, ${last}::date), ${last}::date), interval '1 day') as g(day)
            where i.cip13 = p.cip13 and d.status not in ('draft', 'avoided') and coalesce(d.actual_start, d.anticipated_start) is not null) as days,
          (select count(*) from shortage_signals s where s.cip13 = p.cip13
             and s.created_at >= ${parisStartOfDay(first)}::timestamptz and s.created_at < ${parisStartOfDay(nextFirst)}::timestamptz) as signals
        from presentations p join medicines m on m.cis = p.cis
        where m.lab_id = ${labId}
        order by p.cip13`.execute(app.db)
      return {
        year,
        quarter,
        products: rows.rows
          .map((r) => ({ cip13: r.cip13, name: r.name, declarations: Number(r.declarations), shortageDays: Number(r.days), signals: Number(r.signals) }))
          .filter((r) => r.declarations > 0 || r.signals > 0),
      }
    },
  )

  const cache = new Map<number, { at: number; value: unknown }>()
  app.get(
    '/public/shortage-statistics',
    {
      config: { roles: 'public' },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortagePublicStatistics',
        summary: 'Profession-wide shortage figures (public, no token, cacheable)',
        description: `Declarations and pharmacy signals by month, by ATC first level and MITM or not, average duration. A signal figure behind fewer than ${k} distinct pharmacies is withheld (null, \`suppressed: true\`). The three breakdowns add up to the same total, so they are protected together: other figures (in any breakdown) are withheld until no combination of the published ones — with what the public referential says about which ATC levels have MITM medicines — narrows a withheld figure to a single value or to values all below ${k}. Cached 5 minutes.`,
        querystring: Type.Object({ year: Type.Optional(Type.Integer({ minimum: 2000, maximum: 2100, description: 'Default: the current year.' })) }, { additionalProperties: false }),
        response: { 200: PublicStatistics },
      },
    },
    async (request, reply) => {
      const now = app.now()
      const year = request.query.year ?? Number(parisMonth(now).slice(0, 4))
      reply.header('cache-control', 'public, max-age=300')
      const hit = cache.get(year)
      if (hit && now.getTime() - hit.at < 60_000 && now.getTime() >= hit.at) return hit.value as any
      const from = parisStartOfDay(`${year}-01-01`)
      const to = parisStartOfDay(`${year + 1}-01-01`)
      const decl = await sql<{ month: string; atc: string; mitm: boolean; n: number }>`
        select to_char(coalesce(actual_start, anticipated_start, (declared_at at time zone 'Europe/Paris')::date), 'YYYY-MM') as month,
               coalesce(upper(left(atc, 1)), '?') as atc, mitm, count(*) as n
        from shortage_declarations
        where status <> 'draft' and coalesce(actual_start, anticipated_start, (declared_at at time zone 'Europe/Paris')::date) >= ${`${year}-01-01`}::date
          and coalesce(actual_start, anticipated_start, (declared_at at time zone 'Europe/Paris')::date) < ${`${year + 1}-01-01`}::date
        group by 1, 2, 3`.execute(app.db)
      const sig = await sql<{ month: string; atc: string; mitm: boolean; pharmacy_id: string; n: number }>`
        select to_char(s.created_at at time zone 'Europe/Paris', 'YYYY-MM') as month, coalesce(upper(left(m.atc, 1)), '?') as atc, m.mitm, s.pharmacy_id, count(*) as n
        from shortage_signals s join presentations p on p.cip13 = s.cip13 join medicines m on m.cis = p.cis
        where s.created_at >= ${from}::timestamptz and s.created_at < ${to}::timestamptz
        group by 1, 2, 3, 4`.execute(app.db)
      const duration = await sql<{ d: number | null }>`
        select avg(actual_end - coalesce(actual_start, anticipated_start)) as d from shortage_declarations
        where status in ('resolved', 'discontinued') and actual_end >= ${`${year}-01-01`}::date and actual_end < ${`${year + 1}-01-01`}::date`.execute(app.db)

      const pairs = await referentialPairs(app.db)
      const groups = sig.rows.map((r) => ({ month: r.month, atc: r.atc, mitm: r.mitm, pharmacyId: r.pharmacy_id, signals: Number(r.n) }))
      const months = Array.from({ length: 12 }, (_, i) => `${year}-${String(i + 1).padStart(2, '0')}`)
      const figures = publicSignalFigures(groups, months, pairs, k)
      const declarations = (keyOf: (r: { month: string; atc: string; mitm: boolean }) => string) => {
        const out = new Map<string, number>()
        for (const r of decl.rows) out.set(keyOf(r), (out.get(keyOf(r)) ?? 0) + Number(r.n))
        return out
      }
      // Every figure the signal breakdowns publish, with the declarations (not sensitive: labs' public acts) beside it.
      const join = (cells: PublicCell[], counts: Map<string, number>) => {
        const byKey = new Map(cells.map((c) => [c.key, c]))
        return [...new Set([...byKey.keys(), ...counts.keys()])]
          .sort((a, b) => a.localeCompare(b))
          .map((key) => ({ key, declarations: counts.get(key) ?? 0, signals: byKey.has(key) ? byKey.get(key)!.signals : 0, suppressed: byKey.get(key)?.suppressed ?? false }))
      }
      const value = {
        year,
        minPharmacies: k,
        byMonth: join(figures.month, declarations((r) => r.month)).map(({ key, ...c }) => ({ month: key, ...c })),
        byAtc: join(figures.atc, declarations((r) => r.atc)).map(({ key, ...c }) => ({ atc: key, ...c })),
        byMitm: join(figures.mitm, declarations((r) => String(r.mitm))).map(({ key, ...c }) => ({ mitm: key === 'true', ...c })),
        averageDurationDays: duration.rows[0]?.d === null || duration.rows[0]?.d === undefined ? null : Math.round(Number(duration.rows[0].d) * 100) / 100,
      }
      cache.set(year, { at: now.getTime(), value })
      return value
    },
  )
}

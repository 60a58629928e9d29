/** Statistics routes: a lab's figures and quarterly summary (ANSM reads any lab's), and the public figures. */
import { Type } from 'typebox'
import { problems } from '../../platform/openapi.ts'
import { parisMonth } from '../../platform/paris-time.ts'
import { component } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { KINDS, LabRef, nullable, STATUSES } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { labFigures, publicStatistics, quarterlyFigures } from '../use-cases/statistics.ts'
import { whoOf } from './common.ts'

const Counts = (keys: readonly string[]) => Type.Object(Object.fromEntries(keys.map((k) => [k, Type.Integer()])))

const LabRefOrNull = nullable(LabRef)

const LabStatistics = component(
  Type.Object(
    {
      from: nullable(Type.String({ format: 'date', description: 'The period asked (Paris days, inclusive); null: from the beginning.' })),
      to: nullable(Type.String({ format: 'date', description: 'null: up to now.' })),
      declarations: Type.Object(
        { total: Type.Integer(), byKind: Counts(KINDS), byStatus: Counts(STATUSES) },
        { description: 'The lab’s declarations (drafts included); with a period, those active during it: from their start (actual, else anticipated, else the day they were made) to their actual end.' },
      ),
      averageDurationDays: nullable(Type.Number({ description: 'Declarations closed (in the period): actual end − start (actual, else anticipated).' })),
      signals: Type.Object({ received: Type.Integer({ description: 'Signals on the lab’s presentations (made in the period).' }), open: Type.Integer({ description: 'Of those, still open.' }), answered: Type.Integer({ description: 'Of those, signals that received an automatic response or a declaration update.' }) }),
      averageTimeToFirstResponseHours: nullable(Type.Number({ description: 'From the signal to the first answer it received (0 when an automatic response was already set).' })),
    },
    {
      $id: 'ShortageLabStatistics',
      examples: [{ from: '2026-10-01', to: '2026-12-31', declarations: { total: 3, byKind: { anticipated: 1, observed: 2, discontinuation: 0, availability_return: 0 }, byStatus: { draft: 0, declared: 1, ongoing: 1, resolved: 1, avoided: 0, discontinued: 0 } }, averageDurationDays: 9, signals: { received: 12, open: 4, answered: 12 }, averageTimeToFirstResponseHours: 0.8 }],
    },
  ),
)

const Quarterly = component(
  Type.Object(
    {
      year: Type.Integer(),
      quarter: Type.Integer(),
      lab: LabRefOrNull,
      through: Type.String({ format: 'date', description: 'Last day counted: the end of the quarter, or today (Paris) while it is running.' }),
      products: Type.Array(
        Type.Object({
          cip13: Type.String(),
          name: Type.String(),
          lab: LabRefOrNull,
          declarations: Type.Integer({ description: 'Declarations (not drafts) active during the quarter, up to `through`.' }),
          shortageDays: Type.Integer({
            description: 'Days of actual shortage in the quarter, up to `through`: from the actual start of an observed shortage (or of an anticipated one that materialised) to its actual end. A risk that did not materialise — such as a BDPM supply tension — counts no day, nor does a discontinuation.',
          }),
          signals: Type.Integer({ description: 'Signals made during the quarter.' }),
        }),
      ),
    },
    {
      $id: 'ShortageQuarterlySummary',
      description: 'Per presentation (of one lab, or of every lab for ANSM), for one calendar quarter (Paris time). Only presentations with a declaration or a signal in the quarter are listed.',
      examples: [{ year: 2026, quarter: 4, lab: { id: '412345670', name: 'BIOGARAN' }, through: '2026-12-06', products: [{ cip13: '3400949497294', name: 'ROSUVASTATINE BIOGARAN 10 mg, comprimé pelliculé', lab: { id: '412345670', name: 'BIOGARAN' }, declarations: 1, shortageDays: 6, signals: 1 }] }],
    },
  ),
)

const PeriodQuery = {
  from: Type.Optional(Type.String({ format: 'date', description: 'First day (Paris), inclusive.' })),
  to: Type.Optional(Type.String({ format: 'date', description: 'Last day (Paris), inclusive.' })),
}
const LabIdQuery = Type.String({ minLength: 1, maxLength: 20, description: 'SIREN of the lab. ANSM: the lab to read; a lab may only name itself (another lab answers 404).' })

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

export const statisticsRoutes: RoutePlugin<{ deps: Deps; publicMinPharmacies: number }> = async (app, { deps, publicMinPharmacies: k }) => {
  app.get(
    '/shortage-statistics',
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageLabStatistics',
        summary: 'A lab’s DP-Ruptures figures, over a period or all time',
        description:
          'A lab reads its own figures; ANSM names the lab with `labId`. `from` and `to` (Paris days, inclusive, either optional) restrict them to a period: declarations active during it, durations of those that ended in it, signals made in it.',
        querystring: Type.Object({ ...PeriodQuery, labId: Type.Optional(LabIdQuery) }, { additionalProperties: false }),
        response: { 200: LabStatistics, ...problems(400, 404) },
      },
    },
    async (request) => labFigures(deps, whoOf(request), request.query),
  )

  app.get(
    '/shortage-statistics/quarterly',
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageQuarterlySummary',
        summary: 'Quarterly summary per presentation (a lab’s own; ANSM any lab, or every lab)',
        description:
          'Counted up to today while the quarter runs (`through`). Shortage days are days of actual shortage: an observed shortage from its actual start, an anticipated one from the day it materialised; a risk that did not (a BDPM supply tension) counts none. ANSM reads one lab with `labId`, or every lab without it.',
        querystring: Type.Object({ year: Type.Integer({ minimum: 2000, maximum: 2100 }), quarter: Type.Integer({ minimum: 1, maximum: 4 }), labId: Type.Optional(LabIdQuery) }, { additionalProperties: false }),
        response: { 200: Quarterly, ...problems(400, 404) },
      },
    },
    async (request) => quarterlyFigures(deps, whoOf(request), request.query),
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
      const value = await publicStatistics(deps, year, k)
      cache.set(year, { at: now.getTime(), value })
      return value
    },
  )
}

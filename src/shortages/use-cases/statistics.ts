/**
 * DP-Ruptures figures: a lab's (its own, or the one ANSM names), the quarterly summary per presentation, and
 * the profession-wide public figures with the signal figures too few pharmacies are behind withheld.
 */
import { notFound } from '../../platform/errors.ts'
import { parisDay, parisStartOfDay } from '../../platform/paris-time.ts'
import { type Breakdown, cellId, marginsOf, type SignalGroup, withheldCells } from '../rules/disclosure.ts'
import * as q from '../queries/statistics.ts'
import { fieldError } from '../rules/common.ts'
import { type Period, quarterDays, rounded } from '../rules/figures.ts'
import { KINDS, STATUSES } from '../schemas.ts'
import { assertSubscribed, type Deps, type Who } from './context.ts'

/** The lab whose figures are read: a lab reads its own; ANSM names one (or, where allowed, none: every lab). */
async function labOf(deps: Deps, who: Who, labId: string | undefined, required: boolean): Promise<{ id: string; name: string } | null> {
  const { principal } = who
  if (principal.role === 'lab') {
    await assertSubscribed(deps.db, principal.org)
    if (labId && labId !== principal.org) throw notFound('Le laboratoire', 'The lab')
    labId = principal.org
  } else if (!labId) {
    if (required) throw fieldError('VALIDATION_FAILED', 'querystring.labId', 'required', { fr: 'obligatoire pour l’ANSM : le laboratoire dont lire les chiffres', en: 'required for ANSM: the lab whose figures to read' }, who.lang)
    return null
  }
  const lab = await q.labOrganisation(deps.db, labId)
  if (!lab) throw notFound('Le laboratoire', 'The lab')
  return lab
}

/**
 * The lab's figures, over a period or over all time. With a period: the declarations active during it (from
 * their start — actual, else anticipated, else the day they were made — to their actual end), the durations of
 * those that ended in it, the signals made in it and their times to a first answer.
 */
async function labStatistics(deps: Deps, labId: string, period: Period) {
  const decl = await q.labDeclarationCounts(deps.db, labId, period)
  const byKind = Object.fromEntries(KINDS.map((x) => [x, 0])) as Record<string, number>
  const byStatus = Object.fromEntries(STATUSES.map((x) => [x, 0])) as Record<string, number>
  for (const r of decl) {
    byKind[r.kind] = (byKind[r.kind] ?? 0) + Number(r.n)
    byStatus[r.status] = (byStatus[r.status] ?? 0) + Number(r.n)
  }
  const duration = await q.labAverageDuration(deps.db, labId, period)
  const s = await q.labSignalCounts(deps.db, labId, period)
  return {
    from: period.from,
    to: period.to,
    declarations: { total: decl.reduce((a, r) => a + Number(r.n), 0), byKind, byStatus },
    averageDurationDays: rounded(duration),
    signals: { received: Number(s.received), open: Number(s.open), answered: Number(s.answered) },
    averageTimeToFirstResponseHours: s.wait === null ? null : rounded(Number(s.wait) / 3600),
  }
}

/** A lab's figures over a period (Paris days, inclusive, either optional) or all time. */
export async function labFigures(deps: Deps, who: Who, query: { from?: string | undefined; to?: string | undefined; labId?: string | undefined }) {
  const { from, to, labId } = query
  if (from && to && from > to) throw fieldError('DATES_OUT_OF_ORDER', 'querystring.to', 'order', { fr: `${to} est avant ${from}`, en: `${to} is before ${from}` }, who.lang)
  const lab = (await labOf(deps, who, labId, true))!
  return labStatistics(deps, lab.id, { from: from ?? null, to: to ?? null })
}

/**
 * Per presentation (of one lab, or of every lab), for one quarter counted up to `today` (Paris day): the
 * declarations (not drafts) active in it, the days of actual shortage (see queries/statistics.ts) and the
 * signals made in it. Only presentations with a declaration or a signal in the quarter are listed.
 */
async function quarterlySummary(deps: Deps, opts: { labId: string | null; year: number; quarter: number; today: string }) {
  const { first, next, last } = quarterDays(opts.year, opts.quarter)
  const through = last < opts.today ? last : opts.today
  if (through < first) return { through, products: [] }
  const rows = await q.quarterRows(deps.db, { labId: opts.labId, first, next, through })
  return {
    through,
    products: rows.map((r) => ({
      cip13: r.cip13,
      name: r.name,
      lab: r.lab_id ? { id: r.lab_id, name: r.lab_name ?? r.lab_id } : null,
      declarations: Number(r.declarations),
      shortageDays: Number(r.days),
      signals: Number(r.signals),
    })),
  }
}

/** One quarter per presentation, of one lab or (ANSM without labId) of every lab. */
export async function quarterlyFigures(deps: Deps, who: Who, query: { year: number; quarter: number; labId?: string | undefined }) {
  const { year, quarter, labId } = query
  const lab = await labOf(deps, who, labId, false)
  const summary = await quarterlySummary(deps, { labId: lab?.id ?? null, year, quarter, today: parisDay(deps.now()) })
  return { year, quarter, lab, ...summary }
}

export interface PublicCell {
  breakdown: Breakdown
  key: string
  /** null when withheld. */
  signals: number | null
  suppressed: boolean
}

/**
 * The signal figures of the public statistics: by month (every month given), by ATC first level (the levels
 * with signals) and MITM or not, with the figures to withhold (rules/disclosure.ts).
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

/** The profession-wide figures of one year; a signal figure behind fewer than k distinct pharmacies is withheld. */
export async function publicStatistics(deps: Deps, year: number, k: number) {
  const from = parisStartOfDay(`${year}-01-01`)
  const to = parisStartOfDay(`${year + 1}-01-01`)
  const decl = await q.declarationsOfYear(deps.db, year)
  const sig = await q.signalGroups(deps.db, from, to)
  const duration = await q.averageDurationOfYear(deps.db, year)

  const pairs = await q.referentialPairs(deps.db)
  const groups = sig.map((r) => ({ month: r.month, atc: r.atc, mitm: r.mitm, pharmacyId: r.pharmacy_id, signals: Number(r.n) }))
  const months = Array.from({ length: 12 }, (_, i) => `${year}-${String(i + 1).padStart(2, '0')}`)
  const figures = publicSignalFigures(groups, months, pairs, k)
  const declarations = (keyOf: (r: { month: string; atc: string; mitm: boolean }) => string) => {
    const out = new Map<string, number>()
    for (const r of decl) out.set(keyOf(r), (out.get(keyOf(r)) ?? 0) + Number(r.n))
    return out
  }
  // Every figure the signal breakdowns publish, with the declarations (not sensitive: labs' public acts) beside it.
  const join = (cells: PublicCell[], counts: Map<string, number>) => {
    const byKey = new Map(cells.map((c) => [c.key, c]))
    return [...new Set([...byKey.keys(), ...counts.keys()])]
      .sort((a, b) => a.localeCompare(b))
      .map((key) => ({ key, declarations: counts.get(key) ?? 0, signals: byKey.has(key) ? byKey.get(key)!.signals : 0, suppressed: byKey.get(key)?.suppressed ?? false }))
  }
  return {
    year,
    minPharmacies: k,
    byMonth: join(figures.month, declarations((r) => r.month)).map(({ key, ...c }) => ({ month: key, ...c })),
    byAtc: join(figures.atc, declarations((r) => r.atc)).map(({ key, ...c }) => ({ atc: key, ...c })),
    byMitm: join(figures.mitm, declarations((r) => String(r.mitm))).map(({ key, ...c }) => ({ mitm: key === 'true', ...c })),
    averageDurationDays: duration === null || duration === undefined ? null : Math.round(Number(duration) * 100) / 100,
  }
}

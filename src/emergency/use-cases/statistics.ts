/** Emergency figures over a period of Paris days: one lab's (its own, for a lab), or national with each lab's. */
import { parisDate, parisInstant, parisStartOfDay } from '../../platform/paris-time.ts'
import { AppError } from '../../platform/errors.ts'
import * as q from '../queries.ts'
import { fieldError } from '../rules.ts'
import { assertSubscribed, type Deps, type Who } from './context.ts'

const notFoundLab = () => new AppError('NOT_FOUND', { what: 'Le laboratoire', whatEn: 'The lab' })

const n = (v: unknown) => Number(v ?? 0)
const minutes = (s: unknown) => (s === null || s === undefined ? null : Math.round((Number(s) / 60) * 10) / 10)
const rate = (accepted: number, answered: number) => (answered === 0 ? null : Math.round((accepted / answered) * 1000) / 1000)

/**
 * Requests submitted from `from` to `to` (inclusive; default the last 30 days up to today). A lab reads its own
 * figures (another `labId`: 404); the operator one lab's with `labId`, or the national ones with `byLab`.
 */
export async function statistics(deps: Deps, who: Who, query: { from?: string; to?: string; labId?: string }) {
  const { principal, lang } = who
  let lab: { id: string; name: string } | null = null
  if (principal.role === 'lab') {
    await assertSubscribed(deps, principal.org)
    if (query.labId && query.labId !== principal.org) throw notFoundLab()
  }
  const labId = principal.role === 'lab' ? principal.org : query.labId
  if (labId) {
    lab = (await q.labOf(deps.db, labId)) ?? null
    if (!lab) throw notFoundLab()
  }
  const now = deps.now()
  const today = parisDate(now)
  const todayStr = `${today.y}-${String(today.m).padStart(2, '0')}-${String(today.d).padStart(2, '0')}`
  const to = query.to ?? todayStr
  const from = query.from ?? new Date(Date.parse(`${to}T12:00:00Z`) - 29 * 86_400_000).toISOString().slice(0, 10)
  if (from > to) throw fieldError('querystring.from', 'order', { fr: `postérieur à « to » (${to})`, en: `after "to" (${to})` }, lang)
  const start = parisStartOfDay(from)
  const [ty, tm, td] = to.split('-').map(Number) as [number, number, number]
  const end = parisInstant(ty, tm, td, 24)
  const rows = await q.figuresByLab(deps.db, labId, start, end)
  // The national median is one over every request, not a median of medians: computed apart.
  const national = labId ? null : await q.nationalMedian(deps.db, start, end)
  const sum = (key: keyof q.LabFigures) => rows.reduce((a, r) => a + n(r[key]), 0)
  const answered = sum('answered')
  const figures = {
    lab,
    from,
    to,
    received: sum('received'),
    answered,
    byDecision: { accepted: sum('accepted'), partially_accepted: sum('partially_accepted'), redirected: sum('redirected'), refused: sum('refused') },
    cancelledBeforeAnswer: sum('cancelled'),
    escalated: sum('escalated'),
    medianMinutesToAnswer: minutes(national ? national.median_s : rows[0]?.median_s),
    acceptanceRate: rate(sum('accepted') + sum('partially_accepted'), answered),
  }
  if (labId) return figures
  const byLab = rows
    .map((r) => ({
      lab: { id: r.lab_id, name: r.lab_name },
      received: n(r.received),
      answered: n(r.answered),
      escalated: n(r.escalated),
      medianMinutesToAnswer: minutes(r.median_s),
      acceptanceRate: rate(n(r.accepted) + n(r.partially_accepted), n(r.answered)),
    }))
    .sort((a, b) => b.received - a.received || a.lab.id.localeCompare(b.lab.id))
  return { ...figures, byLab }
}

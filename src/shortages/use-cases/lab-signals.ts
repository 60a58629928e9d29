/** A lab's view of the signals on its presentations: the map (counts only, never which pharmacy) and its threshold setting. */
import { audit } from '../../platform/audit.ts'
import { REGIONS } from '../../platform/identifiers.ts'
import { DAY, HOUR, parisDay, parisStartOfDay } from '../../platform/paris-time.ts'
import { cip13Of, unknownProduct } from '../../referential/rules/product-code.ts'
import * as q from '../queries/signals.ts'
import { fieldError } from '../rules/common.ts'
import { actor, assertSubscribed, type Deps, type Who } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

function nextDay(day: string) {
  const d = new Date(`${day}T12:00:00Z`)
  return new Date(d.getTime() + DAY).toISOString().slice(0, 10)
}

/**
 * Open signals on the lab's presentations (or one of them) by presentation, department and region, and the
 * signals made per Paris day from `from` to `to` (default: the last 30 days).
 */
export async function signalMap(deps: Deps, who: Who, query: { cip13?: string | undefined; from?: string | undefined; to?: string | undefined }) {
  const { principal, lang } = who
  await assertSubscribed(deps.db, principal.org)
  const now = deps.now()
  const to = query.to ?? parisDay(now)
  const from = query.from ?? parisDay(new Date(parisStartOfDay(to).getTime() - 29 * DAY + 12 * HOUR))
  if (from > to) throw fieldError('DATES_OUT_OF_ORDER', 'querystring.from', 'order', { fr: `${from} est après ${to}`, en: `${from} is after ${to}` }, lang)
  let cip13: string | undefined
  if (query.cip13) {
    cip13 = cip13Of(query.cip13, 'querystring.cip13', lang)
    if (!(await q.ownPresentation(deps.db, cip13, principal.org))) throw unknownProduct(cip13, 'querystring.cip13', lang)
  }
  const [byPresentation, byDepartment, overTime] = await q.signalMapCounts(deps.db, principal.org, cip13, parisStartOfDay(from), parisStartOfDay(nextDay(to)))
  const regions = new Map<string, number>()
  for (const d of byDepartment) if (d.region) regions.set(d.region, (regions.get(d.region) ?? 0) + Number(d.n))
  return {
    from,
    to,
    openSignals: byPresentation.reduce((a, r) => a + Number(r.n), 0),
    byPresentation: byPresentation.map((r) => ({ cip13: r.cip13, name: r.name, open: Number(r.n) })),
    byDepartment: byDepartment.map((r) => ({ department: r.department ?? '?', region: r.region, open: Number(r.n) })),
    byRegion: [...regions].sort(([a], [b]) => a.localeCompare(b)).map(([region, n]) => ({ region, name: REGIONS[region] ?? region, open: n })),
    overTime: overTime.map((r) => ({ day: r.day, opened: Number(r.n) })),
  }
}

export async function readSettings(deps: Deps, who: Who) {
  await assertSubscribed(deps.db, who.principal.org)
  const row = await q.labSettings(deps.db, who.principal.org)
  return { signalThreshold: row?.signal_threshold ?? null }
}

/** Sets the signal threshold (null: no alert), audited with the previous one. */
export async function updateSettings(deps: Deps, who: Who, threshold: number | null) {
  const { principal } = who
  await assertSubscribed(deps.db, principal.org)
  const now = deps.now()
  await inTransaction(deps.db, async (tx) => {
    const before = await q.labSettings(tx, principal.org)
    await q.upsertThreshold(tx, principal.org, threshold, now)
    await audit(tx, actor(who), { action: 'shortage-settings.updated', objectType: 'shortage-settings', objectId: principal.org, changes: { signalThreshold: [before?.signal_threshold ?? null, threshold] } }, now)
  })
  return { signalThreshold: threshold }
}

/**
 * Statistical disclosure control of the public signal figures (GET /v1/public/shortage-statistics).
 *
 * What is published for a year: the number of pharmacy signals by month, by ATC first level and by MITM or not.
 * The three breakdowns are marginals of one table (month × ATC × MITM) and add up to the same total, so a figure
 * withheld in one breakdown can be recovered from the others ("byMitm.false − byAtc['?']"). Suppression is
 * therefore decided over the three breakdowns together, as linked tables.
 *
 * The attacker. Everything published is known, and so is the public referential (BDPM): which pairs
 * (ATC first level, MITM) exist among medicines, so a pair no medicine has is known to be zero. A withheld
 * figure is known to be at least 1 (zeros are never withheld). From this the attacker can compute, for a
 * withheld figure, the exact interval of values consistent with everything published: the minimum and maximum
 * of a linear programme. The month breakdown only meets the other two through the total (any months × pairs
 * table with given margins and equal totals exists), so the programme has one variable per month, one per
 * (ATC, MITM) pair, and the equality of the totals. Its matrix is that of a network flow (months → total →
 * pairs), so the bounds of the programme are integers: the attacker gains nothing from integrality.
 *
 * The protection criterion (threshold rule with an upper protection level, as in Hundepool et al., Statistical
 * Disclosure Control, 2012, §4.2–4.3): a figure is sensitive when 1 to k−1 distinct pharmacies stand behind it.
 * A sensitive figure x is protected when the attacker's interval [lo, hi] reaches
 *   hi ≥ x + max(k − x, 1)
 * that is: the attacker cannot pin it to its value (hi > x ≥ lo), nor to an interval entirely below k (the
 * figure might as well be one that k pharmacies stand behind, each signalling once). No lower protection level
 * is required: a lower bound only says that at least so many signals were made (withheld figures are known to be
 * at least 1, and several withheld months of one ATC level add up to a floor for it); it never says that fewer
 * than k pharmacies made them.
 *
 * The method: primary suppression of every sensitive figure, then, for each one that the audit finds
 * unprotected, complementary suppression of one more figure at a time — the smallest one whose suppression
 * protects it, else the smallest one that widens its interval, else the smallest — until it is protected.
 * Withholding a figure only removes an equation (it stays known to be ≥ 1, which it is), so a figure once
 * protected stays protected; with every non-zero figure withheld, nothing bounds any of them from above (the
 * total is free), so the loop ends.
 * A linear-programming library does the audit: nothing to hand-write there.
 */
import { type Model, solve } from 'yalps'

export type Breakdown = 'month' | 'atc' | 'mitm'
export const BREAKDOWNS: readonly Breakdown[] = ['month', 'atc', 'mitm']

/** One group of signals: a month, an ATC first level ('?' when unknown), MITM or not, one pharmacy. */
export interface SignalGroup {
  month: string
  atc: string
  mitm: boolean
  pharmacyId: string
  signals: number
}

export interface MarginCell {
  breakdown: Breakdown
  key: string
  signals: number
  pharmacies: number
}

export const cellId = (breakdown: Breakdown, key: string) => `${breakdown}:${key}`
const idOf = (c: Pick<MarginCell, 'breakdown' | 'key'>) => cellId(c.breakdown, c.key)

/** The upper protection level of a sensitive figure x with threshold k. */
export const upperProtectionLevel = (x: number, k: number) => Math.max(k - x, 1)

const EPS = 1e-6
export function isProtected(x: number, interval: { lo: number; hi: number }, k: number) {
  return interval.hi >= x + upperProtectionLevel(x, k) - EPS
}

export interface LinkedTables {
  /** Every month of the period (the month breakdown lists them all). */
  months: string[]
  /** Every (ATC first level, MITM) pair that exists in the referential or in the data. */
  pairs: Array<{ atc: string; mitm: boolean }>
  cells: MarginCell[]
}

/** The three breakdowns of the groups, with the distinct pharmacies behind each figure. */
export function marginsOf(groups: SignalGroup[], months: string[], pairs: Array<{ atc: string; mitm: boolean }>): LinkedTables {
  const cells = new Map<string, MarginCell & { who: Set<string> }>()
  const cell = (breakdown: Breakdown, key: string) => {
    const id = cellId(breakdown, key)
    let c = cells.get(id)
    if (!c) cells.set(id, (c = { breakdown, key, signals: 0, pharmacies: 0, who: new Set() }))
    return c
  }
  for (const m of months) cell('month', m)
  for (const t of ['false', 'true']) cell('mitm', t)
  const allPairs = new Map(pairs.map((p) => [`${p.atc}|${p.mitm}`, p]))
  for (const g of groups) {
    for (const c of [cell('month', g.month), cell('atc', g.atc), cell('mitm', String(g.mitm))]) {
      c.signals += g.signals
      c.who.add(g.pharmacyId)
    }
    allPairs.set(`${g.atc}|${g.mitm}`, { atc: g.atc, mitm: g.mitm })
  }
  return {
    months,
    pairs: [...allPairs.values()],
    cells: [...cells.values()].map(({ who, ...c }) => ({ ...c, pharmacies: who.size })),
  }
}

/**
 * The attacker's interval for one figure, given what is published (every cell not withheld, with its value;
 * the withheld ones known to be ≥ 1; an ATC level absent from the cells known to be 0). hi is Infinity when
 * nothing bounds it.
 */
export function feasibleInterval(tables: LinkedTables, withheld: ReadonlySet<string>, target: string, only?: 'hi'): { lo: number; hi: number } {
  const constraints: Record<string, { equal?: number; min?: number }> = { total: { equal: 0 } }
  const listed = new Map(tables.cells.map((c) => [idOf(c), c]))
  const atcs = new Set(tables.pairs.map((p) => p.atc))
  for (const a of atcs) if (!listed.has(cellId('atc', a))) constraints[cellId('atc', a)] = { equal: 0 }
  for (const [id, c] of listed) constraints[id] = withheld.has(id) ? { min: 1 } : { equal: c.signals }
  const variables: Record<string, Record<string, number>> = {}
  for (const m of tables.months) variables[`m|${m}`] = { total: 1, [cellId('month', m)]: 1 }
  for (const p of tables.pairs) variables[`z|${p.atc}|${p.mitm}`] = { total: -1, [cellId('atc', p.atc)]: 1, [cellId('mitm', String(p.mitm))]: 1 }
  for (const coefficients of Object.values(variables)) if (coefficients[target]) coefficients.objective = coefficients[target]!
  const bound = (direction: 'minimize' | 'maximize') => {
    const model: Model = { direction, objective: 'objective', constraints, variables }
    const s = solve(model)
    if (s.status === 'unbounded') return direction === 'maximize' ? Infinity : -Infinity
    if (s.status !== 'optimal') throw new Error(`disclosure audit: linear programme ${s.status}`)
    return s.result
  }
  return { lo: only === 'hi' ? -Infinity : bound('minimize'), hi: bound('maximize') }
}

const ORDER: Record<Breakdown, number> = { month: 0, atc: 1, mitm: 2 }
const smallestFirst = (a: MarginCell, b: MarginCell) => a.signals - b.signals || ORDER[a.breakdown] - ORDER[b.breakdown] || a.key.localeCompare(b.key)

/** The ids of the figures to withhold: every sensitive one, and enough others that each is protected. */
export function withheldCells(tables: LinkedTables, k: number): Set<string> {
  const primary = tables.cells.filter((c) => c.pharmacies > 0 && c.pharmacies < k).sort(smallestFirst)
  const withheld = new Set(primary.map(idOf))
  for (const p of primary) {
    const id = idOf(p)
    const upper = (cells: ReadonlySet<string>) => feasibleInterval(tables, cells, id, 'hi')
    let interval = upper(withheld)
    while (!isProtected(p.signals, interval, k)) {
      const candidates = tables.cells.filter((c) => c.signals > 0 && !withheld.has(idOf(c))).sort(smallestFirst)
      if (candidates.length === 0) throw new Error('disclosure audit: nothing left to withhold') // cannot happen: see above
      let chosen: { cell: MarginCell; interval: typeof interval } | undefined
      let widening: typeof chosen
      for (const c of candidates) {
        const trial = upper(new Set([...withheld, idOf(c)]))
        if (isProtected(p.signals, trial, k)) {
          chosen = { cell: c, interval: trial }
          break
        }
        if (!widening && trial.hi > interval.hi + EPS) widening = { cell: c, interval: trial }
      }
      const next = chosen ?? widening
      withheld.add(idOf(next?.cell ?? candidates[0]!))
      interval = next ? next.interval : upper(withheld)
    }
  }
  return withheld
}

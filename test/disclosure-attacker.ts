/**
 * The attacker of the disclosure tests: given every figure a table publishes and what the public referential
 * says, it computes by linear programming the exact interval of every withheld figure. Written independently
 * of src/shortages/rules/disclosure.ts: one variable per cell of the full month × ATC × MITM table (not the
 * reduced programme the service audits with), so a mistake in the service's reduction would show here.
 */
import { type Model, solve } from 'yalps'

export interface PublishedFigure {
  key: string
  signals: number | null
  suppressed: boolean
}
export interface PublishedSignals {
  byMonth: PublishedFigure[]
  byAtc: PublishedFigure[]
  byMitm: PublishedFigure[]
}
export interface Interval {
  lo: number
  hi: number
}

/** Intervals of every withheld figure, keyed 'month:2026-11', 'atc:C', 'mitm:false'. */
export function attackSignals(published: PublishedSignals, pairs: Array<{ atc: string; mitm: boolean }>): Map<string, Interval> {
  const months = published.byMonth.map((c) => c.key)
  const atcs = [...new Set([...pairs.map((p) => p.atc), ...published.byAtc.map((c) => c.key)])]
  const possible = new Set(pairs.map((p) => `${p.atc}|${p.mitm}`))
  const variables: Record<string, Record<string, number>> = {}
  for (const m of months) for (const a of atcs) for (const t of [false, true]) {
    // A pair no medicine has is zero: no variable.
    if (possible.has(`${a}|${t}`)) variables[`${m}|${a}|${t}`] = { [`month:${m}`]: 1, [`atc:${a}`]: 1, [`mitm:${t}`]: 1 }
  }
  const constraints: Record<string, { equal?: number; min?: number }> = {}
  const listed = new Set<string>()
  for (const [prefix, cells] of [['month', published.byMonth], ['atc', published.byAtc], ['mitm', published.byMitm]] as const) {
    for (const c of cells) {
      listed.add(`${prefix}:${c.key}`)
      constraints[`${prefix}:${c.key}`] = c.suppressed ? { min: 1 } : { equal: c.signals! }
    }
  }
  for (const a of atcs) if (!listed.has(`atc:${a}`)) constraints[`atc:${a}`] = { equal: 0 }
  const out = new Map<string, Interval>()
  for (const id of listed) {
    if (!(constraints[id]!.min === 1)) continue
    const vars = Object.fromEntries(Object.entries(variables).map(([name, coefficients]) => [name, { ...coefficients, objective: coefficients[id] ?? 0 }]))
    const bound = (direction: 'minimize' | 'maximize') => {
      const s = solve({ direction, objective: 'objective', constraints, variables: vars } satisfies Model)
      if (s.status === 'unbounded') return Infinity
      if (s.status !== 'optimal') throw new Error(`attacker: ${s.status} (the published figures contradict each other)`)
      return s.result
    }
    out.set(id, { lo: bound('minimize'), hi: bound('maximize') })
  }
  return out
}

/**
 * The protection criterion (the same words as the service's, checked here on the attacker's result): a figure
 * behind 1 to k−1 pharmacies, of true value x, must have hi ≥ x + max(k − x, 1): not pinned to its value, and
 * not to an interval entirely below k.
 */
export function violates(x: number, interval: Interval, k: number): string | null {
  const upper = Math.max(k - x, 1)
  if (interval.hi < x + upper - 1e-6) return `upper bound ${interval.hi} < ${x} + ${upper}`
  if (interval.lo > x + 1e-6) return `lower bound ${interval.lo} above the true value ${x}: the published figures are wrong`
  return null
}

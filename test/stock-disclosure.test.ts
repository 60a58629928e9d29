import fc from 'fast-check'
import t from 'tap'
import { type Model, solve } from 'yalps'
import { MAX_QUANTITY } from '../src/stock/schemas.ts'
import { type Cell, type PublishedTable, suppress } from '../src/stock/suppression.ts'

const SEED = Number(process.env.FC_SEED ?? 20261206)
const cell = (department: string, pharmacies: number, totalQuantity: number): Cell => ({ department, pharmacies, totalQuantity })

/**
 * The attacker of the ministry's aggregates, for one week and product: everything published (departments,
 * national total and count, the reason of each suppression), the quantity ceiling of a declaration, and linear
 * programming. Variables: the quantity and the number of pharmacies of each suppressed department. A
 * below-threshold department has 1 to k−1 pharmacies, a complementary one at least k (both said by `reason`).
 */
function attack(table: PublishedTable, k: number): Map<string, { lo: number; hi: number }> {
  const hidden = table.departments.filter((d) => d.suppressed)
  const constraints: Record<string, { equal?: number; min?: number; max?: number }> = {}
  const variables: Record<string, Record<string, number>> = {}
  if (!table.national.suppressed) {
    const shown = table.departments.filter((d) => !d.suppressed)
    constraints.quantity = { equal: table.national.totalQuantity! - shown.reduce((n, d) => n + d.totalQuantity!, 0) }
    constraints.pharmacies = { equal: table.national.pharmacies! - shown.reduce((n, d) => n + d.pharmacies!, 0) }
  }
  for (const d of hidden) {
    constraints[`n:${d.department}`] = d.reason === 'below_threshold' ? { min: 1, max: k - 1 } : { min: k }
    constraints[`ceiling:${d.department}`] = { max: 0 } // quantity ≤ MAX_QUANTITY × pharmacies
    variables[`q:${d.department}`] = { quantity: 1, [`ceiling:${d.department}`]: 1 }
    variables[`n:${d.department}`] = { pharmacies: 1, [`n:${d.department}`]: 1, [`ceiling:${d.department}`]: -MAX_QUANTITY }
  }
  const out = new Map<string, { lo: number; hi: number }>()
  for (const d of hidden) {
    const vars = Object.fromEntries(Object.entries(variables).map(([name, c]) => [name, { ...c, objective: name === `q:${d.department}` ? 1 : 0 }]))
    const bound = (direction: 'minimize' | 'maximize') => {
      const s = solve({ direction, objective: 'objective', constraints, variables: vars } satisfies Model)
      if (s.status === 'unbounded') return Infinity
      if (s.status !== 'optimal') throw new Error(`attacker: ${s.status}`)
      return s.result
    }
    out.set(d.department, { lo: bound('minimize'), hi: bound('maximize') })
  }
  return out
}

/**
 * The protection criterion for a quantity (upper protection level, Hundepool et al. 2012, §4.2–4.3): a department
 * with 1 to k−1 pharmacies, of true quantity x, must have hi ≥ x + max(1, ⌈20 % of x⌉).
 */
function violates(x: number, interval: { lo: number; hi: number }): string | null {
  const upper = Math.max(1, Math.ceil(x * 0.2))
  if (interval.hi < x + upper - 1e-6) return `upper bound ${interval.hi} < ${x} + ${upper}`
  if (interval.lo > x + 1e-6) return `lower bound ${interval.lo} above the true ${x}`
  return null
}

t.test('a complementary department with an empty stock protects nothing: the small one’s quantity was bounded by itself', async (t) => {
  // 2A: one pharmacy, 50 boxes; 13: two pharmacies, nothing in stock; 69: four pharmacies, 20 boxes.
  const table = suppress([cell('2A', 1, 50), cell('13', 2, 0), cell('69', 4, 20)], 3)
  const interval = attack(table, 3).get('2A')!
  t.equal(violates(50, interval), null, `2A: ${JSON.stringify(interval)}`)
  // The same with a complement far smaller than the small cell: 300 boxes behind 2A, 10 behind 75.
  const big = suppress([cell('2A', 1, 300), cell('75', 3, 10), cell('69', 4, 500), cell('13', 5, 200)], 3)
  t.equal(violates(300, attack(big, 3).get('2A')!), null, `2A: ${JSON.stringify(attack(big, 3).get('2A'))}`)
})

t.test('property: no department below the threshold has its quantity bounded within 20 % above it', async (t) => {
  const deps = ['01', '13', '2A', '2B', '69', '75', '971', '974', '976']
  let checked = 0
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 5 }),
      fc.uniqueArray(fc.record({ department: fc.constantFrom(...deps), pharmacies: fc.integer({ min: 1, max: 8 }), totalQuantity: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1000 })) }), { selector: (c) => c.department, maxLength: deps.length }),
      (k, cells) => {
        const table = suppress(cells, k)
        for (const d of table.departments) {
          const real = cells.find((c) => c.department === d.department)!
          if (!d.suppressed && (d.totalQuantity !== real.totalQuantity || d.pharmacies !== real.pharmacies)) throw new Error(`${d.department} published wrong`)
          if (!d.suppressed && real.pharmacies < k) throw new Error(`${d.department} (${real.pharmacies} pharmacies) published`)
        }
        const intervals = attack(table, k)
        for (const c of cells) {
          if (c.pharmacies >= k) continue
          const why = violates(c.totalQuantity, intervals.get(c.department)!)
          if (why) throw new Error(`${c.department} = ${c.totalQuantity} (${c.pharmacies} pharmacies, k=${k}): ${why}`)
          checked++
        }
      },
    ),
    { seed: SEED, numRuns: 1000 },
  )
  t.ok(checked > 500, `${checked} small departments attacked`)
})

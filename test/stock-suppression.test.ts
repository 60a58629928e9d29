import t from 'tap'
import { type Cell, suppress } from '../src/stock/suppression.ts'
import { mondayOfLabel, weekAt, weekLabel } from '../src/stock/time.ts'

const cell = (department: string, pharmacies: number, totalQuantity: number): Cell => ({ department, pharmacies, totalQuantity })

t.test('a cell under the threshold is suppressed, and the next smallest too so that subtraction recovers nothing', async (t) => {
  const table = suppress([cell('75', 3, 60), cell('69', 4, 20), cell('2A', 1, 7), cell('971', 3, 300)], 3)
  const byDep = Object.fromEntries(table.departments.map((d) => [d.department, d]))
  t.match(byDep['2A'], { suppressed: true, reason: 'below_threshold', totalQuantity: null, pharmacies: null })
  t.match(byDep['75'], { suppressed: true, reason: 'complementary', totalQuantity: null }, 'fewest pharmacies, then smallest quantity')
  t.match(byDep['69'], { suppressed: false, totalQuantity: 20, pharmacies: 4 })
  t.match(byDep['971'], { suppressed: false, totalQuantity: 300, pharmacies: 3 })
  t.same(table.national, { totalQuantity: 387, pharmacies: 11, suppressed: false })
  // the attack: national total minus every published department
  const published = table.departments.filter((d) => !d.suppressed).reduce((n, d) => n + d.totalQuantity!, 0)
  t.equal(table.national.totalQuantity! - published, 67, 'only the sum of 2A and 75 (4 pharmacies) comes out')
  t.not(table.national.totalQuantity! - published, 7, 'not the Corsican pharmacy’s quantity')
})

t.test('two small cells that together reach the threshold need no complement', async (t) => {
  const table = suppress([cell('75', 3, 60), cell('13', 2, 9), cell('2A', 1, 7)], 3)
  t.same(table.departments.map((d) => [d.department, d.reason]), [['13', 'below_threshold'], ['2A', 'below_threshold'], ['75', null]])
  t.equal(table.national.totalQuantity, 76)
})

t.test('when nothing is left to hide behind, the national total is suppressed', async (t) => {
  const table = suppress([cell('13', 2, 9)], 3)
  t.same(table.national, { totalQuantity: null, pharmacies: null, suppressed: true })
  t.equal(table.departments[0]!.suppressed, true)
  const two = suppress([cell('13', 1, 9), cell('2A', 1, 4)], 3)
  t.equal(two.national.suppressed, true, 'two cells of one pharmacy each: their sum would identify two pharmacies')
  const none = suppress([], 3)
  t.same(none, { departments: [], national: { totalQuantity: 0, pharmacies: 0, suppressed: false } })
})

t.test('whatever the table, subtracting the published cells from the total never isolates fewer than k pharmacies', async (t) => {
  let seed = 42
  const rand = (n: number) => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) % n
  }
  const deps = ['01', '13', '2A', '2B', '69', '75', '971', '974', '976']
  const problems: string[] = []
  let complementary = 0
  let nationalHidden = 0
  for (let run = 0; run < 500; run++) {
    const k = 2 + rand(4)
    const cells = deps.slice(0, rand(deps.length + 1)).map((d) => cell(d, 1 + rand(8), rand(1000)))
    const table = suppress(cells, k)
    for (const d of table.departments) if (!d.suppressed && d.pharmacies! < k) problems.push(`run ${run}: published ${d.department} with ${d.pharmacies}`)
    const hidden = table.departments.filter((d) => d.suppressed)
    complementary += hidden.filter((d) => d.reason === 'complementary').length
    if (table.national.suppressed) nationalHidden++
    if (hidden.length > 0 && !table.national.suppressed) {
      const n = cells.filter((c) => hidden.some((h) => h.department === c.department)).reduce((a, c) => a + c.pharmacies, 0)
      if (hidden.length < 2 || n < k) problems.push(`run ${run}: subtraction isolates ${hidden.length} cell(s) of ${n} pharmacies`)
    }
    const published = table.departments.filter((d) => !d.suppressed).reduce((a, d) => a + d.totalQuantity!, 0)
    if (!table.national.suppressed && hidden.length === 0 && published !== table.national.totalQuantity) problems.push(`run ${run}: total differs`)
  }
  t.same(problems, [], '500 random tables')
  t.ok(complementary > 20 && nationalHidden > 0, `the random tables exercised the rule (${complementary} complementary cells, ${nationalHidden} national totals hidden)`)
})

t.test('ISO weeks of the Paris calendar', async (t) => {
  t.equal(weekLabel('2025-12-29'), '2026-W01', 'the week of 1 January 2026 starts in 2025')
  t.equal(mondayOfLabel('2026-W53'), '2026-12-28', '2026 has 53 weeks')
  t.equal(mondayOfLabel('2025-W53'), null, '2025 has 52')
  t.equal(mondayOfLabel('2026-W00'), null)
  t.equal(weekAt(new Date('2027-01-01T12:00:00Z')).week, '2026-W53')
  // autumn change (Sunday 25 October 2026): the week lasts 169 hours
  const w43 = weekAt(new Date('2026-10-25T22:59:59Z'))
  t.match(w43, { week: '2026-W43', monday: '2026-10-19' })
  t.equal(w43.start.toISOString(), '2026-10-18T22:00:00.000Z')
  t.equal(w43.end.toISOString(), '2026-10-25T23:00:00.000Z')
  t.equal(weekAt(new Date('2026-10-25T23:00:00Z')).week, '2026-W44')
  // spring change (Sunday 29 March 2026): 167 hours
  const w13 = weekAt(new Date('2026-03-29T21:59:59Z'))
  t.equal(w13.week, '2026-W13')
  t.equal(w13.start.toISOString(), '2026-03-22T23:00:00.000Z')
  t.equal(w13.end.toISOString(), '2026-03-29T22:00:00.000Z')
  t.equal(weekAt(new Date('2026-03-29T22:00:00Z')).week, '2026-W14')
})

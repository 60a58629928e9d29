/**
 * Statistical disclosure control of the published aggregates.
 *
 * What is published, per campaign, week and product: one cell per department (total quantity, number of
 * declaring pharmacies) and the national total. Nothing is summed across products (a test and a vaccine are
 * not the same unit) nor across weeks, so each (week, product) is a one-dimensional table with its total, and
 * the only subtraction an attacker can make is "national total − the published department cells".
 *
 * Rule, with k the campaign's minimum number of pharmacies:
 * 1. primary suppression: a department cell with fewer than k pharmacies is not published (quantity and count);
 * 2. complementary suppression: the national total minus the published cells gives the sum of the suppressed
 *    cells. That sum must be as safe as a published cell, so the suppressed cells together must count at least
 *    k pharmacies, which also means at least two cells (one suppressed cell is below k by definition). And it
 *    must not bound a small cell's quantity by itself: an attacker who knows the sum knows each suppressed
 *    quantity lies between 0 and that sum, so the other suppressed cells must hold at least the upper protection
 *    level of each small one, max(1, 20 % of its quantity) (Hundepool et al., Statistical Disclosure Control,
 *    2012, §4.2–4.3; 0 boxes is a figure too: a small department that declared none must not be pinned to 0).
 *    While either does not hold, the next smallest published cell (fewest pharmacies, then smallest quantity,
 *    then department code) is suppressed too;
 * 3. when no cell is left to suppress (say, one department declared with two pharmacies), the national total
 *    is suppressed instead: the quantities are then bounded only by the declaration ceiling.
 * Departments where nobody declared are not listed: they are known to be zero and reveal nothing.
 * Pharmacy counts of suppressed cells are not published either; the national count minus the published counts
 * only gives the suppressed cells' combined count, which is at least k by rule 2. A suppressed cell's `reason`
 * says whether it is below the threshold (1 to k−1 pharmacies): that much is what suppression announces.
 * test/stock-disclosure.test.ts attacks random tables by linear programming with all of this known.
 */

export interface Cell {
  department: string
  totalQuantity: number
  pharmacies: number
}

export type SuppressionReason = 'below_threshold' | 'complementary'

export interface PublishedCell {
  department: string
  totalQuantity: number | null
  pharmacies: number | null
  suppressed: boolean
  reason: SuppressionReason | null
}

export interface PublishedTable {
  departments: PublishedCell[]
  national: { totalQuantity: number | null; pharmacies: number | null; suppressed: boolean }
}

/** The upper protection level of a small cell's quantity: the other suppressed cells must hold at least this. */
export const upperProtectionLevel = (quantity: number) => Math.max(1, Math.ceil(quantity * 0.2))

const smallestFirst = (a: Cell, b: Cell) => a.pharmacies - b.pharmacies || a.totalQuantity - b.totalQuantity || a.department.localeCompare(b.department)

export function suppress(cells: Cell[], k: number): PublishedTable {
  const present = cells.filter((c) => c.pharmacies > 0)
  const reason = new Map<string, SuppressionReason>()
  for (const c of present) if (c.pharmacies < k) reason.set(c.department, 'below_threshold')
  let nationalSuppressed = false
  if (reason.size > 0) {
    const small = present.filter((c) => reason.has(c.department))
    let pharmacies = small.reduce((n, c) => n + c.pharmacies, 0)
    let quantity = small.reduce((n, c) => n + c.totalQuantity, 0)
    const safe = () => pharmacies >= k && small.every((c) => quantity - c.totalQuantity >= upperProtectionLevel(c.totalQuantity))
    const candidates = present.filter((c) => !reason.has(c.department)).sort(smallestFirst)
    while (!safe()) {
      const next = candidates.shift()
      if (!next) {
        nationalSuppressed = true
        break
      }
      reason.set(next.department, 'complementary')
      pharmacies += next.pharmacies
      quantity += next.totalQuantity
    }
  }
  const total = present.reduce((n, c) => n + c.totalQuantity, 0)
  const pharmacies = present.reduce((n, c) => n + c.pharmacies, 0)
  return {
    departments: [...present]
      .sort((a, b) => a.department.localeCompare(b.department))
      .map((c) => {
        const r = reason.get(c.department) ?? null
        return r ? { department: c.department, totalQuantity: null, pharmacies: null, suppressed: true, reason: r } : { department: c.department, totalQuantity: c.totalQuantity, pharmacies: c.pharmacies, suppressed: false, reason: null }
      }),
    national: nationalSuppressed ? { totalQuantity: null, pharmacies: null, suppressed: true } : { totalQuantity: total, pharmacies, suppressed: false },
  }
}

/**
 * May this box be dispensed? The one rule, from one set of facts. The dispensation check (from each instance's
 * memory, registry.ts), pack verification and every pack state change (in SQL, next to the pack's row) all decide
 * through this module, so that two routes can never give two answers about one box.
 *
 * The facts about a (product, batch), each kept by its own source and never copied into another:
 * - DP-Rappels: the recalls that block dispensation of the batch now (`dispensation_blocks`, one row per recall
 *   and batch, from the broadcast of the version that names the batch until a version removes it or the recall is
 *   closed; a batch uploaded or first scanned later is blocked all the same, since nothing is copied);
 * - the lab's own status of the batch (`serial_batches.status`) and of the whole product (`serial_products`);
 * - the box's expiry date (the one printed in its DataMatrix, or the batch's as uploaded).
 * Lifting one source (closing a recall, a batch set active again) leaves exactly what the others say.
 *
 * The answer, by precedence (the strongest instruction to the pharmacist first):
 * | facts                                                          | blocking  | code           |
 * | a recall blocks the batch, or the lab recalled batch or product | recalled  | BATCH_RECALLED |
 * | otherwise, the lab withdrew the batch or the product            | withdrawn | WITHDRAWN      |
 * | otherwise, the lab expired batch or product, or the date passed  | expired   | EXPIRED        |
 * | otherwise                                                       | none      | (dispensable)  |
 * The expiry date is compared with the current day in Europe/Paris: a box is valid through its expiry day.
 */
import type { BatchStatus } from '../serialization/db.ts'

export type Blocking = Exclude<BatchStatus, 'active'>
export const BLOCKED_CODE = { recalled: 'BATCH_RECALLED', withdrawn: 'WITHDRAWN', expired: 'EXPIRED' } as const satisfies Record<Blocking, string>
export type BlockedCode = (typeof BLOCKED_CODE)[Blocking]

export interface BlockFacts {
  /** How many recalls block the batch now (announced or in force). */
  recalls: number
  /** The lab's status of the batch and of the product ('active' or absent: no block). */
  batchStatus: BatchStatus | null | undefined
  productStatus: BatchStatus | null | undefined
  /** YYYY-MM-DD, when known. */
  expiry: string | null | undefined
}

/** The rule. `today`: YYYY-MM-DD in Europe/Paris. */
export function blockingOf(f: BlockFacts, today: string): Blocking | null {
  if (f.recalls > 0 || f.batchStatus === 'recalled' || f.productStatus === 'recalled') return 'recalled'
  if (f.batchStatus === 'withdrawn' || f.productStatus === 'withdrawn') return 'withdrawn'
  if (f.batchStatus === 'expired' || f.productStatus === 'expired' || (f.expiry != null && f.expiry < today)) return 'expired'
  return null
}

/**
 * The same rule in SQL, for the statements that read or change a pack (verification, state changes, undo), so that
 * the decision is taken on the rows as they are when the statement runs. The arguments are SQL expressions:
 * the product, the batch as stored with the pack, the lab's batch and product status, the expiry, and today.
 * Recall rows hold the batch in capitals (a batch is GS1 set 82, plain ASCII: upper() and the check's
 * normalisation agree). test/dispensation-rule.test.ts checks this twin against blockingOf on every combination.
 */
export function blockingSql(e: { cip13: string; batch: string; batchStatus: string; productStatus: string; expiry: string; today: string }): string {
  return `(case
    when exists (select 1 from dispensation_blocks d where d.cip13 = ${e.cip13} and d.batch = upper(${e.batch}))
      or ${e.batchStatus} = 'recalled' or ${e.productStatus} = 'recalled' then 'recalled'
    when ${e.batchStatus} = 'withdrawn' or ${e.productStatus} = 'withdrawn' then 'withdrawn'
    when ${e.batchStatus} = 'expired' or ${e.productStatus} = 'expired' or ${e.expiry} < ${e.today} then 'expired'
  end)`
}

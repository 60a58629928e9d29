// Verifications gathered into one statement per group, that looks the packs up and logs their scans.
import { randomUUID } from 'node:crypto'
import { BLOCKED_CODE, type Blocking, blockingSql } from '../../dispensation/rule.ts'
import { Batcher } from '../../platform/db/batcher.ts'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import { parisDay } from '../../platform/paris-time.ts'
import { raisesAlert } from '../rules/alerts.ts'
import { RETURN_CODE_NAMES, type ReturnCodeName } from '../rules/codes.ts'
import type { PackState } from '../db.ts'
import { type PackRef, type PackResult, packView } from '../rules/packs.ts'
import type { Scanner } from '../rules/pseudonyms.ts'

/**
 * The verification hot path: look the pack up AND write its scan-log row in ONE statement, for many scans at once.
 *
 * Why: measured on the bench, a verify was three round trips' worth of work per request (lookup, then log insert,
 * each with its own parse/bind/execute and, for the insert, its own commit). Scans that arrive while a statement
 * is in flight are gathered and sent together as arrays (`unnest`), one statement and one commit for all of them
 * (group commit). Nothing is traded for it: every answer is sent only after the statement that logged it has
 * committed, exactly as before; a crash loses only scans whose answer was never sent.
 *
 * The return code is computed by the statement (it must be written in the log row): the CASE below is the SQL twin
 * of rules/packs.ts `judge()` and is tested through the same verify tests; what blocks the batch is decided by
 * dispensation/rule.ts (blockingSql). Codes that raise an alert on a verification (rules/alerts.ts: a possible
 * falsification) are NOT logged here: their log row is written in the alert's own transaction with the alert
 * reference (use-cases/alert-raising.ts recordScan), which the caller does when `logged` is false.
 */
const ALERT_ON_VERIFY = RETURN_CODE_NAMES.filter((c) => raisesAlert(c, 'verify'))
const VERIFY_BATCH_SQL = `
  with i as (
    select * from unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::uuid[], $6::text[], $7::text[], $8::timestamptz[], $9::date[])
      with ordinality as i(cip13, serial, batch, expiry, id, role, pseudonym, at, today, ord)
  ), r as materialized (
    -- materialized: the CASE below reads product_known and blocking several times (inlined, each would be a subplan)
    select i.*, exists (select 1 from serial_batches k where k.cip13 = i.cip13) as product_known,
           p.state, p.batch as pack_batch, b.expiry as pack_expiry,
           ${blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: 'sp.status', expiry: 'b.expiry', today: 'i.today' })} as blocking
    from i
    left join packs p on p.cip13 = i.cip13 and p.serial = i.serial
    left join serial_batches b on b.cip13 = p.cip13 and b.batch = p.batch
    left join serial_products sp on sp.cip13 = i.cip13
  ), j as (
    select r.*,
      case
        when not r.product_known then 'UNKNOWN_PRODUCT'
        when r.state is null then
          case when exists (select 1 from serial_batches k where k.cip13 = r.cip13 and k.batch = r.batch) then 'UNKNOWN_SERIAL' else 'BATCH_UNKNOWN' end
        when r.pack_batch <> r.batch then 'BATCH_MISMATCH'
        when r.pack_expiry <> r.expiry then 'EXPIRY_MISMATCH'
        when r.blocking is not null then
          case r.blocking ${Object.entries(BLOCKED_CODE).map(([b, c]) => `when '${b}' then '${c}'`).join(' ')} end
        when r.state <> 'active' then 'ALREADY_INACTIVE'
        else 'PACK_ACTIVE'
      end as code
    from r
  ), k as (
    select j.*, j.code in (${ALERT_ON_VERIFY.map((c) => `'${c}'`).join(', ')}) as alert from j
  ), l as (
    insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
    select cip13, id, at, serial, batch, expiry, 'verify', code, role, pseudonym, null, null from k where not alert
  )
  select ord, code, alert, product_known, state, pack_batch as batch, to_char(pack_expiry, 'YYYY-MM-DD') as expiry, blocking
  from k order by ord`

interface Row {
  ord: number | string
  code: ReturnCodeName
  alert: boolean
  product_known: boolean
  state: PackState | null
  batch: string | null
  expiry: string | null
  blocking: Blocking | null
}

interface Item {
  ref: PackRef & { cip13: string }
  scanner: Scanner
  now: Date
}

export interface VerifyOutcome {
  outcome: PackResult
  /** false: the scan is not logged yet (an alert is due): the caller logs it with the alert (use-cases/alert-raising.ts recordScan). */
  logged: boolean
}

export interface VerifyBatcherOptions {
  /** Statements in flight at once (each holds one pooled connection). */
  maxInFlight?: number
  /** Scans per statement at most. */
  maxBatch?: number
}

/** Gathers concurrent verifications into one statement each (see VERIFY_BATCH_SQL). One per application instance. */
export class VerifyBatcher {
  private readonly batcher: Batcher<Item, Row>

  constructor(
    private readonly database: DatabaseHandle,
    opts: VerifyBatcherOptions = {},
  ) {
    // The embedded database runs one statement at a time anyway.
    const maxInFlight = database.kind === 'pglite' ? 1 : (opts.maxInFlight ?? 4)
    this.batcher = new Batcher((items) => this.run(items), { maxInFlight, maxBatch: opts.maxBatch ?? 200 })
  }

  async verify(scanner: Scanner, ref: PackRef, now: Date): Promise<VerifyOutcome> {
    // Not a French medicine's code: nothing to look up or log (as before: no cip13, no scan row).
    if (!ref.cip13) return { outcome: { ok: false, code: 'UNKNOWN_PRODUCT', alert: false, pack: packView(ref, null) }, logged: true }
    const row = await this.batcher.submit({ ref: ref as PackRef & { cip13: string }, scanner, now })
    const pack = packView(ref, row.state ? { ...row, state_at: null, last_txn: null } : null)
    return { outcome: { ok: row.code === 'PACK_ACTIVE', code: row.code, alert: row.alert, pack }, logged: !row.alert }
  }

  private async run(batch: Item[]): Promise<Row[]> {
    const cols: unknown[][] = Array.from({ length: 9 }, () => new Array(batch.length))
    batch.forEach((it, n) => {
      cols[0]![n] = it.ref.cip13
      cols[1]![n] = it.ref.serial
      cols[2]![n] = it.ref.batch
      cols[3]![n] = it.ref.expiry
      cols[4]![n] = randomUUID()
      cols[5]![n] = it.scanner.role
      cols[6]![n] = it.scanner.org
      cols[7]![n] = it.now.toISOString()
      cols[8]![n] = parisDay(it.now)
    })
    const rows = await this.database.prepared<Row>('serial_verify_batch', VERIFY_BATCH_SQL, cols)
    const byItem: Row[] = new Array(batch.length)
    for (const row of rows) byItem[Number(row.ord) - 1] = row
    return byItem
  }
}

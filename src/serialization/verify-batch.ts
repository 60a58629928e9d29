import { randomUUID } from 'node:crypto'
import type { Principal } from '../platform/auth.ts'
import { Batcher } from '../platform/db/batcher.ts'
import type { DatabaseHandle } from '../platform/db/index.ts'
import type { ReturnCodeName } from './codes.ts'
import type { BatchStatus, PackState } from './db.ts'
import { parisDay } from '../platform/paris-time.ts'
import { type PackRef, type PackResult, packView } from './service.ts'

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
 * of service.ts `judge()` and is tested through the same verify tests. Codes that raise an alert (possible
 * falsification, or a pack already dispensed by another organisation) are NOT logged here: their log row is
 * written in the alert's own transaction with the alert reference (alerts.ts recordScan), which the caller does
 * when `logged` is false.
 */
const VERIFY_BATCH_SQL = `
  with i as (
    select * from unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::uuid[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::date[])
      with ordinality as i(cip13, serial, batch, expiry, id, role, pseudonym, org, at, today, ord)
  ), r as materialized (
    -- materialized: the CASE below reads product_known and supplied_by several times (inlined, each would be a subplan)
    select i.*, exists (select 1 from serial_batches k where k.cip13 = i.cip13) as product_known,
           p.state, p.batch as pack_batch, b.expiry as pack_expiry, b.status as batch_status, sp.status as product_status,
           case when p.state = 'supplied' then (select t.org_id from pack_transactions t where t.cip13 = p.cip13 and t.id = p.last_txn and t.serial = p.serial) end as supplied_by
    from i
    left join packs p on p.cip13 = i.cip13 and p.serial = i.serial
    left join serial_batches b on b.cip13 = p.cip13 and b.batch = p.batch
    left join serial_products sp on sp.cip13 = i.cip13
  ), j as (
    select r.*,
      case
        when not r.product_known then 'UNKNOWN_PRODUCT'
        when r.state is null then 'UNKNOWN_SERIAL'
        when r.pack_batch <> r.batch then 'BATCH_MISMATCH'
        when r.pack_expiry <> r.expiry then 'EXPIRY_MISMATCH'
        when coalesce(r.product_status, 'active') <> 'active' then
          case r.product_status when 'recalled' then 'BATCH_RECALLED' when 'withdrawn' then 'WITHDRAWN' else 'EXPIRED' end
        when r.batch_status <> 'active' then
          case r.batch_status when 'recalled' then 'BATCH_RECALLED' when 'withdrawn' then 'WITHDRAWN' else 'EXPIRED' end
        when r.pack_expiry < r.today then 'EXPIRED'
        when r.state <> 'active' then 'ALREADY_INACTIVE'
        else 'PACK_ACTIVE'
      end as code
    from r
  ), k as (
    select j.*, (j.code in ('UNKNOWN_SERIAL', 'BATCH_MISMATCH', 'EXPIRY_MISMATCH')
                 or (j.code = 'ALREADY_INACTIVE' and j.supplied_by is not null and j.supplied_by <> j.org)) as alert
    from j
  ), l as (
    insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
    select cip13, id, at, serial, batch, expiry, 'verify', code, role, pseudonym, null, null from k where not alert
  )
  select ord, code, alert, product_known, state, pack_batch as batch, to_char(pack_expiry, 'YYYY-MM-DD') as expiry, batch_status, product_status
  from k order by ord`

interface Row {
  ord: number | string
  code: ReturnCodeName
  alert: boolean
  product_known: boolean
  state: PackState | null
  batch: string | null
  expiry: string | null
  batch_status: BatchStatus | null
  product_status: BatchStatus | null
}

interface Item {
  ref: PackRef & { cip13: string }
  principal: Principal
  pseudonym: string
  now: Date
}

export interface VerifyOutcome {
  outcome: PackResult
  /** false: the scan is not logged yet (an alert is due): the caller logs it with the alert (alerts.ts recordScan). */
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
    private readonly pseudonymOf: (org: string) => string,
    opts: VerifyBatcherOptions = {},
  ) {
    // The embedded database runs one statement at a time anyway.
    const maxInFlight = database.kind === 'pglite' ? 1 : (opts.maxInFlight ?? 4)
    this.batcher = new Batcher((items) => this.run(items), { maxInFlight, maxBatch: opts.maxBatch ?? 200 })
  }

  async verify(principal: Principal, ref: PackRef, now: Date): Promise<VerifyOutcome> {
    const today = parisDay(now)
    // Not a French medicine's code: nothing to look up or log (as before: no cip13, no scan row).
    if (!ref.cip13) return { outcome: { ok: false, code: 'UNKNOWN_PRODUCT', pack: packView(ref, null, today) }, logged: true }
    const row = await this.batcher.submit({ ref: ref as PackRef & { cip13: string }, principal, pseudonym: this.pseudonymOf(principal.org), now })
    const pack = packView(ref, row.state ? { ...row, state_at: null, last_txn: null } : null, today)
    const outcome: PackResult = { ok: row.code === 'PACK_ACTIVE', code: row.code, pack }
    if (row.alert && row.code === 'ALREADY_INACTIVE') outcome.dispensedElsewhere = true
    return { outcome, logged: !row.alert }
  }

  private async run(batch: Item[]): Promise<Row[]> {
    const cols: unknown[][] = Array.from({ length: 10 }, () => new Array(batch.length))
    batch.forEach((it, n) => {
      cols[0]![n] = it.ref.cip13
      cols[1]![n] = it.ref.serial
      cols[2]![n] = it.ref.batch
      cols[3]![n] = it.ref.expiry
      cols[4]![n] = randomUUID()
      cols[5]![n] = it.principal.role
      cols[6]![n] = it.pseudonym
      cols[7]![n] = it.principal.org
      cols[8]![n] = it.now.toISOString()
      cols[9]![n] = parisDay(it.now)
    })
    const rows = await this.database.prepared<Row>('serial_verify_batch', VERIFY_BATCH_SQL, cols)
    const byItem: Row[] = new Array(batch.length)
    for (const row of rows) byItem[Number(row.ord) - 1] = row
    return byItem
  }
}

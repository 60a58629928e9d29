// Decommissions gathered into one statement per group: the statement, and the batcher that sends it.
import { type Blocking, blockingSql } from '../../dispensation/rule.ts'
import { Batcher } from '../../platform/db/batcher.ts'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { PackState } from '../db.ts'
import type { PackRow } from '../rules/packs.ts'
import { packAsReadSql } from './packs.ts'
import type { Scanner } from '../rules/pseudonyms.ts'

/**
 * Decommissions (supply, destroy, …: every change but undo) gathered into one statement per group (platform/db/
 * batcher.ts): the SQL below is queries/packs.ts CHANGE_SQL over arrays. Exactly once is kept as in CHANGE_SQL: each pack's UPDATE is
 * conditional on `state = 'active'`, which PostgreSQL re-checks on the row's latest version after waiting for a
 * concurrent writer, so of several statements naming the same pack only one changes it. Within one statement, a pack
 * named by several requests (pharmacies racing for one box) is updated once, from one of them: an UPDATE … FROM
 * changes a row at most once whatever the number of joined rows, and only that one's transaction and scan rows are
 * written (they come from the UPDATE's RETURNING). The others get no row, as a later statement would have given
 * them: a race on one pack is decided in one round trip instead of one statement per racer in turn (200 racers
 * took seconds). Items are sorted so that concurrent groups lock the packs they share in the same order; a
 * deadlock all the same is retried (the whole statement was rolled back, nothing was done).
 *
 * An item whose pack was not changed gets the pack as the statement found it, the row queries/packs.ts readPack
 * reads, for the caller's diagnosis (use-cases/pack-state.ts changePackState): a refusal costs no second round trip
 * (measured: the 199 losers of a race on one pack, and every alert-raising attempt of a storm, each sent one more).
 * A pack another item of the same statement changed is shown as that item left it (its state, transaction and
 * organisation), which is what a read after the statement would find. A pack a concurrent statement changed while
 * this one waited for it is shown as this statement's snapshot had it, still active: the caller tries again alone.
 * The packs not changed are read apart (n), as readPack reads one (packAsReadSql), so that a change costs no more
 * than before. No SQL comment in it: the
 * bench's pgbench script sends it on one line.
 */
const BLOCKING = blockingSql({ cip13: 'p.cip13', batch: 'p.batch', batchStatus: 'b.status', productStatus: '(select sp.status from serial_products sp where sp.cip13 = p.cip13)', expiry: 'b.expiry', today: 'i.today' })

export const CHANGE_BATCH_SQL = `
  with i as (
    select * from unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::date[], $7::boolean[], $8::text[], $9::text[], $10::text[], $11::text[], $12::uuid[], $13::timestamptz[], $14::date[])
      with ordinality as i(cip13, serial, target, id, batch, expiry, force, action, org, usr, role, scan_id, at, today, ord)
  ), u as (
    update packs p set state = i.target, state_at = i.at, last_txn = i.id
    from i, serial_batches b
    where p.cip13 = i.cip13 and p.serial = i.serial and p.state = 'active'
      and b.cip13 = p.cip13 and b.batch = p.batch
      and p.batch = i.batch and b.expiry = i.expiry
      and (i.force or ${BLOCKING} is null)
    returning i.ord, i.id, i.target, i.action, i.org, i.usr, i.role, i.scan_id, i.batch, i.expiry, i.at, p.cip13, p.serial, ${BLOCKING} as blocking
  ), t as (
    insert into pack_transactions (cip13, id, serial, action, from_state, to_state, org_pseudonym, user_pseudonym, role, undoes, at)
    select cip13, id, serial, action, 'active', target, org, usr, role, null, at from u
  ), s as (
    insert into serial_scans (cip13, id, at, serial, batch, expiry, action, code, role, pharmacy_pseudonym, transaction_id, alert_reference)
    select cip13, scan_id, at, serial, batch, expiry, action, 'STATE_CHANGED', role, org, id, null from u
  ), n as (
    select i.* from i where not exists (select 1 from u where u.ord = i.ord)
  )
  select ord, true as changed, blocking as changed_blocking, null::boolean as product_known, null::boolean as batch_known, null::text as state,
    null::text as batch, null::timestamptz as state_at, null::uuid as last_txn, null::date as expiry, null::text as blocking, null::text as last_org
  from u
  union all
  select n.ord, false, null, r.product_known, r.batch_known, coalesce(w.target, r.state), r.batch, coalesce(w.at, r.state_at),
    coalesce(w.id, r.last_txn), r.expiry, r.blocking, case when w.ord is not null then w.org else r.last_org end
  from n
  left join u w on w.cip13 = n.cip13 and w.serial = n.serial
  cross join lateral (${packAsReadSql({ cip13: 'n.cip13', serial: 'n.serial', batch: 'n.batch', today: 'n.today' })}) r`

export interface ChangeItem {
  scanner: Scanner
  cip13: string
  serial: string
  batch: string
  expiry: string
  target: PackState
  action: string
  /** The change may be made on a recalled, withdrawn or expired batch (destroy, stolen). */
  force: boolean
  /** The new transaction's id, and the scan-log row's. */
  id: string
  scanId: string
  now: Date
  today: string
}

/**
 * The change was made (`blocking`: what blocks the pack's batch as it stood, for the answer), or it was not, and
 * `pack` is the pack as the statement found it (see CHANGE_BATCH_SQL), for the diagnosis.
 */
export type ChangeDone = { changed: true; blocking: Blocking | null } | { changed: false; pack: PackRow | null }

interface Row extends PackRow {
  ord: number | string
  changed: boolean
  changed_blocking: Blocking | null
}

const DEADLOCK = '40P01'

export class ChangeBatcher {
  private readonly batcher: Batcher<ChangeItem, { done: ChangeDone }>

  constructor(
    private readonly database: DatabaseHandle,
    opts: { maxInFlight?: number; maxBatch?: number } = {},
  ) {
    const maxInFlight = database.kind === 'pglite' ? 1 : (opts.maxInFlight ?? 4)
    this.batcher = new Batcher((items) => this.run(items), { maxInFlight, maxBatch: opts.maxBatch ?? 100 })
  }

  async change(item: ChangeItem): Promise<ChangeDone> {
    return (await this.batcher.submit(item)).done
  }

  private async run(items: ChangeItem[]): Promise<Array<{ done: ChangeDone } | Error>> {
    const order = items.map((_, n) => n).sort((a, b) => compare(items[a]!, items[b]!))
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(items, order)
      } catch (err) {
        if ((err as { code?: string }).code === DEADLOCK && attempt < 3) continue
        // Anything else: each item alone, so that one bad item cannot fail the others.
        if (items.length > 1) return Promise.all(items.map((it) => this.once([it], [0]).then((r) => r[0]!, (e: unknown) => (e instanceof Error ? e : new Error(String(e))))))
        throw err
      }
    }
  }

  private async once(items: ChangeItem[], order: number[]): Promise<Array<{ done: ChangeDone }>> {
    const n = order.length
    const cols: unknown[][] = Array.from({ length: 14 }, () => new Array(n))
    order.forEach((k, j) => {
      const it = items[k]!
      cols[0]![j] = it.cip13
      cols[1]![j] = it.serial
      cols[2]![j] = it.target
      cols[3]![j] = it.id
      cols[4]![j] = it.batch
      cols[5]![j] = it.expiry
      cols[6]![j] = it.force
      cols[7]![j] = it.action
      cols[8]![j] = it.scanner.org
      cols[9]![j] = it.scanner.user
      cols[10]![j] = it.scanner.role
      cols[11]![j] = it.scanId
      cols[12]![j] = it.now.toISOString()
      cols[13]![j] = it.today
    })
    const rows = await this.database.prepared<Row>('serial_change_batch', CHANGE_BATCH_SQL, cols)
    const out: Array<{ done: ChangeDone }> = new Array(n)
    for (const { ord, changed, changed_blocking, ...pack } of rows) {
      out[order[Number(ord) - 1]!] = { done: changed ? { changed: true, blocking: changed_blocking } : { changed: false, pack } }
    }
    return out
  }
}

const compare = (a: ChangeItem, b: ChangeItem) => (a.cip13 < b.cip13 ? -1 : a.cip13 > b.cip13 ? 1 : a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0)

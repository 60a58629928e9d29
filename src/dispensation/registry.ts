import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import { type Selectable, sql } from 'kysely'
import type { DatabaseHandle } from '../platform/db/index.ts'
import { createNotifier, type Notifier } from '../platform/events/notifier.ts'
import type { BatchStatus } from '../serialization/db.ts'
import type { DispensationBlocksTable } from './db.ts'
import { CHANNEL_BLOCKS } from './queries.ts'
import type { Blocking } from './rule.ts'
import { normaliseBatch } from './rules/batch.ts'

// Every API instance holds in memory all the facts that can block a box (rule.ts): the batches blocked by
// DP-Rappels recalls, the lab's non-active batch and product statuses, and which products are under serialization
// (their DataMatrix must carry a serial). A few thousand rows at most: recalls and withdrawals are rare. The
// dispensation check answers from it without touching the database, and must never answer "clear" once the change
// that blocks a box has been acknowledged to its caller:
// - every change to these facts bumps one generation (in its transaction) and NOTIFYs; every instance reloads and
//   records the generation it has loaded;
// - a recall's broadcast announces its batches as 'pending' rows first and commits only once every instance
//   holding a valid lease has loaded them (recalls/use-cases/blocking.ts applyBlocks): the pharmacies get the
//   recall on their feed at that commit;
// - a lab's status change answers its caller only once every such instance has loaded it, or once LEASE_MS have
//   passed since its commit (awaitInstances, use-cases/facts.ts): by then an instance that has not loaded it no
//   longer trusts its copy;
// - an instance answers from memory only while its lease is valid by its own clock (minus a margin); when it cannot
//   renew it (database unreachable, listener lost, process paused) it asks the database on each call instead, and
//   when it renews it reloads first if it missed a generation.
// Lifting a block needs no wait: blocking a few milliseconds too long is harmless.

export const LEASE_MS = 5_000
const HEARTBEAT_MS = 1_000
/** Margin between the end of an instance's own view of its lease and the lease in the database. */
const SAFETY_MS = 1_500

/** A recall blocking a batch, as the dispensation check shows it (built once, when loaded). */
export interface ShownRecall {
  reference: string
  version: number
  lab: string
  message: string
  expiry: string | null
  since: string
}

export interface BlockEntry {
  recallId: string
  reference: string
  version: number
  labId: string
  expiry: string | null
  since: Date
  shown: { fr: ShownRecall; en: ShownRecall }
}

/** A lab's status of a batch or of a whole product, other than active. */
export interface LabStatus {
  scope: 'batch' | 'product'
  status: Blocking
  reason: string | null
  since: string
}

/** What is known of one (product, batch) at the counter. */
export interface BoxFacts {
  recalls: BlockEntry[]
  batch: LabStatus | null
  product: LabStatus | null
  /** The product is under serialization: its DataMatrix carries a serial. */
  serialized: boolean
}

interface BatchFacts {
  recalls: BlockEntry[]
  lab: LabStatus | null
}
interface ProductFacts {
  batches: Map<string, BatchFacts>
  status: LabStatus | null
  serialized: boolean
}

/** A blocked batch as the facts' statements read it (the table's columns but its state, which only active rows have). */
type RecallRow = Omit<Selectable<DispensationBlocksTable>, 'state'>
interface StatusRow {
  cip13: string
  batch: string | null
  status: BatchStatus
  reason: string | null
  since: Date
}

const RECALL_COLUMNS = 'cip13, batch, recall_id, reference, version, lab_id, expiry, message_fr, message_en, since'

function toEntry(r: RecallRow): BlockEntry {
  const shown = (message: string): ShownRecall => ({ reference: r.reference, version: r.version, lab: r.lab_id, message, expiry: r.expiry, since: r.since.toISOString() })
  return {
    recallId: r.recall_id,
    reference: r.reference,
    version: r.version,
    labId: r.lab_id,
    expiry: r.expiry,
    since: r.since,
    shown: { fr: shown(r.message_fr), en: shown(r.message_en ?? r.message_fr) },
  }
}
const toStatus = (scope: LabStatus['scope'], r: StatusRow): LabStatus => ({ scope, status: r.status as Blocking, reason: r.reason, since: r.since.toISOString() })

/** The facts, indexed product → normalised batch (two lookups per box: no key string to build). */
class FactSet {
  readonly products = new Map<string, ProductFacts>()

  private product(cip13: string): ProductFacts {
    let p = this.products.get(cip13)
    if (!p) this.products.set(cip13, (p = { batches: new Map(), status: null, serialized: false }))
    return p
  }
  private batch(cip13: string, batch: string): BatchFacts {
    const batches = this.product(cip13).batches
    const key = normaliseBatch(batch)
    let b = batches.get(key)
    if (!b) batches.set(key, (b = { recalls: [], lab: null }))
    return b
  }
  addRecall(r: RecallRow) {
    this.batch(r.cip13, r.batch).recalls.push(toEntry(r))
  }
  addBatchStatus(r: StatusRow) {
    this.batch(r.cip13, r.batch!).lab = toStatus('batch', r)
  }
  addProductStatus(r: StatusRow) {
    this.product(r.cip13).status = toStatus('product', r)
  }
  addSerialized(cip13: string) {
    this.product(cip13).serialized = true
  }

  lookup(cip13: string, batch: string): BoxFacts {
    const p = this.products.get(cip13)
    if (!p) return NOTHING
    const b = p.batches.get(normaliseBatch(batch))
    return b ? { recalls: b.recalls, batch: b.lab, product: p.status, serialized: p.serialized } : p.status || p.serialized ? { recalls: NO_RECALLS, batch: null, product: p.status, serialized: p.serialized } : NOTHING
  }
}
const NO_RECALLS: BlockEntry[] = []
const NOTHING: BoxFacts = Object.freeze({ recalls: NO_RECALLS, batch: null, product: null, serialized: false })

// The whole set (reload) and the facts of a few boxes (an instance that is not current), in one statement each:
// recall rows, the lab's non-active statuses, and the products under serialization: those whose lab has uploaded
// packs or set a status, and those the referential says are prescription-only (EU regulation 2016/161: medicines
// subject to prescription bear the unique identifier; the BDPM's prescription conditions "liste I", "liste II" and
// "stupéfiants" say so).
export const PRESCRIPTION_ONLY = ['liste I', 'liste II', 'stupéfiants'] as const
const RX = PRESCRIPTION_ONLY.map((c) => `'${c}'`).join(', ')
const ALL_FACTS_SQL = `
  select 'r' as kind, ${RECALL_COLUMNS}, null as status, null as reason from dispensation_blocks
  union all select 'b', cip13, batch, null, null, null, null, null, null, null, updated_at, status, status_reason from serial_batches where status <> 'active'
  union all select 'p', cip13, null, null, null, null, null, null, null, null, updated_at, status, status_reason from serial_products where status <> 'active'
  union all select 's', cip13, null, null, null, null, null, null, null, null, null, null, null from (
    select distinct cip13 from serial_batches union select cip13 from serial_products
    union select p.cip13 from presentations p where exists (select 1 from prescription_conditions c where c.cis = p.cis and c.condition in (${RX}))) s`

const SOME_FACTS_SQL = `
  with i as (select distinct * from unnest($1::text[], $2::text[]) as i(cip13, batch))
  select 'r' as kind, d.cip13, d.batch, d.recall_id, d.reference, d.version, d.lab_id, d.expiry, d.message_fr, d.message_en, d.since, null as status, null as reason
    from dispensation_blocks d join i on d.cip13 = i.cip13 and d.batch = i.batch
  union all select 'b', b.cip13, b.batch, null, null, null, null, null, null, null, b.updated_at, b.status, b.status_reason
    from serial_batches b join i on b.cip13 = i.cip13 and upper(b.batch) = i.batch where b.status <> 'active'
  union all select 'p', p.cip13, null, null, null, null, null, null, null, null, p.updated_at, p.status, p.status_reason
    from serial_products p where p.cip13 = any($1::text[]) and p.status <> 'active'
  union all select 's', c.cip13, null, null, null, null, null, null, null, null, null, null, null
    from (select distinct cip13 from i) c
    where exists (select 1 from serial_batches b where b.cip13 = c.cip13) or exists (select 1 from serial_products p where p.cip13 = c.cip13)
       or exists (select 1 from presentations p join prescription_conditions pc on pc.cis = p.cis where p.cip13 = c.cip13 and pc.condition in (${RX}))`

type FactRow = RecallRow & StatusRow & { kind: 'r' | 'b' | 'p' | 's' }

function factSet(rows: FactRow[]): FactSet {
  const set = new FactSet()
  for (const row of rows) {
    if (row.kind === 'r') set.addRecall(row)
    else if (row.kind === 'b') set.addBatchStatus(row)
    else if (row.kind === 'p') set.addProductStatus(row)
    else set.addSerialized(row.cip13)
  }
  return set
}

/** This instance's copy of the facts, kept current by notifications and a leased heartbeat. */
export class BlockRegistry {
  readonly id = randomUUID()
  private facts = new FactSet()
  private loaded = -1
  private loadedAt = 0
  /** performance.now() until which the in-memory set may be trusted; 0 = ask the database. */
  private freshUntil = 0
  private timer: NodeJS.Timeout | undefined
  private notifier: Notifier | undefined
  private reloading: Promise<void> | undefined
  private again = false
  private stopped = false

  constructor(
    private readonly database: DatabaseHandle,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Registers this instance, loads the set and keeps it current. Without start(), every check asks the database. */
  async start() {
    await this.database.db
      .insertInto('dispensation_block_instances')
      .values({ id: this.id, loaded_generation: -1, lease_until: sql<Date>`now()`, started_at: sql<Date>`now()` })
      .execute()
    this.notifier = createNotifier(this.database, this.log)
    await this.notifier.listen(CHANNEL_BLOCKS, () => void this.reload().catch((err) => this.log.warn({ err }, 'dispensation blocks: reload failed')))
    await this.reload()
    await this.heartbeat()
    this.timer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS)
    this.timer.unref()
  }

  async stop() {
    this.stopped = true
    this.freshUntil = 0
    if (this.timer) clearInterval(this.timer)
    await this.notifier?.close()
    // Leaving at once spares the next broadcast the wait for this lease.
    await this.database.db.deleteFrom('dispensation_block_instances').where('id', '=', this.id).execute().catch(() => {})
  }

  /** The generation of the facts in memory (-1 before the first load). */
  get generation() {
    return this.loaded
  }

  /** When the generation in memory was loaded (performance.now(), 0 before the first load). */
  get generationLoadedAt() {
    return this.loadedAt
  }

  /** The facts of each (cip13, batch), in the order given: from memory when fresh, else one query. */
  lookup(boxes: ReadonlyArray<{ cip13: string; batch: string }>): BoxFacts[] | Promise<BoxFacts[]> {
    if (performance.now() >= this.freshUntil) return lookupInDatabase(this.database, boxes)
    const found: BoxFacts[] = new Array(boxes.length)
    for (let i = 0; i < boxes.length; i++) found[i] = this.facts.lookup(boxes[i]!.cip13, boxes[i]!.batch)
    return found
  }

  /** Reloads the whole set (coalescing calls that arrive while a reload runs) and records the generation. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true
      return this.reloading
    }
    this.reloading = (async () => {
      do {
        this.again = false
        const { generation, rows } = await this.database.db
          .transaction()
          .setIsolationLevel('repeatable read')
          .execute(async (tx) => {
            const g = await tx.selectFrom('dispensation_block_generation').select('generation').where('id', '=', 1).executeTakeFirstOrThrow()
            const r = await sql.raw<FactRow>(ALL_FACTS_SQL).execute(tx)
            return { generation: Number(g.generation), rows: r.rows }
          })
        if (generation >= this.loaded) {
          this.facts = factSet(rows)
          if (generation > this.loaded) this.loadedAt = performance.now()
          this.loaded = generation
        }
        if (!this.stopped) {
          await this.database.db.updateTable('dispensation_block_instances').set({ loaded_generation: this.loaded }).where('id', '=', this.id).where('loaded_generation', '<', this.loaded).execute()
        }
      } while (this.again)
    })().finally(() => (this.reloading = undefined))
    return this.reloading
  }

  /**
   * Renews the lease. The generation row is read FOR SHARE in the same statement: a change bumping it holds that
   * row, so a renewal either commits before the change (and the change then waits for this instance, or for the end
   * of this lease) or sees the new generation (and this instance reloads before trusting its set).
   */
  private async heartbeat() {
    if (this.stopped) return
    const sentAt = performance.now()
    try {
      const rows = await this.database.prepared<{ generation: number }>(
        'dp_blocks_heartbeat',
        `with g as (select generation from dispensation_block_generation where id = 1 for share)
         update dispensation_block_instances set lease_until = now() + ($2::int * interval '1 millisecond')
         where id = $1 returning (select generation from g) as generation`,
        [this.id, LEASE_MS],
      )
      if (rows.length === 0) {
        // Removed as dead by someone else (a long pause): register again and reload before trusting anything.
        this.freshUntil = 0
        await this.database.db
          .insertInto('dispensation_block_instances')
          .values({ id: this.id, loaded_generation: -1, lease_until: sql<Date>`now() + (${LEASE_MS}::int * interval '1 millisecond')`, started_at: sql<Date>`now()` })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute()
        await this.reload()
        return
      }
      if (Number(rows[0]!.generation) > this.loaded) {
        this.freshUntil = 0
        await this.reload()
      }
      if (!this.stopped) this.freshUntil = sentAt + LEASE_MS - SAFETY_MS
      // Rows of instances gone for an hour are only noise.
      if (Math.random() < 0.01) await this.database.db.deleteFrom('dispensation_block_instances').where('lease_until', '<', sql<Date>`now() - interval '1 hour'`).execute()
    } catch (err) {
      this.log.warn({ err }, 'dispensation blocks: lease renewal failed; answering from the database')
    }
  }
}

async function lookupInDatabase(database: DatabaseHandle, boxes: ReadonlyArray<{ cip13: string; batch: string }>): Promise<BoxFacts[]> {
  if (boxes.length === 0) return []
  const rows = await database.prepared<FactRow>('dp_blocks_facts', SOME_FACTS_SQL, [boxes.map((b) => b.cip13), boxes.map((b) => normaliseBatch(b.batch))])
  const set = factSet(rows)
  return boxes.map((b) => set.lookup(b.cip13, b.batch))
}

declare module 'fastify' {
  interface FastifyInstance {
    /** This instance's facts; null when background work is off (every check asks the database). */
    blockRegistry: BlockRegistry | null
  }
}

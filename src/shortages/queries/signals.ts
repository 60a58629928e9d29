/**
 * The signals' SQL: a pharmacy's signals (every read filters on the pharmacy), the lapse, the lab's threshold
 * and settings, and the counts of the lab's map (never which pharmacy).
 */
import type { Insertable, Kysely, Selectable, Transaction } from 'kysely'
import { sql } from 'kysely'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { Alternative, ShortageDeclarationsTable, ShortageSignalsTable, SignalStatus } from '../db.ts'
import type { Db } from './rows.ts'

export type SignalRow = Selectable<ShortageSignalsTable> & { product_name: string }
/** What an answer shows of a signal. */
export type SignalView = Omit<SignalRow, 'pharmacy_id' | 'department' | 'region' | 'lab_id' | 'first_response_at'>

const signalQuery = (db: Db) =>
  db
    .selectFrom('shortage_signals as s')
    .innerJoin('presentations as p', 'p.cip13', 's.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .selectAll('s')
    .select('m.name as product_name')

/**
 * The duplicate path (every LGO retry takes it) in one prepared statement: the pharmacy's open signal on the
 * presentation with the product name, the presentation's current non-draft declaration and the automatic response
 * answerFor (use-cases/answers.ts) would give — the declaration's own, else the presentation's, from a subscribed
 * lab (the presentation's own only from the lab that exploits the product). Same answer as signalQuery + toSignal,
 * in one round trip planned once per connection instead of three planned on every call.
 */
const OPEN_SIGNAL_SQL = `
  with sig as (
    select s.*, m.name as product_name, m.lab_id as product_lab_id
    from shortage_signals s
    join presentations p on p.cip13 = s.cip13
    join medicines m on m.cis = p.cis
    where s.pharmacy_id = $1 and s.cip13 = $2 and s.status = 'open'
  ), dec as (
    select d.id, d.kind, d.status, d.version, d.estimated_end, d.end_unknown, d.actual_end, d.allocation_in_place, d.advice, d.lab_id
    from shortage_declaration_items i
    join shortage_declarations d on d.id = i.declaration_id
    where i.cip13 = $2 and i.active and d.status <> 'draft' and exists (select 1 from sig)
    limit 1
  ), resp as (
    select r.*, o.name as lab_name
    from shortage_automatic_responses r
    join organisations o on o.id = r.lab_id
    join lab_subscriptions ls on ls.lab_id = r.lab_id and ls.subscribed
    where exists (select 1 from sig)
      and (r.declaration_id = (select id from dec) or (r.cip13 = $2 and r.lab_id = (select product_lab_id from sig)))
    order by (r.declaration_id is null)
    limit 1
  )
  select sig.id, sig.cip13, sig.product_name, sig.status, sig.wholesaler, sig.last_supply_date, sig.unavailable_since, sig.created_at,
    sig.renewed_at, sig.lapses_at, sig.closed_at, sig.close_reason,
    dec.id as d_id, dec.kind as d_kind, dec.status as d_status, dec.version as d_version, dec.estimated_end as d_estimated_end,
    dec.end_unknown as d_end_unknown, dec.actual_end as d_actual_end, dec.allocation_in_place as d_allocation_in_place, dec.advice as d_advice,
    dec.lab_id as d_lab_id,
    resp.id as r_id, resp.lab_id as r_lab_id, resp.lab_name as r_lab_name, resp.cip13 as r_cip13, resp.declaration_id as r_declaration_id,
    resp.message as r_message, resp.expected_return as r_expected_return, resp.alternatives as r_alternatives,
    resp.emergency_contact as r_emergency_contact, resp.allocation_rules as r_allocation_rules, resp.updated_at as r_updated_at
  from sig left join dec on true left join resp on true`

export interface OpenSignalRow extends SignalView {
  d_id: string | null
  d_kind: ShortageDeclarationsTable['kind'] | null
  d_status: ShortageDeclarationsTable['status'] | null
  d_version: number | null
  d_estimated_end: string | null
  d_end_unknown: boolean | null
  d_actual_end: string | null
  d_allocation_in_place: boolean | null
  d_advice: string | null
  d_lab_id: string | null
  r_id: string | null
  r_lab_id: string | null
  r_lab_name: string | null
  r_cip13: string | null
  r_declaration_id: string | null
  r_message: string | null
  r_expected_return: string | null
  r_alternatives: Alternative[] | null
  r_emergency_contact: string | null
  r_allocation_rules: string | null
  r_updated_at: Date | null
}

/** The pharmacy's open signal on the presentation with the lab's answer, in one prepared statement. */
export async function openSignalWithAnswer(database: DatabaseHandle, pharmacyId: string, cip13: string): Promise<OpenSignalRow | undefined> {
  const [r] = await database.prepared<OpenSignalRow>('shortage_signal_open', OPEN_SIGNAL_SQL, [pharmacyId, cip13])
  return r
}

/** The pharmacy's open signal on the presentation (it must be there). */
export const openSignalOf = (db: Db, pharmacyId: string, cip13: string) =>
  signalQuery(db).where('s.pharmacy_id', '=', pharmacyId).where('s.cip13', '=', cip13).where('s.status', '=', 'open').executeTakeFirstOrThrow()

/** A signal just written in this transaction. */
export const signalById = (tx: Transaction<DB>, id: string) => signalQuery(tx).where('s.id', '=', id).executeTakeFirstOrThrow()

export const pharmacySignal = (db: Db, id: string, pharmacyId: string) => signalQuery(db).where('s.id', '=', id).where('s.pharmacy_id', '=', pharmacyId).executeTakeFirst()

/** One page (limit + 1 rows) of the pharmacy's signals, newest first, after a (created_at, id) position. */
export function signalPage(db: Db, pharmacyId: string, opts: { status: SignalStatus | undefined; after: { t: string; i: string } | null; limit: number }) {
  let q = signalQuery(db).where('s.pharmacy_id', '=', pharmacyId).orderBy('s.created_at', 'desc').orderBy('s.id', 'desc').limit(opts.limit + 1)
  if (opts.status) q = q.where('s.status', '=', opts.status)
  const after = opts.after
  if (after) q = q.where((eb) => eb(eb.refTuple('s.created_at', 's.id'), '<', eb.tuple(new Date(after.t) as any, after.i)))
  return q.execute()
}

/** The medicine's name and the lab that exploits it. */
export const productOf = (db: Db, cip13: string) =>
  db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select(['m.name', 'm.lab_id']).where('p.cip13', '=', cip13).executeTakeFirst()

export const locationOf = (tx: Transaction<DB>, orgId: string) => tx.selectFrom('organisations').select(['department', 'region']).where('id', '=', orgId).executeTakeFirstOrThrow()

/** Inserts an open signal; undefined when the pharmacy already has one open on the presentation. */
export function insertOpenSignal(tx: Transaction<DB>, values: Insertable<ShortageSignalsTable>) {
  return tx
    .insertInto('shortage_signals')
    .values(values)
    .onConflict((oc) => oc.columns(['pharmacy_id', 'cip13']).where('status', '=', 'open').doNothing())
    .returning('id')
    .executeTakeFirst()
}

export async function markFirstResponse(tx: Transaction<DB>, id: string, now: Date) {
  await tx.updateTable('shortage_signals').set({ first_response_at: now }).where('id', '=', id).execute()
}

/** The open signals on these presentations. */
export const openSignalsOn = (tx: Transaction<DB>, cip13s: string[]) =>
  tx.selectFrom('shortage_signals').select(['id', 'pharmacy_id']).where('cip13', 'in', cip13s).where('status', '=', 'open').execute()

/** The open signals on these presentations, with the presentation of each. */
export const openSignalsWithPresentation = (tx: Transaction<DB>, cip13s: string[]) =>
  tx.selectFrom('shortage_signals').select(['id', 'pharmacy_id', 'cip13']).where('cip13', 'in', cip13s).where('status', '=', 'open').execute()

/** These signals got their first answer now (those already answered keep their time). */
export async function markFirstResponses(tx: Transaction<DB>, ids: string[], now: Date) {
  await tx.updateTable('shortage_signals').set({ first_response_at: now }).where('id', 'in', ids).where('first_response_at', 'is', null).execute()
}

/** The pharmacy's signal, locked for the transaction. */
export const lockPharmacySignal = (tx: Transaction<DB>, id: string, pharmacyId: string) =>
  tx.selectFrom('shortage_signals').select(['status']).where('id', '=', id).where('pharmacy_id', '=', pharmacyId).forUpdate().executeTakeFirst()

export async function closeSignal(tx: Transaction<DB>, id: string, reason: string, now: Date) {
  await tx.updateTable('shortage_signals').set({ status: 'closed', closed_at: now, close_reason: reason }).where('id', '=', id).execute()
}

export async function renewSignal(tx: Transaction<DB>, id: string, now: Date, lapsesAt: Date) {
  await tx.updateTable('shortage_signals').set({ renewed_at: now, lapses_at: lapsesAt }).where('id', '=', id).execute()
}

/** Any signal, locked, for the lapse job. */
export const lockSignal = (tx: Transaction<DB>, id: string) =>
  tx.selectFrom('shortage_signals').select(['status', 'lapses_at', 'pharmacy_id', 'cip13']).where('id', '=', id).forUpdate().executeTakeFirst()

export async function lapse(tx: Transaction<DB>, id: string, now: Date) {
  await tx.updateTable('shortage_signals').set({ status: 'lapsed', closed_at: now, close_reason: 'lapsed' }).where('id', '=', id).execute()
}

/** The lab's signal threshold, when it is subscribed. */
export const subscribedThreshold = (tx: Transaction<DB>, labId: string) =>
  tx
    .selectFrom('shortage_lab_settings as s')
    .innerJoin('lab_subscriptions as l', (j) => j.onRef('l.lab_id', '=', 's.lab_id').on('l.subscribed', '=', true))
    .select('s.signal_threshold')
    .where('s.lab_id', '=', labId)
    .executeTakeFirst()

export const openSignalCount = (tx: Transaction<DB>, cip13: string) =>
  tx.selectFrom('shortage_signals').select((eb) => eb.fn.countAll<number>().as('n')).where('cip13', '=', cip13).where('status', '=', 'open').executeTakeFirstOrThrow()

// ---- the lab's view ----------------------------------------------------------------------------------------

/** The presentation, when it is the lab's. */
export const ownPresentation = (db: Db, cip13: string, labId: string) =>
  db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select('p.cip13').where('p.cip13', '=', cip13).where('m.lab_id', '=', labId).executeTakeFirst()

/**
 * The map's counts, run side by side: open signals by presentation and by department, and signals made per
 * Paris day in [since, until). The lab's presentations as the referential says now (a product that moved to
 * another lab moves with its signals).
 */
export function signalMapCounts(db: Kysely<DB>, labId: string, cip13: string | undefined, since: Date, until: Date) {
  const base = () => {
    let q = db
      .selectFrom('shortage_signals as s')
      .innerJoin('presentations as p', 'p.cip13', 's.cip13')
      .innerJoin('medicines as m', 'm.cis', 'p.cis')
      .where('m.lab_id', '=', labId)
    if (cip13) q = q.where('s.cip13', '=', cip13)
    return q
  }
  const open = () => base().where('s.status', '=', 'open')
  return Promise.all([
    open().select((eb) => ['s.cip13', 'm.name', eb.fn.countAll<number>().as('n')]).groupBy(['s.cip13', 'm.name']).orderBy('s.cip13').execute(),
    open().select((eb) => ['s.department', 's.region', eb.fn.countAll<number>().as('n')]).groupBy(['s.department', 's.region']).orderBy('s.department').execute(),
    base()
      .select((eb) => [sql<string>`to_char(s.created_at at time zone 'Europe/Paris', 'YYYY-MM-DD')`.as('day'), eb.fn.countAll<number>().as('n')])
      .where('s.created_at', '>=', since)
      .where('s.created_at', '<', until)
      .groupBy(sql`1`)
      .orderBy(sql`1`)
      .execute(),
  ])
}

export const labSettings = (db: Db, labId: string) => db.selectFrom('shortage_lab_settings').select('signal_threshold').where('lab_id', '=', labId).executeTakeFirst()

export async function upsertThreshold(tx: Transaction<DB>, labId: string, threshold: number | null, now: Date) {
  await tx
    .insertInto('shortage_lab_settings')
    .values({ lab_id: labId, signal_threshold: threshold, updated_at: now })
    .onConflict((oc) => oc.column('lab_id').doUpdateSet({ signal_threshold: threshold, updated_at: now }))
    .execute()
}

/**
 * The emergency service's SQL. Functions take a Kysely or a Transaction first; those reading openings or
 * requests for a caller carry the tenancy filter (the lab's, the pharmacy's) inside the query.
 */
import type { Insertable, Kysely, Selectable, Transaction, Updateable } from 'kysely'
import { sql } from 'kysely'
import type { Principal } from '../platform/auth.ts'
import { LOCKS } from '../platform/db/locks.ts'
import type { DB } from '../platform/db/schema.ts'
import type { DeclarationStatus } from '../shortages/db.ts'
import type { EmergencyOpeningsTable, EmergencyRequestStepsTable, EmergencyRequestsTable, EmergencyStatus } from './db.ts'

export type Db = Kysely<DB> | Transaction<DB>

// ---- presentations and organisations -------------------------------------------------------------------

/** The presentation's lab and its MITM and niche flags; undefined for an unknown presentation. */
export function productOf(db: Db, cip13: string) {
  return db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select(['m.lab_id', 'm.mitm', 'm.niche']).where('p.cip13', '=', cip13).executeTakeFirst()
}

/** A shortage declaration that makes the presentation eligible: active item, one of `statuses`, not a return to availability. */
export function activeDeclaration(db: Db, cip13: string, statuses: readonly DeclarationStatus[]) {
  return db
    .selectFrom('shortage_declaration_items as i')
    .innerJoin('shortage_declarations as d', 'd.id', 'i.declaration_id')
    .select(['d.id', 'd.kind', 'd.status', 'd.version'])
    .where('i.cip13', '=', cip13)
    .where('i.active', '=', true)
    .where('d.status', 'in', [...statuses])
    .where('d.kind', '<>', 'availability_return')
    .executeTakeFirst()
}

export function organisationRole(db: Db, id: string) {
  return db.selectFrom('organisations').select('role').where('id', '=', id).executeTakeFirst()
}

export function pharmacyAddress(db: Db, id: string) {
  return db.selectFrom('organisations').select(['name', 'city', 'department']).where('id', '=', id).executeTakeFirstOrThrow()
}

export function labOf(db: Db, id: string) {
  return db.selectFrom('organisations').select(['id', 'name']).where('id', '=', id).where('role', '=', 'lab').executeTakeFirst()
}

// ---- openings ----------------------------------------------------------------------------------------------

export function openingQuery(db: Db) {
  return db
    .selectFrom('emergency_openings as o')
    .innerJoin('presentations as p', 'p.cip13', 'o.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .innerJoin('organisations as l', 'l.id', 'o.lab_id')
    .selectAll('o')
    .select(['m.name as product_name', 'l.name as lab_name'])
}
export type OpeningRow = Selectable<EmergencyOpeningsTable> & { product_name: string; lab_name: string }

export const openingOf = (db: Db, cip13: string) => openingQuery(db).where('o.cip13', '=', cip13).executeTakeFirstOrThrow()

/** The presentation's opening row, whatever lab holds it, locked for the transaction. */
export const lockOpening = (tx: Transaction<DB>, cip13: string) => tx.selectFrom('emergency_openings').selectAll().where('cip13', '=', cip13).forUpdate().executeTakeFirst()

/** The lab's own opening of the presentation, locked for the transaction. */
export const lockLabOpening = (tx: Transaction<DB>, cip13: string, labId: string) =>
  tx.selectFrom('emergency_openings').selectAll().where('cip13', '=', cip13).where('lab_id', '=', labId).forUpdate().executeTakeFirst()

/** The lab's open opening, FOR SHARE: a concurrent close or change of it waits for the caller to commit, or the other way round. */
export const sharedOpenOpening = (tx: Transaction<DB>, cip13: string, labId: string) =>
  tx.selectFrom('emergency_openings').selectAll().where('cip13', '=', cip13).where('lab_id', '=', labId).where('open', '=', true).forShare().executeTakeFirst()

export async function insertOpening(tx: Transaction<DB>, values: Insertable<EmergencyOpeningsTable>) {
  await tx.insertInto('emergency_openings').values(values).execute()
}

export async function updateOpening(tx: Transaction<DB>, cip13: string, values: Updateable<EmergencyOpeningsTable>) {
  await tx.updateTable('emergency_openings').set(values).where('cip13', '=', cip13).execute()
}

/**
 * One page of openings by CIP13. A lab sees its own, open and closed (`open` filters); anyone else sees those
 * open now, from subscribed labs that exploit the presentation.
 */
export function listOpenings(db: Db, viewer: Principal, f: { cip13: string | undefined; open: boolean | undefined; afterCip13: string | undefined; limit: number }) {
  let q = openingQuery(db).orderBy('o.cip13').limit(f.limit + 1)
  if (viewer.role === 'lab') {
    q = q.where('o.lab_id', '=', viewer.org)
    if (f.open !== undefined) q = q.where('o.open', '=', f.open)
  } else {
    q = q
      .where('o.open', '=', true)
      .whereRef('o.lab_id', '=', 'm.lab_id')
      .where((eb) => eb.exists(eb.selectFrom('lab_subscriptions as s').select('s.lab_id').whereRef('s.lab_id', '=', 'o.lab_id').where('s.subscribed', '=', true)))
  }
  if (f.cip13) q = q.where('o.cip13', '=', f.cip13)
  if (f.afterCip13 !== undefined) q = q.where('o.cip13', '>', f.afterCip13)
  return q.execute()
}

// ---- requests ----------------------------------------------------------------------------------------------

export function requestQuery(db: Db) {
  return db
    .selectFrom('emergency_requests as r')
    .innerJoin('presentations as p', 'p.cip13', 'r.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .innerJoin('organisations as l', 'l.id', 'r.lab_id')
    .innerJoin('organisations as ph', 'ph.id', 'r.pharmacy_id')
    .leftJoin('emergency_openings as o', 'o.cip13', 'r.cip13')
    .selectAll('r')
    .select(['m.name as product_name', 'l.name as lab_name', 'ph.name as pharmacy_name', 'o.contact as contact'])
}
export type RequestRow = Selectable<EmergencyRequestsTable> & { product_name: string; lab_name: string; pharmacy_name: string; contact: unknown }

/** Tenancy: a pharmacy sees its own requests, a lab those addressed to it, the operator all. */
export function scoped<Q extends { where: (...args: any[]) => Q }>(q: Q, principal: Principal): Q {
  if (principal.role === 'pharmacy') return q.where('r.pharmacy_id', '=', principal.org)
  if (principal.role === 'lab') return q.where('r.lab_id', '=', principal.org)
  if (principal.role === 'ordre') return q
  return q.where('r.id', 'is', null)
}

/** A request with its names, unscoped: for the caller that just wrote it. */
export const requestOf = (db: Db, id: string) => requestQuery(db).where('r.id', '=', id).executeTakeFirstOrThrow()

/** A request the caller may read; undefined for anyone else's. */
export const visibleRequest = (db: Db, viewer: Principal, id: string) => scoped(requestQuery(db), viewer).where('r.id', '=', id).executeTakeFirst()

export interface RequestFilter {
  status: EmergencyStatus | undefined
  cip13: string | undefined
  escalated: boolean | undefined
  /** Operator only (ignored for others). */
  labId: string | undefined
  pharmacyId: string | undefined
}

/** One page of the requests the caller may read, most recent first, after the cursor position if any. */
export function listRequests(db: Db, viewer: Principal, f: RequestFilter, after: { t: Date; id: string } | undefined, limit: number) {
  let q = scoped(requestQuery(db), viewer).orderBy('r.submitted_at', 'desc').orderBy('r.id', 'desc').limit(limit + 1)
  if (f.status) q = q.where('r.status', '=', f.status)
  if (f.cip13) q = q.where('r.cip13', '=', f.cip13)
  if (f.escalated !== undefined) q = q.where('r.escalated_at', f.escalated ? 'is not' : 'is', null)
  if (viewer.role === 'ordre' && f.labId) q = q.where('r.lab_id', '=', f.labId)
  if (viewer.role === 'ordre' && f.pharmacyId) q = q.where('r.pharmacy_id', '=', f.pharmacyId)
  if (after) {
    const { t, id } = after
    q = q.where((eb) => eb.or([eb('r.submitted_at', '<', t), eb.and([eb('r.submitted_at', '=', t), eb('r.id', '<', id)])]))
  }
  return q.execute()
}

/**
 * Serialises submissions of one pharmacy for one presentation until the transaction ends: the second of two
 * concurrent ones waits, then sees the first.
 */
export async function lockPendingPair(tx: Transaction<DB>, pharmacyId: string, cip13: string) {
  await sql`select pg_advisory_xact_lock(${LOCKS.emergencyPending}::int, hashtext(${`${pharmacyId}:${cip13}`}))`.execute(tx)
}

/** The pharmacy's oldest request for the presentation still awaiting the lab's answer. */
export const pendingRequest = (db: Db, pharmacyId: string, cip13: string) =>
  requestQuery(db).where('r.pharmacy_id', '=', pharmacyId).where('r.cip13', '=', cip13).where('r.status', '=', 'submitted').orderBy('r.submitted_at').executeTakeFirst()

export async function insertRequest(tx: Transaction<DB>, values: Insertable<EmergencyRequestsTable>) {
  await tx.insertInto('emergency_requests').values(values).execute()
}

/** The caller's request (the lab's it was sent to, or the pharmacy's that sent it), locked; undefined for anyone else's. */
export function lockOwnRequest(tx: Transaction<DB>, id: string, owner: Principal) {
  const column = owner.role === 'lab' ? 'lab_id' : 'pharmacy_id'
  return tx.selectFrom('emergency_requests').selectAll().where('id', '=', id).where(column, '=', owner.org).forUpdate().executeTakeFirst()
}

/** Any request, locked: for the scheduled escalation. */
export const lockRequest = (tx: Transaction<DB>, id: string) => tx.selectFrom('emergency_requests').selectAll().where('id', '=', id).forUpdate().executeTakeFirst()

export async function updateRequest(tx: Transaction<DB>, id: string, values: Updateable<EmergencyRequestsTable>) {
  await tx.updateTable('emergency_requests').set(values).where('id', '=', id).execute()
}

export const stepsOf = (db: Db, requestId: string) => db.selectFrom('emergency_request_steps').selectAll().where('request_id', '=', requestId).orderBy('seq').execute()

export async function insertStep(tx: Transaction<DB>, values: Insertable<EmergencyRequestStepsTable>) {
  await tx.insertInto('emergency_request_steps').values(values).execute()
}

// ---- figures -----------------------------------------------------------------------------------------------

/** Per lab (one lab's with `labId`), counts and median time to answer of the requests submitted in [start, end). */
export function figuresByLab(db: Db, labId: string | undefined, start: Date, end: Date) {
  return db
    .selectFrom('emergency_requests as r')
    .innerJoin('organisations as l', 'l.id', 'r.lab_id')
    .select([
      'r.lab_id',
      'l.name as lab_name',
      sql<string>`count(*)`.as('received'),
      sql<string>`count(r.answered_at)`.as('answered'),
      sql<string>`count(*) filter (where r.answer->>'decision' = 'accepted')`.as('accepted'),
      sql<string>`count(*) filter (where r.answer->>'decision' = 'partially_accepted')`.as('partially_accepted'),
      sql<string>`count(*) filter (where r.answer->>'decision' = 'redirected')`.as('redirected'),
      sql<string>`count(*) filter (where r.answer->>'decision' = 'refused')`.as('refused'),
      sql<string>`count(*) filter (where r.status = 'cancelled' and r.answered_at is null)`.as('cancelled'),
      sql<string>`count(r.escalated_at)`.as('escalated'),
      sql<number | string | null>`percentile_cont(0.5) within group (order by extract(epoch from (r.answered_at - r.submitted_at)))`.as('median_s'),
    ])
    .$if(labId !== undefined, (qb) => qb.where('r.lab_id', '=', labId!))
    .where('r.submitted_at', '>=', start)
    .where('r.submitted_at', '<', end)
    .groupBy(['r.lab_id', 'l.name'])
    .execute()
}
export type LabFigures = Awaited<ReturnType<typeof figuresByLab>>[number]

/** The median time to answer over every request submitted in [start, end), all labs together. */
export function nationalMedian(db: Db, start: Date, end: Date) {
  return db
    .selectFrom('emergency_requests')
    .select(sql<number | string | null>`percentile_cont(0.5) within group (order by extract(epoch from (answered_at - submitted_at)))`.as('median_s'))
    .where('submitted_at', '>=', start)
    .where('submitted_at', '<', end)
    .executeTakeFirstOrThrow()
}

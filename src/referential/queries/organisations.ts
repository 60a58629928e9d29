/**
 * The organisations' SQL: organisations and lab subscriptions. Functions take a Kysely or a Transaction; the
 * use cases decide who may read what.
 */
import type { Insertable, Kysely, Transaction, Updateable } from 'kysely'
import type { DB, Organisation, OrganisationsTable, Role } from '../../platform/db/schema.ts'

type Db = Kysely<DB> | Transaction<DB>

/** Escapes LIKE's wildcards in text a caller searches for. */
import { escapeLike } from '../../platform/db/like.ts'

/** An organisation with its lab subscription (null columns for others). */
export type OrgRow = Organisation & { subscribed: boolean | null; since: Date | null }

function selectOrganisations(db: Db) {
  return db
    .selectFrom('organisations as o')
    .leftJoin('lab_subscriptions as s', 's.lab_id', 'o.id')
    .selectAll('o')
    .select(['s.subscribed', 's.since'])
}

export function organisationRow(db: Db, id: string): Promise<OrgRow | undefined> {
  return selectOrganisations(db).where('o.id', '=', id).executeTakeFirst()
}

export interface OrganisationFilter {
  role?: Role
  department?: string
  region?: string
  /** Part of the name, or the exact identifier. */
  q?: string
}

/** One page by identifier, with one row more than `limit` when another page follows. */
export function listOrganisations(db: Db, filter: OrganisationFilter, after: { id: string } | null, limit: number): Promise<OrgRow[]> {
  const { role, department, region, q } = filter
  let query = selectOrganisations(db).orderBy('o.id').limit(limit + 1)
  if (role) query = query.where('o.role', '=', role)
  if (department) query = query.where('o.department', '=', department)
  if (region) query = query.where('o.region', '=', region)
  if (q) query = query.where((eb) => eb.or([eb('o.name', 'ilike', `%${escapeLike(q)}%`), eb('o.id', '=', q)]))
  if (after) query = query.where('o.id', '>', after.id)
  return query.execute()
}

export async function organisationExists(db: Db, id: string) {
  return (await db.selectFrom('organisations').select('id').where('id', '=', id).executeTakeFirst()) !== undefined
}

export async function organisationRole(db: Db, id: string): Promise<Role | undefined> {
  return (await db.selectFrom('organisations').select('role').where('id', '=', id).executeTakeFirst())?.role
}

/** Inserts unless the identifier is taken: false when it is. */
export async function insertOrganisation(tx: Transaction<DB>, values: Insertable<OrganisationsTable>) {
  const inserted = await tx.insertInto('organisations').values(values).onConflict((oc) => oc.column('id').doNothing()).returning('id').executeTakeFirst()
  return inserted !== undefined
}

export function lockOrganisation(tx: Transaction<DB>, id: string) {
  return tx.selectFrom('organisations').selectAll().where('id', '=', id).forUpdate().executeTakeFirst()
}

export async function updateOrganisation(tx: Transaction<DB>, id: string, set: Updateable<OrganisationsTable>) {
  await tx.updateTable('organisations').set({ ...set, updated_at: new Date() }).where('id', '=', id).execute()
}

/** Whether a lab has signed the agreement: DP-Ruptures features check it. */
export async function isSubscribed(db: Db, labId: string) {
  const row = await db.selectFrom('lab_subscriptions').select('subscribed').where('lab_id', '=', labId).executeTakeFirst()
  return row?.subscribed === true
}

export function lockSubscription(tx: Transaction<DB>, labId: string) {
  return tx.selectFrom('lab_subscriptions').selectAll().where('lab_id', '=', labId).forUpdate().executeTakeFirst()
}

export async function upsertSubscription(tx: Transaction<DB>, labId: string, subscribed: boolean, since: Date) {
  await tx
    .insertInto('lab_subscriptions')
    .values({ lab_id: labId, subscribed, since, updated_at: new Date() })
    .onConflict((oc) => oc.column('lab_id').doUpdateSet({ subscribed, since, updated_at: new Date() }))
    .execute()
}

import type { RoutePlugin } from '../platform/types.ts'
import type { Kysely, Transaction } from 'kysely'
import { Type, type Static } from 'typebox'
import { actorOf, audit, auditHistory, diff } from '../platform/audit.ts'
import { principalOf } from '../platform/auth.ts'
import { type DB, ROLES, type Organisation, type Role } from '../platform/db/schema.ts'
import { AppError, conflict, notFound } from '../platform/errors.ts'
import { departmentOfFiness, finessProblem, regionOfDepartment, REGIONS, rppsProblem, sirenProblem } from '../platform/identifiers.ts'
import { IdempotencyKeyHeader, problems } from '../platform/openapi.ts'
import { component, HistoryEntry, PageQuery, Page } from '../platform/schemas.ts'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'

const RoleSchema = Type.Enum([...ROLES], { description: 'Role of the organisation.' })

const AddressSchema = Type.Object(
  {
    line1: Type.String({ minLength: 1, maxLength: 120, description: 'Number and street (or PO box).', examples: ['12 rue de Bretagne'] }),
    line2: Type.Optional(Type.Union([Type.String({ maxLength: 120 }), Type.Null()], { description: 'Building, department, place called…' })),
    postalCode: Type.String({ pattern: '^[0-9]{5}$', 'x-message': { fr: 'code postal à 5 chiffres attendu', en: 'a 5-digit postal code is expected' }, examples: ['75003'] }),
  },
  { additionalProperties: false, description: 'French postal address; the city is the organisation’s `city`.' },
)

/** The columns of an address given in a request (null clears it). */
function addressColumns(a: { line1: string; line2?: string | null; postalCode: string } | null) {
  return a ? { address_line1: a.line1, address_line2: a.line2?.trim() ? a.line2 : null, postal_code: a.postalCode } : { address_line1: null, address_line2: null, postal_code: null }
}

export const OrganisationSchema = component(
  Type.Object(
    {
      id: Type.String({ description: 'FINESS (pharmacy, hospital, wholesaler), SIREN (lab), RPPS (prescriber) or fixed code (ANSM, ORDRE, MINISTERE).' }),
      role: RoleSchema,
      name: Type.String(),
      department: Type.Union([Type.String(), Type.Null()]),
      region: Type.Union([Type.String(), Type.Null()], { description: 'INSEE region code.' }),
      regionName: Type.Union([Type.String(), Type.Null()]),
      city: Type.Union([Type.String(), Type.Null()]),
      email: Type.Union([Type.String(), Type.Null()]),
      phone: Type.Union([Type.String(), Type.Null()]),
      fax: Type.Union([Type.String(), Type.Null()]),
      address: Type.Union([AddressSchema, Type.Null()], { description: 'Postal address (with `city`): where a paper letter goes when a fax fails. Null when not known.' }),
      active: Type.Boolean(),
      subscription: Type.Union([Type.Object({ subscribed: Type.Boolean(), since: Type.String({ format: 'date-time' }) }), Type.Null()], {
        description: 'Labs only: whether the lab signed the access agreement (needed for DP-Ruptures), and since when.',
      }),
      createdAt: Type.String({ format: 'date-time' }),
      updatedAt: Type.String({ format: 'date-time' }),
    },
    {
      $id: 'Organisation',
      examples: [
        {
          id: '750100010', role: 'pharmacy', name: 'Pharmacie du Marais', department: '75', region: '11', regionName: 'Île-de-France', city: 'Paris',
          email: 'marais@pharmacie.example', phone: null, fax: null, address: { line1: '12 rue de Bretagne', line2: null, postalCode: '75003' }, active: true, subscription: null,
          createdAt: '2026-11-22T08:00:00.000Z', updatedAt: '2026-11-22T08:00:00.000Z',
        },
      ],
    },
  ),
)

const Contact = {
  city: Type.Optional(Type.Union([Type.String({ maxLength: 120 }), Type.Null()])),
  email: Type.Optional(Type.Union([Type.String({ format: 'email', maxLength: 200 }), Type.Null()])),
  phone: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Null()])),
  fax: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Null()])),
  address: Type.Optional(Type.Union([AddressSchema, Type.Null()])),
}

export const OrganisationCreate = component(
  Type.Object(
    {
      id: Type.String({ minLength: 2, maxLength: 20, description: 'FINESS, SIREN or RPPS, checked against the role.' }),
      role: RoleSchema,
      name: Type.String({ minLength: 1, maxLength: 200 }),
      department: Type.Optional(Type.String({ pattern: '^(\\d{2}|2A|2B|97\\d)$', description: 'Deduced from the FINESS; required for labs and prescribers only if known.' })),
      ...Contact,
    },
    { $id: 'OrganisationInput', additionalProperties: false, examples: [{ id: '330100090', role: 'pharmacy', name: 'Pharmacie des Chartrons', city: 'Bordeaux' }] },
  ),
)

export const OrganisationPatch = component(
  Type.Object(
    { name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), active: Type.Optional(Type.Boolean()), ...Contact },
    { $id: 'OrganisationPatch', additionalProperties: false, minProperties: 1, examples: [{ active: false }] },
  ),
)

export const SubscriptionPut = component(
  Type.Object(
    {
      subscribed: Type.Boolean(),
      since: Type.Optional(Type.String({ format: 'date-time', description: 'Defaults to now.' })),
    },
    { $id: 'LabSubscriptionInput', additionalProperties: false, examples: [{ subscribed: true, since: '2026-01-01T00:00:00Z' }] },
  ),
)

/** The identifier each role carries, checked on creation. */
export function identifierProblem(role: Role, id: string) {
  switch (role) {
    case 'pharmacy':
    case 'hospital':
    case 'wholesaler':
      return finessProblem(id)
    case 'lab':
      return sirenProblem(id)
    case 'prescriber':
      return rppsProblem(id)
    default:
      return /^[A-Z][A-Z0-9_-]{1,19}$/.test(id) ? null : { fr: 'code fixe en majuscules (ex. ANSM)', en: 'fixed upper-case code (e.g. ANSM)' }
  }
}

type OrgRow = Organisation & { subscribed: boolean | null; since: Date | null }

function selectOrganisations(db: Kysely<DB> | Transaction<DB>) {
  return db
    .selectFrom('organisations as o')
    .leftJoin('lab_subscriptions as s', 's.lab_id', 'o.id')
    .selectAll('o')
    .select(['s.subscribed', 's.since'])
}

function toApi(r: OrgRow): Static<typeof OrganisationSchema> {
  return {
    id: r.id,
    role: r.role,
    name: r.name,
    department: r.department,
    region: r.region,
    regionName: r.region ? (REGIONS[r.region] ?? null) : null,
    city: r.city,
    email: r.email,
    phone: r.phone,
    fax: r.fax,
    address: r.address_line1 && r.postal_code ? { line1: r.address_line1, line2: r.address_line2, postalCode: r.postal_code } : null,
    active: r.active,
    subscription: r.role === 'lab' ? { subscribed: r.subscribed ?? false, since: (r.since ?? r.created_at).toISOString() } : null,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  }
}

export async function getOrganisation(db: Kysely<DB> | Transaction<DB>, id: string) {
  const row = await selectOrganisations(db).where('o.id', '=', id).executeTakeFirst()
  return row ? toApi(row) : null
}

/** Whether a lab has signed the agreement: DP-Ruptures features check it. */
export async function isSubscribed(db: Kysely<DB> | Transaction<DB>, labId: string) {
  const row = await db.selectFrom('lab_subscriptions').select('subscribed').where('lab_id', '=', labId).executeTakeFirst()
  return row?.subscribed === true
}

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 20 }) })
const orgNotFound = () => notFound('L’organisation', 'The organisation')

const OrganisationPage = Page(OrganisationSchema, 'OrganisationPage')

const organisationRoutes: RoutePlugin = async (app) => {

  app.get(
    '/organisations/me',
    {
      config: { roles: ROLES },
      schema: { tags: ['referential'], operationId: 'getMyOrganisation', summary: 'The caller’s organisation', response: { 200: OrganisationSchema, ...problems(404) } },
    },
    async (request) => {
      const org = await getOrganisation(app.db, principalOf(request).org)
      if (!org) throw orgNotFound()
      return org
    },
  )

  app.get(
    '/organisations',
    {
      config: { roles: ['ordre', 'ansm'] },
      schema: {
        tags: ['referential'],
        operationId: 'listOrganisations',
        summary: 'List organisations (operator, ANSM)',
        querystring: Type.Object(
          {
            role: Type.Optional(RoleSchema),
            department: Type.Optional(Type.String({ pattern: '^(\\d{2}|2A|2B|97\\d)$' })),
            region: Type.Optional(Type.String({ pattern: '^\\d{2}$' })),
            q: Type.Optional(Type.String({ minLength: 2, maxLength: 100, description: 'Part of the name or the identifier.' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: OrganisationPage },
      },
    },
    async (request) => {
      const { role, department, region, q, limit = 50, cursor } = request.query
      const filter = { role, department, region, q }
      const after = cursor ? decodeCursor<{ id: string }>(cursor, filter) : null
      let query = selectOrganisations(app.db).orderBy('o.id').limit(limit + 1)
      if (role) query = query.where('o.role', '=', role)
      if (department) query = query.where('o.department', '=', department)
      if (region) query = query.where('o.region', '=', region)
      if (q) query = query.where((eb) => eb.or([eb('o.name', 'ilike', `%${escapeLike(q)}%`), eb('o.id', '=', q)]))
      if (after) query = query.where('o.id', '>', after.id)
      const rows = await query.execute()
      const page = rows.slice(0, limit)
      return { items: page.map(toApi), nextCursor: rows.length > limit ? encodeCursor({ id: page[page.length - 1]!.id }, filter) : null }
    },
  )

  app.get(
    '/organisations/:id',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'getOrganisation',
        summary: 'One organisation',
        description: 'The operator and ANSM read any organisation; others only their own (another one answers 404).',
        params: IdParams,
        response: { 200: OrganisationSchema, ...problems(404) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.role !== 'ordre' && p.role !== 'ansm' && p.org !== request.params.id) throw orgNotFound()
      const org = await getOrganisation(app.db, request.params.id)
      if (!org) throw orgNotFound()
      return org
    },
  )

  app.post(
    '/organisations',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['referential'],
        operationId: 'createOrganisation',
        summary: 'Register an organisation (operator)',
        description: 'The identifier is checked against the role: FINESS (department deduced, Corsica 2A/2B, overseas 97x), SIREN or RPPS with their Luhn key.',
        headers: IdempotencyKeyHeader,
        body: OrganisationCreate,
        response: { 201: OrganisationSchema, ...problems(409, 422) },
      },
    },
    async (request, reply) => {
      const b = request.body
      const problem = identifierProblem(b.role, b.id)
      if (problem) throw new AppError('INVALID_IDENTIFIER', { field: 'body.id', ...problem }, { errors: [{ field: 'body.id', code: 'identifier', message: problem.fr }] })
      const department = ['pharmacy', 'hospital', 'wholesaler'].includes(b.role) ? departmentOfFiness(b.id) : (b.department ?? null)
      const org = await app.db.transaction().execute(async (tx) => {
        const inserted = await tx
          .insertInto('organisations')
          .values({
            id: b.id, role: b.role, name: b.name, department, region: regionOfDepartment(department),
            city: b.city ?? null, email: b.email ?? null, phone: b.phone ?? null, fax: b.fax ?? null, ...addressColumns(b.address ?? null), updated_at: new Date(),
          })
          .onConflict((oc) => oc.column('id').doNothing())
          .returning('id')
          .executeTakeFirst()
        if (!inserted) throw conflict(`L’organisation ${b.id} existe déjà.`, `Organisation ${b.id} already exists.`)
        await audit(tx, actorOf(request.principal, request.id), { action: 'organisation.created', objectType: 'organisation', objectId: b.id, changes: b })
        return getOrganisation(tx, b.id)
      })
      app.organisations.invalidate(b.id)
      return reply.code(201).header('location', `/v1/organisations/${b.id}`).send(org!)
    },
  )

  app.patch(
    '/organisations/:id',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['referential'],
        operationId: 'updateOrganisation',
        summary: 'Update or deactivate an organisation (operator)',
        description: 'A deactivated organisation’s tokens are refused (403) within seconds.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: OrganisationPatch,
        response: { 200: OrganisationSchema, ...problems(404, 422) },
      },
    },
    async (request) => {
      const { id } = request.params
      const org = await app.db.transaction().execute(async (tx) => {
        const before = await tx.selectFrom('organisations').selectAll().where('id', '=', id).forUpdate().executeTakeFirst()
        if (!before) throw orgNotFound()
        const { address, ...rest } = request.body
        const set = { ...rest, ...(address !== undefined ? addressColumns(address) : {}) }
        const changes = diff({ ...before }, set)
        if (Object.keys(changes).length) {
          await tx.updateTable('organisations').set({ ...set, updated_at: new Date() }).where('id', '=', id).execute()
          await audit(tx, actorOf(request.principal, request.id), { action: 'organisation.updated', objectType: 'organisation', objectId: id, changes })
        }
        return getOrganisation(tx, id)
      })
      app.organisations.invalidate(id)
      return org!
    },
  )

  app.put(
    '/organisations/:id/subscription',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['referential'],
        operationId: 'setLabSubscription',
        summary: 'Record whether a lab signed the access agreement (operator)',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: SubscriptionPut,
        response: { 200: OrganisationSchema, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const { id } = request.params
      const { subscribed, since } = request.body
      return app.db.transaction().execute(async (tx) => {
        const org = await tx.selectFrom('organisations').select('role').where('id', '=', id).executeTakeFirst()
        if (!org) throw orgNotFound()
        if (org.role !== 'lab') throw conflict('Seuls les laboratoires ont un abonnement.', 'Only labs have a subscription.')
        const before = await tx.selectFrom('lab_subscriptions').selectAll().where('lab_id', '=', id).forUpdate().executeTakeFirst()
        const at = since ? new Date(since) : app.now()
        if (before?.subscribed !== subscribed || since) {
          await tx
            .insertInto('lab_subscriptions')
            .values({ lab_id: id, subscribed, since: at, updated_at: new Date() })
            .onConflict((oc) => oc.column('lab_id').doUpdateSet({ subscribed, since: at, updated_at: new Date() }))
            .execute()
          await audit(tx, actorOf(request.principal, request.id), {
            action: subscribed ? 'lab.subscribed' : 'lab.unsubscribed',
            objectType: 'organisation',
            objectId: id,
            changes: { subscribed: [before?.subscribed ?? false, subscribed], since: [before?.since ?? null, at.toISOString()] },
          })
        }
        return (await getOrganisation(tx, id))!
      })
    },
  )

  app.get(
    '/organisations/:id/history',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'getOrganisationHistory',
        summary: 'History of an organisation’s changes',
        description: 'The operator reads any organisation’s history; an organisation reads its own.',
        params: IdParams,
        response: { 200: Type.Array(HistoryEntry), ...problems(404) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.role !== 'ordre' && p.org !== request.params.id) throw orgNotFound()
      const exists = await app.db.selectFrom('organisations').select('id').where('id', '=', request.params.id).executeTakeFirst()
      if (!exists) throw orgNotFound()
      return auditHistory(app.db, 'organisation', request.params.id)
    },
  )
}

export default organisationRoutes

export const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

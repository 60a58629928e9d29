/** Organisation routes: the caller's own, list, read, register, update, a lab's subscription, history. */
import { Type } from 'typebox'
import { ROLES } from '../../platform/db/schema.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { HistoryEntry, PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { IdParams, OrganisationCreate, OrganisationPage, OrganisationPatch, OrganisationSchema, RoleSchema, SubscriptionPut } from '../schemas/organisations.ts'
import type { Deps } from '../use-cases/context.ts'
import { createOrganisation, listOrganisations, organisationHistory, readOrganisation, setLabSubscription, updateOrganisation } from '../use-cases/organisations.ts'
import { whoOf } from './common.ts'

const organisationRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {

  app.get(
    '/organisations/me',
    {
      config: { roles: ROLES },
      schema: { tags: ['referential'], operationId: 'getMyOrganisation', summary: 'The caller’s organisation', response: { 200: OrganisationSchema, ...problems(404) } },
    },
    async (request) => {
      const who = whoOf(request)
      return readOrganisation(deps, who, who.principal.org)
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
      const page = await listOrganisations(deps, filter, after, limit)
      return { items: page.items, nextCursor: page.next ? encodeCursor(page.next, filter) : null }
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
    async (request) => readOrganisation(deps, whoOf(request), request.params.id),
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
      const org = await createOrganisation(deps, whoOf(request), request.body)
      return reply.code(201).header('location', `/v1/organisations/${request.body.id}`).send(org)
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
    async (request) => updateOrganisation(deps, whoOf(request), request.params.id, request.body),
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
    async (request) => setLabSubscription(deps, whoOf(request), request.params.id, request.body),
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
    async (request) => organisationHistory(deps, whoOf(request), request.params.id),
  )
}

export default organisationRoutes

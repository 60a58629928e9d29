/** Lab-holder routes: the BDPM holders and the lab each maps to, and the operator's mapping. */
import { Type } from 'typebox'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { IdempotencyKeyHeader } from '../../platform/openapi.ts'
import { PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { LabHolder, LabHolderPage, LabHolderPut } from '../schemas/products.ts'
import type { Deps } from '../use-cases/context.ts'
import { listLabHolders, mapLabHolder } from '../use-cases/lab-holders.ts'
import { whoOf } from './common.ts'

const labHolderRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.get(
    '/lab-holders',
    {
      config: { roles: ['ordre', 'ansm'] },
      schema: {
        tags: ['referential'],
        operationId: 'listLabHolders',
        summary: 'BDPM holders and the lab each maps to (operator, ANSM)',
        description: 'With `unmapped=true`, only holders that still have medicines without a lab: the ones to map with PUT /v1/lab-holders/{holder}.',
        querystring: Type.Object({ unmapped: Type.Optional(Type.Boolean()), ...PageQuery }, { additionalProperties: false }),
        response: { 200: LabHolderPage },
      },
    },
    async (request) => {
      const { unmapped, limit = 50, cursor } = request.query
      const filter = { unmapped }
      const after = cursor ? decodeCursor<{ h: string }>(cursor, filter) : null
      const page = await listLabHolders(deps, unmapped, after ? String(after.h) : null, limit)
      return { items: page.items, nextCursor: page.next ? encodeCursor(page.next, filter) : null }
    },
  )

  app.put(
    '/lab-holders/:holder',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['referential'],
        operationId: 'mapLabHolder',
        summary: 'Map a BDPM holder to a lab (operator)',
        description:
          'Every medicine with this holder is reassigned to the lab (or to none with `labId: null`), and later imports follow the mapping. The holder is compared in upper case with single spaces; one not yet in the BDPM may be mapped in advance. Recorded in the audit trail (object type `lab-holder`).',
        headers: IdempotencyKeyHeader,
        params: Type.Object({ holder: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S', examples: ['BIOGARAN'] }) }),
        body: LabHolderPut,
        response: { 200: LabHolder },
      },
    },
    async (request) => mapLabHolder(deps, whoOf(request), request.params.holder, request.body),
  )
}

export default labHolderRoutes

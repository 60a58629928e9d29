/** Declaration routes: pharmacies declare and read their own values; the operator reads the raw data. */
import { langOf } from '../../platform/i18n.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import {
  BulkInput,
  Declaration,
  DeclarationHistory,
  DeclarationInput,
  DeclarationList,
  DeclarationListQuery,
  DeclarationPage,
  DeclarationResult,
  IdParams,
  MAX_QUANTITY,
  WeekQuery,
} from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { declarationHistory, declare, getDeclaration, listDeclarations, myDeclarations } from '../use-cases/declarations.ts'
import { whoOf } from './common.ts'

const declarationRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  // ---- declarations (pharmacy) ---------------------------------------------------------------------------

  app.post(
    '/stock-campaigns/:id/declarations',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'declareStock',
        summary: 'Declare the stock of one product for the current week',
        description: [
          'The week is the current ISO week of the Paris calendar (Monday 00:00 to the next Monday 00:00, Paris time). Declaring the same product again in the same week **replaces** the quantity (200, `replaced: true`); the previous value is kept in a history the operator reads. The first declaration of the week answers 201.',
          `Refused: a product not listed in the campaign (400 \`STOCK_DECLARATION_INVALID\`, field \`body.cip13\`), a quantity that is negative, not an integer or above ${MAX_QUANTITY} (400 \`VALIDATION_FAILED\`, field \`body.quantity\`), a campaign not open (409 \`STOCK_CAMPAIGN_NOT_OPEN\`, with \`campaignStatus\`: scheduled, ended or closed).`,
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: DeclarationInput,
        response: { 200: DeclarationResult, 201: DeclarationResult, ...problems(404, 409) },
      },
    },
    async (request, reply) => {
      const who = whoOf(request)
      const result = await declare(deps, who, request.params.id, [request.body], () => 'body', app.now())
      return reply.code(result.items[0]!.replaced ? 200 : 201).send(result)
    },
  )

  app.post(
    '/stock-campaigns/:id/declarations/bulk',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'declareStockBulk',
        summary: 'Declare several products at once for the current week (LGO)',
        description:
          'All or nothing: when one item is refused, nothing is recorded and `errors` lists every refused item (`body.items.<index>.cip13` or `.quantity`). Each product replaces its own value of the week, as the single form does; products not sent keep their value. A product may appear once.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: BulkInput,
        response: { 200: DeclarationResult, ...problems(404, 409) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      return declare(deps, who, request.params.id, request.body.items, (i) => `body.items.${i}`, app.now())
    },
  )

  app.get(
    '/stock-campaigns/:id/my-declarations',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'listMyStockDeclarations',
        summary: 'The pharmacy’s own current values for a week (default: the current week)',
        params: IdParams,
        querystring: WeekQuery,
        response: { 200: DeclarationList, ...problems(404) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      return myDeclarations(deps, who, request.params.id, request.query.week, app.now())
    },
  )

  app.get(
    '/stock-declarations/:id',
    {
      config: { roles: ['pharmacy', 'ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'getStockDeclaration',
        summary: 'One declaration: the pharmacy’s own, or any for the operator',
        description: 'Another pharmacy’s declaration answers 404. After the retention the raw declaration is purged and answers 404 too.',
        params: IdParams,
        response: { 200: Declaration, ...problems(404) },
      },
    },
    async (request) => getDeclaration(deps, whoOf(request), request.params.id),
  )

  // ---- raw data (operator) -------------------------------------------------------------------------------

  app.get(
    '/stock-declarations/:id/history',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'getStockDeclarationHistory',
        summary: 'Every value a pharmacy declared for one product and week (operator)',
        params: IdParams,
        response: { 200: DeclarationHistory, ...problems(404) },
      },
    },
    async (request) => declarationHistory(deps, request.params.id),
  )

  app.get(
    '/stock-campaigns/:id/declarations',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'listStockDeclarations',
        summary: 'Raw declarations of a campaign, by week, pharmacy and product (operator)',
        description: 'Current values only; a value’s history: GET /v1/stock-declarations/{id}/history. Weeks past the retention have been purged.',
        params: IdParams,
        querystring: DeclarationListQuery,
        response: { 200: DeclarationPage, ...problems(404) },
      },
    },
    async (request) => {
      const { week, cip13, department, limit = 50, cursor } = request.query
      return listDeclarations(deps, { lang: langOf(request) }, request.params.id, { week, cip13, department, limit, cursor })
    },
  )
}

export default declarationRoutes

/** Campaign routes (operator defines and closes; pharmacies and the ministry read the definitions). */
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { Campaign, CampaignInput, CampaignListQuery, CampaignPage, DEFAULT_MIN_PHARMACIES, DEFAULT_RETENTION_DAYS, IdParams } from '../schemas.ts'
import { closeCampaign, createCampaign, getCampaign, listCampaigns } from '../use-cases/campaigns.ts'
import type { Deps } from '../use-cases/context.ts'
import { whoOf } from './common.ts'

const campaignRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.post(
    '/stock-campaigns',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'createStockCampaign',
        summary: 'Define a stock-declaration campaign (operator)',
        description: [
          'Name, the CIP13 list (each must exist in the referential), the weekly period, the first and last day declarations are accepted (Paris calendar), how long raw declarations are kept',
          `(\`retentionDays\`, default ${DEFAULT_RETENTION_DAYS}: six months after the end of each week) and the smallest number of pharmacies behind any published figure (\`minPharmacies\`, default ${DEFAULT_MIN_PHARMACIES}).`,
          'Pharmacies are told on their feed (`stock.campaign_created`).',
        ].join(' '),
        headers: IdempotencyKeyHeader,
        body: CampaignInput,
        response: { 201: Campaign, ...problems(400) },
      },
    },
    async (request, reply) => {
      const who = whoOf(request)
      return reply.code(201).send(await createCampaign(deps, who, request.body, app.now()))
    },
  )

  app.get(
    '/stock-campaigns',
    {
      config: { roles: ['ordre', 'pharmacy', 'ministry'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'listStockCampaigns',
        summary: 'The campaigns, newest first (their definition, never their data)',
        description: 'A pharmacy’s LGO reads here which campaigns are `open` and which products to declare for the current week.',
        querystring: CampaignListQuery,
        response: { 200: CampaignPage },
      },
    },
    async (request) => {
      const { status, limit = 50, cursor } = request.query
      return listCampaigns(deps, { status, limit, cursor }, app.now())
    },
  )

  app.get(
    '/stock-campaigns/:id',
    {
      config: { roles: ['ordre', 'pharmacy', 'ministry'] },
      schema: { tags: ['stock-campaigns'], operationId: 'getStockCampaign', summary: 'One campaign: its products, status and current week', params: IdParams, response: { 200: Campaign, ...problems(404) } },
    },
    async (request) => getCampaign(deps, request.params.id, app.now()),
  )

  app.post(
    '/stock-campaigns/:id/close',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'closeStockCampaign',
        summary: 'Close a campaign before its end (operator)',
        description: 'No declaration is accepted afterwards; every week of the campaign becomes final and its aggregates are published. Closing twice answers 409 `STOCK_CAMPAIGN_CLOSED`.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        response: { 200: Campaign, ...problems(404, 409) },
      },
    },
    async (request) => closeCampaign(deps, whoOf(request), request.params.id, app.now()),
  )
}

export default campaignRoutes

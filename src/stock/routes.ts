/**
 * Stock-declaration campaigns: the operator's campaigns, pharmacies' weekly declarations, the ministry's
 * aggregates (route files in routes/), and the retention job.
 */
import type { FastifyInstance } from 'fastify'
import { RetryAt } from '../platform/jobs.ts'
import type { RoutePlugin } from '../platform/types.ts'
import aggregateRoutes from './routes/aggregates.ts'
import campaignRoutes from './routes/campaigns.ts'
import declarationRoutes from './routes/declarations.ts'
import type { Deps } from './use-cases/context.ts'
import { purgeExpired, RETENTION_QUEUE } from './use-cases/retention.ts'

export const stockRoutes: RoutePlugin = async (app) => {
  const deps: Deps = { db: app.db }
  await app.register(campaignRoutes, { deps })
  await app.register(declarationRoutes, { deps })
  await app.register(aggregateRoutes, { deps })
}

/** Registered with prefix '/v1'. */
const stockCampaignRoutes: RoutePlugin = async (app) => {
  await app.register(stockRoutes)
}
export default stockCampaignRoutes

/** Scheduled work of the stock campaigns: purging raw declarations past the retention. */
export function registerStockJobs(app: FastifyInstance) {
  app.jobs.register(RETENTION_QUEUE, async (payload: { campaignId?: unknown }, ctx) => {
    if (typeof payload?.campaignId !== 'string') return
    const result = await purgeExpired(app.db, payload.campaignId, ctx.now)
    if (result.declarations > 0) ctx.log.info({ campaignId: payload.campaignId, ...result }, 'stock declarations purged')
    if (result.next) throw new RetryAt(result.next, 'next retention deadline')
  })
}

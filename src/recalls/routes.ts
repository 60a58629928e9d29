import type { FastifyInstance } from 'fastify'
import { SYSTEM } from '../platform/audit.ts'
import type { RoutePlugin } from '../platform/types.ts'
import '../diffusion/db.ts'
import type { PipelineKind } from '../diffusion/db.ts'
import { pipelineRoutes } from '../diffusion/routes.ts'
import { ReviewQueue } from '../diffusion/schemas.ts'
import { approveOrBroadcast, QUEUE_BROADCAST, QUEUE_REMIND, remind } from '../diffusion/use-cases/broadcast.ts'
import { depsOf } from '../diffusion/use-cases/context.ts'
import { reviewQueue } from '../diffusion/use-cases/review.ts'

/**
 * DP-Rappels: batch recalls drafted by a lab, validated by ANSM, broadcast to pharmacies, wholesalers and
 * hospital pharmacies (fax for those without an integration), tracked, closed with a report. Registered with
 * prefix '/v1'. The ANSM review queue (recalls and alerts) lives here too.
 */
const recallRoutes: RoutePlugin = async (app) => {
  await app.register(pipelineRoutes('recall'))
  const deps = depsOf(app)

  app.get(
    '/recall-review-queue',
    {
      config: { roles: ['ansm'] },
      schema: {
        tags: ['recalls'],
        operationId: 'listRecallReviewQueue',
        summary: 'ANSM: recalls and alerts waiting for a decision',
        description: 'Every submitted version (first versions and corrections of messages in force), recalls and alerts together, oldest submission first.',
        response: { 200: ReviewQueue },
      },
    },
    async () => reviewQueue(deps),
  )
}
export default recallRoutes

/** Scheduled work of DP-Rappels and DP-Alertes Labo (both kinds): scheduled broadcasts and reminders. */
export function registerRecallJobs(app: FastifyInstance) {
  app.jobs.register(QUEUE_BROADCAST, async (raw, ctx) => {
    const p = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { recallId: string; kind: PipelineKind; version: number; scheduledAt?: string }
    await approveOrBroadcast(app, p.kind, p.recallId, SYSTEM, { scheduled: { version: p.version, scheduledAt: p.scheduledAt } })
    ctx.log.info({ recall: p.recallId, version: p.version }, 'scheduled broadcast done')
  })
  app.jobs.register(QUEUE_REMIND, async (raw, ctx) => {
    const p = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { recallId: string; kind: PipelineKind; step: number }
    await remind(app, p, ctx.now)
  })
}

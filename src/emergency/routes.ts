/**
 * Emergency requests (dépannage d'urgence): labs open presentations, pharmacies request them for a patient
 * who must not interrupt treatment, labs answer, pharmacies confirm receipt; unanswered requests escalate.
 * The routes are per resource in routes/, on use cases that own the rules and transactions.
 */
import type { FastifyInstance } from 'fastify'
import type { RoutePlugin } from '../platform/types.ts'
import openingRoutes from './routes/openings.ts'
import requestRoutes from './routes/requests.ts'
import statisticsRoutes from './routes/statistics.ts'
import vocabularyRoutes from './routes/vocabulary.ts'
import { DEFAULT_ESCALATION_BUSINESS_HOURS, ESCALATION_QUEUE, isUuid } from './service.ts'
import type { Deps } from './use-cases/context.ts'
import { escalateRequest } from './use-cases/requests.ts'

export type EmergencyOptions = {
  /** Default escalation delay in Europe/Paris business hours when the lab's opening sets none (default 4). */
  escalationBusinessHours?: number
}

function escalationDefault(opts: EmergencyOptions) {
  const h = opts.escalationBusinessHours ?? DEFAULT_ESCALATION_BUSINESS_HOURS
  if (!Number.isInteger(h) || h < 1 || h > 72) throw new Error(`escalationBusinessHours: an integer from 1 to 72 is expected (got ${h})`)
  return h
}

/** Registered with prefix '/v1'. Option: escalationBusinessHours (default 4). */
const emergencyRoutes: RoutePlugin<EmergencyOptions> = async (app, opts) => {
  const deps: Deps = { db: app.db, now: () => app.now(), defaultHours: escalationDefault(opts) }
  await app.register(vocabularyRoutes)
  await app.register(openingRoutes, { deps })
  await app.register(requestRoutes, { deps })
  await app.register(statisticsRoutes, { deps })
}
export default emergencyRoutes

/** Escalates one request if it is due and still unanswered: see use-cases/requests.ts. */
export const escalate = (app: FastifyInstance, requestId: string, now: Date) => escalateRequest(app.db, requestId, now)

/** Scheduled work of emergency requests: escalating those unanswered in time. */
export function registerEmergencyJobs(app: FastifyInstance) {
  app.jobs.register(ESCALATION_QUEUE, async (payload: { requestId?: unknown }, ctx) => {
    if (typeof payload?.requestId !== 'string' || !isUuid(payload.requestId)) return
    await escalate(app, payload.requestId, ctx.now)
  })
}

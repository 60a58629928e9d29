import type { FastifyInstance } from 'fastify'
import type { RoutePlugin } from '../platform/types.ts'
import { ansmRoutes } from './routes/ansm.ts'
import { signalRoutes } from './routes/signals.ts'
import { labSignalRoutes } from './routes/lab-signals.ts'
import { declarationRoutes } from './routes/declarations.ts'
import { automaticResponseRoutes } from './routes/automatic-responses.ts'
import { publicRoutes } from './routes/public.ts'
import { statisticsRoutes } from './routes/statistics.ts'
import { type Deps, lapseDays, type ShortageOptions } from './use-cases/context.ts'
import { lapseSignal, SIGNAL_LAPSE_QUEUE } from './use-cases/signals.ts'

export type { ShortageOptions }

/**
 * DP-Ruptures: pharmacy signals, lab declarations and automatic responses, the lab's view of the field,
 * the ANSM pull of MITM shortages, statistics. Registered with prefix '/v1'. Route files parse and shape;
 * use-cases/ hold the transactions and what they orchestrate; rules/ the rules that need no database; queries/
 * the SQL.
 * Options: signalLapseDays (else SHORTAGE_SIGNAL_LAPSE_DAYS, default 30), publicMinPharmacies (default 3).
 */
const shortageRoutes: RoutePlugin<ShortageOptions> = async (app, opts) => {
  const deps: Deps = { db: app.db, database: app.database, now: () => app.now() }
  await app.register(signalRoutes, { deps, lapseDays: lapseDays(opts) })
  await app.register(labSignalRoutes, { deps })
  await app.register(declarationRoutes, { deps })
  await app.register(automaticResponseRoutes, { deps })
  await app.register(ansmRoutes, { deps })
  await app.register(publicRoutes, { deps })
  await app.register(statisticsRoutes, { deps, publicMinPharmacies: opts.publicMinPharmacies ?? 3 })
}
export default shortageRoutes

/** Scheduled work of DP-Ruptures: lapsing signals not renewed in time. */
export function registerShortageJobs(app: FastifyInstance) {
  app.jobs.register(SIGNAL_LAPSE_QUEUE, async (payload: { signalId?: unknown }, ctx) => {
    if (typeof payload?.signalId !== 'string') return
    await lapseSignal(app.db, payload.signalId, ctx.now)
  })
}

import type { FastifyInstance } from 'fastify'
import type { RoutePlugin } from '../platform/types.ts'
import { ansmRoutes } from './ansm.ts'
import { publicRoutes } from './public.ts'
import { declarationRoutes } from './declarations.ts'
import { registerSignalJobs, type ShortageOptions, signalRoutes } from './signals.ts'
import { statisticsRoutes } from './stats.ts'

/**
 * DP-Ruptures: pharmacy signals, lab declarations and automatic responses, the lab's view of the field,
 * the ANSM pull of MITM shortages, statistics. Registered with prefix '/v1'.
 * Options: signalLapseDays (else SHORTAGE_SIGNAL_LAPSE_DAYS, default 30), publicMinPharmacies (default 3).
 */
const shortageRoutes: RoutePlugin<ShortageOptions> = async (app, opts) => {
  // Only our own options: the prefix given to this plugin must not be applied twice.
  const options: ShortageOptions = {
    ...(opts.signalLapseDays !== undefined ? { signalLapseDays: opts.signalLapseDays } : {}),
    ...(opts.publicMinPharmacies !== undefined ? { publicMinPharmacies: opts.publicMinPharmacies } : {}),
  }
  await app.register(signalRoutes, options)
  await app.register(declarationRoutes)
  await app.register(ansmRoutes)
  await app.register(publicRoutes)
  await app.register(statisticsRoutes, options)
}
export default shortageRoutes

/** Scheduled work of DP-Ruptures: lapsing signals not renewed in time. */
export function registerShortageJobs(app: FastifyInstance) {
  registerSignalJobs(app)
}

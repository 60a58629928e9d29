/**
 * The e-prescription service: its routes (prescriber, pharmacy, patient), built on use cases that own the
 * rules and transactions, and its retention job.
 */
import type { FastifyInstance } from 'fastify'
import { DEV_EPRESCRIPTION_CODE_KEY } from '../platform/config.ts'
import { AppError } from '../platform/errors.ts'
import type {} from '../platform/events/plugin.ts'
import { RetryAt } from '../platform/jobs.ts'
import type { RoutePlugin } from '../platform/types.ts'
import './db.ts'
import { loadSigningKey } from './receipts.ts'
import patientRoutes from './routes/patient.ts'
import pharmacyRoutes from './routes/pharmacy.ts'
import prescriberRoutes from './routes/prescriber.ts'
import type { Deps } from './use-cases/context.ts'
import { applyRetention, purgeOldFailures, RETENTION_QUEUE } from './use-cases/retention.ts'

export { RETENTION_QUEUE }

const eprescriptionRoutes: RoutePlugin = async (app) => {
  const production = app.config.NODE_ENV === 'production'
  if (production && app.config.EPRESCRIPTION_CODE_KEY === DEV_EPRESCRIPTION_CODE_KEY) {
    throw new Error('EPRESCRIPTION_CODE_KEY (at least 32 random characters) is required in production: it keys the hashes of e-prescription access codes and secrets')
  }
  const signingKey = await loadSigningKey(app.config.RECEIPT_SIGNING_KEY, production)
  if (signingKey.ephemeral) app.log.info({ kid: signingKey.kid }, 'e-prescription receipts signed with an ephemeral key (set RECEIPT_SIGNING_KEY in production)')
  const deps: Deps = { db: app.db, codeKey: app.config.EPRESCRIPTION_CODE_KEY, toleranceDays: app.config.EPRESCRIPTION_RENEWAL_TOLERANCE_DAYS, signingKey }

  // Operations without a body (close, release, access-code) are often sent with a JSON content type and nothing
  // after it: treat an empty JSON body as no body, and parse any other one as Fastify does.
  const json = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    if (text.trim() === '') return done(null, undefined)
    return json(request, text, done)
  })
  // A throttled caller learns when to retry.
  app.addHook('onError', async (_request, reply, error) => {
    if (error instanceof AppError && typeof error.extra.retryAfter === 'number') reply.header('retry-after', String(error.extra.retryAfter))
  })

  await app.register(prescriberRoutes, { deps })
  await app.register(pharmacyRoutes, { deps })
  await app.register(patientRoutes, { deps })
}

export default eprescriptionRoutes

/** The retention job: see use-cases/retention.ts. */
export function registerEprescriptionJobs(app: FastifyInstance) {
  app.jobs.register(RETENTION_QUEUE, async (payload: { id?: string }, ctx) => {
    const next = await applyRetention(app.db, String(payload?.id ?? ''), ctx.now)
    await purgeOldFailures(app.db, ctx.now)
    if (next) throw new RetryAt(next, 'retention: not yet')
  })
}

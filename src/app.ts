import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import auth from './platform/auth.ts'
import auditRoutes from './platform/audit-routes.ts'
import type { Config } from './platform/config.ts'
import type { DatabaseHandle } from './platform/db/index.ts'
import { AppError, installErrorHandling, sendProblem } from './platform/errors.ts'
import health from './platform/health.ts'
import idempotency from './platform/idempotency.ts'
import openapi from './platform/openapi.ts'
import { isCip13 } from './platform/identifiers.ts'
import referential from './referential/routes.ts'
import events from './platform/events/plugin.ts'
import type { FaxGateway } from './platform/fax/gateway.ts'
import eventRoutes from './platform/events/routes.ts'
import { registerWebhookJobs } from './platform/webhooks/deliver.ts'
import { registerFaxJobs } from './platform/fax/job.ts'
import letterRoutes from './platform/fax/routes.ts'
import { SpoolFaxGateway } from './platform/fax/spool.ts'
import eprescriptionRoutes, { registerEprescriptionJobs } from './eprescription/routes.ts'
import shortageRoutes, { registerShortageJobs } from './shortages/routes.ts'
import emergencyRoutes, { registerEmergencyJobs } from './emergency/routes.ts'
import stockRoutes, { registerStockJobs } from './stock/routes.ts'
import recallRoutes, { registerRecallJobs } from './recalls/routes.ts'
import alertRoutes from './alerts/routes.ts'
import serializationRoutes from './serialization/routes.ts'
import dispensationBlocking from './recalls/blocking-routes.ts'
import webhookRoutes from './platform/webhooks/routes.ts'

export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version

const eagerSerializers = SerializerSelector()
function lazySerializers(externalSchemas: unknown, options: unknown) {
  const compile = eagerSerializers(externalSchemas as never, options as never)
  return (route: Parameters<typeof compile>[0]) => {
    let serialize: ((data: unknown) => string) | undefined
    return (data: unknown) => (serialize ??= compile(route) as (data: unknown) => string)(data)
  }
}

export interface AppOptions {
  config: Config
  database: DatabaseHandle
  /** The clock the services use for business rules; tests inject their own. */
  now?: () => Date
  logger?: FastifyServerOptions['logger']
  /** Where faxes go; the default writes them to FAX_SPOOL_DIR. */
  faxGateway?: FaxGateway
  /** Background work: feed dispatch and scheduled jobs ('off' for the contract export, 'manual-jobs' for tests). */
  background?: 'on' | 'off' | 'manual-jobs'
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    db: DatabaseHandle['db']
    database: DatabaseHandle
    now: () => Date
  }
}

/** Builds the whole application without listening: server.ts, tests, scripts and benchmarks use the same. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? false,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    bodyLimit: 10 * 1024 * 1024,
    // Response serializers are compiled on a route's first answer rather than at start: compiling all of them
    // (every route sees every shared schema) took most of the start-up time of the embedded default.
    schemaController: { compilersFactory: { buildSerializer: lazySerializers } },
    ajv: {
      customOptions: {
        allErrors: true,
        verbose: true, // the error handler reads x-message from the failing schema
        removeAdditional: false,
        coerceTypes: 'array',
        keywords: ['x-message', 'x-roles'],
        formats: { cip13: (v: string) => isCip13(v) },
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.decorate('config', opts.config)
  app.decorate('database', opts.database)
  app.decorate('db', opts.database.db)
  app.decorate('now', opts.now ?? (() => new Date()))

  installErrorHandling(app)
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })

  if (opts.config.MAX_EVENT_LOOP_DELAY_MS > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: opts.config.MAX_EVENT_LOOP_DELAY_MS,
      retryAfter: 5,
      pressureHandler: (_request, reply) => {
        sendProblem(reply.header('retry-after', '5'), 'SERVICE_UNAVAILABLE')
      },
    })
  }
  // The platform every service uses.
  await app.register(openapi, { version: VERSION })
  await app.register(auth, { config: opts.config, db: opts.database.db })
  await app.register(idempotency, { db: opts.database.db, ttlHours: opts.config.IDEMPOTENCY_TTL_HOURS })
  // Per organisation (after authentication), only on the routes that ask for it (config.rateLimit), in memory on
  // each instance: a runaway workstation loop must not starve the country's pharmacies.
  await app.register(rateLimit, {
    global: false,
    hook: 'preHandler',
    keyGenerator: (request) => request.principal?.org ?? request.ip,
    errorResponseBuilder: (_request, context) => new AppError(context.statusCode === 429 ? 'TOO_MANY_REQUESTS' : 'RATE_LIMITED', { max: context.max, after: context.after }),
  })
  await app.register(health, { db: opts.database.db })
  await app.register(auditRoutes, { prefix: '/v1' })
  const background = opts.background ?? 'on'
  await app.register(events, { database: opts.database, background: background !== 'off', pollJobs: background === 'on' })
  await app.register(eventRoutes, { prefix: '/v1' })
  await app.register(webhookRoutes, { prefix: '/v1' })
  registerWebhookJobs(app)
  registerFaxJobs(app, opts.faxGateway ?? new SpoolFaxGateway(opts.config.FAX_SPOOL_DIR, { now: app.now }))
  await app.register(letterRoutes, { prefix: '/v1' })

  // The services, each in its folder with its routes, schemas, queries and scheduled jobs.
  await app.register(referential, { prefix: '/v1' })
  await app.register(shortageRoutes, { prefix: '/v1', signalLapseDays: opts.config.SHORTAGE_SIGNAL_LAPSE_DAYS })
  registerShortageJobs(app)
  await app.register(emergencyRoutes, { prefix: '/v1', escalationBusinessHours: opts.config.EMERGENCY_ESCALATION_BUSINESS_HOURS })
  registerEmergencyJobs(app)
  await app.register(stockRoutes, { prefix: '/v1' })
  registerStockJobs(app)
  await app.register(recallRoutes, { prefix: '/v1' })
  await app.register(alertRoutes, { prefix: '/v1' })
  registerRecallJobs(app) // scheduled broadcasts and reminders, for recalls and alerts
  await app.register(serializationRoutes, { prefix: '/v1' })
  await app.register(dispensationBlocking, { database: opts.database, live: background !== 'off' })
  await app.register(eprescriptionRoutes, { prefix: '/v1' })
  registerEprescriptionJobs(app)
  return app
}

import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { STATUS_CODES } from 'node:http'
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import auth from './platform/auth.ts'
import auditRoutes from './platform/audit-routes.ts'
import type { Config } from './platform/config.ts'
import type { DatabaseHandle } from './platform/db/index.ts'
import drain from './platform/drain.ts'
import { serveHttp2Cleartext } from './platform/http2.ts'
import metrics from './platform/metrics.ts'
import { registerTracing } from './platform/tracing.ts'
import { AppError, installErrorHandling, isRaceLost, preRouteProblem, sendProblem } from './platform/errors.ts'
import { validatorFactory } from './platform/input.ts'
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
import dispensationBlocking from './dispensation/routes.ts'
import webhookRoutes from './platform/webhooks/routes.ts'

export const VERSION: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version

const eagerSerializers = SerializerSelector()
/**
 * The counter's answers, compiled at start all the same: compiling one takes tens of milliseconds, which the first
 * pharmacies after a deploy would otherwise wait for (measured: the first burst of 200 decommissions of one pack
 * spent about 130 ms of its time compiling the answer's serializer). The dispensation check writes its own
 * (dispensation/answer-json.ts).
 */
export const COMPILED_AT_START: ReadonlySet<string> = new Set(['/v1/serialization/packs/verify', '/v1/serialization/packs/verify-bulk', '/v1/serialization/packs/state', '/v1/serialization/packs/state-bulk'])
/**
 * The named schemas a response schema reaches through its $refs, transitively. fast-json-stringify reads every
 * external schema it is given each time it compiles: given all of the shared ones (some 300), most of a route's
 * first answer went into reading schemas it never uses (and most of the test suite's CPU time, each test file's
 * app compiling the routes it calls).
 */
function reachedSchemas(schema: unknown, all: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit)
    if (node === null || typeof node !== 'object') return
    for (const [key, value] of Object.entries(node)) {
      if (key !== '$ref' || typeof value !== 'string') visit(value)
      else {
        const id = value.split('#')[0]!
        if (id && !(id in out) && id in all) {
          out[id] = all[id]
          visit(all[id])
        }
      }
    }
  }
  visit(schema)
  return out
}

function lazySerializers(externalSchemas: unknown, options: unknown) {
  const all = (externalSchemas ?? {}) as Record<string, unknown>
  const everything = eagerSerializers(externalSchemas as never, options as never)
  const compile = (route: Parameters<typeof everything>[0]) => {
    try {
      return eagerSerializers(reachedSchemas(route.schema, all) as never, options as never)(route)
    } catch {
      return everything(route) // a reference this walk did not follow: compiled as before, with every schema
    }
  }
  return (route: Parameters<typeof compile>[0]) => {
    if (route.httpStatus === '200' && COMPILED_AT_START.has(route.url)) return compile(route) as (data: unknown) => string
    let serialize: ((data: unknown) => string) | undefined
    return (data: unknown) => (serialize ??= compile(route) as (data: unknown) => string)(data)
  }
}

/**
 * TRUST_PROXY as Fastify takes it. A hop count is a function: Fastify 5 no longer believes a bare number
 * (a client that reaches the service directly could forge as many hops as it likes), so, like `true`, it is
 * only for a service that nothing but its proxies can reach.
 */
function trustProxyOption(value: Config['TRUST_PROXY']): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof value === 'number' ? (_address, hop) => hop < value : value
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
    // While closing, a request that arrives on a connection still open is served (with Connection: close),
    // not refused with a bare 503: it was accepted, and the load balancer already had its drain delay.
    return503OnClosing: false,
    // Behind a load balancer, request.ip (per-client limits, logs) is the client's only when this says whom to trust.
    trustProxy: trustProxyOption(opts.config.TRUST_PROXY),
    // Response serializers are compiled on a route's first answer rather than at start: compiling all of them
    // (every route sees every shared schema) took most of the start-up time of the embedded default.
    // Validators: bodies strictly typed, text parts coerced, NUL, lone surrogates and non-finite numbers refused (platform/input.ts).
    schemaController: { compilersFactory: { buildSerializer: lazySerializers, buildValidator: validatorFactory() } },
    // A path parameter over 100 characters (414) or a broken %-encoding (400), answered like any other error.
    frameworkErrors: (error, request, reply) => {
      sendProblem(reply, error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'URI_TOO_LONG' : 'MALFORMED_URL', {}, { instance: undefined })
    },
    // Refused by Node's HTTP parser before any route (headers too large, timeout, garbage): problem+json too.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return
      const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'MALFORMED_REQUEST'
      const { status, headers, body } = preRouteProblem(code)
      if (socket.writable) {
        socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: ${headers['content-type']}\r\nContent-Language: ${headers['content-language']}\r\nConnection: close\r\n\r\n${body}`)
      }
      socket.destroy(err)
    },
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

  await registerTracing(app) // first: it instruments the routes and hooks registered after it (when tracing is on)
  app.decorate('config', opts.config)
  app.decorate('database', opts.database)
  app.decorate('db', opts.database.db)
  app.decorate('now', opts.now ?? (() => new Date()))

  installErrorHandling(app)
  await app.register(metrics, { config: opts.config, database: opts.database })
  await app.register(drain)
  if (opts.config.HTTP2_CLEARTEXT) serveHttp2Cleartext(app)
  // The loser of a race (unique violation, serialization failure, deadlock, a row gone under its feet) had its
  // transaction rolled back: an idempotent operation simply runs again, and then answers as if it had come
  // second. Other operations get the domain's 409 from the error handler.
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat()
    if (!methods.every((m) => m === 'GET' || m === 'HEAD' || m === 'PUT' || m === 'DELETE')) return
    const handler = route.handler
    if (handler.constructor.name !== 'AsyncFunction') return
    route.handler = async function retried(this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await handler.call(this, request, reply)
        } catch (err) {
          if (attempt >= 3 || reply.sent || !isRaceLost(err)) throw err
          request.log.info({ err, attempt }, 'race lost, running the operation again')
        }
      }
    }
  })
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })

  if (opts.config.MAX_EVENT_LOOP_DELAY_MS > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: opts.config.MAX_EVENT_LOOP_DELAY_MS,
      retryAfter: 5,
      pressureHandler: (_request, reply) => {
        app.metrics.loadShed.inc()
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
    onExceeded: (request) => app.metrics.rateLimited.inc({ route: request.routeOptions.url ?? 'unmatched' }),
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
  app.metrics.watchBlockGeneration(() => app.blockRegistry?.generation, app.now)
  await app.register(eprescriptionRoutes, { prefix: '/v1' })
  registerEprescriptionJobs(app)
  return app
}

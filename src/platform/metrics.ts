import { timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import client from 'prom-client'
import type { Config } from './config.ts'
import type { DatabaseHandle } from './db/index.ts'
import { sendProblem } from './errors.ts'
import { databaseFigures } from './operations-queries.ts'

/**
 * Prometheus figures of one instance (prom-client, text format at GET /metrics). Counters and histograms move
 * where things happen (a request answered, a position assigned, an event handed to a channel); gauges that
 * describe shared state (job backlog, unsequenced deliveries, disabled endpoints) are read from the database
 * at scrape time, so every instance reports the same value: aggregate them with max(), not sum().
 *
 * One registry per application (not prom-client's global one): tests build several apps in one process.
 */

type Collector = () => void | Promise<void>

/** How long a scrape waits for the database figures; beyond it they are left out and dp_database_up is 0. */
const SCRAPE_DB_TIMEOUT_MS = 2000

export class Metrics {
  readonly registry = new client.Registry()
  private readonly collectors: Collector[] = []
  private readonly timers: NodeJS.Timeout[] = []
  private readonly reg = [this.registry]

  readonly httpDuration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer a request, by route pattern (never the raw URL), method and status (streams excluded)',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: this.reg,
  })
  readonly feedPositions = new client.Counter({
    name: 'dp_feed_positions_assigned_total',
    help: 'Feed positions assigned by this instance (one per recipient of each committed event)',
    registers: this.reg,
  })
  readonly feedLag = new client.Histogram({
    name: 'dp_feed_sequencing_lag_seconds',
    help: 'Per sequenced event: time from its publication (in its transaction) to the feed positions of its recipients',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900],
    registers: this.reg,
  })
  readonly feedUnsequenced = new client.Gauge({ name: 'dp_feed_unsequenced_deliveries', help: 'Committed deliveries still waiting for a feed position (database)', registers: this.reg })
  readonly feedUnsequencedAge = new client.Gauge({
    name: 'dp_feed_unsequenced_oldest_age_seconds',
    help: 'Age of the oldest event whose deliveries still wait for a feed position; 0 when none (database)',
    registers: this.reg,
  })
  readonly delivered = new client.Counter({
    name: 'dp_events_delivered_total',
    help: 'Events handed over by this instance, by channel: stream (SSE), pull, long_poll, webhook (2xx), fax (sent); a re-read counts again',
    labelNames: ['channel'] as const,
    registers: this.reg,
  })
  readonly openStreams = new client.Gauge({ name: 'dp_feed_open_streams', help: 'Server-Sent Events streams open on this instance', registers: this.reg })
  readonly http2Connections = new client.Gauge({ name: 'dp_http2_connections', help: 'HTTP/2 connections open on this instance (platform/http2.ts)', registers: this.reg })
  readonly waitingLongPolls = new client.Gauge({ name: 'dp_feed_waiting_long_polls', help: 'Long-polls waiting on this instance', registers: this.reg })
  readonly jobsQueued = new client.Gauge({
    name: 'dp_jobs_pending',
    help: 'Pending jobs per queue: due (run_at reached) or scheduled (later) (database)',
    labelNames: ['queue', 'state'] as const,
    registers: this.reg,
  })
  readonly jobsOldestDue = new client.Gauge({
    name: 'dp_jobs_oldest_due_age_seconds',
    help: 'How long the oldest due job of each queue has been waiting; 0 when none is due (database)',
    labelNames: ['queue'] as const,
    registers: this.reg,
  })
  readonly jobsRunning = new client.Gauge({ name: 'dp_jobs_running', help: 'Jobs running on this instance, per queue', labelNames: ['queue'] as const, registers: this.reg })
  readonly jobsFinished = new client.Counter({
    name: 'dp_jobs_finished_total',
    help: 'Job runs on this instance, per queue and outcome: done, rescheduled (asked to run later), retry (failed, will retry), failed (given up)',
    labelNames: ['queue', 'outcome'] as const,
    registers: this.reg,
  })
  readonly webhookAttempts = new client.Counter({
    name: 'dp_webhook_attempts_total',
    help: 'Webhook delivery attempts made by this instance, by outcome (success: 2xx; failure: anything else)',
    labelNames: ['outcome'] as const,
    registers: this.reg,
  })
  readonly webhookDisabled = new client.Counter({
    name: 'dp_webhook_endpoints_disabled_total',
    help: 'Webhook endpoints this instance disabled, by reason (gone: 410; failure_streak: too many failures in a row)',
    labelNames: ['reason'] as const,
    registers: this.reg,
  })
  readonly webhookEndpointsDisabled = new client.Gauge({ name: 'dp_webhook_endpoints_disabled', help: 'Webhook endpoints currently disabled (database)', registers: this.reg })
  /** Reads the blocked-batch generation again (set by watchBlockGeneration): a scrape sees the current one. */
  private observeBlocks: (() => void) | null = null
  readonly blockGeneration = new client.Gauge({
    name: 'dp_dispensation_blocks_generation',
    help: 'Generation of the blocked-batch set this instance holds in memory (-1: not loaded)',
    registers: this.reg,
    collect: () => this.observeBlocks?.(),
  })
  readonly blockGenerationAge = new client.Gauge({
    name: 'dp_dispensation_blocks_generation_age_seconds',
    help: 'Time since this instance was seen to load the generation it holds',
    registers: this.reg,
  })
  readonly idempotencyReplays = new client.Counter({
    name: 'dp_idempotency_replays_total',
    help: 'Writes answered from a stored response (Idempotency-Key seen again), by route',
    labelNames: ['route'] as const,
    registers: this.reg,
  })
  readonly rateLimited = new client.Counter({ name: 'dp_rate_limit_refusals_total', help: 'Requests refused by the per-organisation rate limit, by route', labelNames: ['route'] as const, registers: this.reg })
  readonly loadShed = new client.Counter({ name: 'dp_load_shed_total', help: 'Requests refused with 503 because the event loop lagged (load shedding)', registers: this.reg })
  readonly dbPool = new client.Gauge({
    name: 'dp_db_pool_connections',
    help: 'Database connections of this instance: in_use, idle, waiting (requests queued for a connection), max',
    labelNames: ['state'] as const,
    registers: this.reg,
  })
  /** Read from the database handle at each scrape (statements()): a counter kept by the pools' clients. */
  readonly dbStatements = new client.Counter({
    name: 'dp_db_statements_total',
    help: 'Statements this instance sent to the database (BEGIN and COMMIT included), by pool: general, and counter (the counter\'s batched statements)',
    labelNames: ['pool'] as const,
    registers: this.reg,
  })
  readonly databaseUp = new client.Gauge({ name: 'dp_database_up', help: '1 when the last scrape could read the database figures, else 0', registers: this.reg })
  readonly draining = new client.Gauge({ name: 'dp_draining', help: '1 once this instance has been asked to stop (readiness answers 503)', registers: this.reg })

  constructor() {
    client.collectDefaultMetrics({ register: this.registry })
  }

  /** Runs before each scrape (gauges that are read, not moved). */
  addCollector(fn: Collector) {
    this.collectors.push(fn)
  }

  /**
   * Watches a value read from elsewhere (the blocked-batch generation, owned by the recalls service) and notes
   * when it changes: its age is the time since this instance was seen to hold it. Read every second and at
   * each scrape, by the given clock.
   */
  watchBlockGeneration(read: () => number | null | undefined, now: () => Date) {
    let seen: number | null = null
    let since = now()
    const observe = () => {
      const g = read() ?? -1
      if (g !== seen) {
        seen = g
        since = now()
      }
      this.blockGeneration.set(g)
      this.blockGenerationAge.set(Math.max(0, (now().getTime() - since.getTime()) / 1000))
    }
    observe()
    this.observeBlocks = observe
    const timer = setInterval(observe, 1000)
    timer.unref()
    this.timers.push(timer)
    this.addCollector(observe)
  }

  stop() {
    for (const t of this.timers) clearInterval(t)
  }

  /** The text exposition, after refreshing the gauges. */
  async render(): Promise<{ contentType: string; body: string }> {
    for (const c of this.collectors) await c()
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** Gauges read from the database at scrape time; the figures are the same on every instance. */
function databaseCollector(app: FastifyInstance, queues: () => string[]) {
  const m = app.metrics
  return async () => {
    const now = app.now()
    let timer: NodeJS.Timeout | undefined
    try {
      const r = await Promise.race([
        databaseFigures(app.db, now),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('database figures timed out')), SCRAPE_DB_TIMEOUT_MS))),
      ])
      m.jobsQueued.reset()
      m.jobsOldestDue.reset()
      for (const q of queues()) {
        m.jobsQueued.set({ queue: q, state: 'due' }, 0)
        m.jobsQueued.set({ queue: q, state: 'scheduled' }, 0)
        m.jobsOldestDue.set({ queue: q }, 0)
      }
      for (const j of r.jobs) {
        m.jobsQueued.set({ queue: j.queue, state: 'due' }, Number(j.due))
        m.jobsQueued.set({ queue: j.queue, state: 'scheduled' }, Number(j.scheduled))
        const oldest = j.oldest ? new Date(j.oldest) : null
        m.jobsOldestDue.set({ queue: j.queue }, oldest ? Math.max(0, (now.getTime() - oldest.getTime()) / 1000) : 0)
      }
      m.feedUnsequenced.set(Number(r.feed.n))
      m.feedUnsequencedAge.set(r.feed.oldest ? Math.max(0, (now.getTime() - new Date(r.feed.oldest).getTime()) / 1000) : 0)
      m.webhookEndpointsDisabled.set(Number(r.endpoints.n))
      m.databaseUp.set(1)
    } catch (err) {
      app.log.warn({ err }, 'metrics: database figures unavailable')
      // Stale figures would hide the outage: leave them out.
      for (const g of [m.jobsQueued, m.jobsOldestDue, m.feedUnsequenced, m.feedUnsequencedAge, m.webhookEndpointsDisabled]) g.reset()
      m.databaseUp.set(0)
    } finally {
      clearTimeout(timer)
    }
  }
}

export interface MetricsAccess {
  /** Bearer token required to read /metrics (METRICS_TOKEN). */
  token?: string | undefined
}

/** Checks the bearer token in constant time; true when none is configured. */
export function metricsAuthorised(authorization: string | undefined, token: string | undefined) {
  if (!token) return true
  const given = Buffer.from(authorization?.startsWith('Bearer ') ? authorization.slice(7) : '')
  const wanted = Buffer.from(token)
  return given.length === wanted.length && timingSafeEqual(given, wanted)
}

/** Where /metrics is served: on the main port (behind the token when set), on a separate port, or not at all. */
export function metricsExposure(config: Pick<Config, 'METRICS_PORT' | 'METRICS_TOKEN' | 'NODE_ENV'>): 'main' | 'separate' | 'off' {
  if (config.METRICS_PORT !== undefined) return 'separate'
  if (config.METRICS_TOKEN) return 'main'
  return config.NODE_ENV === 'production' ? 'off' : 'main'
}

/**
 * Decorates app.metrics, times every request, and serves GET /metrics on the main port when configured so
 * (outside the contract: hidden from the OpenAPI document).
 */
export default fp(
  async function metricsPlugin(app: FastifyInstance, opts: { config: Config; database: DatabaseHandle }) {
    const metrics = new Metrics()
    app.decorate('metrics', metrics)
    app.addHook('onClose', async () => metrics.stop())

    app.addHook('onResponse', (request, reply, done) => {
      metrics.httpDuration.observe(
        { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      )
      done()
    })

    metrics.addCollector(() => {
      const u = opts.database.usage()
      metrics.dbPool.set({ state: 'in_use', }, u.total - u.idle)
      metrics.dbPool.set({ state: 'idle' }, u.idle)
      metrics.dbPool.set({ state: 'waiting' }, u.waiting)
      metrics.dbPool.set({ state: 'max' }, u.max)
      const s = opts.database.statements()
      metrics.dbStatements.reset()
      metrics.dbStatements.inc({ pool: 'general' }, s.general)
      metrics.dbStatements.inc({ pool: 'counter' }, s.counter)
    })
    // Registered after the others (the job runner is decorated by the events plugin): read at scrape time.
    app.addHook('onReady', async () => {
      metrics.addCollector(databaseCollector(app, () => app.jobs?.queues ?? []))
    })

    if (metricsExposure(opts.config) !== 'main') return
    app.get('/metrics', { config: { roles: 'public' }, schema: { hide: true } }, async (request: FastifyRequest, reply: FastifyReply) => {
      if (!metricsAuthorised(request.headers.authorization, opts.config.METRICS_TOKEN)) {
        return sendProblem(reply.header('www-authenticate', 'Bearer realm="metrics"'), 'UNAUTHENTICATED')
      }
      const { contentType, body } = await metrics.render()
      return reply.type(contentType).send(body)
    })
  },
  { name: 'metrics' },
)

/**
 * Serves GET /metrics alone on METRICS_PORT (an address the scraper reaches and the public does not); the token
 * is still checked when set. Returns a function that closes it.
 */
export async function listenMetrics(app: FastifyInstance, config: Config): Promise<{ address: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('only GET /metrics here\n')
      return
    }
    if (!metricsAuthorised(req.headers.authorization, config.METRICS_TOKEN)) {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="metrics"' }).end('bearer token required\n')
      return
    }
    app.metrics.render().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
      (err) => {
        app.log.error({ err }, 'metrics: rendering failed')
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n')
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.METRICS_PORT ?? 0, config.METRICS_HOST ?? config.HOST, () => resolve())
  })
  const a = server.address() as { address: string; port: number }
  return {
    address: `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`,
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

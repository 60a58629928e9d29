import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import type { FastifyServerOptions } from 'fastify'
import { buildApp } from './app.ts'
import { ConfigError, type Config, loadConfig } from './platform/config.ts'
import { createDatabase } from './platform/db/index.ts'
import { migrateToLatest } from './platform/db/migrate.ts'
import { listenMetrics, metricsExposure } from './platform/metrics.ts'
import { startTracing, stopTracing } from './platform/tracing.ts'
import { signDevToken } from './platform/tokens.ts'
import { loadDemoData } from './demo/seed.ts'

function loggerOptions(config: Config): FastifyServerOptions['logger'] {
  const base = {
    level: config.LOG_LEVEL,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[masqué]' },
  }
  // JSON everywhere; human-readable only on a terminal.
  return process.stdout.isTTY ? { ...base, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' } } } : base
}

async function main() {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      process.exit(78) // EX_CONFIG
    }
    throw err
  }

  const startedAt = Date.now()
  const tracing = await startTracing() // when OTEL_* ask for it
  const database = await createDatabase({
    databaseUrl: config.DATABASE_URL,
    pgliteDir: config.PGLITE_DIR,
    poolMax: config.DATABASE_POOL_MAX,
    poolMin: config.DATABASE_POOL_MIN,
    connectTimeoutMs: config.DATABASE_CONNECT_TIMEOUT_MS,
    onConnectionError: (err) => console.error(JSON.stringify({ level: 50, msg: 'database connection failed outside a request', err: err.message })),
  })
  if (config.AUTO_MIGRATE) await migrateToLatest(database.db)
  const demo = config.DEMO_DATA ? await loadDemoData(database.db) : null

  const app = await buildApp({ config, database, logger: loggerOptions(config) })
  // The whole request must arrive within it. 120 s: a streamed pack upload (up to a million serials) is read only as
  // fast as it is inserted: 22 s here for a million new serials, 39 s for the same million sent again.
  app.server.requestTimeout = 120_000
  app.server.keepAliveTimeout = 65_000 // above common load-balancer idle timeouts

  let metricsServer: Awaited<ReturnType<typeof listenMetrics>> | undefined
  // Draining (SIGTERM): readiness turns 503 at once, answers carry Connection: close, streams end with a reconnect
  // hint; the instance keeps serving for DRAIN_DELAY_MS while the load balancer takes it out, then stops
  // listening and lets in-flight requests finish. Ctrl-C (SIGINT) and a crash skip the delay.
  closeWithGrace({ delay: config.DRAIN_DELAY_MS + config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error')
    app.drain.start()
    if (!err && signal === 'SIGTERM' && config.DRAIN_DELAY_MS > 0) {
      app.log.info({ signal, drainDelayMs: config.DRAIN_DELAY_MS }, 'draining: readiness answers 503, still serving')
      await sleep(config.DRAIN_DELAY_MS)
    }
    app.log.info({ signal }, 'shutting down: no new connections, finishing in-flight requests')
    await app.close() // stops listening, waits for in-flight requests
    await metricsServer?.close()
    await database.close()
    await stopTracing()
    app.log.info('stopped')
  })

  const address = await app.listen({ host: config.HOST, port: config.PORT })
  const base = config.PUBLIC_URL ?? address.replace('0.0.0.0', 'localhost').replace('127.0.0.1', 'localhost')
  app.log.info({ address, database: database.kind, tracing, ms: Date.now() - startedAt }, 'listening')
  const exposure = metricsExposure(config)
  if (exposure === 'separate') {
    metricsServer = await listenMetrics(app, config)
    app.log.info({ address: `${metricsServer.address}/metrics` }, 'metrics listening')
  } else if (exposure === 'off') {
    app.log.warn('metrics off: set METRICS_TOKEN or METRICS_PORT to serve /metrics in production')
  }

  const lines = [
    '',
    `  Portail DP API — ${database.kind === 'pglite' ? `embedded database in ${config.PGLITE_DIR}` : 'PostgreSQL'}`,
    `  Docs and guides:   ${base}/docs`,
    `  OpenAPI document:  ${base}/openapi.json`,
  ]
  if (demo) lines.push(`  Demo data loaded:  ${demo.organisations} organisations, ${demo.products} products, ${demo.shortages} shortage declarations (BDPM availability file)`)
  if (config.authMode === 'secret') {
    const pharmacy = signDevToken(config, { role: 'pharmacy', org: '750100010' })
    lines.push(
      '',
      '  Development token (pharmacy 750100010, 12 h) — others: npm run token -- --role lab --org 301234563',
      `  TOKEN=${pharmacy}`,
      `  curl -H "Authorization: Bearer $TOKEN" ${base}/v1/products/3400949497294`,
      '',
    )
  }
  console.log(lines.join('\n'))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

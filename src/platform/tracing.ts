import { createRequire } from 'node:module'
import type { FastifyOtelInstrumentation } from '@fastify/otel'
import type { NodeSDK, tracing } from '@opentelemetry/sdk-node'
import type { FastifyInstance } from 'fastify'

/**
 * OpenTelemetry tracing, off by default, switched on by the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER (otlp, console, zipkin); OTEL_SDK_DISABLED=true or
 * OTEL_TRACES_EXPORTER=none keep it off. The rest (OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_*)
 * is read by the SDK itself. A span per request (@fastify/otel) with the request id as `http.request.id`,
 * children for the route's hooks and handler, and one per SQL query (the PostgreSQL instrumentation). Only traces
 * leave this way: metrics are Prometheus (/metrics).
 *
 * The SDK and the instrumentations are loaded only when tracing is switched on: they take about a second to load,
 * which every process (and every test file) would otherwise pay for nothing.
 */

export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false
  const exporters = env.OTEL_TRACES_EXPORTER?.trim()
  if (exporters) return exporters.split(',')[0]!.trim() !== 'none'
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
}

let active: { sdk: NodeSDK; fastify: FastifyOtelInstrumentation } | undefined

export interface TracingOptions {
  /** Where spans go instead of the exporters named by the environment (tests: an in-memory exporter). */
  spanProcessors?: tracing.SpanProcessor[]
  env?: NodeJS.ProcessEnv
}

/** Starts the SDK once per process when the environment (or the options) ask for it; true when tracing is on. */
export async function startTracing(opts: TracingOptions = {}): Promise<boolean> {
  if (active) return true
  const env = opts.env ?? process.env
  if (!opts.spanProcessors && !tracingRequested(env)) return false
  const [{ FastifyOtelInstrumentation }, { PgInstrumentation }, { NodeSDK }] = await Promise.all([
    import('@fastify/otel'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/sdk-node'),
  ])
  if (active) return true // started by a concurrent call while loading
  // The SDK would also start OTLP metrics and logs by default; those figures are served as Prometheus metrics.
  env.OTEL_METRICS_EXPORTER ??= 'none'
  env.OTEL_LOGS_EXPORTER ??= 'none'
  const fastify = new FastifyOtelInstrumentation({
    requestHook: (span, request) => {
      span.setAttribute('http.request.id', String(request.id))
    },
  })
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? 'portail-dp-api',
    instrumentations: [fastify, new PgInstrumentation({ requireParentSpan: true })],
    ...(opts.spanProcessors ? { spanProcessors: opts.spanProcessors } : {}),
  })
  sdk.start()
  // The instrumentations patch modules as they are required. `pg` may already be loaded (ES modules are loaded
  // before any code runs): requiring it again through the patched loader patches its classes in place.
  const require = createRequire(import.meta.url)
  require('pg')
  require('pg-pool')
  active = { sdk, fastify }
  return true
}

/** Registers the request instrumentation on the app, when tracing was started (before any route). */
export async function registerTracing(app: FastifyInstance) {
  if (active) await app.register(active.fastify.plugin())
}

/** Flushes and stops the SDK (at shutdown). */
export async function stopTracing() {
  const a = active
  active = undefined
  await a?.sdk.shutdown()
}

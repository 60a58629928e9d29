import { tracing } from '@opentelemetry/sdk-node'
import t from 'tap'
import { startTracing, stopTracing, tracingRequested } from '../src/platform/tracing.ts'
import { ORG, testApp } from './helpers.ts'

t.test('off by default; the standard OTEL_* variables switch it on or keep it off', async (t) => {
  t.equal(tracingRequested({}), false, 'nothing set: off')
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), true)
  t.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }), true)
  t.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' }), true)
  t.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), false)
  t.equal(tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), false)
  t.equal(await startTracing({ env: {} }), false, 'not started without them')
})

t.test('a request span carries the request id, with the SQL queries under it', async (t) => {
  const exporter = new tracing.InMemorySpanExporter()
  t.ok(await startTracing({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] }))
  t.teardown(stopTracing)
  const { app, auth } = await testApp(t)

  const res = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.labArrow}`, headers: { ...auth('lab', ORG.labArrow), 'x-request-id': 'trace-test-0001' } })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.headers['x-request-id'], 'trace-test-0001')

  const spans = exporter.getFinishedSpans()
  const request = spans.find((s) => s.attributes['http.request.id'] === 'trace-test-0001')
  t.ok(request, 'a request span with the request id')
  if (!request) return
  t.notOk(request.parentSpanContext, 'it is the root of its trace')
  const ancestors = (s: tracing.ReadableSpan): string[] => {
    const parent = spans.find((p) => p.spanContext().spanId === s.parentSpanContext?.spanId)
    return parent ? [parent.spanContext().spanId, ...ancestors(parent)] : []
  }
  const under = spans.filter((s) => s.spanContext().traceId === request.spanContext().traceId && ancestors(s).includes(request.spanContext().spanId))
  t.ok(under.some((s) => s.name.startsWith('handler')), `the handler under it (${under.map((s) => s.name).join(', ')})`)
  const queries = under.filter((s) => s.attributes['db.system'] === 'postgresql' || s.attributes['db.system.name'] === 'postgresql')
  if (process.env.DATABASE_URL) {
    t.ok(queries.length > 0, 'SQL query spans under the request span')
    t.ok(queries.some((q) => Object.values(q.attributes).some((v) => /\bselect\b/i.test(String(v)))), 'with their SQL text')
  } else {
    t.comment('embedded database: no pg driver, so no query spans (run with DATABASE_URL to see them)')
  }
})

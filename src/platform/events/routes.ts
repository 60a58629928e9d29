/** The feed's and the sent events' HTTP routes: each parses, calls one use case and shapes the answer. */
import { Type } from 'typebox'
import { principalOf } from '../auth.ts'
import { ROLES } from '../db/schema.ts'
import { isHttp2 } from '../connection.ts'
import { IdempotencyKeyHeader, problems } from '../openapi.ts'
import { PageQuery } from '../schemas.ts'
import type { RoutePlugin } from '../types.ts'
import { Coverage, EventParams, FeedPage, ReadRequest, ReadResult, RecipientPage, SentEventPage } from './schemas.ts'
import { DRAIN_RETRY_MS, streamFeed } from './stream.ts'
import { type Deps, eventCoverage, eventRecipients, markFeedRead, pullFeed, sentEvents } from './use-cases.ts'

const MAX_WAIT_S = 60

const routes: RoutePlugin = async (app) => {
  const deps: Deps = { db: app.db, hub: app.hub, metrics: app.metrics, drain: app.drain, now: () => app.now(), stallMs: app.config.STREAM_STALL_MS }

  app.get(
    '/feed',
    {
      config: { roles: ROLES }, // every role receives events
      schema: {
        tags: ['events'],
        operationId: 'readFeed',
        summary: 'Your events after a position (pull, long-poll)',
        description:
          'Events addressed to your organisation, in order, after `after` (0 for everything). With `wait`, the call waits up to that many seconds for something new when there is nothing yet (long-poll). Returned events are recorded as delivered. No gaps, no duplicates: a position is only given once its transaction has committed, and positions only grow.',
        querystring: Type.Object(
          {
            after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: 'Last position you processed.' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            wait: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_S, default: 0, description: 'Seconds to wait for something new (long-poll).' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: FeedPage },
      },
    },
    async (request) => pullFeed(deps, principalOf(request).org, request.query),
  )

  app.get(
    '/feed/stream',
    {
      config: { roles: ROLES }, // every role receives events
      schema: {
        tags: ['events'],
        operationId: 'streamFeed',
        summary: 'Your events as they happen (Server-Sent Events)',
        description: [
          '`text/event-stream`: each event is sent as `id: <pos>`, `event: <type>`, `data: <FeedEvent JSON>`. It starts after `Last-Event-ID` (header, sent by EventSource when it reconnects) or `after`, sends what you missed, then new events within a second of their commit.',
          'A comment line is sent every 15 s as a heartbeat; `retry:` asks clients to reconnect after 3 s. A client that stops reading for 10 s is disconnected (it resumes from its last id); the server never queues events for a slow client, so it never slows the others.',
          `When the instance stops (deployment, scaling), the stream ends with \`retry: ${DRAIN_RETRY_MS}\` and a comment line: reconnect with \`Last-Event-ID\` and nothing is lost. Long-polls return at once, with what there is, during that time.`,
        ].join('\n\n'),
        querystring: Type.Object({ after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })) }, { additionalProperties: false }),
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^\\d{1,18}$' })) }),
        response: { 200: { description: 'A stream of events.', content: { 'text/event-stream': { schema: Type.String() } } } },
      },
    },
    async (request, reply) => {
      const { org } = principalOf(request)
      const lastSent = Number(request.headers['last-event-id'] ?? request.query.after ?? 0)
      const raw = reply.raw
      reply.hijack()
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        ...(isHttp2(request) ? {} : { connection: 'keep-alive' }), // HTTP/2 has no connection header
        'x-accel-buffering': 'no',
        'x-request-id': request.id,
      })
      await streamFeed(deps, raw, { org, lastSent, log: request.log })
    },
  )

  app.post(
    '/feed/read',
    {
      config: { roles: ROLES }, // every role receives events
      schema: {
        tags: ['events'],
        operationId: 'markEventsRead',
        summary: 'Record that events were read',
        description: 'Idempotent. Ids that are not events of your feed are listed under `unknown`, without telling whether they exist.',
        headers: IdempotencyKeyHeader,
        body: ReadRequest,
        response: { 200: ReadResult },
      },
    },
    async (request) => markFeedRead(deps, principalOf(request).org, request.body.eventIds),
  )

  app.get(
    '/events/:eventId/coverage',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['events'],
        operationId: 'getEventCoverage',
        summary: 'Coverage of an event you sent (sender, ANSM, operator)',
        params: EventParams,
        response: { 200: Coverage, ...problems(404) },
      },
    },
    async (request) => eventCoverage(deps, principalOf(request), request.params.eventId),
  )

  app.get(
    '/events/:eventId/recipients',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['events'],
        operationId: 'listEventRecipients',
        summary: 'Recipients of an event you sent, e.g. those not reached yet',
        params: EventParams,
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Enum(['undelivered', 'unread', 'unacknowledged'], { description: 'Only recipients not yet reached / not yet read / not yet acknowledged.' })),
            role: Type.Optional(Type.Enum([...ROLES])),
            department: Type.Optional(Type.String({ pattern: '^(\\d{2}|2A|2B|97\\d)$' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: RecipientPage, ...problems(404) },
      },
    },
    async (request) => eventRecipients(deps, principalOf(request), request.params.eventId, request.query),
  )

  app.get(
    '/events/sent',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['events'],
        operationId: 'listSentEvents',
        summary: 'Events your organisation caused, newest first',
        querystring: Type.Object({ type: Type.Optional(Type.String({ maxLength: 100 })), ...PageQuery }, { additionalProperties: false }),
        response: { 200: SentEventPage },
      },
    },
    async (request) => sentEvents(deps, principalOf(request).org, request.query),
  )
}

export default routes

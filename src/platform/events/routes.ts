import { Type, type Static } from 'typebox'
import { sql } from 'kysely'
import { principalOf } from '../auth.ts'
import { type Role, ROLES } from '../db/schema.ts'
import { notFound } from '../errors.ts'
import { IdempotencyKeyHeader, problems } from '../openapi.ts'
import { component, Page, PageQuery } from '../schemas.ts'
import { decodeCursor, encodeCursor } from '../cursor.ts'
import type { RoutePlugin } from '../types.ts'
import { type FeedItem, markDelivered, readFeed, touchFeedReader } from './feed.ts'
import { markRead } from './publish.ts'


const nullableString = Type.Union([Type.String(), Type.Null()])

export const FeedEvent = component(
  Type.Object(
    {
      pos: Type.Integer({ description: 'Position in your feed: strictly increasing. Keep the last one you processed and pass it as `after`.' }),
      id: Type.String({ format: 'uuid', description: 'Event id: the same for every recipient. (A webhook delivery has its own webhook-id, stable across retries.)' }),
      type: Type.String({ examples: ['recall.broadcast'], description: 'What happened; the payload’s shape depends on it.' }),
      createdAt: Type.String({ format: 'date-time' }),
      sender: Type.Union([Type.String(), Type.Null()], { description: 'Organisation whose action caused it (lab, ANSM); null for the system.' }),
      subject: Type.Union([Type.Object({ type: Type.String(), id: Type.String() }), Type.Null()], { description: 'The object the event is about.' }),
      payload: Type.Unknown({ description: 'Event data.' }),
      readAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
      ack: Type.Unknown({ description: 'Your acknowledgement recorded by the service concerned (e.g. a recall’s quantities), or null.' }),
    },
    {
      $id: 'FeedEvent',
      examples: [
        {
          pos: 1042, id: '0b7e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e', type: 'recall.broadcast', createdAt: '2026-11-22T09:14:03.120Z', sender: '412345670',
          subject: { type: 'recall', id: 'RAP-2026-0042' }, payload: { reference: 'RAP-2026-0042', message: 'Rappel du lot B12345…' }, readAt: null, ack: null,
        },
      ],
    },
  ),
)

const FeedPage = component(
  Type.Object(
    {
      items: Type.Array(FeedEvent),
      nextAfter: Type.Integer({ description: 'Pass as `after` next time: the position of the last item, or your `after` when there was nothing new.' }),
    },
    { $id: 'FeedPage' },
  ),
)

const Counts = { recipients: Type.Integer(), delivered: Type.Integer(), read: Type.Integer(), acknowledged: Type.Integer() }
export const Coverage = component(
  Type.Object(
    {
      eventId: Type.String({ format: 'uuid' }),
      type: Type.String(),
      createdAt: Type.String({ format: 'date-time' }),
      ...Counts,
      byRole: Type.Array(Type.Object({ role: Type.String(), ...Counts })),
      byDepartment: Type.Array(Type.Object({ department: nullableString, region: nullableString, ...Counts })),
      fax: Type.Object({ queued: Type.Integer(), sent: Type.Integer(), failed: Type.Integer(), paperLetter: Type.Integer() }, { description: 'Recipients reached by fax (no integration).' }),
    },
    {
      $id: 'Coverage',
      description: 'How far an event has gone: recipients reached (delivered), read, acknowledged, by category and department.',
      examples: [
        {
          eventId: '0b7e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e', type: 'recall.broadcast', createdAt: '2026-11-22T09:14:03.120Z', recipients: 3, delivered: 2, read: 1, acknowledged: 1,
          byRole: [{ role: 'pharmacy', recipients: 2, delivered: 2, read: 1, acknowledged: 1 }, { role: 'wholesaler', recipients: 1, delivered: 0, read: 0, acknowledged: 0 }],
          byDepartment: [{ department: '75', region: '11', recipients: 2, delivered: 1, read: 1, acknowledged: 1 }, { department: '2A', region: '94', recipients: 1, delivered: 1, read: 0, acknowledged: 0 }],
          fax: { queued: 1, sent: 0, failed: 0, paperLetter: 0 },
        },
      ],
    },
  ),
)

const Recipient = component(
  Type.Object(
    {
      orgId: Type.String(),
      name: Type.String(),
      role: Type.String(),
      department: nullableString,
      deliveredAt: nullableString,
      deliveredVia: Type.Union([Type.Enum(['pull', 'stream', 'webhook', 'read', 'fax']), Type.Null()]),
      readAt: nullableString,
      acknowledgedAt: nullableString,
      ack: Type.Unknown(),
      fax: Type.Union([Type.Enum(['queued', 'sent', 'failed', 'paper_letter']), Type.Null()]),
    },
    { $id: 'EventRecipient' },
  ),
)
const RecipientPage = Page(Recipient, 'EventRecipientPage')

const SentEvent = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      type: Type.String(),
      createdAt: Type.String({ format: 'date-time' }),
      subject: Type.Union([Type.Object({ type: Type.String(), id: Type.String() }), Type.Null()]),
      recipients: Type.Integer(),
    },
    { $id: 'SentEvent' },
  ),
)
const SentEventPage = Page(SentEvent, 'SentEventPage')

const ReadRequest = component(
  Type.Object({ eventIds: Type.Array(Type.String({ format: 'uuid' }), { minItems: 1, maxItems: 500, uniqueItems: true }) }, { $id: 'EventsReadInput', additionalProperties: false }),
)
const ReadResult = component(
  Type.Object(
    {
      read: Type.Array(Type.String({ format: 'uuid' }), { description: 'Recorded as read (again, harmlessly, if they already were).' }),
      unknown: Type.Array(Type.String({ format: 'uuid' }), { description: 'Not events of your feed.' }),
    },
    { $id: 'ReadResult' },
  ),
)

const EventParams = Type.Object({ eventId: Type.String({ format: 'uuid' }) })
const eventNotFound = () => notFound('L’événement', 'The event')
const MAX_WAIT_S = 60
const HEARTBEAT_MS = 15_000
/** The reconnect delay a stream ended by a draining instance asks for (SSE `retry:`). */
const DRAIN_RETRY_MS = 1000
const DRAIN_NOTICE = `retry: ${DRAIN_RETRY_MS}\n: instance en cours d’arrêt, reconnectez-vous / instance stopping, reconnect\n\n`

const routes: RoutePlugin = async (app) => {
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
    async (request) => {
      const { org } = principalOf(request)
      const { after = 0, limit = 100, wait = 0 } = request.query
      let items = await readFeed(app.db, org, after, limit)
      if (items.length === 0 && wait > 0) {
        await app.hub.wait(org, wait * 1000)
        items = await readFeed(app.db, org, after, limit)
      }
      await markDelivered(app.db, items.map((i) => i.pos), 'pull', app.now())
      await touchFeedReader(app.db, org, app.now())
      if (items.length) app.metrics.delivered.inc({ channel: wait > 0 ? 'long_poll' : 'pull' }, items.length)
      return { items, nextAfter: items.at(-1)?.pos ?? after }
    },
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
      let lastSent = Number(request.headers['last-event-id'] ?? request.query.after ?? 0)
      const raw = reply.raw
      reply.hijack()
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        'x-request-id': request.id,
      })
      if (app.drain.draining) {
        // This instance is stopping: the client comes back, through the load balancer, to another one.
        raw.end(DRAIN_NOTICE)
        return
      }
      raw.write('retry: 3000\n\n')
      void touchFeedReader(app.db, org, app.now()).catch((err) => request.log.warn({ err }, 'could not record the feed reader'))

      // Flow control: write while the socket accepts; when it pushes back, stop and re-read from the database
      // after 'drain'. The database is the buffer, so a connection holds at most one socket buffer and one
      // event, whatever the client's speed. A client that stays stalled is dropped; it resumes from its last id.
      let state: 'catchup' | 'live' | 'blocked' | 'closed' = 'catchup'
      let missed = false
      let stallTimer: NodeJS.Timeout | undefined
      const close = () => {
        if (state === 'closed') return
        state = 'closed'
        clearInterval(heartbeat)
        clearTimeout(stallTimer)
        unsubscribe()
        raw.end()
      }
      const write = (items: FeedItem[]) => {
        const sent: number[] = []
        for (const item of items) {
          if (item.pos <= lastSent) continue
          const accepted = raw.write(`id: ${item.pos}\nevent: ${item.type}\ndata: ${JSON.stringify(item)}\n\n`)
          lastSent = item.pos
          sent.push(item.pos)
          if (!accepted) {
            state = 'blocked'
            stallTimer = setTimeout(() => {
              request.log.info({ org, lastSent }, 'stalled stream dropped')
              raw.destroy()
            }, app.config.STREAM_STALL_MS)
            raw.once('drain', () => {
              clearTimeout(stallTimer)
              if (state !== 'blocked') return
              state = 'catchup'
              void pump()
            })
            break
          }
        }
        if (sent.length) {
          app.hub.delivered(sent)
          app.metrics.delivered.inc({ channel: 'stream' }, sent.length)
        }
      }
      const pump = async () => {
        try {
          for (;;) {
            missed = false
            const items = await readFeed(app.db, org, lastSent, 200)
            if (state !== 'catchup') return
            if (items.length === 0) {
              if (missed) continue // something was sequenced while we read: read again
              state = 'live'
              return
            }
            write(items)
            if (state !== 'catchup') return
          }
        } catch (err) {
          request.log.error({ err }, 'stream catch-up failed')
          close()
        }
      }
      const unsubscribe = app.hub.subscribe({
        orgId: org,
        push: (items) => {
          if (state === 'live') write(items)
          else missed = true // catching up or blocked: these will be read from the database
        },
        // Shutdown or drain: tell the client to reconnect soon (to another instance), then end cleanly.
        end: () => {
          if (state !== 'closed') raw.write(DRAIN_NOTICE)
          close()
        },
      })
      const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), HEARTBEAT_MS)
      raw.on('close', close)
      raw.on('error', close)
      await pump()
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
    async (request) => {
      const { org } = principalOf(request)
      const read = await markRead(app.db, org, request.body.eventIds, app.now())
      const found = new Set(read)
      return { read, unknown: request.body.eventIds.filter((id) => !found.has(id)) }
    },
  )

  /** The sender of an event, ANSM and the operator follow it; anyone else gets 404. */
  async function visibleEvent(eventId: string, role: Role, org: string) {
    const e = await app.db.selectFrom('events').select(['id', 'type', 'created_at', 'sender_org']).where('id', '=', eventId).executeTakeFirst()
    if (!e || !(role === 'ansm' || role === 'ordre' || (e.sender_org !== null && e.sender_org === org))) throw eventNotFound()
    return e
  }

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
    async (request) => {
      const { role, org } = principalOf(request)
      const e = await visibleEvent(request.params.eventId, role, org)
      const counts = (eb: any) => [
        eb.fn.countAll().as('recipients'),
        eb.fn.countAll().filterWhere('delivered_at', 'is not', null).as('delivered'),
        eb.fn.countAll().filterWhere('read_at', 'is not', null).as('read'),
        eb.fn.countAll().filterWhere('acked_at', 'is not', null).as('acknowledged'),
      ]
      const base = app.db.selectFrom('event_deliveries').where('event_id', '=', e.id)
      const [total, byRole, byDepartment, fax] = await Promise.all([
        base.select(counts).executeTakeFirstOrThrow(),
        base.select('role').select(counts).groupBy('role').orderBy('role').execute(),
        base.select(['department', 'region']).select(counts).groupBy(['department', 'region']).orderBy('department').execute(),
        base
          .select((eb) => [
            eb.fn.countAll().filterWhere('fax_status', '=', 'queued').as('queued'),
            eb.fn.countAll().filterWhere('fax_status', '=', 'sent').as('sent'),
            eb.fn.countAll().filterWhere('fax_status', '=', 'failed').as('failed'),
            eb.fn.countAll().filterWhere('fax_status', '=', 'paper_letter').as('paperLetter'),
          ])
          .executeTakeFirstOrThrow(),
      ])
      const n = (r: any) => ({ recipients: Number(r.recipients), delivered: Number(r.delivered), read: Number(r.read), acknowledged: Number(r.acknowledged) })
      return {
        eventId: e.id,
        type: e.type,
        createdAt: e.created_at.toISOString(),
        ...n(total),
        byRole: byRole.map((r) => ({ role: r.role, ...n(r) })),
        byDepartment: byDepartment.map((r) => ({ department: r.department, region: r.region, ...n(r) })),
        fax: { queued: Number(fax.queued), sent: Number(fax.sent), failed: Number(fax.failed), paperLetter: Number(fax.paperLetter) },
      } satisfies Static<typeof Coverage>
    },
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
    async (request) => {
      const p = principalOf(request)
      const e = await visibleEvent(request.params.eventId, p.role, p.org)
      const { status, role, department, limit = 50, cursor } = request.query
      const filter = { e: e.id, status, role, department }
      const after = cursor ? decodeCursor<{ org: string }>(cursor, filter) : null
      let q = app.db
        .selectFrom('event_deliveries as d')
        .innerJoin('organisations as o', 'o.id', 'd.org_id')
        .select(['d.org_id', 'o.name', 'd.role', 'd.department', 'd.delivered_at', 'd.delivered_via', 'd.read_at', 'd.acked_at', 'd.ack', 'd.fax_status'])
        .where('d.event_id', '=', e.id)
        .orderBy('d.org_id')
        .limit(limit + 1)
      if (status === 'undelivered') q = q.where('d.delivered_at', 'is', null)
      if (status === 'unread') q = q.where('d.read_at', 'is', null)
      if (status === 'unacknowledged') q = q.where('d.acked_at', 'is', null)
      if (role) q = q.where('d.role', '=', role)
      if (department) q = q.where('d.department', '=', department)
      if (after) q = q.where('d.org_id', '>', after.org)
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      return {
        items: page.map((r) => ({
          orgId: r.org_id, name: r.name, role: r.role, department: r.department,
          deliveredAt: r.delivered_at?.toISOString() ?? null, deliveredVia: (r.delivered_via as any) ?? null,
          readAt: r.read_at?.toISOString() ?? null, acknowledgedAt: r.acked_at?.toISOString() ?? null, ack: r.ack ?? null, fax: r.fax_status,
        })),
        nextCursor: rows.length > limit ? encodeCursor({ org: page.at(-1)!.org_id }, filter) : null,
      }
    },
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
    async (request) => {
      const { org } = principalOf(request)
      const { type, limit = 50, cursor } = request.query
      const filter = { type }
      const after = cursor ? decodeCursor<{ at: string; id: string }>(cursor, filter) : null
      let q = app.db
        .selectFrom('events')
        .select(['id', 'type', 'created_at', 'subject_type', 'subject_id', 'recipients'])
        .where('sender_org', '=', org)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit + 1)
      if (type) q = q.where('type', '=', type)
      if (after) q = q.where(sql<boolean>`(created_at, id) < (${new Date(after.at)}::timestamptz, ${after.id}::uuid)`)
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      return {
        items: page.map((r) => ({
          id: r.id, type: r.type, createdAt: r.created_at.toISOString(),
          subject: r.subject_type && r.subject_id ? { type: r.subject_type, id: r.subject_id } : null, recipients: r.recipients,
        })),
        nextCursor: rows.length > limit ? encodeCursor({ at: page.at(-1)!.created_at.toISOString(), id: page.at(-1)!.id }, filter) : null,
      }
    },
  )
}

export default routes

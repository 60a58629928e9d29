/** The event feed's API schemas: feed pages, coverage, recipients, sent events, read receipts. */
import { Type } from 'typebox'
import { component, Page } from '../schemas.ts'

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

export const FeedPage = component(
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
export const RecipientPage = Page(Recipient, 'EventRecipientPage')

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
export const SentEventPage = Page(SentEvent, 'SentEventPage')

export const ReadRequest = component(
  Type.Object({ eventIds: Type.Array(Type.String({ format: 'uuid' }), { minItems: 1, maxItems: 500, uniqueItems: true }) }, { $id: 'EventsReadInput', additionalProperties: false }),
)
export const ReadResult = component(
  Type.Object(
    {
      read: Type.Array(Type.String({ format: 'uuid' }), { description: 'Recorded as read (again, harmlessly, if they already were).' }),
      unknown: Type.Array(Type.String({ format: 'uuid' }), { description: 'Not events of your feed.' }),
    },
    { $id: 'ReadResult' },
  ),
)

export const EventParams = Type.Object({ eventId: Type.String({ format: 'uuid' }) })

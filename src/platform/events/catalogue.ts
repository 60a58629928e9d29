import { type TObject, type TSchema, Type } from 'typebox'
import { component } from '../schemas.ts'
import { EVENT_TYPES, EVENT_TYPE_NAMES, type EventType } from './event-types.ts'

/**
 * The payload of every event type, one named schema each: the contract's feed, stream and webhook bodies are a
 * union of them (discriminated by `type`), and in tests every published payload is checked against its schema
 * (publish.ts), so that the code cannot publish what the catalogue does not describe. Schemas of the services are
 * named here by their component id (data), never imported.
 */
const T = (description?: string) => Type.String({ format: 'date-time', ...(description ? { description } : {}) })
const Uuid = (description?: string) => Type.String({ format: 'uuid', ...(description ? { description } : {}) })
const S = (description?: string, examples?: string[]) => Type.String({ ...(description ? { description } : {}), ...(examples ? { examples } : {}) })
const N = <X extends TSchema>(s: X, description?: string) => Type.Union([s, Type.Null()], description ? { description } : {})
const Ref = (id: string) => Type.Ref(id)
const closed = (props: Record<string, TSchema>, description: string) => Type.Object(props, { additionalProperties: false, description })

const Lab = Type.Object({ id: S('SIREN of the lab.', ['412345670']), name: S(undefined, ['BIOGARAN']) }, { additionalProperties: false })
const Batch = Type.Object({ cip13: S(undefined, ['3400936128149']), batch: S(undefined, ['L2411A']), expiry: Type.Optional(N(Type.String({ format: 'date' }))) }, { additionalProperties: false })
const Contact = Type.Object({ name: S(), phone: Type.Optional(N(S())), email: Type.Optional(N(S())) }, { additionalProperties: false })
const Field = Type.Object({ label: S(), value: S() }, { additionalProperties: false })
const Kind = (kind: 'recall' | 'alert') => Type.Literal(kind)
const base = (kind: 'recall' | 'alert') => ({
  kind: Kind(kind),
  id: Uuid(`The ${kind}.`),
  reference: S('Its reference.', [kind === 'recall' ? 'R-2026-0001' : 'A-2026-0001']),
  version: Type.Integer({ minimum: 1, description: 'The version concerned.' }),
  title: S('Its subject line.'),
})
const Role = S('A role: lab, ansm…', ['ansm'])

function pipelinePayloads(kind: 'recall' | 'alert') {
  const what = kind === 'recall' ? 'batch recall' : 'public-health alert'
  const message = {
    ...base(kind),
    correction: Type.Boolean({ description: 'true for a corrected version (`updated`).' }),
    lab: Lab,
    reason: S(),
    message: S('The message (French), as ANSM approved it.'),
    messageEn: N(S(), 'The English text, when the lab wrote one.'),
    ...(kind === 'recall'
      ? {
          action: N(Type.Enum(['quarantine_return', 'destroy', 'stop_dispensing']), 'What recipients must do.'),
          batches: Type.Array(Batch, { description: 'The batches recalled.' }),
          blockDispensation: Type.Boolean({ description: 'Dispensation of the batches is blocked until closure.' }),
        }
      : {}),
    contacts: Type.Array(Contact),
    acknowledgeUrl: S('Where to acknowledge it (POST).', [`/v1/${kind}s/7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b/acknowledgement`]),
    notice: Type.Object(
      {
        title: S(), body: S(), reference: S(), fields: Type.Array(Field),
        acknowledgement: Type.Enum(['quantities', 'read'], { description: 'What the fax form asks back.' }),
      },
      { additionalProperties: false, description: 'The notice as printed (fax) or shown first at the workstation.' },
    ),
  }
  return {
    [`${kind}.submitted`]: closed({ ...base(kind), lab: Lab, revision: Type.Boolean({ description: 'A correction of a version in force.' }) }, `A ${what} (or its correction) waits for ANSM’s decision.`),
    [`${kind}.reviewed`]: closed(
      { ...base(kind), decision: Type.Enum(['approved', 'changes_requested', 'rejected']), comment: N(S(), 'ANSM’s comment.') },
      `ANSM’s decision on the ${what}.`,
    ),
    [`${kind}.comment`]: closed(
      { id: Uuid(), reference: S(), version: Type.Integer({ minimum: 1 }), text: S('The comment.'), from: Role },
      `A comment in the exchange between the lab and ANSM.`,
    ),
    [`${kind}.discarded`]: closed(
      { ...base(kind), reason: N(S()), withdrawn: Type.Boolean({ description: 'The version was waiting for ANSM’s decision.' }), revision: Type.Boolean({ description: 'Only a correction was dropped; the version in force stays.' }) },
      `The lab withdrew a version it had submitted.`,
    ),
    [`${kind}.schedule_cancelled`]: closed({ ...base(kind), reason: N(S()), by: Role }, 'A broadcast scheduled for later was cancelled.'),
    [`${kind}.broadcast`]: closed(message, `A new ${what}: show it, act on it, acknowledge it.`),
    [`${kind}.updated`]: closed(message, `A corrected version of a ${what} is in force.`),
    [`${kind}.reminder`]: closed({ ...message, reminder: Type.Integer({ minimum: 1, description: 'Which reminder (1 = the first).' }) }, `A reminder: you have not ${kind === 'recall' ? 'reported the action done' : 'read it'} yet.`),
    [`${kind}.closed`]: closed(
      {
        kind: Kind(kind), id: Uuid(), reference: S(), version: Type.Integer({ minimum: 1 }), title: S(),
        closedAt: T(), closureReason: N(S()),
        ...(kind === 'recall' ? { batches: Type.Array(Batch), unblocked: Type.Boolean({ description: 'Dispensation of the batches is no longer blocked.' }) } : {}),
        notice: Type.Object({ title: S(), body: S(), reference: S(), fields: Type.Array(Field) }, { additionalProperties: false }),
      },
      `The ${what} is over.`,
    ),
    [`${kind}.report`]: Type.Intersect(
      [Ref('RecallReport'), Type.Object({ reportUrl: S(undefined, [`/v1/${kind}s/7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b/report`]), reportPdfUrl: S() })],
      { description: `The report (bilan) made when the lab closed the ${what} (French labels), with where to read it again.` },
    ),
  } as Record<string, TSchema>
}

const request = (description: string) => closed({ request: Ref('EmergencyRequest') }, description)
const Declaration = { presentations: Type.Array(S(undefined, ['3400936128149'])), declaration: Ref('ShortageDeclarationSummary'), automaticResponse: N(Ref('ShortageAutomaticResponse')) }
const Alert = { reference: S('The alert.', ['ALR-2026-000042']), product: S('CIP13.', ['3400936128149']) }

export const EVENT_PAYLOADS = {
  ...pipelinePayloads('recall'),
  ...pipelinePayloads('alert'),
  'shortage.automatic_response': closed(
    {
      signalId: Type.Optional(Uuid('Your signal, when the answer comes as you signal.')),
      cip13: S(),
      productName: Type.Optional(S()),
      automaticResponse: N(Ref('ShortageAutomaticResponse'), 'null when only the declaration changed.'),
      declaration: N(Ref('ShortageDeclarationSummary')),
    },
    'The lab’s answer on a presentation you signalled: at once when you signal it, then whenever the lab changes its automatic response.',
  ),
  'shortage.signal_lapsed': closed({ signalId: Uuid(), cip13: S() }, 'Your signal was not renewed and lapsed.'),
  'shortage.signal_threshold_reached': closed(
    { cip13: S(), productName: S(), openSignals: Type.Integer({ minimum: 0 }), threshold: Type.Integer({ minimum: 1 }) },
    'Enough pharmacies signalled one of your presentations.',
  ),
  'shortage.declaration_updated': closed(Declaration, 'The lab changed its declaration on a presentation you signalled.'),
  'shortage.declaration_closed': closed(Declaration, 'The lab closed its declaration on a presentation you signalled.'),
  'emergency.request_submitted': request('A pharmacy asks you for a presentation for one patient.'),
  'emergency.request_answered': request('The lab answered your emergency request (`request.answer`).'),
  'emergency.request_received': request('The pharmacy confirmed receipt.'),
  'emergency.request_cancelled': request('The pharmacy cancelled its request.'),
  'emergency.request_escalated': request('A request was not answered in time.'),
  'stock.campaign_created': closed(
    { campaignId: Uuid(), name: S(), products: Type.Array(S(undefined, ['3400936128149'])), startDate: Type.String({ format: 'date' }), endDate: Type.String({ format: 'date' }) },
    'The operator opened a stock-declaration campaign.',
  ),
  'serialization.alert': closed(
    {
      ...Alert, gtin: S(), serial: N(S()), batch: N(S()), expiry: N(S()), code: S('The return code that raised it.', ['PACK_ALREADY_INACTIVE']), action: S('What the pharmacy was doing.', ['verify']),
      pharmacy: S('The pharmacy’s pseudonym (never its FINESS).'), packState: N(S()), at: T(),
    },
    'A verification raised an alert on one of your packs.',
  ),
  'serialization.alert.status': closed(
    { reference: S(), status: S('The alert’s new status.', ['investigating']), conclusion: N(S()), ansmConclusion: Type.Optional(S('ANSM’s conclusion, when it closed an escalated alert.')), at: T() },
    'An alert’s status changed.',
  ),
  'serialization.alert.question': closed({ ...Alert, serial: N(S()), question: S(), from: Type.Enum(['lab', 'ansm']), at: T() }, 'A question on an alert.'),
  'serialization.alert.escalated': closed(
    {
      ...Alert, lab: S(), serial: N(S()), batch: N(S()), expiry: N(S()), code: S(), action: S(), pharmacy: S(),
      occurrences: Type.Integer({ minimum: 1 }), note: N(S()), at: T(),
    },
    'A lab concluded that a pack may be falsified.',
  ),
  'serialization.alert.answer': closed({ ...Alert, serial: N(S()), pharmacy: S(), answer: S(), at: T() }, 'The pharmacy answered a question on an alert.'),
  'eprescription.access.alert': closed(
    {
      prescriptionId: S(), displayId: S(), failures: Type.Integer({ minimum: 0 }), callers: Type.Integer({ minimum: 0 }),
      windowMinutes: Type.Number(), firstAt: T(), raisedAt: T(),
    },
    'Many wrong access codes on one prescription.',
  ),
  'eprescription.dispensation.closed': closed(
    { prescriptionId: S(), displayId: S(), dispensation: Type.Integer({ minimum: 1 }), status: Type.Enum(['ready', 'completed']), closedAt: T() },
    'A dispensation of your prescription was closed.',
  ),
  'webhook.endpoint_disabled': closed(
    { endpointId: Uuid(), url: S(), reason: S(), failureStreak: Type.Integer({ minimum: 0 }), lastError: N(S()), disabledAt: T() },
    'Deliveries to one of your endpoints stopped.',
  ),
  'webhook.test': closed({ test: Type.Literal(true), endpointId: Uuid(), message: S() }, 'A test delivery.'),
  'fax.letter_required': closed(
    {
      letterId: Uuid(), eventId: Uuid(), eventType: S(), eventLabel: S(), reference: N(S()),
      subject: N(Type.Object({ type: S(), id: S() }, { additionalProperties: false })),
      recipient: Type.Object({ id: S(), name: S(), role: S(), fax: N(S()), address: Type.Unknown({ description: 'The postal address, when known.' }) }, { additionalProperties: false }),
      attempts: Type.Integer({ minimum: 0 }), lastError: N(S()), letterUrl: S(), recordSentUrl: S(),
    },
    'A fax failed after every retry: print the letter and record it sent.',
  ),
} satisfies Record<EventType, TSchema>

const pascal = (type: string) => type.split(/[._]/).map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('')
/** Component names: `recall.broadcast` → `RecallBroadcastPayload` and `RecallBroadcastEvent`. */
export const payloadSchemaId = (type: string) => `${pascal(type)}Payload`
export const eventSchemaId = (type: string) => `${pascal(type)}Event`

const EventAcknowledgement = component(
  Type.Object(
    {
      status: Type.Enum(['read', 'done']),
      quarantined: Type.Integer({ minimum: 0 }),
      returned: Type.Integer({ minimum: 0 }),
      destroyed: Type.Integer({ minimum: 0 }),
      noStock: Type.Boolean(),
      comment: N(S()),
    },
    { $id: 'EventAcknowledgement', description: 'What you reported on a recall or alert (POST …/acknowledgement), as it stands.', examples: [{ status: 'done', quarantined: 12, returned: 0, destroyed: 0, noStock: false, comment: null }] },
  ),
)

// One named payload and one named event (the envelope with `type` fixed) per type.
for (const type of EVENT_TYPE_NAMES) {
  const payload = EVENT_PAYLOADS[type] as TObject
  component({ ...payload, $id: payloadSchemaId(type) } as TSchema & { $id: string })
  component(
    Type.Object(
      {
        id: Uuid('Event id: the same for every recipient.'),
        type: Type.Literal(type),
        pos: Type.Union([Type.Integer(), Type.Null()], { description: 'Position in your feed; null in a test delivery.' }),
        createdAt: T(),
        sender: N(S(), 'Organisation whose action caused it; null for the system.'),
        subject: N(Type.Object({ type: S(), id: S() }), 'The object the event is about.'),
        payload: Ref(payloadSchemaId(type)),
        readAt: Type.Optional(N(T(), 'Feed and stream only: when you marked it read.')),
        ack: Type.Optional(N(EventAcknowledgement, 'Feed and stream only: your acknowledgement recorded by the service concerned.')),
      },
      { $id: eventSchemaId(type), description: `\`${type}\` — ${EVENT_TYPES[type].label.en}. ${EVENT_TYPES[type].description}` },
    ),
  )
}

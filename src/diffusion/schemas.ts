import { type TSchema, Type } from 'typebox'
import { defineErrors, errorDef } from '../platform/errors.ts'
import { component } from '../platform/schemas.ts'
import type { PipelineKind } from './db.ts'

defineErrors({
  RECALL_INVALID_TRANSITION: errorDef(409, 'Action impossible dans cet état', 'Action not allowed in this state', (p) => ({
    fr: `${p.label} ${p.reference} est à l’état « ${p.status} » (version ${p.version} : « ${p.versionStatus} ») : l’action « ${p.action} » est impossible ; actions possibles : ${p.allowedText || 'aucune'}.`,
    en: `${p.labelEn} ${p.reference} is "${p.status}" (version ${p.version}: "${p.versionStatus}"): action "${p.action}" is not allowed; allowed actions: ${p.allowedText || 'none'}.`,
  })),
  RECALL_NOT_IN_FORCE: errorDef(409, 'Message non diffusé', 'Message not in force', (p) => ({
    fr: `${p.reference} n’est pas en cours de diffusion (état « ${p.status} ») : aucun accusé de réception n’est possible.`,
    en: `${p.reference} is not being broadcast (status "${p.status}"): no acknowledgement is possible.`,
  })),
})

export const nullable = <T extends TSchema>(s: T, options: { description?: string } = {}) => Type.Union([s, Type.Null()], options)

export const CATEGORIES = ['pharmacy', 'wholesaler', 'hospital'] as const
export const ACTIONS = ['quarantine_return', 'destroy', 'stop_dispensing'] as const
export const ACTION_LABELS: Record<(typeof ACTIONS)[number], { fr: string; en: string }> = {
  quarantine_return: { fr: 'Mettre en quarantaine et retourner les boîtes', en: 'Quarantine and return the boxes' },
  destroy: { fr: 'Détruire les boîtes', en: 'Destroy the boxes' },
  stop_dispensing: { fr: 'Cesser toute dispensation', en: 'Stop dispensing' },
}
export const RECALL_STATUSES = ['draft', 'submitted', 'changes_requested', 'rejected', 'approved', 'broadcast', 'closed', 'discarded'] as const
export const VERSION_STATUSES = ['draft', 'submitted', 'changes_requested', 'rejected', 'approved', 'broadcast', 'superseded', 'cancelled', 'discarded'] as const
export const PIPELINE_ACTIONS = ['edit', 'submit', 'approve', 'request-changes', 'reject', 'close', 'discard', 'cancel-schedule'] as const

const Region = Type.String({ pattern: '^\\d{2}$', description: 'INSEE region code (2016 regions; 01 Guadeloupe, 02 Martinique, 03 Guyane, 04 La Réunion, 06 Mayotte).', examples: ['11'] })
const Department = Type.String({ pattern: '^(\\d{2}|2A|2B|97\\d)$', description: 'Department code (2A/2B for Corsica, 971–976 overseas).', examples: ['2A'] })
const Contact = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    phone: Type.Optional(nullable(Type.String({ minLength: 4, maxLength: 40 }))),
    email: Type.Optional(nullable(Type.String({ format: 'email', maxLength: 200 }))),
  },
  { additionalProperties: false },
)
const Batch = Type.Object(
  {
    cip13: Type.String({ pattern: '^\\d{13}$', description: 'CIP13 of the presentation (one of the lab’s own).', examples: ['3400936128149'] }),
    batch: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9./-]{0,19}$', description: 'Batch number as printed on the box (GS1 AI 10, up to 20 characters).', examples: ['L2411A'] }),
    expiry: Type.Optional(nullable(Type.String({ format: 'date', description: 'Expiry date (YYYY-MM-DD).' }))),
  },
  { additionalProperties: false },
)

function inputProperties(kind: PipelineKind) {
  const common = {
    title: Type.String({ minLength: 3, maxLength: 200, description: 'Subject line shown first at the workstation.' }),
    reason: Type.String({ minLength: 3, maxLength: 2000, description: kind === 'recall' ? 'Why the batches are recalled.' : 'What the alert is about.' }),
    message: Type.String({ minLength: 3, maxLength: 10000, description: 'The message text (French), as ANSM approves it.' }),
    messageEn: Type.Optional(nullable(Type.String({ minLength: 3, maxLength: 10000, description: 'Optional English text.' }))),
    contacts: Type.Array(Contact, { minItems: 1, maxItems: 10, description: 'Who recipients call.' }),
    scheduledAt: Type.Optional(
      nullable(Type.String({ format: 'date-time', description: 'Broadcast no earlier than this time; without it (or when it has passed), broadcast happens at approval.' })),
    ),
    reminderDelaysHours: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1, maximum: 720 }), {
        maxItems: 5,
        description: 'Reminders to recipients that have not acted (recall) or read (alert), this many hours after the first broadcast. Default [24, 72].',
      }),
    ),
  }
  if (kind === 'alert') {
    return {
      ...common,
      recipients: Type.Object(
        {
          categories: Type.Array(Type.Enum([...CATEGORIES]), { minItems: 1, maxItems: 3, uniqueItems: true }),
          regions: Type.Optional(Type.Array(Region, { maxItems: 18, uniqueItems: true, description: 'Empty or absent: all of France, overseas included.' })),
        },
        { additionalProperties: false },
      ),
    }
  }
  return {
    ...common,
    action: Type.Enum([...ACTIONS], { description: 'What recipients must do: quarantine_return, destroy, stop_dispensing.' }),
    recipients: Type.Object(
      {
        categories: Type.Array(Type.Enum([...CATEGORIES]), { minItems: 1, maxItems: 3, uniqueItems: true }),
        regions: Type.Optional(Type.Array(Region, { maxItems: 18, uniqueItems: true })),
        departments: Type.Optional(Type.Array(Department, { maxItems: 110, uniqueItems: true, description: 'With regions: the union. Both empty or absent: all of France, overseas included.' })),
      },
      { additionalProperties: false },
    ),
    batches: Type.Array(Batch, { minItems: 1, maxItems: 200 }),
    blockDispensation: Type.Boolean({ description: 'Block dispensation of the batches from broadcast until the recall is closed.' }),
  }
}

const Timestamp = Type.String({ format: 'date-time' })

export interface PipelineSchemas {
  Input: ReturnType<typeof inputSchema>
  Patch: ReturnType<typeof patchSchema>
  View: ReturnType<typeof viewSchema>
  Page: ReturnType<typeof pageSchema>
}

const NAME: Record<PipelineKind, string> = { recall: 'Recall', alert: 'Alert' }

function inputSchema(kind: PipelineKind) {
  return component(Type.Object(inputProperties(kind), { $id: `${NAME[kind]}Input`, additionalProperties: false }))
}
function patchSchema(kind: PipelineKind) {
  return component(
    Type.Object(Object.fromEntries(Object.entries(inputProperties(kind)).map(([k, v]) => [k, Type.Optional(v as TSchema)])) as Record<string, TSchema>, {
      $id: `${NAME[kind]}Patch`,
      additionalProperties: false,
      minProperties: 1,
      description: 'The fields to change. On a draft (or after ANSM asked for changes) the version is edited; after broadcast a new version is drafted and must be approved again, the broadcast version staying in force meanwhile.',
    }),
  )
}

export const Acknowledgement = component(
  Type.Object(
    {
      status: Type.Enum(['read', 'done'], { description: 'read: seen; done: the action asked was carried out (recalls only).' }),
      quarantined: Type.Integer({ minimum: 0 }),
      returned: Type.Integer({ minimum: 0 }),
      destroyed: Type.Integer({ minimum: 0 }),
      noStock: Type.Boolean({ description: 'None of the batches in stock.' }),
      comment: nullable(Type.String()),
      acknowledgedAt: Timestamp,
      changes: Type.Integer({ description: 'How many distinct acknowledgements were recorded (1 = never changed).' }),
    },
    { $id: 'RecallAcknowledgement', examples: [{ status: 'done', quarantined: 12, returned: 0, destroyed: 0, noStock: false, comment: null, acknowledgedAt: '2026-11-22T10:20:00.000Z', changes: 1 }] },
  ),
)

function viewSchema(kind: PipelineKind) {
  const recall = kind === 'recall'
  const props: Record<string, TSchema> = {
    id: Type.String({ format: 'uuid' }),
    reference: Type.String({ description: recall ? 'R-<year>-<number>, gapless per year.' : 'A-<year>-<number>, gapless per year.' }),
    lab: Type.Object({ id: Type.String(), name: Type.String() }),
    status: Type.Enum([...RECALL_STATUSES]),
    version: Type.Integer({ description: 'The latest version (the one shown to the lab and ANSM).' }),
    versionStatus: Type.Enum([...VERSION_STATUSES]),
    liveVersion: nullable(Type.Integer({ description: 'The version in force (broadcast), null before the first broadcast.' })),
    allowedActions: Type.Array(Type.Enum([...PIPELINE_ACTIONS])),
    title: Type.String(),
    reason: Type.String(),
    message: Type.String(),
    messageEn: nullable(Type.String()),
    recipients: Type.Object({ categories: Type.Array(Type.Enum([...CATEGORIES])), regions: Type.Array(Type.String()), ...(recall ? { departments: Type.Array(Type.String()) } : {}) }),
    contacts: Type.Array(Type.Object({ name: Type.String(), phone: nullable(Type.String()), email: nullable(Type.String()) })),
    scheduledAt: nullable(Timestamp),
    reminderDelaysHours: Type.Array(Type.Integer()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    broadcastAt: nullable(Timestamp),
    closedAt: nullable(Timestamp),
    acknowledgement: Type.Optional(nullable(Acknowledgement)),
  }
  if (recall) {
    Object.assign(props, {
      action: Type.Object({ code: Type.Enum([...ACTIONS]), fr: Type.String(), en: Type.String() }),
      batches: Type.Array(Type.Object({ cip13: Type.String(), batch: Type.String(), expiry: nullable(Type.String({ format: 'date' })), name: nullable(Type.String()) })),
      blockDispensation: Type.Boolean(),
    })
  }
  const example: Record<string, unknown> = {
    id: '7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b', reference: recall ? 'R-2026-0001' : 'A-2026-0001', lab: { id: '412345670', name: 'BIOGARAN' },
    status: 'broadcast', version: 1, versionStatus: 'broadcast', liveVersion: 1, allowedActions: ['edit', 'close'],
    title: recall ? 'Rappel du lot L2411A d’Amoxicilline Biogaran 1 g' : 'Information de sécurité : nouvelle contre-indication',
    reason: recall ? 'Défaut d’étanchéité de l’opercule' : 'Nouvelles données de pharmacovigilance', message: 'Merci de mettre en quarantaine les boîtes du lot concerné.', messageEn: null,
    recipients: recall ? { categories: ['pharmacy', 'wholesaler'], regions: [], departments: [] } : { categories: ['pharmacy'], regions: [] },
    contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 00', email: null }], scheduledAt: null, reminderDelaysHours: [24, 72],
    createdAt: '2026-11-22T09:00:00.000Z', updatedAt: '2026-11-22T09:14:03.000Z', broadcastAt: '2026-11-22T09:14:03.000Z', closedAt: null,
  }
  if (recall) Object.assign(example, { action: { code: 'quarantine_return', ...ACTION_LABELS.quarantine_return }, batches: [{ cip13: '3400936128149', batch: 'L2411A', expiry: '2027-06-30', name: 'AMOXICILLINE BIOGARAN 1 g' }], blockDispensation: true })
  return component(Type.Object(props, { $id: NAME[kind], examples: [example] }))
}

function pageSchema(kind: PipelineKind, view: TSchema) {
  return component(
    Type.Object({ items: Type.Array(view), nextCursor: nullable(Type.String()) }, { $id: `${NAME[kind]}Page` }),
  )
}

const cache = new Map<PipelineKind, PipelineSchemas>()
export function schemasFor(kind: PipelineKind): PipelineSchemas {
  let s = cache.get(kind)
  if (!s) {
    const View = viewSchema(kind)
    s = { Input: inputSchema(kind), Patch: patchSchema(kind), View, Page: pageSchema(kind, View) }
    cache.set(kind, s)
  }
  return s
}

function acknowledgementInputProperties() {
  return {
    status: Type.Enum(['read', 'done'], { description: 'read: the message was seen; done (recalls): the action asked was carried out.' }),
    quarantined: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Boxes put in quarantine.' })),
    returned: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Boxes returned to the lab or wholesaler.' })),
    destroyed: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Boxes destroyed.' })),
    noStock: Type.Optional(Type.Boolean({ description: 'None of the batches in stock.' })),
    comment: Type.Optional(nullable(Type.String({ maxLength: 1000 }))),
  }
}
export const AcknowledgementInput = component(
  Type.Object(acknowledgementInputProperties(), {
    $id: 'RecallAcknowledgementInput',
    additionalProperties: false,
    description: '`done` says what was done: at least one quantity (not all zero), or `noStock: true`.',
    examples: [{ status: 'done', quarantined: 12, returned: 0, destroyed: 0 }, { status: 'done', noStock: true }, { status: 'read' }],
  }),
)

export const PaperAcknowledgementInput = component(
  Type.Object(
    {
      ...acknowledgementInputProperties(),
      source: Type.Enum(['fax', 'letter'], { description: 'How the signed form came back.' }),
      signedBy: Type.String({ minLength: 2, maxLength: 200, description: 'The signatory’s name and position, as written on the form.' }),
      signedOn: Type.String({ format: 'date', description: 'The date written on the form (not in the future).' }),
    },
    {
      $id: 'RecallPaperAcknowledgementInput',
      additionalProperties: false,
      examples: [{ status: 'done', quarantined: 0, returned: 24, destroyed: 0, source: 'fax', signedBy: 'M. Durand, pharmacien responsable', signedOn: '2026-11-23' }],
    },
  ),
)

const AckEntry = Type.Object({
  seq: Type.Integer({ description: '1 for the first acknowledgement, then one more for each change.' }),
  status: Type.Enum(['read', 'done']),
  quarantined: Type.Integer({ minimum: 0 }),
  returned: Type.Integer({ minimum: 0 }),
  destroyed: Type.Integer({ minimum: 0 }),
  noStock: Type.Boolean(),
  comment: nullable(Type.String()),
  version: Type.Integer({ description: 'The version in force when it was given.' }),
  acknowledgedAt: Timestamp,
  by: Type.Object({ org: Type.String({ description: 'The recipient, or the lab that recorded its paper form.' }), user: nullable(Type.String({ description: 'The user (token subject) who gave or recorded it.' })) }),
  source: Type.Enum(['recipient', 'fax', 'letter'], { description: 'recipient: given by the recipient itself; fax / letter: its signed paper form, recorded by the lab.' }),
  signedBy: nullable(Type.String({ description: 'Paper form: the signatory’s name and position.' })),
  signedOn: nullable(Type.String({ format: 'date', description: 'Paper form: the date written on it.' })),
})
export const AcknowledgementHistory = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      reference: Type.String(),
      current: nullable(Acknowledgement),
      history: Type.Array(AckEntry, { description: 'Every distinct acknowledgement the caller gave, oldest first (the same one again, or `read` after `done`, adds nothing).' }),
    },
    {
      $id: 'RecallAcknowledgementHistory',
      description: 'The caller’s own acknowledgement of a recall or alert addressed to it, and every one it gave before. Never acknowledged: `current: null`, empty history.',
      examples: [{
        id: '7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b', reference: 'R-2026-0001',
        current: { status: 'done', quarantined: 8, returned: 4, destroyed: 0, noStock: false, comment: null, acknowledgedAt: '2026-11-22T11:00:00.000Z', changes: 2 },
        history: [
          { seq: 1, status: 'done', quarantined: 12, returned: 0, destroyed: 0, noStock: false, comment: null, version: 1, acknowledgedAt: '2026-11-22T10:20:00.000Z', by: { org: '750100010', user: 'marie' }, source: 'recipient', signedBy: null, signedOn: null },
          { seq: 2, status: 'done', quarantined: 8, returned: 4, destroyed: 0, noStock: false, comment: null, version: 1, acknowledgedAt: '2026-11-22T11:00:00.000Z', by: { org: '750100010', user: 'marie' }, source: 'recipient', signedBy: null, signedOn: null },
        ],
      }],
    },
  ),
)
export const DiscardInput = component(
  Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'Why the draft is dropped; kept in the history.', examples: ['Lot finalement conforme après contre-analyse.'] })) }, { $id: 'RecallDiscardInput', additionalProperties: false }),
)
export const CancelScheduleInput = component(
  Type.Object({ reason: Type.String({ minLength: 1, maxLength: 2000, description: 'Why the scheduled broadcast is cancelled; required, kept in the history with who cancelled.', examples: ['Le fournisseur a confirmé que le lot L2411A n’est pas concerné.'] }) }, { $id: 'RecallCancelScheduleInput', additionalProperties: false }),
)

export const CommentInput = component(Type.Object({ text: Type.String({ minLength: 1, maxLength: 5000 }) }, { $id: 'RecallCommentInput', additionalProperties: false }))
export const DecisionInput = component(
  Type.Object({ comment: Type.Optional(Type.String({ minLength: 1, maxLength: 5000, description: 'Required to ask for changes or reject.' })) }, { $id: 'RecallDecisionInput', additionalProperties: false }),
)

export const FieldChange = component(
  Type.Object(
    {
      field: Type.String({ description: 'title, reason, message, messageEn, action, recipients.categories, recipients.regions, recipients.departments, batches, batches.expiry, blockDispensation, contacts, scheduledAt, reminderDelaysHours.' }),
      change: Type.Enum(['added', 'removed', 'changed']),
      key: Type.Optional(Type.String({ description: 'For a batch: CIP13/BATCH.' })),
      before: Type.Unknown({ description: 'The value before (null when added); for a list, the item removed.' }),
      after: Type.Unknown({ description: 'The value after (null when removed); for a list, the item added.' }),
    },
    {
      $id: 'RecallFieldChange',
      description: 'One field that differs between two contents. Lists are compared item by item (a batch by product and number, a region by its code), not position by position.',
      examples: [{ field: 'batches', change: 'removed', key: '3400936128149/L2411B', before: { cip13: '3400936128149', batch: 'L2411B', expiry: '2027-07-31' }, after: null }],
    },
  ),
)
const CONTENT_EXAMPLE = {
  title: 'Rappel du lot L2411A', reason: 'Défaut d’étanchéité', message: 'Mettre en quarantaine et retourner les boîtes du lot L2411A.', messageEn: null, action: 'quarantine_return',
  recipients: { categories: ['pharmacy', 'wholesaler'], regions: [], departments: [] }, contacts: [{ name: 'Pharmacovigilance BIOGARAN', phone: '+33 1 00 00 00 00', email: null }],
  batches: [{ cip13: '3400936128149', batch: 'L2411A', expiry: '2027-06-30' }], blockDispensation: true, scheduledAt: null, reminderDelaysHours: [24, 72],
}
/** What a version says (recall or alert): as stored, the whole message ANSM approves. */
export const ContentSchema = component(
  Type.Object(
    {
      title: Type.String(),
      reason: Type.String(),
      message: Type.String(),
      messageEn: Type.Optional(nullable(Type.String())),
      action: Type.Optional(nullable(Type.Enum([...ACTIONS], { description: 'Recalls: what recipients must do; null for an alert.' }))),
      recipients: Type.Object({
        categories: Type.Array(Type.Enum([...CATEGORIES])),
        regions: Type.Optional(Type.Array(Type.String())),
        departments: Type.Optional(Type.Array(Type.String())),
      }),
      contacts: Type.Array(Type.Object({ name: Type.String(), phone: Type.Optional(nullable(Type.String())), email: Type.Optional(nullable(Type.String())) })),
      batches: Type.Optional(Type.Array(Type.Object({ cip13: Type.String(), batch: Type.String(), expiry: Type.Optional(nullable(Type.String({ format: 'date' }))) }), { description: 'Recalls: the batches recalled; empty for an alert.' })),
      blockDispensation: Type.Optional(Type.Boolean({ description: 'Recalls: dispensation of the batches is blocked from broadcast until closure.' })),
      scheduledAt: Type.Optional(nullable(Timestamp)),
      reminderDelaysHours: Type.Optional(Type.Array(Type.Integer())),
    },
    {
      $id: 'RecallContent',
      description: 'The content of a version of a recall or an alert.',
      examples: [CONTENT_EXAMPLE],
    },
  ),
)
const Author = nullable(Type.Object({ role: nullable(Type.String()), org: nullable(Type.String()), user: nullable(Type.String()) }))

export const ThreadEntry = component(
  Type.Object(
    {
      at: Timestamp,
      version: Type.Integer(),
      kind: Type.String({ description: 'created, edited, revision, submitted, comment, approved, changes_requested, rejected, scheduled, schedule_cancelled, broadcast, reminder, discarded, closed.' }),
      text: nullable(Type.String()),
      author: Author,
      changes: nullable(Type.Array(FieldChange, { description: 'For `edited` (the draft edited) and `revision` (a new version drafted from the one in force): what changed, field by field; null for the other entries.' })),
    },
    { $id: 'RecallThreadEntry' },
  ),
)

const Round = Type.Object({
  round: Type.Integer({ description: '1 for the first submission of the version, then one more each time it is submitted again.' }),
  submittedAt: Timestamp,
  submittedBy: Author,
  content: ContentSchema,
  reconstructed: Type.Boolean({ description: 'True for a round submitted before rounds were kept: its content is the version’s latest, which may differ from what was submitted then.' }),
  comparedWith: nullable(Type.Object({ version: Type.Integer(), round: nullable(Type.Integer()) }, { description: 'The round this one is compared with: the previous round of the version, or for a correction’s first round the version in force it corrects.' })),
  changes: Type.Array(FieldChange, { description: 'What changed since `comparedWith`; empty for the very first submission.' }),
  decision: nullable(Type.Enum(['approved', 'changes_requested', 'rejected', 'withdrawn', 'cancelled'], { description: 'ANSM’s decision; withdrawn: the lab discarded it while in review; cancelled: the recall was closed meanwhile; null while waiting.' })),
  decidedAt: nullable(Timestamp),
  decidedBy: Author,
  comment: nullable(Type.String({ description: 'ANSM’s comment with its decision (or the lab’s reason when withdrawn).' })),
  exchanges: Type.Array(ThreadEntry, { description: 'The entries of the thread from this submission up to the next: the decision, comments from both sides, the lab’s edits.' }),
})
export const History = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      reference: Type.String(),
      versions: Type.Array(
        Type.Object({
          version: Type.Integer(),
          status: Type.Enum([...VERSION_STATUSES]),
          createdAt: Timestamp,
          submittedAt: nullable(Timestamp, { description: 'The latest submission.' }),
          decidedAt: nullable(Timestamp, { description: 'ANSM’s decision on the latest submission; null while it waits (never earlier than submittedAt).' }),
          broadcastAt: nullable(Timestamp),
          content: ContentSchema,
          rounds: Type.Array(Round, { description: 'Every submission of this version to ANSM, oldest first.' }),
        }),
      ),
      thread: Type.Array(ThreadEntry),
    },
    {
      $id: 'RecallHistory',
      description: 'Every version with its review rounds (each submission’s content, what changed since the round before, ANSM’s decision and the exchanges), and the whole exchange thread with ANSM, oldest first.',
      examples: [{
        id: '7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b', reference: 'R-2026-0001',
        versions: [{
          version: 1, status: 'submitted', createdAt: '2026-11-22T09:00:00.000Z', submittedAt: '2026-11-22T09:20:00.000Z', decidedAt: null, broadcastAt: null,
          content: { ...CONTENT_EXAMPLE, message: 'Mettez en quarantaine…' },
          rounds: [
            {
              round: 1, submittedAt: '2026-11-22T09:01:00.000Z', submittedBy: { role: 'lab', org: '412345670', user: 'alice' }, content: { ...CONTENT_EXAMPLE, message: 'Retournez les boîtes.' },
              reconstructed: false, comparedWith: null, changes: [], decision: 'changes_requested', decidedAt: '2026-11-22T09:05:00.000Z', decidedBy: { role: 'ansm', org: 'ANSM', user: 'eva' },
              comment: 'Préciser la date de péremption.', exchanges: [],
            },
            {
              round: 2, submittedAt: '2026-11-22T09:20:00.000Z', submittedBy: { role: 'lab', org: '412345670', user: 'alice' }, content: { ...CONTENT_EXAMPLE, message: 'Mettez en quarantaine…' },
              reconstructed: false, comparedWith: { version: 1, round: 1 }, changes: [{ field: 'message', change: 'changed', before: 'Retournez les boîtes.', after: 'Mettez en quarantaine…' }],
              decision: null, decidedAt: null, decidedBy: null, comment: null, exchanges: [],
            },
          ],
        }],
        thread: [{ at: '2026-11-22T09:05:00.000Z', version: 1, kind: 'changes_requested', text: 'Préciser la date de péremption.', author: { role: 'ansm', org: 'ANSM', user: 'eva' }, changes: null }],
      }],
    },
  ),
)

const Counts = {
  recipients: Type.Integer(),
  reached: Type.Integer({ description: 'Delivered on any channel (feed, stream, webhook, fax) or read.' }),
  read: Type.Integer(),
  acknowledged: Type.Integer({ description: 'Gave any acknowledgement (read or done).' }),
  done: Type.Integer({ description: 'Reported the action done (recalls).' }),
}
export const Quantities = Type.Object({ quarantined: Type.Integer(), returned: Type.Integer(), destroyed: Type.Integer(), noStock: Type.Integer({ description: 'Recipients reporting none in stock.' }) })
export const Coverage = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      reference: Type.String(),
      status: Type.Enum([...RECALL_STATUSES]),
      ...Counts,
      quantities: Quantities,
      byCategory: Type.Array(Type.Object({ category: Type.String(), ...Counts, quantities: Quantities })),
      byDepartment: Type.Array(Type.Object({ department: nullable(Type.String()), region: nullable(Type.String()), ...Counts })),
      faxes: Type.Object({ queued: Type.Integer(), sent: Type.Integer(), failed: Type.Integer(), paperLetter: Type.Integer({ description: 'Recipients whose latest fax was given up for a paper letter.' }) }),
      letters: Type.Object(
        { pending: Type.Integer({ description: 'To post (GET /v1/paper-letters).' }), sent: Type.Integer({ description: 'Recorded as posted.' }) },
        { description: 'Paper letters asked for this message’s faxes that failed after every retry.' },
      ),
    },
    {
      $id: 'RecallCoverage',
      description: 'Live diffusion coverage of a recall or an alert (all broadcast versions together).',
      examples: [{
        id: '7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b', reference: 'R-2026-0001', status: 'broadcast', recipients: 3, reached: 2, read: 2, acknowledged: 1, done: 1,
        quantities: { quarantined: 12, returned: 0, destroyed: 0, noStock: 0 },
        byCategory: [{ category: 'pharmacy', recipients: 2, reached: 2, read: 2, acknowledged: 1, done: 1, quantities: { quarantined: 12, returned: 0, destroyed: 0, noStock: 0 } }],
        byDepartment: [{ department: '75', region: '11', recipients: 2, reached: 2, read: 2, acknowledged: 1, done: 1 }],
        faxes: { queued: 0, sent: 1, failed: 0, paperLetter: 0 },
        letters: { pending: 0, sent: 0 },
      }],
    },
  ),
)
export const Recipient = Type.Object({
  org: Type.Object({ id: Type.String(), name: Type.String(), role: Type.String(), department: nullable(Type.String()), region: nullable(Type.String()) }),
  reached: Type.Boolean(),
  readAt: nullable(Timestamp),
  acknowledgement: nullable(Acknowledgement),
  fax: nullable(Type.String({ description: 'Fax status of the latest notice: queued, sent, failed, paper_letter; null when not faxed.' })),
  letter: nullable(
    Type.Object({ id: Type.String({ format: 'uuid' }), status: Type.Enum(['pending', 'sent']), sentAt: nullable(Timestamp) }, { description: 'The latest paper letter asked for this recipient (a fax given up), and whether it was posted.' }),
  ),
  reminders: Type.Integer(),
})
export const RecipientPage = component(
  Type.Object({ items: Type.Array(Recipient), nextCursor: nullable(Type.String()) }, {
    $id: 'RecallRecipientPage',
    examples: [{ items: [{ org: { id: '920100070', name: 'Répartition Île-de-France', role: 'wholesaler', department: '92', region: '11' }, reached: true, readAt: null, acknowledgement: null, fax: 'sent', letter: null, reminders: 1 }], nextCursor: null }],
  }),
)
export const QueueItem = Type.Object({
  id: Type.String({ format: 'uuid' }),
  kind: Type.Enum(['recall', 'alert']),
  reference: Type.String(),
  lab: Type.Object({ id: Type.String(), name: Type.String() }),
  version: Type.Integer(),
  revision: Type.Boolean({ description: 'A correction of a message already in force.' }),
  title: Type.String(),
  submittedAt: Timestamp,
})
export const ReviewQueue = component(
  Type.Object({ items: Type.Array(QueueItem) }, {
    $id: 'RecallReviewQueue',
    description: 'Recalls and alerts waiting for an ANSM decision, oldest submission first.',
    examples: [{ items: [{ id: '7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b', kind: 'recall', reference: 'R-2026-0001', lab: { id: '412345670', name: 'BIOGARAN' }, version: 1, revision: false, title: 'Rappel du lot L2411A', submittedAt: '2026-11-22T09:01:00.000Z' }] }],
  }),
)
const ReportOrg = { id: Type.String(), name: Type.String(), role: Type.String({ description: 'pharmacy, wholesaler or hospital.' }), roleLabel: Type.String({ description: 'The role in the reader’s language.' }), department: nullable(Type.String()) }
export const Report = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      kind: Type.Enum(['recall', 'alert']),
      kindLabel: Type.String({ description: '“rappel de lots” / “batch recall”…, in the reader’s language.' }),
      lang: Type.Enum(['fr', 'en'], { description: 'The language of the labels: French, or English with Accept-Language: en.' }),
      reference: Type.String(),
      lab: Type.Object({ id: Type.String(), name: Type.String() }),
      title: Type.String(),
      finalVersion: Type.Integer(),
      closure: Type.Object(
        {
          at: Timestamp,
          reason: nullable(Type.String({ description: 'The reason the lab gave when closing.' })),
          by: Author,
        },
        { description: 'When, why and by whom the recall was closed.' },
      ),
      batches: Type.Array(
        Type.Object({
          cip13: Type.String(),
          batch: Type.String(),
          expiry: nullable(Type.String({ description: 'As in the last version that recalled it.' })),
          name: nullable(Type.String({ description: 'The medicine, from the referential.' })),
          versions: Type.Array(Type.Integer(), { description: 'The versions in force that recalled it.' }),
          status: Type.Enum(['recalled', 'removed'], { description: 'recalled: until closure; removed: a correction took it out of the recall.' }),
          statusLabel: Type.String({ description: 'What happened to it, in the reader’s language.' }),
          removedInVersion: nullable(Type.Integer()),
          removedAt: nullable(Timestamp),
          blocked: Type.Boolean({ description: 'Dispensation of the batch was blocked while it was recalled.' }),
        }),
        { description: 'Every batch recalled by any version that was in force (empty for an alert).' },
      ),
      coverage: Type.Object({ ...Counts }),
      quantities: Quantities,
      byCategory: Type.Array(Type.Object({ category: Type.String(), label: Type.String({ description: 'The category in the reader’s language.' }), ...Counts, quantities: Quantities })),
      byDepartment: Type.Array(Type.Object({ department: nullable(Type.String()), region: nullable(Type.String()), regionName: nullable(Type.String()), ...Counts })),
      notActing: Type.Array(Type.Object(ReportOrg), { description: 'Recipients that never reported the action done (recalls) or never read (alerts); the first 1,000 by identifier.' }),
      notActingTotal: Type.Integer(),
      acknowledgements: Type.Array(
        Type.Object({
          org: Type.Object(ReportOrg),
          quarantined: Type.Integer(),
          returned: Type.Integer(),
          destroyed: Type.Integer(),
          noStock: Type.Boolean(),
          comment: nullable(Type.String()),
          acknowledgedAt: Timestamp,
          version: Type.Integer({ description: 'The version in force when it was given.' }),
          changes: Type.Integer({ description: 'How many distinct acknowledgements the recipient gave.' }),
        }),
        { description: 'What each recipient reported done, with its quantities (the first 1,000 by identifier; the totals are in `quantities`).' },
      ),
      acknowledgementsTotal: Type.Integer(),
      timeline: Type.Array(Type.Object({ at: Timestamp, version: Type.Integer(), event: Type.String(), label: Type.String() })),
      createdAt: Timestamp,
      broadcastAt: nullable(Timestamp),
      closedAt: Timestamp,
    },
    {
      $id: 'RecallReport',
      description: 'The report (bilan) made when the lab closes the recall, also sent to ANSM on its feed (`recall.report`, French labels). Codes stay as stored; labels follow Accept-Language.',
      examples: [{
        id: '7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b', kind: 'recall', kindLabel: 'rappel de lots', lang: 'fr', reference: 'R-2026-0001', lab: { id: '412345670', name: 'BIOGARAN' }, title: 'Rappel du lot L2411A', finalVersion: 2,
        closure: { at: '2026-11-29T17:00:00.000Z', reason: 'Lots récupérés', by: { role: 'lab', org: '412345670', user: 'alice' } },
        batches: [
          { cip13: '3400936128149', batch: 'L2411A', expiry: '2027-06-30', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', versions: [1, 2], status: 'recalled', statusLabel: 'rappelé jusqu’à la clôture', removedInVersion: null, removedAt: null, blocked: true },
          { cip13: '3400936128149', batch: 'L2411B', expiry: '2027-07-31', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', versions: [1], status: 'removed', statusLabel: 'retiré en version 2', removedInVersion: 2, removedAt: '2026-11-23T09:00:00.000Z', blocked: true },
        ],
        coverage: { recipients: 3, reached: 3, read: 3, acknowledged: 2, done: 2 }, quantities: { quarantined: 12, returned: 4, destroyed: 0, noStock: 1 },
        byCategory: [{ category: 'pharmacy', label: 'Officines', recipients: 1, reached: 1, read: 1, acknowledged: 1, done: 1, quantities: { quarantined: 12, returned: 4, destroyed: 0, noStock: 0 } }],
        byDepartment: [{ department: '75', region: '11', regionName: 'Île-de-France', recipients: 2, reached: 2, read: 2, acknowledged: 2, done: 2 }],
        notActing: [{ id: '920100070', name: 'Répartition Île-de-France', role: 'wholesaler', roleLabel: 'grossiste-répartiteur', department: '92' }], notActingTotal: 1,
        acknowledgements: [{ org: { id: '750100010', name: 'Pharmacie du Marais', role: 'pharmacy', roleLabel: 'officine', department: '75' }, quarantined: 12, returned: 4, destroyed: 0, noStock: false, comment: null, acknowledgedAt: '2026-11-22T11:00:00.000Z', version: 1, changes: 1 }],
        acknowledgementsTotal: 1,
        timeline: [{ at: '2026-11-22T09:14:03.000Z', version: 1, event: 'broadcast', label: 'Diffusion' }],
        createdAt: '2026-11-22T09:00:00.000Z', broadcastAt: '2026-11-22T09:14:03.000Z', closedAt: '2026-11-29T17:00:00.000Z',
      }],
    },
  ),
)

// Registered at load time: the app adds every component when it is built.
schemasFor('recall')
schemasFor('alert')

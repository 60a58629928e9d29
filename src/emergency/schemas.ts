import { type TSchema, Type } from 'typebox'
import { defineErrors, errorDef } from '../platform/errors.ts'
import { component, Page } from '../platform/schemas.ts'
import type { EmergencyStatus } from './db.ts'

export const nullable = <T extends TSchema>(s: T, options: { description?: string } = {}) => Type.Union([s, Type.Null()], options)

// ---- controlled vocabularies ------------------------------------------------------------------------------

export const STATUSES = ['submitted', 'accepted', 'partially_accepted', 'redirected', 'refused', 'received', 'cancelled'] as const
export const STATUS_LABELS: Record<EmergencyStatus, { fr: string; en: string }> = {
  submitted: { fr: 'Envoyée, en attente de réponse', en: 'Submitted, awaiting an answer' },
  accepted: { fr: 'Acceptée', en: 'Accepted' },
  partially_accepted: { fr: 'Acceptée partiellement', en: 'Partially accepted' },
  redirected: { fr: 'Réorientée', en: 'Redirected' },
  refused: { fr: 'Refusée', en: 'Refused' },
  received: { fr: 'Réception confirmée', en: 'Receipt confirmed' },
  cancelled: { fr: 'Annulée par l’officine', en: 'Cancelled by the pharmacy' },
}
/**
 * Lifecycle. The lab answers once, while the request is `submitted` (an answer is never replaced: a new need is
 * a new request). The pharmacy may cancel until it confirms receipt (the lab is told), and confirms receipt
 * after an acceptance, a partial acceptance or a redirection (the goods then come from the wholesaler or
 * depot). Refused, received and cancelled are final.
 */
export const TRANSITIONS: Record<EmergencyStatus, EmergencyStatus[]> = {
  submitted: ['accepted', 'partially_accepted', 'redirected', 'refused', 'cancelled'],
  accepted: ['received', 'cancelled'],
  partially_accepted: ['received', 'cancelled'],
  redirected: ['received', 'cancelled'],
  refused: [],
  received: [],
  cancelled: [],
}
export const DECISIONS = ['accepted', 'partially_accepted', 'redirected', 'refused'] as const
export type Decision = (typeof DECISIONS)[number]

export const REFUSAL_REASONS = {
  out_of_stock: { fr: 'Stock épuisé', en: 'Out of stock' },
  allocation_exhausted: { fr: 'Contingent de dépannage épuisé', en: 'Emergency allocation exhausted' },
  not_eligible: { fr: 'Demande non éligible au dépannage d’urgence', en: 'Request not eligible for emergency supply' },
  quantity_excessive: { fr: 'Quantité demandée excessive', en: 'Requested quantity too large' },
  duplicate: { fr: 'Demande en double', en: 'Duplicate request' },
  delivery_impossible: { fr: 'Livraison impossible dans un délai utile', en: 'Delivery impossible in a useful time' },
  other: { fr: 'Autre (préciser)', en: 'Other (specify)' },
} as const
export type RefusalReason = keyof typeof REFUSAL_REASONS

export const SHIPPING_CHANNELS = {
  express_carrier: { fr: 'Transporteur express', en: 'Express carrier' },
  lab_courier: { fr: 'Coursier du laboratoire', en: 'Lab courier' },
  wholesaler: { fr: 'Via le grossiste-répartiteur habituel', en: 'Through the usual wholesaler' },
  depot: { fr: 'Via le dépositaire', en: 'Through the depot' },
  postal: { fr: 'Envoi postal', en: 'Postal delivery' },
} as const
export type ShippingChannel = keyof typeof SHIPPING_CHANNELS

export const CONDITIONS = {
  mitm_or_niche: { fr: 'la présentation n’est ni un MITM ni un produit de niche', en: 'the presentation is neither MITM nor a niche product' },
  active_shortage: { fr: 'aucune rupture active n’est déclarée sur le service pour cette présentation', en: 'no active shortage is declared on the service for this presentation' },
  lab_subscribed: { fr: 'le laboratoire exploitant n’est pas abonné à DP-Ruptures', en: 'the exploiting lab is not subscribed to DP-Ruptures' },
  opened: { fr: 'le laboratoire n’a pas ouvert cette présentation au dépannage d’urgence', en: 'the lab has not opened this presentation to emergency requests' },
} as const
export type Condition = keyof typeof CONDITIONS

defineErrors({
  EMERGENCY_NOT_ELIGIBLE: errorDef(422, 'Demande non éligible au dépannage d’urgence', 'Request not eligible for emergency supply', (p) => ({
    fr: `La présentation ${p.cip13} n’est pas éligible : ${p.fr}.`,
    en: `Presentation ${p.cip13} is not eligible: ${p.en}.`,
  })),
  EMERGENCY_QUANTITY_ABOVE_MAXIMUM: errorDef(422, 'Quantité supérieure au maximum', 'Quantity above the maximum', (p) => ({
    fr: `Le laboratoire accepte au plus ${p.max} boîte(s) par demande de dépannage pour cette présentation (demandé : ${p.quantity}).`,
    en: `The lab accepts at most ${p.max} box(es) per emergency request for this presentation (requested: ${p.quantity}).`,
  })),
  EMERGENCY_REQUEST_PENDING: errorDef(409, 'Demande déjà en attente', 'Request already pending', (p) => ({
    fr: `Votre officine a déjà une demande de dépannage en attente de réponse pour ${p.cip13} (${p.id}, envoyée le ${p.sentFr}) : complétez-la auprès du laboratoire ou annulez-la avant d’en envoyer une autre.`,
    en: `Your pharmacy already has an emergency request awaiting an answer for ${p.cip13} (${p.id}, sent ${p.sentEn}): follow it up with the lab or cancel it before sending another.`,
  })),
  EMERGENCY_INVALID_TRANSITION: errorDef(409, 'Étape impossible dans l’état actuel', 'Step not allowed in the current state', (p) => ({
    fr: `La demande est « ${p.from} » : « ${p.to} » n’est pas possible (étapes possibles : ${p.allowedText || 'aucune'}).`,
    en: `The request is "${p.from}": "${p.to}" is not allowed (allowed: ${p.allowedText || 'none'}).`,
  })),
})

// ---- schemas ------------------------------------------------------------------------------------------------

export const Contact = Type.Object(
  {
    service: Type.String({ minLength: 1, maxLength: 200, description: 'Name of the lab’s emergency service.' }),
    phone: Type.String({ minLength: 4, maxLength: 40, pattern: '^[+0-9 ().-]+$', 'x-message': { fr: 'numéro de téléphone attendu (chiffres, espaces, +)', en: 'a phone number is expected (digits, spaces, +)' } }),
    email: Type.Optional(Type.String({ format: 'email', maxLength: 200 })),
  },
  { additionalProperties: false },
)

const TimeOfDay = (end: boolean) =>
  Type.String({
    pattern: end ? '^(([01]\\d|2[0-3]):[0-5]\\d|24:00)$' : '^([01]\\d|2[0-3]):[0-5]\\d$',
    'x-message': { fr: `heure attendue au format HH:MM${end ? ' (24:00 pour minuit en fin de journée)' : ''}`, en: `a time is expected as HH:MM${end ? ' (24:00 for midnight at the end of the day)' : ''}` },
    examples: [end ? '18:00' : '09:00'],
  })

export const ServiceHours = Type.Object(
  {
    slots: Type.Array(
      Type.Object(
        {
          days: Type.Array(Type.Integer({ minimum: 1, maximum: 7 }), { minItems: 1, maxItems: 7, uniqueItems: true, description: 'ISO weekdays: 1 Monday … 7 Sunday.' }),
          from: TimeOfDay(false),
          to: TimeOfDay(true),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 21, description: 'Opening ranges, Europe/Paris wall-clock time; ranges of one day must not overlap.' },
    ),
    publicHolidays: Type.Optional(Type.Enum(['closed', 'open'], { description: 'Whether the service is open on the eleven national public holidays (default: closed).' })),
  },
  {
    additionalProperties: false,
    description: 'The hours the lab’s emergency service keeps: the escalation delay is counted in these hours. Around the clock: `{"slots":[{"days":[1,2,3,4,5,6,7],"from":"00:00","to":"24:00"}],"publicHolidays":"open"}`.',
    examples: [{ slots: [{ days: [1, 2, 3, 4, 5], from: '08:30', to: '12:30' }, { days: [1, 2, 3, 4, 5], from: '14:00', to: '18:00' }, { days: [6], from: '09:00', to: '12:00' }], publicHolidays: 'closed' }],
  },
)

const OPENING_EXAMPLE = {
  cip13: '3400936128149',
  gtin: '03400936128149',
  productName: 'AMOXICILLINE BIOGARAN 500 mg, gélule',
  lab: { id: '412345670', name: 'BIOGARAN' },
  open: true,
  contact: { service: 'Dépannage urgence Biogaran', phone: '+33 1 00 00 00 01', email: 'urgence@biogaran.example' },
  openingHours: 'lun.–ven. 9 h–18 h',
  serviceHours: null,
  maxQuantity: 5,
  escalationBusinessHours: 4,
  openedAt: '2026-11-22T10:00:00.000Z',
  closedAt: null,
  updatedAt: '2026-11-22T10:00:00.000Z',
}

export const Opening = component(
  Type.Object(
    {
      cip13: Type.String(),
      gtin: Type.String(),
      productName: Type.String(),
      lab: Type.Object({ id: Type.String(), name: Type.String() }),
      open: Type.Boolean({ description: 'Whether pharmacies can send requests now.' }),
      contact: Contact,
      openingHours: nullable(Type.String({ description: 'Free text shown to pharmacies.' })),
      serviceHours: nullable(ServiceHours, { description: 'The hours the service declared; null: office hours (Monday–Friday 09:00–18:00 Europe/Paris, national public holidays closed).' }),
      maxQuantity: nullable(Type.Integer({ description: 'Most boxes per request; null: no maximum.' })),
      escalationBusinessHours: Type.Integer({ description: 'Hours of service (`serviceHours`, else office hours) after which an unanswered request is escalated.' }),
      openedAt: Type.String({ format: 'date-time' }),
      closedAt: nullable(Type.String({ format: 'date-time' })),
      updatedAt: Type.String({ format: 'date-time' }),
    },
    { $id: 'EmergencyOpening', description: 'A presentation opened by its lab to emergency requests.', examples: [OPENING_EXAMPLE] },
  ),
)

export const OpeningInput = component(
  Type.Object(
    {
      contact: Contact,
      openingHours: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Free text shown to pharmacies.' })),
      serviceHours: Type.Optional(nullable(ServiceHours)),
      maxQuantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'Most boxes per request.' })),
      escalationBusinessHours: Type.Optional(Type.Integer({ minimum: 1, maximum: 72, description: 'Overrides the service default (4), counted in the declared `serviceHours`.' })),
    },
    {
      $id: 'EmergencyOpeningInput',
      additionalProperties: false,
      examples: [
        { contact: { service: 'Dépannage urgence Biogaran', phone: '+33 1 00 00 00 01' }, openingHours: 'lun.–ven. 9 h–18 h', maxQuantity: 5 },
        { contact: { service: 'Astreinte pharmaceutique', phone: '+33 1 00 00 00 02' }, openingHours: '24 h/24, 7 j/7', serviceHours: { slots: [{ days: [1, 2, 3, 4, 5, 6, 7], from: '00:00', to: '24:00' }], publicHolidays: 'open' }, escalationBusinessHours: 2 },
      ],
    },
  ),
)

const Delivery = Type.Object(
  {
    name: Type.String(),
    city: nullable(Type.String()),
    department: nullable(Type.String()),
    address: nullable(Type.String()),
    instructions: nullable(Type.String()),
  },
  { description: 'Where to deliver: always the requesting pharmacy (name, city and department from the referential).' },
)

export const RequestInput = component(
  Type.Object(
    {
      cip13: Type.String({ pattern: '^\\d{13,14}$', 'x-message': { fr: 'un CIP13 (13 chiffres) ou un GTIN-14 est attendu', en: 'a CIP13 (13 digits) or GTIN-14 is expected' }, examples: ['3400936128149'] }),
      quantity: Type.Integer({ minimum: 1, maximum: 10000, description: 'Boxes requested.' }),
      patientEmergency: Type.Literal(true, { description: 'Attestation « urgence patient »: the pharmacist attests a patient’s treatment would be interrupted. No patient identity is sent.' }),
      delivery: Type.Optional(
        Type.Object(
          {
            address: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'Street address of the pharmacy, when the referential does not hold it.' })),
            instructions: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'E.g. opening hours for delivery, entrance.' })),
          },
          { additionalProperties: false },
        ),
      ),
    },
    {
      $id: 'EmergencyRequestInput',
      additionalProperties: false,
      examples: [{ cip13: '3400936128149', quantity: 2, patientEmergency: true, delivery: { instructions: 'Livraison avant 19 h, entrée rue des Archives' } }],
    },
  ),
)

export const AnswerInput = component(
  Type.Object(
    {
      decision: Type.Enum([...DECISIONS]),
      quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'accepted (= requested) and partially_accepted (< requested).' })),
      shippingChannel: Type.Optional(Type.Enum(Object.keys(SHIPPING_CHANNELS) as ShippingChannel[], { description: 'accepted and partially_accepted.' })),
      expectedDelivery: Type.Optional(Type.String({ format: 'date-time', description: 'accepted and partially_accepted.' })),
      redirectTo: Type.Optional(
        Type.Object(
          {
            kind: Type.Enum(['wholesaler', 'depot']),
            name: Type.String({ minLength: 1, maxLength: 200 }),
            organisationId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'Its identifier on the service, when registered.' })),
            contact: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            details: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
          },
          { additionalProperties: false, description: 'redirected: where the pharmacy should order.' },
        ),
      ),
      reason: Type.Optional(Type.Enum(Object.keys(REFUSAL_REASONS) as RefusalReason[], { description: 'refused: a reason from GET /v1/emergency-vocabulary.' })),
      comment: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'Free text; required with reason `other`.' })),
    },
    {
      $id: 'EmergencyAnswerInput',
      additionalProperties: false,
      examples: [
        { decision: 'accepted', quantity: 2, shippingChannel: 'express_carrier', expectedDelivery: '2026-11-23T12:00:00Z' },
        { decision: 'partially_accepted', quantity: 1, shippingChannel: 'lab_courier', expectedDelivery: '2026-11-23T12:00:00Z', comment: 'Stock limité' },
        { decision: 'redirected', redirectTo: { kind: 'depot', name: 'CSP Orléans', contact: '+33 2 00 00 00 00', details: 'Commande directe dépositaire' } },
        { decision: 'refused', reason: 'out_of_stock', comment: 'Aucun stock avant le 15/12' },
      ],
    },
  ),
)

export const Step = Type.Object({
  seq: Type.Integer(),
  action: Type.String({ description: 'submitted, accepted, partially_accepted, redirected, refused, escalated, received, cancelled.' }),
  status: Type.Enum([...STATUSES], { description: 'Status after this step.' }),
  at: Type.String({ format: 'date-time' }),
  actor: Type.Object({ role: nullable(Type.String()), org: nullable(Type.String()), user: nullable(Type.String()) }),
  details: Type.Record(Type.String(), Type.Unknown()),
})

const REQUEST_EXAMPLE = {
  id: '6f1c2a9e-8b1d-4c55-9f1e-2a3b4c5d6e7f',
  cip13: '3400936128149',
  gtin: '03400936128149',
  productName: 'AMOXICILLINE BIOGARAN 500 mg, gélule',
  lab: { id: '412345670', name: 'BIOGARAN' },
  pharmacy: { id: '750100010', name: 'Pharmacie du Marais' },
  quantity: 2,
  patientEmergency: true,
  delivery: { name: 'Pharmacie du Marais', city: 'Paris', department: '75', address: null, instructions: 'Avant 19 h' },
  status: 'accepted',
  statusLabel: { fr: 'Acceptée', en: 'Accepted' },
  answer: { decision: 'accepted', quantity: 2, shippingChannel: 'express_carrier', expectedDelivery: '2026-11-23T12:00:00.000Z', answeredAt: '2026-11-22T11:00:00.000Z', answeredBy: 'bob' },
  eligibility: { mitm: true, niche: false, labSubscribed: true, declaration: { id: '0b9e…', kind: 'observed', status: 'ongoing', version: 2 }, opening: { maxQuantity: 5, openedAt: '2026-11-20T09:00:00.000Z' } },
  contact: { service: 'Dépannage urgence Biogaran', phone: '+33 1 00 00 00 01' },
  version: 2,
  submittedAt: '2026-11-22T10:00:00.000Z',
  answeredAt: '2026-11-22T11:00:00.000Z',
  escalateAt: '2026-11-23T09:00:00.000Z',
  escalatedAt: null,
  closedAt: null,
  allowedTransitions: ['received', 'cancelled'],
}

const Label = Type.Object({ fr: Type.String(), en: Type.String() })
export const EmergencyAnswer = component(
  Type.Object(
    {
      decision: Type.Enum([...DECISIONS]),
      quantity: Type.Optional(Type.Integer({ description: 'accepted and partially_accepted: boxes sent.' })),
      shippingChannel: Type.Optional(Type.Enum(Object.keys(SHIPPING_CHANNELS) as ShippingChannel[])),
      shippingChannelLabel: Type.Optional(Label),
      expectedDelivery: Type.Optional(Type.String({ format: 'date-time' })),
      redirectTo: Type.Optional(
        Type.Object({
          kind: Type.Enum(['wholesaler', 'depot']),
          name: Type.String(),
          organisationId: Type.Optional(Type.String()),
          contact: Type.Optional(Type.String()),
          details: Type.Optional(Type.String()),
        }, { description: 'redirected: where to order.' }),
      ),
      reason: Type.Optional(Type.Enum(Object.keys(REFUSAL_REASONS) as RefusalReason[], { description: 'refused: why.' })),
      reasonLabel: Type.Optional(Label),
      comment: Type.Optional(Type.String()),
      answeredAt: Type.String({ format: 'date-time' }),
      answeredBy: Type.Union([Type.String(), Type.Null()], { description: 'The user who answered.' }),
    },
    { $id: 'EmergencyAnswer', description: 'The lab’s answer to an emergency request.', examples: [{ decision: 'accepted', quantity: 2, shippingChannel: 'express_carrier', shippingChannelLabel: { fr: 'Transporteur express', en: 'Express carrier' }, expectedDelivery: '2026-11-23T12:00:00.000Z', answeredAt: '2026-11-22T11:00:00.000Z', answeredBy: 'bob' }] },
  ),
)

export const EmergencyRequest = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      cip13: Type.String(),
      gtin: Type.String(),
      productName: Type.String(),
      lab: Type.Object({ id: Type.String(), name: Type.String() }),
      pharmacy: Type.Object({ id: Type.String(), name: Type.String() }),
      quantity: Type.Integer(),
      patientEmergency: Type.Boolean(),
      delivery: Delivery,
      status: Type.Enum([...STATUSES]),
      statusLabel: Type.Object({ fr: Type.String(), en: Type.String() }),
      answer: nullable(EmergencyAnswer, { description: 'The lab’s answer (decision and its details), null until answered.' }),
      eligibility: Type.Record(Type.String(), Type.Unknown(), { description: 'What made the request eligible when it was submitted (proof kept with it).' }),
      contact: Type.Record(Type.String(), Type.Unknown(), { description: 'The lab’s emergency service for this presentation.' }),
      version: Type.Integer(),
      submittedAt: Type.String({ format: 'date-time' }),
      answeredAt: nullable(Type.String({ format: 'date-time' })),
      escalateAt: Type.String({ format: 'date-time', description: 'When it is escalated if still unanswered.' }),
      escalatedAt: nullable(Type.String({ format: 'date-time' })),
      closedAt: nullable(Type.String({ format: 'date-time' })),
      allowedTransitions: Type.Array(Type.Enum([...STATUSES])),
      history: Type.Optional(Type.Array(Step, { description: 'Every step, oldest first (on GET of one request).' })),
    },
    { $id: 'EmergencyRequest', description: 'An emergency request (dépannage d’urgence) from a pharmacy to a lab.', examples: [REQUEST_EXAMPLE] },
  ),
)

const LabFigures = {
  received: Type.Integer(),
  answered: Type.Integer(),
  escalated: Type.Integer(),
  medianMinutesToAnswer: nullable(Type.Number()),
  acceptanceRate: nullable(Type.Number()),
}

export const Statistics = component(
  Type.Object(
    {
      lab: nullable(Type.Object({ id: Type.String(), name: Type.String() }), { description: 'The lab; null for the operator’s national figures.' }),
      from: Type.String({ format: 'date' }),
      to: Type.String({ format: 'date' }),
      received: Type.Integer(),
      answered: Type.Integer(),
      byDecision: Type.Object({ accepted: Type.Integer(), partially_accepted: Type.Integer(), redirected: Type.Integer(), refused: Type.Integer() }),
      cancelledBeforeAnswer: Type.Integer(),
      escalated: Type.Integer(),
      medianMinutesToAnswer: nullable(Type.Number({ description: 'Elapsed (wall-clock) minutes from submission to answer; null when nothing was answered.' })),
      acceptanceRate: nullable(Type.Number({ description: '(accepted + partially accepted) / answered, from 0 to 1; null when nothing was answered.' })),
      byLab: Type.Optional(Type.Array(Type.Object({ lab: Type.Object({ id: Type.String(), name: Type.String() }), ...LabFigures }), { description: 'National figures only: each lab that received requests in the period, most requests first.' })),
    },
    {
      $id: 'EmergencyStatistics',
      description: 'Requests submitted in the period (Paris days, inclusive), and what became of them.',
      examples: [{ lab: { id: '412345670', name: 'BIOGARAN' }, from: '2026-11-01', to: '2026-11-30', received: 12, answered: 10, byDecision: { accepted: 6, partially_accepted: 2, redirected: 1, refused: 1 }, cancelledBeforeAnswer: 1, escalated: 2, medianMinutesToAnswer: 95, acceptanceRate: 0.8 }],
    },
  ),
)

export const Vocabulary = component(
  Type.Object(
    {
      statuses: Type.Array(Type.Object({ code: Type.Enum([...STATUSES]), fr: Type.String(), en: Type.String(), next: Type.Array(Type.Enum([...STATUSES])) })),
      refusalReasons: Type.Array(Type.Object({ code: Type.String(), fr: Type.String(), en: Type.String() })),
      shippingChannels: Type.Array(Type.Object({ code: Type.String(), fr: Type.String(), en: Type.String() })),
      conditions: Type.Array(Type.Object({ code: Type.String(), fr: Type.String(), en: Type.String() })),
    },
    {
      $id: 'EmergencyVocabulary',
      description: 'Controlled lists of emergency requests, French and English.',
      examples: [{ statuses: [{ code: 'submitted', fr: 'Envoyée, en attente de réponse', en: 'Submitted, awaiting an answer', next: ['accepted', 'partially_accepted', 'redirected', 'refused', 'cancelled'] }], refusalReasons: [{ code: 'out_of_stock', fr: 'Stock épuisé', en: 'Out of stock' }], shippingChannels: [{ code: 'express_carrier', fr: 'Transporteur express', en: 'Express carrier' }], conditions: [{ code: 'mitm_or_niche', fr: 'la présentation n’est ni un MITM ni un produit de niche', en: 'the presentation is neither MITM nor a niche product' }] }],
    },
  ),
)

export const OpeningPage = Page(Opening, 'EmergencyOpeningPage')
export const RequestPage = Page(EmergencyRequest, 'EmergencyRequestPage')
export const ReceiptInput = component(
  Type.Object(
    {
      receivedQuantity: Type.Optional(Type.Integer({ minimum: 0, maximum: 10000, description: 'Boxes actually received, when it differs from the answer.' })),
      comment: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    },
    { $id: 'EmergencyReceiptInput', additionalProperties: false, examples: [{ receivedQuantity: 2 }, {}] },
  ),
)
export const CancelInput = component(
  Type.Object(
    { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'Why the pharmacy no longer needs it.' })) },
    { $id: 'EmergencyCancelInput', additionalProperties: false, examples: [{ reason: 'Produit obtenu auprès du grossiste' }, {}] },
  ),
)

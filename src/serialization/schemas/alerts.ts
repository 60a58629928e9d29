// The serial alerts' schemas: an alert, its workflow's inputs, its pack's history, the figures, a pseudonym.
import { type TSchema, Type } from 'typebox'
import { component, Page } from '../../platform/schemas.ts'
import { ALERT_CONCLUSIONS, ALERT_STATUSES, ANSM_CONCLUSIONS } from '../db.ts'

const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])

export const AlertReference = Type.String({
  pattern: '^ALR-\\d{4}-\\d{6,}$',
  description: 'Alert reference, ALR-<year>-<number>.',
  'x-message': { fr: 'une référence d’alerte ALR-AAAA-NNNNNN est attendue', en: 'an alert reference ALR-YYYY-NNNNNN is expected' },
  examples: ['ALR-2026-000123'],
})
export const Pseudonym = Type.String({
  pattern: '^[A-Za-z0-9_-]{22}$',
  description: 'Keyed pseudonym of a pharmacy (22 characters, base64url): stable, never its FINESS.',
  'x-message': { fr: 'un pseudonyme de 22 caractères (base64url) est attendu', en: 'a 22-character (base64url) pseudonym is expected' },
  examples: ['q1Xb7Zr2mN0cKp9LsT4uVw'],
})
export const AlertStatusSchema = Type.Enum([...ALERT_STATUSES], {
  description: 'new → under_investigation → closed, or → escalated (the lab suspects a falsification: ANSM decides) → closed by ANSM.',
})
export const AlertConclusionSchema = Type.Enum([...ALERT_CONCLUSIONS], { description: 'The lab’s conclusion: falsification_suspected escalates the alert to ANSM.' })
export const AnsmConclusionSchema = Type.Enum([...ANSM_CONCLUSIONS], { description: 'ANSM’s conclusion on an escalated alert.' })

const alertExample = {
  reference: 'ALR-2026-000123', product: '3400949497294', lab: '412345670', serial: '10000000001', batch: 'LOT2026A', expiry: '2027-12-31', code: 'UNKNOWN_SERIAL',
  action: 'verify', pharmacy: 'q1Xb7Zr2mN0cKp9LsT4uVw', scanned: ']d201034009494972942110000000001\u001d10LOT2026A\u001d17271231', occurrences: 1,
  lastSeenAt: '2026-11-22T08:00:00.000Z', status: 'new', conclusion: null, conclusionNote: null, escalatedAt: null, ansmConclusion: null, ansmNote: null,
  createdAt: '2026-11-22T08:00:00.000Z', updatedAt: '2026-11-22T08:00:00.000Z', closedAt: null,
}

export const Alert = component(
  Type.Object(
    {
      reference: AlertReference,
      product: Type.String({ description: 'CIP13.' }),
      lab: Type.String({ description: 'SIREN of the product’s lab.' }),
      serial: Type.String({ description: 'As scanned.' }),
      batch: Type.String({ description: 'As scanned.' }),
      expiry: Type.String({ format: 'date', description: 'As scanned.' }),
      code: Type.String({ description: 'The return code that raised the alert (UNKNOWN_SERIAL, BATCH_UNKNOWN, BATCH_MISMATCH, EXPIRY_MISMATCH, ALREADY_INACTIVE, UNDO_…).' }),
      action: Type.String({ description: 'verify, or the state change asked (supply, undo…).' }),
      pharmacy: Type.String({ description: 'Pseudonym of the pharmacy that scanned (never its FINESS; the operator alone can resolve it).' }),
      scanned: nullable(Type.String({ maxLength: 200, description: 'The DataMatrix exactly as scanned (null when the pack was keyed in as fields): most alerts are scanning errors.' })),
      occurrences: Type.Integer({ minimum: 1, description: 'Identical failures of this pharmacy on this pack counted on this alert (re-scans within 30 minutes).' }),
      lastSeenAt: Type.String({ format: 'date-time', description: 'The latest of those failures.' }),
      status: AlertStatusSchema,
      conclusion: nullable(AlertConclusionSchema),
      conclusionNote: nullable(Type.String()),
      escalatedAt: nullable(Type.String({ format: 'date-time', description: 'When the lab escalated it to ANSM.' })),
      ansmConclusion: nullable(AnsmConclusionSchema),
      ansmNote: nullable(Type.String()),
      createdAt: Type.String({ format: 'date-time' }),
      updatedAt: Type.String({ format: 'date-time' }),
      closedAt: nullable(Type.String({ format: 'date-time' })),
      messages: Type.Optional(
        Type.Array(Type.Object({ author: Type.Enum(['lab', 'pharmacy', 'ansm']), text: Type.String(), at: Type.String({ format: 'date-time' }) }), {
          description: 'The lab’s questions, the pharmacy’s answers and ANSM’s messages to the lab, oldest first (on the single alert only).',
        }),
      ),
    },
    { $id: 'SerialAlert', description: 'A possible falsification reported by a scan.', examples: [alertExample] },
  ),
)
export const AlertPage = Page(Alert, 'SerialAlertPage')

export const AlertStatusChange = component(
  Type.Object(
    {
      status: Type.Enum(['under_investigation', 'closed'], { description: 'new → under_investigation → closed. Closing with the conclusion falsification_suspected escalates the alert to ANSM (status escalated) instead.' }),
      conclusion: Type.Optional(AlertConclusionSchema),
      note: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    },
    {
      $id: 'SerialAlertStatusInput',
      additionalProperties: false,
      description: 'Closing needs a conclusion.',
      examples: [{ status: 'under_investigation' }, { status: 'closed', conclusion: 'scanning_error', note: 'Code saisi à la main avec une erreur de lot.' }],
    },
  ),
)

export const AlertMessage = component(
  Type.Object(
    { text: Type.String({ minLength: 1, maxLength: 2000 }) },
    { $id: 'SerialAlertMessageInput', additionalProperties: false, examples: [{ text: 'Pouvez-vous nous envoyer une photo de l’étui et du DataMatrix ?' }] },
  ),
)

export const AlertFiguresSchema = component(
  Type.Object(
    {
      labs: Type.Array(
        Type.Object({
          lab: Type.String(),
          alerts: Type.Integer(),
          byStatus: Type.Record(Type.String(), Type.Integer()),
          byConclusion: Type.Record(Type.String(), Type.Integer()),
          byCode: Type.Record(Type.String(), Type.Integer()),
        }),
      ),
      products: Type.Array(
        Type.Object({
          product: Type.String(),
          lab: Type.String(),
          alerts: Type.Integer(),
          scans: Type.Integer({ description: 'Scans logged (verifications and state changes).' }),
          rate: nullable(Type.Number({ description: 'alerts / scans (null without scans).' })),
        }),
      ),
    },
    {
      $id: 'SerialAlertFigures',
      examples: [
        {
          labs: [{ lab: '412345670', alerts: 2, byStatus: { new: 1, closed: 1 }, byConclusion: { scanning_error: 1 }, byCode: { UNKNOWN_SERIAL: 2 } }],
          products: [{ product: '3400949497294', lab: '412345670', alerts: 2, scans: 400, rate: 0.005 }],
        },
      ],
    },
  ),
)

export const PseudonymResolution = component(
  Type.Object(
    { pseudonym: Pseudonym, org: Type.String({ description: 'FINESS.' }), role: Type.String(), name: Type.String() },
    { $id: 'PharmacyPseudonymResolution', examples: [{ pseudonym: 'q1Xb7Zr2mN0cKp9LsT4uVw', org: '750100010', role: 'pharmacy', name: 'Pharmacie du Marais' }] },
  ),
)

export const AnsmAlertDecision = component(
  Type.Object(
    { conclusion: AnsmConclusionSchema, note: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })) },
    { $id: 'SerialAlertDecisionInput', additionalProperties: false, examples: [{ conclusion: 'falsification_confirmed', note: 'Boîte contrefaite confirmée par le laboratoire de contrôle ; signalement transmis.' }] },
  ),
)

export const PackHistory = component(
  Type.Object(
    {
      reference: AlertReference,
      product: Type.String(),
      serial: Type.String(),
      pack: nullable(
        Type.Object({
          batch: Type.String(),
          state: Type.String({ description: 'The pack’s own state now.' }),
          stateAt: Type.String({ format: 'date-time' }),
          uploadedAt: Type.String({ format: 'date-time' }),
        }, { description: 'The pack as uploaded by the lab; null when the serial is unknown.' }),
      ),
      scans: Type.Array(
        Type.Object({
          at: Type.String({ format: 'date-time' }),
          action: Type.String(),
          code: Type.String(),
          role: Type.String(),
          pharmacy: Type.String({ description: 'Pseudonym of the scanning organisation.' }),
          batch: Type.String(),
          expiry: Type.String({ format: 'date' }),
          transactionId: nullable(Type.String()),
          alertReference: nullable(Type.String()),
        }),
        { description: 'Every verification and state change asked for this serial, oldest first.' },
      ),
      changes: Type.Array(
        Type.Object({
          transactionId: Type.String(),
          at: Type.String({ format: 'date-time' }),
          action: Type.String(),
          from: Type.String(),
          to: Type.String(),
          organisation: Type.String({ description: 'Pseudonym of the organisation.' }),
          user: Type.String({ description: 'Pseudonym of the user.' }),
          role: Type.String(),
          undoes: nullable(Type.String()),
        }),
        { description: 'Every state change of the pack, oldest first.' },
      ),
    },
    {
      $id: 'SerialPackHistory',
      description: 'What happened to the pack of an alert, pseudonymised, for its investigation.',
      examples: [
        {
          reference: 'ALR-2026-000123',
          product: '3400949497294',
          serial: '10000000001',
          pack: { batch: 'LOT2026A', state: 'supplied', stateAt: '2026-11-21T10:00:00.000Z', uploadedAt: '2026-10-01T08:00:00.000Z' },
          scans: [{ at: '2026-11-21T10:00:00.000Z', action: 'supply', code: 'STATE_CHANGED', role: 'pharmacy', pharmacy: 'q1Xb7Zr2mN0cKp9LsT4uVw', batch: 'LOT2026A', expiry: '2027-12-31', transactionId: '0b8e9a8e-2f7c-4d43-9c57-5a3b6f1f8a10', alertReference: null }],
          changes: [{ transactionId: '0b8e9a8e-2f7c-4d43-9c57-5a3b6f1f8a10', at: '2026-11-21T10:00:00.000Z', action: 'supply', from: 'active', to: 'supplied', organisation: 'q1Xb7Zr2mN0cKp9LsT4uVw', user: 'Zk3r8Qw1Lm0Nb2Vc4Xs5Ta', role: 'pharmacy', undoes: null }],
        },
      ],
    },
  ),
)

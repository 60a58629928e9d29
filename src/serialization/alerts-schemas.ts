import { type TSchema, Type } from 'typebox'
import { component, Page } from '../platform/schemas.ts'
import { ALERT_CONCLUSIONS, ALERT_STATUSES } from './alerts-db.ts'

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
export const AlertStatusSchema = Type.Enum([...ALERT_STATUSES], { description: 'new → under_investigation → closed.' })
export const AlertConclusionSchema = Type.Enum([...ALERT_CONCLUSIONS], { description: 'Why the alert was closed.' })

const alertExample = {
  reference: 'ALR-2026-000123', product: '3400949497294', lab: '412345670', serial: '10000000001', batch: 'LOT2026A', expiry: '2027-12-31', code: 'UNKNOWN_SERIAL',
  action: 'verify', pharmacy: 'q1Xb7Zr2mN0cKp9LsT4uVw', status: 'new', conclusion: null, conclusionNote: null,
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
      code: Type.String({ description: 'The return code that raised the alert (UNKNOWN_SERIAL, BATCH_MISMATCH, EXPIRY_MISMATCH, UNDO_…).' }),
      action: Type.String({ description: 'verify, or the state change asked (supply, undo…).' }),
      pharmacy: Type.String({ description: 'Pseudonym of the pharmacy that scanned (never its FINESS; the operator alone can resolve it).' }),
      status: AlertStatusSchema,
      conclusion: nullable(AlertConclusionSchema),
      conclusionNote: nullable(Type.String()),
      createdAt: Type.String({ format: 'date-time' }),
      updatedAt: Type.String({ format: 'date-time' }),
      closedAt: nullable(Type.String({ format: 'date-time' })),
      messages: Type.Optional(
        Type.Array(Type.Object({ author: Type.Enum(['lab', 'pharmacy']), text: Type.String(), at: Type.String({ format: 'date-time' }) }), {
          description: 'The lab’s questions and the pharmacy’s answers, oldest first (on the single alert only).',
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
      status: Type.Enum(['under_investigation', 'closed'], { description: 'new → under_investigation → closed.' }),
      conclusion: Type.Optional(AlertConclusionSchema),
      note: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    },
    {
      $id: 'SerialAlertStatusChange',
      additionalProperties: false,
      description: 'Closing needs a conclusion.',
      examples: [{ status: 'under_investigation' }, { status: 'closed', conclusion: 'scanning_error', note: 'Code saisi à la main avec une erreur de lot.' }],
    },
  ),
)

export const AlertMessage = component(
  Type.Object(
    { text: Type.String({ minLength: 1, maxLength: 2000 }) },
    { $id: 'SerialAlertMessage', additionalProperties: false, examples: [{ text: 'Pouvez-vous nous envoyer une photo de l’étui et du DataMatrix ?' }] },
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

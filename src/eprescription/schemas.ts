import { type TSchema, Type } from 'typebox'
import { component, Page } from '../platform/schemas.ts'

const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
const text = (max: number, description?: string, examples?: string[]) =>
  Type.String({ minLength: 1, maxLength: max, ...(description ? { description } : {}), ...(examples ? { examples } : {}) })

export const PrescriptionIdParam = Type.String({
  minLength: 1,
  maxLength: 40,
  description: 'Prescription ID as printed (12 characters, dashes and case ignored; the last one is a check character).',
  examples: ['K3F8-2QZP-7M4B'],
})

export const LineInput = Type.Object(
  {
    cip13: Type.Optional(Type.String({ format: 'cip13', description: 'A presentation (box) by CIP13. Either cip13 or substance.', examples: ['3400949497294'] })),
    substance: Type.Optional(text(200, 'A substance by name (prescription in DCI). Either cip13 or substance.', ['amoxicilline'])),
    strength: Type.Optional(text(100, 'With substance: the strength.', ['500 mg'])),
    form: Type.Optional(text(100, 'With substance: the pharmaceutical form.', ['gélule'])),
    dosage: text(1000, 'Dosage instructions (posologie).', ['1 gélule matin, midi et soir pendant 7 jours']),
    quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 99, description: 'Boxes to deliver per dispensation (of the prescribed presentation). A quantity (boxes or units) or a duration, or both.' })),
    units: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'Units (tablets, capsules, sachets…) to deliver per dispensation, instead of boxes: the usual way for a substance line.', examples: [21] })),
    durationDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 366, description: 'Treatment duration in days. Required with renewals: each renewal may be dispensed from the previous one plus this duration, less a tolerance.' })),
    renewals: Type.Optional(Type.Integer({ minimum: 0, maximum: 12, default: 0, description: '“À renouveler N fois”: the line may be dispensed 1 + N times over the validity.' })),
    nonSubstitutable: Type.Optional(
      Type.Boolean({ default: false, description: '“Non substituable”: a presentation line is delivered with the prescribed presentation only; a substance line keeps, over its renewals, to the medicine first delivered.' }),
    ),
  },
  { additionalProperties: false },
)

export const EprescriptionCreate = component(
  Type.Object(
    {
      patient: Type.Object(
        {
          familyName: text(100, undefined, ['DUPONT']),
          givenName: text(100, undefined, ['Marie']),
          birthDate: Type.String({ format: 'date', formatMinimum: '1900-01-01', examples: ['1984-05-17'] }),
        },
        { additionalProperties: false, description: 'Only what a prescription needs: name and birth date.' },
      ),
      lines: Type.Array(LineInput, { minItems: 1, maxItems: 30 }),
      validUntil: Type.Optional(
        Type.String({
          format: 'date-time',
          description: 'End of validity. Default: 3 months after issue; for a renewable prescription, long enough for the renewals (at most 12 months). A non-renewable prescription is valid 3 months at most.',
        }),
      ),
    },
    {
      $id: 'EprescriptionInput',
      additionalProperties: false,
      examples: [
        {
          patient: { familyName: 'DUPONT', givenName: 'Marie', birthDate: '1984-05-17' },
          lines: [
            { cip13: '3400949497294', dosage: '1 comprimé le soir', quantity: 1, durationDays: 30, renewals: 2 },
            { substance: 'amoxicilline', strength: '500 mg', form: 'gélule', dosage: '1 gélule 3 fois par jour pendant 7 jours', units: 21, durationDays: 7 },
          ],
        },
      ],
    },
  ),
)

const QuantityReason = Type.Enum(['pack-size', 'unit-conversion'], {
  description: 'Why more than prescribed was delivered: `pack-size` (the boxes on the market do not allow the exact quantity; at most one box more than needed) or `unit-conversion` (another strength or unit, e.g. two 5 mg tablets for one of 10 mg).',
})

const DispensedLine = Type.Object({
  line: Type.Integer(),
  outcome: Type.Enum(['delivered', 'not_delivered']),
  cip13: nullable(Type.String()),
  quantity: nullable(Type.Integer({ description: 'Boxes.' })),
  batch: nullable(Type.String()),
  substituted: Type.Boolean({ description: 'Decided by the service: another medicine than the prescribed one (generic group), or than the one delivered before on a substance line.' }),
  match: nullable(
    Type.Enum(['prescribed', 'pack-size', 'generic-group', 'substance'], {
      description: 'How the product matched the line: the prescribed presentation, another pack of the same medicine, a medicine of the same generic group, or a product carrying the prescribed substance, strength and form.',
    }),
  ),
  units: nullable(Type.Integer({ description: 'Units delivered (boxes × units per box), when the box says.' })),
  quantityReason: nullable(QuantityReason),
  dosageChange: nullable(Type.Object({ dosage: Type.String(), reason: Type.String() })),
  reason: nullable(Type.String({ description: 'Why the line was not delivered.' })),
  recordedAt: Type.String({ format: 'date-time' }),
})

export const Eprescription = component(
  Type.Object(
    {
      id: Type.String({ description: 'Canonical ID (12 characters).' }),
      displayId: Type.String({ description: 'As printed, in groups of four.' }),
      status: Type.Enum(['draft', 'ready', 'in_progress', 'completed', 'cancelled', 'expired']),
      issuedAt: Type.String({ format: 'date-time' }),
      validUntil: Type.String({ format: 'date-time' }),
      prescriber: Type.Object({ rpps: Type.String(), name: nullable(Type.String()) }),
      patient: Type.Object({ familyName: Type.String(), givenName: Type.String(), birthDate: Type.String({ format: 'date' }) }),
      lines: Type.Array(
        Type.Object({
          line: Type.Integer(),
          cip13: nullable(Type.String()),
          substance: nullable(Type.String()),
          strength: nullable(Type.String()),
          form: nullable(Type.String()),
          label: Type.String(),
          dosage: Type.String(),
          quantity: nullable(Type.Integer()),
          durationDays: nullable(Type.Integer()),
          units: nullable(Type.Integer()),
          renewals: Type.Integer(),
          nonSubstitutable: Type.Boolean(),
          dispensationsAllowed: Type.Integer({ description: '1 + renewals.' }),
          dispensed: nullable(Type.Integer({ description: 'Times delivered so far; null for the prescriber when the patient objected.' })),
          remaining: nullable(Type.Integer({ description: 'Deliveries left (renewals); null when hidden.' })),
          nextDispensationFrom: nullable(
            Type.String({ format: 'date-time', description: 'From when the line may be dispensed next (renewal window, Paris midnight); null when nothing is left, the prescription is over, or the patient objected.' }),
          ),
        }),
      ),
      nextDispensationFrom: nullable(Type.String({ format: 'date-time', description: 'The earliest of the lines’ next windows.' })),
      dispensationCount: Type.Integer({ description: 'Closed dispensations.' }),
      patientObjection: Type.Boolean({ description: 'The patient objected to the prescriber seeing the dispensations.' }),
      dispensedLinesHidden: Type.Boolean({ description: 'True when the dispensations are hidden from this caller (patient objection).' }),
      dispensations: Type.Array(
        Type.Object({
          seq: Type.Integer(),
          pharmacy: nullable(Type.Object({ id: Type.String(), name: nullable(Type.String()) })),
          acceptedAt: Type.String({ format: 'date-time' }),
          closedAt: Type.String({ format: 'date-time' }),
          lines: Type.Array(DispensedLine),
        }),
      ),
      cancelledAt: nullable(Type.String({ format: 'date-time' })),
      cancelReason: nullable(Type.String()),
      issuedDigest: Type.String({ description: 'sha-256 of the canonical JSON (RFC 8785) of the prescription as issued (id, issuedAt, validUntil, prescriber, patient, lines): the `prescriptionDigest` every receipt binds.' }),
      accessCode: Type.Optional(Type.String({ description: 'Only in the answer to issue: the access code, kept by the service as a keyed hash only. Print it now; POST …/access-code gives a new one.' })),
      qrPayload: Type.Optional(Type.String({ description: 'Only in the answer to issue: the QR code content (ID + access code).' })),
    },
    { $id: 'Eprescription', description: 'An e-prescription as its caller may see it.' },
  ),
)

export const EprescriptionTake = component(
  Type.Object(
    {
      qr: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'The scanned QR code content, as read.' })),
      id: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'Typed ID (when the QR code cannot be read).' })),
      accessCode: Type.Optional(Type.String({ minLength: 1, maxLength: 60, description: 'Typed access code.' })),
    },
    {
      $id: 'EprescriptionAcceptInput',
      additionalProperties: false,
      description: 'Either `qr`, or `id` and `accessCode`.',
      examples: [{ qr: 'ORDO1:K3F82QZP7M4B:7XQ2M9PZK4R8T1VWB6DB' }, { id: 'K3F8-2QZP-7M4B', accessCode: '7XQ2-M9PZ-K4R8-T1VW-B6DB' }],
    },
  ),
)

export const Dispensation = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      status: Type.Enum(['open', 'released', 'closed']),
      acceptedAt: Type.String({ format: 'date-time' }),
      lines: Type.Array(DispensedLine, { description: 'What was recorded so far.' }),
    },
    { $id: 'EprescriptionDispensation' },
  ),
)

export const EprescriptionTaken = component(
  Type.Object(
    {
      secret: Type.String({ description: 'Send it in the x-eprescription-secret header of every later call (record, release, close). Taking the prescription again gives a new one and voids this one.' }),
      prescription: Eprescription,
      dispensation: Dispensation,
    },
    { $id: 'EprescriptionTaken' },
  ),
)

export const DispensedLineInput = component(
  Type.Object(
    {
      outcome: Type.Enum(['delivered', 'not_delivered']),
      cip13: Type.Optional(Type.String({ format: 'cip13', description: 'delivered: the presentation delivered.' })),
      quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 99, description: 'delivered: boxes.' })),
      batch: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 20,
          pattern: "^[!-\"%-/0-9:-?A-Z_a-z]+$",
          'x-message': { fr: 'un numéro de lot compte au plus 20 caractères du jeu GS1', en: 'a batch has at most 20 characters of the GS1 set' },
        }),
      ),
      substituted: Type.Optional(Type.Boolean({ deprecated: true, description: 'Ignored: the service decides whether the delivery is a substitution (see `match` and `substituted` in the answer).' })),
      quantityReason: Type.Optional(QuantityReason),
      dosageChange: Type.Optional(Type.Object({ dosage: text(1000), reason: text(500) }, { additionalProperties: false, description: 'delivered: the dosage was changed, and why.' })),
      reason: Type.Optional(text(500, 'not_delivered: why.', ['rupture de stock'])),
    },
    {
      $id: 'EprescriptionDispensedLineInput',
      additionalProperties: false,
      examples: [
        { outcome: 'delivered', cip13: '3400949497294', quantity: 1, batch: 'LOT123' },
        { outcome: 'delivered', cip13: '3400949497355', quantity: 1, batch: 'LOT456', quantityReason: 'pack-size' },
        { outcome: 'not_delivered', reason: 'Rupture de stock' },
      ],
    },
  ),
)

export const Receipt = component(
  Type.Object(
    {
      jws: Type.String({ description: 'Compact JWS (ES256) signed by the service; verify with GET /v1/eprescriptions/receipt-keys.' }),
      kid: Type.String(),
      claims: Type.Object({
        iss: Type.String(),
        iat: Type.Integer(),
        prescriptionId: Type.String(),
        dispensation: Type.Integer(),
        pharmacy: Type.String(),
        acceptedAt: Type.String({ format: 'date-time' }),
        closedAt: Type.String({ format: 'date-time' }),
        digest: Type.String({ description: 'sha-256 of the canonical JSON (RFC 8785) of `dispensed`, base64url.' }),
        prescriptionDigest: Type.Optional(Type.String({ description: 'The prescription as issued: its `issuedDigest`. Absent from receipts signed before the service bound it.' })),
      }),
      dispensed: Type.Array(DispensedLine),
      prescriptionStatus: Type.String({ description: 'The prescription’s status after this dispensation (ready when renewals remain).' }),
    },
    { $id: 'EprescriptionReceipt', description: 'Proof of what the service recorded for one dispensation.' },
  ),
)

export const Jwks = component(
  Type.Object(
    {
      keys: Type.Array(
        Type.Object(
          { kty: Type.String(), crv: Type.String(), x: Type.String(), y: Type.String(), kid: Type.String(), alg: Type.String(), use: Type.String() },
          { additionalProperties: true },
        ),
      ),
    },
    { $id: 'EprescriptionReceiptKeys', description: 'JSON Web Key Set (RFC 7517) of the receipt signing keys, current and past.' },
  ),
)

export const AccessLogEntry = component(
  Type.Object(
    {
      at: Type.String({ format: 'date-time' }),
      role: Type.String({ description: 'prescriber, pharmacy, patient or system.' }),
      organisation: nullable(Type.Object({ id: Type.String(), name: nullable(Type.String()) })),
      action: Type.String({ examples: ['accepted', 'read', 'pdf'] }),
    },
    { $id: 'EprescriptionAccessLogEntry' },
  ),
)

export const EprescriptionSummary = component(
  Type.Object(
    {
      id: Type.String(),
      displayId: Type.String(),
      status: Type.Enum(['draft', 'ready', 'in_progress', 'completed', 'cancelled', 'expired']),
      issuedAt: Type.String({ format: 'date-time' }),
      validUntil: Type.String({ format: 'date-time' }),
      patient: Type.Object({ familyName: Type.String(), givenName: Type.String(), birthDate: Type.String({ format: 'date' }) }),
      lines: Type.Integer({ description: 'Number of lines.' }),
      dispensationCount: Type.Integer({ description: 'Closed dispensations.' }),
      patientObjection: Type.Boolean(),
      nextDispensationFrom: nullable(Type.String({ format: 'date-time', description: 'From when a line may next be dispensed; null when over or hidden (objection).' })),
      cancelledAt: nullable(Type.String({ format: 'date-time' })),
    },
    {
      $id: 'EprescriptionSummary',
      description: 'One prescription in its prescriber’s list; GET /v1/eprescriptions/{id} has the rest.',
      examples: [
        {
          id: 'K3F82QZP7M4B', displayId: 'K3F8-2QZP-7M4B', status: 'ready', issuedAt: '2026-11-22T08:00:00.000Z', validUntil: '2027-02-22T08:00:00.000Z',
          patient: { familyName: 'DUPONT', givenName: 'Marie', birthDate: '1984-05-17' }, lines: 2, dispensationCount: 1, patientObjection: false,
          nextDispensationFrom: '2026-12-16T23:00:00.000Z', cancelledAt: null,
        },
      ],
    },
  ),
)
export const EprescriptionPage = Page(EprescriptionSummary, 'EprescriptionPage')

export const AccessCodeRenewed = component(
  Type.Object(
    {
      id: Type.String(),
      displayId: Type.String(),
      accessCode: Type.String({ description: 'The new access code; the previous one no longer opens the prescription.' }),
      qrPayload: Type.String({ description: 'The new QR code content.' }),
    },
    { $id: 'EprescriptionAccessCode', examples: [{ id: 'K3F82QZP7M4B', displayId: 'K3F8-2QZP-7M4B', accessCode: '7XQ2-M9PZ-K4R8-T1VW-B6DB', qrPayload: 'ORDO1:K3F82QZP7M4B:7XQ2M9PZK4R8T1VWB6DB' }] },
  ),
)

export const EprescriptionHeld = component(
  Type.Object({ prescription: Eprescription, dispensation: Dispensation }, { $id: 'EprescriptionHeld', description: 'The prescription a pharmacy holds and what it recorded so far.' }),
)

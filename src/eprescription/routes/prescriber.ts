/** Prescriber routes: issue, list, follow, cancel, renew the access code, QR code; the FHIR Bundle (prescriber or holding pharmacy). */
import { Type } from 'typebox'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { AppError } from '../../platform/errors.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { qrPng, qrSvg } from '../documents.ts'
import { fhirBundle } from '../fhir.ts'
import { display, qrPayload } from '../ids.ts'
import { AccessCodeRenewed, Eprescription, EprescriptionCreate, EprescriptionPage } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { loadForFhir } from '../use-cases/pharmacy.ts'
import { cancelPrescription, checkOwnCode, getPrescription, issuePrescription, listPrescriptions, renewAccessCode, viewAfterWrite } from '../use-cases/prescriber.ts'
import { ACCESS_CODE_HEADER, AccessCodeHeader, binary, IdParams, parseAccessCode, parseId, SECRET_HEADER, SecretHeader, TAGS, whoOf } from './common.ts'

const STATUSES = ['ready', 'in_progress', 'completed', 'cancelled', 'expired'] as const

const prescriberRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.post(
    '/eprescriptions',
    {
      config: { roles: ['prescriber'] },
      schema: {
        tags: TAGS,
        operationId: 'issueEprescription',
        summary: 'Issue a prescription (prescriber)',
        description:
          'Stores the prescription and answers its ID (typable, with a check character), its access code and the QR code content carrying both (`qrPayload`; images at `/qr.png` and `/qr.svg`). The service keeps the access code only as a keyed hash: this answer is the one to print (POST …/access-code gives a new code). A line names a presentation by CIP13 (in the referential) or a substance with strength and form (some medicine of the referential must carry it); a quantity in boxes or in units, or a duration; renewals (with their duration); “non substituable”. Validity: 3 months by default, longer for renewable prescriptions (12 months at most).',
        headers: IdempotencyKeyHeader,
        body: EprescriptionCreate,
        response: { 201: Eprescription, ...problems(400, 409, 422) },
      },
    },
    async (request, reply) => {
      const who = whoOf(request)
      const now = app.now()
      const { id, accessCode } = await issuePrescription(deps, who, request.body, now)
      const view = await viewAfterWrite(deps, who, id, now)
      return reply.code(201).header('location', `/v1/eprescriptions/${id}`).send({ ...view, accessCode: display(accessCode), qrPayload: qrPayload(id, accessCode) })
    },
  )

  app.get(
    '/eprescriptions',
    {
      config: { roles: ['prescriber'] },
      schema: {
        tags: TAGS,
        operationId: 'listEprescriptions',
        summary: 'The prescriber’s prescriptions, most recent first',
        description:
          'Filters: `status` (`expired` includes ready prescriptions past their validity), `issuedFrom` / `issuedTo` (issue time, from included, to excluded), `patient` (start of the family name; case and accents ignored). Each item carries the next renewal window (`nextDispensationFrom`). Every prescription listed is recorded in its patient’s access log.',
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Enum([...STATUSES])),
            issuedFrom: Type.Optional(Type.String({ format: 'date-time' })),
            issuedTo: Type.Optional(Type.String({ format: 'date-time' })),
            patient: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', examples: ['DUP'] })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: EprescriptionPage },
      },
    },
    async (request) => {
      const { status, issuedFrom, issuedTo, patient, limit = 50, cursor } = request.query
      const filter = { status, issuedFrom, issuedTo, patient }
      let after: { t: Date; id: string } | null = null
      if (cursor) {
        const c = decodeCursor<{ t: string; id: string }>(cursor, filter)
        if (typeof c.t !== 'string' || typeof c.id !== 'string' || Number.isNaN(Date.parse(c.t))) throw new AppError('INVALID_CURSOR')
        after = { t: new Date(c.t), id: c.id }
      }
      const page = await listPrescriptions(
        deps,
        whoOf(request),
        { status, issuedFrom: issuedFrom ? new Date(issuedFrom) : undefined, issuedTo: issuedTo ? new Date(issuedTo) : undefined, patient, limit, after },
        app.now(),
      )
      return { items: page.items, nextCursor: page.next ? encodeCursor(page.next, filter) : null }
    },
  )

  app.get(
    '/eprescriptions/:id',
    {
      config: { roles: ['prescriber'] },
      schema: {
        tags: TAGS,
        operationId: 'getEprescription',
        summary: 'Follow a prescription: status, dispensations, next renewal window (prescriber)',
        description: 'The prescriber’s own prescriptions only (another’s answers 404). The dispensed lines and renewal windows are hidden when the patient objected (`dispensedLinesHidden`).',
        params: IdParams,
        response: { 200: Eprescription, ...problems(404) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      return getPrescription(deps, who, parseId(request.params.id, 'params.id', who.lang), app.now())
    },
  )

  for (const [ext, type] of [
    ['png', 'image/png'],
    ['svg', 'image/svg+xml'],
  ] as const) {
    app.get(
      `/eprescriptions/:id/qr.${ext}`,
      {
        config: { roles: ['prescriber'] },
        schema: {
          tags: TAGS,
          operationId: ext === 'png' ? 'getEprescriptionQrPng' : 'getEprescriptionQrSvg',
          summary: `The QR code to print, as ${ext.toUpperCase()} (prescriber)`,
          description: `Carries \`ORDO1:<ID>:<access code>\`. The service does not keep the access code: give it in the ${ACCESS_CODE_HEADER} header (a wrong one answers 404). Print the ID and the access code in clear beside it.`,
          params: IdParams,
          headers: Type.Object({ [ACCESS_CODE_HEADER]: AccessCodeHeader }),
          response: { 200: binary(type, `QR code (${type})`), ...problems(404) },
        },
      },
      async (request, reply) => {
        const who = whoOf(request)
        const id = parseId(request.params.id, 'params.id', who.lang)
        const code = parseAccessCode(request.headers[ACCESS_CODE_HEADER], `headers.${ACCESS_CODE_HEADER}`, who.lang)
        await checkOwnCode(deps, who, id, code)
        const content = qrPayload(id, code)
        return reply.type(type).header('cache-control', 'private, no-store').send(ext === 'png' ? await qrPng(content) : await qrSvg(content))
      },
    )
  }

  app.post(
    '/eprescriptions/:id/cancel',
    {
      config: { roles: ['prescriber'] },
      schema: {
        tags: TAGS,
        operationId: 'cancelEprescription',
        summary: 'Cancel a prescription no pharmacy holds (prescriber)',
        description: 'Allowed while the prescription is ready (not taken, not expired, renewals left). What was already dispensed stays, kept for the dispensed retention. Cancelling again answers the cancelled prescription.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) }, { additionalProperties: false }),
        response: { 200: Eprescription, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      return cancelPrescription(deps, who, parseId(request.params.id, 'params.id', who.lang), request.body?.reason, app.now())
    },
  )

  app.post(
    '/eprescriptions/:id/access-code',
    {
      config: { roles: ['prescriber'] },
      schema: {
        tags: TAGS,
        operationId: 'renewEprescriptionAccessCode',
        summary: 'A new access code, to reprint the prescription (prescriber)',
        description:
          'The service keeps access codes only as keyed hashes, so a lost code cannot be read back: this draws a new one, and the previous one stops opening the prescription (a pharmacy already holding it keeps its secret). Allowed while the prescription can still be dispensed (ready or in progress).',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        response: { 200: AccessCodeRenewed, ...problems(404, 409) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      const id = parseId(request.params.id, 'params.id', who.lang)
      const { accessCode } = await renewAccessCode(deps, who, id, app.now())
      return { id, displayId: display(id), accessCode: display(accessCode), qrPayload: qrPayload(id, accessCode) }
    },
  )

  app.get(
    '/eprescriptions/:id/fhir',
    {
      config: { roles: ['prescriber', 'pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionFhir',
        summary: 'The prescription as an HL7 FHIR R4 Bundle',
        description:
          'A Bundle (collection): the Patient, the Practitioner (RPPS as IDNPS, FR Core), a Medication per substance line and one MedicationRequest per line (profile fr-medicationrequest of the ANS ePrescription guide) grouped by `groupIdentifier` (the prescription ID). The prescriber reads its own; a pharmacy the one it holds (header x-eprescription-secret).',
        params: IdParams,
        headers: Type.Object({ [SECRET_HEADER]: Type.Optional(SecretHeader) }),
        response: { 200: { description: 'FHIR R4 Bundle', content: { 'application/fhir+json': { schema: { type: 'object', additionalProperties: true } } } }, ...problems(403, 404) },
      },
    },
    async (request, reply) => {
      const who = whoOf(request)
      const now = app.now()
      const { l, medicines } = await loadForFhir(deps, who, parseId(request.params.id, 'params.id', who.lang), request.headers[SECRET_HEADER], now)
      const base = app.config.PUBLIC_URL ?? `${request.protocol}://${request.host}`
      // Sent as a string: FHIR keeps its own key order and the content type is not application/json.
      const body: unknown = JSON.stringify(fhirBundle(l, now, base, medicines))
      return reply.type('application/fhir+json; charset=utf-8').send(body as Record<string, unknown>)
    },
  )
}

export default prescriberRoutes

/** Patient routes: no account, the ID in the path and the access code in a header; throttled per address. */
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { problems } from '../../platform/openapi.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { type Caller, THROTTLE } from '../rules/access.ts'
import { display } from '../ids.ts'
import { AccessLogEntry } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { patientAccessLog, patientPdf, setObjection } from '../use-cases/patient.ts'
import { langOf } from '../../platform/i18n.ts'
import { ACCESS_CODE_HEADER, AccessCodeHeader, AccessCodeHeaders, binary, IdParams, parseAccessCode, parseId, TAGS } from './common.ts'

const THROTTLED = `Wrong codes count against the caller’s address only (request.ip, which honours X-Forwarded-For behind a trusted proxy): after ${THROTTLE.perCallerPerPrescription} for one prescription or ${THROTTLE.perCaller} in all within ${THROTTLE.windowMs / 60_000} minutes, that address gets 429 with Retry-After. Nobody else is refused: many wrong codes on one prescription alert the operator instead.`

/** The caller of a patient route: their address. */
const callerOf = (request: FastifyRequest): Caller => `ip:${request.ip}`

const patientRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  const idAndCode = (request: FastifyRequest, rawId: string, rawCode: string) => {
    const lang = langOf(request)
    return { id: parseId(rawId, 'params.id', lang), code: parseAccessCode(rawCode, `headers.${ACCESS_CODE_HEADER}`, lang) }
  }

  app.get(
    '/eprescriptions/:id/patient/pdf',
    {
      config: { roles: 'public' },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionPdf',
        summary: 'The prescription as a PDF, with its QR code and the dispensations (patient)',
        description: `No token: the ID in the path and the access code in the ${ACCESS_CODE_HEADER} header. Names are printed as given (the PDF embeds a Unicode font). A cancelled or expired prescription is marked ANNULÉE / EXPIRÉE across the page, with the date (and reason), and carries no QR code. ${THROTTLED}`,
        params: IdParams,
        headers: Type.Object({ [ACCESS_CODE_HEADER]: AccessCodeHeader }),
        response: { 200: binary('application/pdf', 'The prescription (PDF)'), ...problems(404, 429) },
      },
    },
    async (request, reply) => {
      const { id, code } = idAndCode(request, request.params.id, request.headers[ACCESS_CODE_HEADER])
      const pdf = await patientPdf(deps, callerOf(request), id, code, app.now())
      return reply.type('application/pdf').header('content-disposition', `attachment; filename="ordonnance-${display(id)}.pdf"`).header('cache-control', 'private, no-store').send(pdf)
    },
  )

  app.put(
    '/eprescriptions/:id/patient/objection',
    {
      config: { roles: 'public' },
      schema: {
        tags: TAGS,
        operationId: 'setEprescriptionObjection',
        summary: 'Object to (or accept) the prescriber seeing the dispensations (patient)',
        description: THROTTLED,
        params: IdParams,
        headers: AccessCodeHeaders,
        body: Type.Object({ objection: Type.Boolean({ description: 'true: the prescriber no longer sees what was dispensed.' }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ objection: Type.Boolean() }), ...problems(404, 409, 422, 429) },
      },
    },
    async (request) => {
      const { id, code } = idAndCode(request, request.params.id, request.headers[ACCESS_CODE_HEADER])
      return setObjection(deps, callerOf(request), request.id, id, code, request.body.objection, app.now())
    },
  )

  app.get(
    '/eprescriptions/:id/patient/access-log',
    {
      config: { roles: 'public' },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionAccessLog',
        summary: 'Who accessed the prescription, and when (patient)',
        description: `Every read and write of the prescription: by its prescriber (including listings), the pharmacies and the patient. ${THROTTLED}`,
        params: IdParams,
        headers: Type.Object({ [ACCESS_CODE_HEADER]: AccessCodeHeader }),
        response: { 200: Type.Array(AccessLogEntry), ...problems(404, 429) },
      },
    },
    async (request) => {
      const { id, code } = idAndCode(request, request.params.id, request.headers[ACCESS_CODE_HEADER])
      return patientAccessLog(deps, callerOf(request), id, code, app.now())
    },
  )
}

export default patientRoutes

/** Pharmacy routes: take, read what it holds, record lines, release, close, receipts; the receipt keys. */
import { Type } from 'typebox'
import { AppError } from '../../platform/errors.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { THROTTLE } from '../rules/access.ts'
import { recordFailure } from '../use-cases/access.ts'
import { invalid } from '../errors.ts'
import { parseQr } from '../ids.ts'
import { publishedKeys } from '../receipts.ts'
import { QUANTITY_REASONS } from '../rules/dispensing.ts'
import { Dispensation, DispensedLineInput, Eprescription, EprescriptionHeld, EprescriptionTake, EprescriptionTaken, Jwks, PrescriptionIdParam, Receipt } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { closeDispensation, getHeld, getReceipt, recordLine, releasePrescription, takePrescription } from '../use-cases/pharmacy.ts'
import { IdParams, parseAccessCode, parseId, SECRET_HEADER, SecretHeader, SecretHeaders, TAGS, whoOf } from './common.ts'

const pharmacyRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.post(
    '/eprescriptions/accept',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'acceptEprescription',
        summary: 'Take a prescription with its QR code or ID + access code (pharmacy)',
        description: `Moves it to in_progress and answers its data and a \`secret\` that every later call needs (header x-eprescription-secret). The same pharmacy calling again (lost answer, lost secret) gets a new secret, and the previous one stops working. Another pharmacy gets 409 EPRESCRIPTION_IN_PROGRESS; expired, cancelled or fully dispensed prescriptions are refused with the reason, and so is a renewal whose window has not opened yet (409 EPRESCRIPTION_RENEWAL_TOO_EARLY with \`notBefore\`). A wrong access code answers 404 and counts against the calling pharmacy only: after ${THROTTLE.perCallerPerPrescription} for one prescription or ${THROTTLE.perCaller} in all within ${THROTTLE.windowMs / 60_000} minutes, that pharmacy gets 429 with Retry-After; other pharmacies and the patient are not affected. QR content that is not an e-prescription is refused (400) without being echoed.`,
        headers: IdempotencyKeyHeader,
        body: EprescriptionTake,
        response: { 200: EprescriptionTaken, ...problems(404, 409, 422, 429) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      const now = app.now()
      const b = request.body
      let id: string
      let code: string
      if (b.qr !== undefined) {
        if (b.id !== undefined || b.accessCode !== undefined) {
          throw invalid([{ field: 'body.qr', code: 'one-of', message: { fr: 'donnez soit qr, soit id et accessCode', en: 'give either qr, or id and accessCode' } }], who.lang)
        }
        const parsed = parseQr(b.qr)
        if (!parsed) {
          await recordFailure(app.db, null, `org:${who.principal.org}`, now) // garbage counts towards the pharmacy's own limit
          throw new AppError('EPRESCRIPTION_QR_INVALID', {}, { errors: [{ field: 'body.qr', code: 'qr', message: who.lang === 'fr' ? 'contenu de QR code non reconnu' : 'QR code content not recognised' }] })
        }
        ;({ id, accessCode: code } = parsed)
      } else {
        const missing = (['id', 'accessCode'] as const).filter((k) => b[k] === undefined)
        if (missing.length) throw invalid(missing.map((k) => ({ field: `body.${k}`, code: 'required', message: { fr: 'champ obligatoire (ou donnez qr)', en: 'required field (or give qr)' } })), who.lang)
        id = parseId(b.id!, 'body.id', who.lang)
        code = parseAccessCode(b.accessCode!, 'body.accessCode', who.lang)
      }
      return takePrescription(deps, who, id, code, now)
    },
  )

  app.get(
    '/eprescriptions/:id/dispensation',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionDispensation',
        summary: 'The prescription held and what was recorded so far (pharmacy)',
        description: 'Needs the live secret: a secret voided by a release, a new take or a close answers 403 with nothing of the prescription.',
        params: IdParams,
        headers: Type.Object({ [SECRET_HEADER]: SecretHeader }),
        response: { 200: EprescriptionHeld, ...problems(403, 404) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      return getHeld(deps, who, parseId(request.params.id, 'params.id', who.lang), request.headers[SECRET_HEADER], app.now())
    },
  )

  app.put(
    '/eprescriptions/:id/dispensation/lines/:line',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'recordEprescriptionLine',
        summary: 'Record what was delivered for one line (pharmacy)',
        description: `\`delivered\`: the CIP13 delivered (from the referential), quantity in boxes, batch, a dosage change with its reason. The service decides whether the product may be given on the line and whether it is a substitution (\`match\`, \`substituted\`; a \`substituted\` sent by the client is ignored): on a presentation line, the prescribed presentation, another pack of the same medicine or a medicine of the same generic group; on a substance line, a product with that substance, strength and form; on a “non substituable” line, only the prescribed presentation (or, on a substance line, the medicine delivered before). Units delivered above the prescription are refused unless \`quantityReason\` says why (${QUANTITY_REASONS.join(', ')}). A renewal before its window answers 409 EPRESCRIPTION_RENEWAL_TOO_EARLY with \`notBefore\`. \`not_delivered\`: the reason. Recording a line again replaces it until the dispensation is closed.`,
        headers: SecretHeaders,
        params: Type.Object({ id: PrescriptionIdParam, line: Type.Integer({ minimum: 1, maximum: 30 }) }),
        body: DispensedLineInput,
        response: { 200: Dispensation, ...problems(403, 404, 409, 422) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      return recordLine(deps, who, parseId(request.params.id, 'params.id', who.lang), request.params.line, request.body, request.headers[SECRET_HEADER], app.now())
    },
  )

  app.post(
    '/eprescriptions/:id/release',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'releaseEprescription',
        summary: 'Give the prescription back without dispensing (pharmacy)',
        description: 'It returns to ready, the secret is voided and what was recorded is discarded. The voided secret opens nothing afterwards, not even a second release (403): send an Idempotency-Key to have a lost answer replayed.',
        headers: SecretHeaders,
        params: IdParams,
        response: { 200: Eprescription, ...problems(403, 404, 409, 422) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      return releasePrescription(deps, who, parseId(request.params.id, 'params.id', who.lang), request.headers[SECRET_HEADER], app.now())
    },
  )

  app.post(
    '/eprescriptions/:id/close',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'closeEprescriptionDispensation',
        summary: 'Close the dispensation and get the signed receipt (pharmacy)',
        description:
          'Records the dispensation and answers a receipt: a JWS (ES256) signed by the service carrying the prescription ID, the pharmacy, accept and close times, the digest of what was dispensed and the digest of the prescription as issued (`prescriptionDigest`); verify it with the keys at GET /v1/eprescriptions/receipt-keys. No body is needed (an empty JSON body is accepted). Closing again (lost response) answers the same receipt. With renewals left the prescription returns to ready for the next dispensation; otherwise it is completed. The prescriber receives an event `eprescription.dispensation.closed` on its feed.',
        headers: SecretHeaders,
        params: IdParams,
        response: { 200: Receipt, ...problems(403, 404, 409, 422) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      return closeDispensation(deps, who, parseId(request.params.id, 'params.id', who.lang), request.headers[SECRET_HEADER], app.now())
    },
  )

  app.get(
    '/eprescriptions/:id/dispensations/:seq/receipt',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionReceipt',
        summary: 'Fetch a dispensation’s receipt again (pharmacy that closed it)',
        params: Type.Object({ id: PrescriptionIdParam, seq: Type.Integer({ minimum: 1, maximum: 100 }) }),
        response: { 200: Receipt, ...problems(404) },
      },
    },
    async (request) => {
      const who = whoOf(request)
      return getReceipt(deps, who, parseId(request.params.id, 'params.id', who.lang), request.params.seq, app.now())
    },
  )

  app.get(
    '/eprescriptions/receipt-keys',
    {
      config: { roles: 'public' },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionReceiptKeys',
        summary: 'Public keys that verify receipts (JWKS)',
        description: 'Every key that ever signed a receipt; pick the one whose `kid` is in the receipt’s header. No token needed.',
        response: { 200: Jwks },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300')
      return (await publishedKeys(app.db, deps.signingKey)) as { keys: Array<{ kty: string; crv: string; x: string; y: string; kid: string; alg: string; use: string }> }
    },
  )
}

export default pharmacyRoutes

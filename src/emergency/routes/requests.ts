/** Routes of emergency requests: the pharmacy submits, confirms receipt or cancels; the lab answers; all read within their tenancy. */
import { Type } from 'typebox'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { cip13Of } from '../../referential/rules/product-code.ts'
import { AnswerInput, CancelInput, EmergencyRequest, ReceiptInput, RequestInput, RequestPage, STATUSES } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { answerRequest, closeByPharmacy, getRequest, listRequests, submitRequest } from '../use-cases/requests.ts'
import { CipParams, IdParams, TAGS, whoOf } from './common.ts'

const requestRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.post(
    '/emergency-requests',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'submitEmergencyRequest',
        summary: 'Ask a lab for a presentation in shortage, for a patient emergency',
        description: [
          '`patientEmergency: true` is the « urgence patient » attestation; no patient identity is sent (unknown fields are refused). Delivery is always to the requesting pharmacy (name, city, department from the referential); `delivery.address` and `delivery.instructions` are optional.',
          'Eligibility (422 `EMERGENCY_NOT_ELIGIBLE`, `failedConditions` lists every condition that failed, codes from GET /v1/emergency-vocabulary): `mitm_or_niche` the presentation is MITM or a niche product; `active_shortage` a declaration `declared` or `ongoing` (not a return to availability) covers it; `lab_subscribed` its lab is subscribed; `opened` its lab opened it to emergency requests.',
          'Above the lab’s maximum quantity: 422 `EMERGENCY_QUANTITY_ABOVE_MAXIMUM` on `body.quantity`. Unknown presentation: 404.',
          'One pending request per pharmacy and presentation: while the pharmacy’s earlier request for it awaits the lab’s answer (`submitted`), another answers 409 `EMERGENCY_REQUEST_PENDING` with that request in `pendingRequest` (cancel it to send a new one). Of concurrent submissions, exactly one is created.',
          'The lab gets `emergency.request_submitted` at once (feed, stream, webhooks). If it is still unanswered after the opening’s escalation delay in business hours (`escalateAt`), `emergency.request_escalated` goes to the lab and the operator.',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        body: RequestInput,
        response: { 201: EmergencyRequest, ...problems(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const who = whoOf(request)
      const cip13 = cip13Of(request.body.cip13, 'body.cip13', who.lang)
      const created = await submitRequest(deps, who, cip13, request.body)
      return reply.code(201).send(created)
    },
  )

  app.get(
    '/emergency-requests',
    {
      config: { roles: ['pharmacy', 'lab', 'ordre'] },
      schema: {
        tags: TAGS,
        operationId: 'listEmergencyRequests',
        summary: 'Emergency requests, most recent first (the pharmacy’s own, those sent to the lab, all for the operator)',
        description: 'Filters: `status`, `cip13`, `escalated=true` (escalated and still unanswered requests are the operator’s watch list), and for the operator `labId` and `pharmacyId`.',
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Enum([...STATUSES])),
            cip13: Type.Optional(CipParams.properties.cip13),
            escalated: Type.Optional(Type.Boolean({ description: 'true: only escalated requests; false: only never escalated.' })),
            labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'Operator only.' })),
            pharmacyId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'Operator only.' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: RequestPage },
      },
    },
    async (request) => listRequests(deps, whoOf(request), request.query),
  )

  app.get(
    '/emergency-requests/:id',
    {
      config: { roles: ['pharmacy', 'lab', 'ordre'] },
      schema: {
        tags: TAGS,
        operationId: 'getEmergencyRequest',
        summary: 'One emergency request with its full history',
        description: 'The requesting pharmacy, the lab it was sent to and the operator read it; anyone else gets 404. `history` lists every step, oldest first, with its time and author; steps are never changed.',
        params: IdParams,
        response: { 200: EmergencyRequest, ...problems(404) },
      },
    },
    async (request) => getRequest(deps, whoOf(request), request.params.id),
  )

  app.post(
    '/emergency-requests/:id/answer',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: TAGS,
        operationId: 'answerEmergencyRequest',
        summary: 'The lab answers: accepted, partially accepted, redirected or refused',
        description: [
          '`accepted`: `shippingChannel` and `expectedDelivery` required, `quantity` optional (must equal the requested quantity). `partially_accepted`: `quantity` lower than requested, `shippingChannel`, `expectedDelivery`. `redirected`: `redirectTo` (wholesaler or depot, with details). `refused`: `reason` from the vocabulary, `comment` required with `other`. A field that does not belong to the decision is refused.',
          'Only while `submitted` (409 `EMERGENCY_INVALID_TRANSITION` with `allowedTransitions` otherwise): an answer is never replaced. The pharmacy gets `emergency.request_answered` on its feed.',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: AnswerInput,
        response: { 200: EmergencyRequest, ...problems(404, 409) },
      },
    },
    async (request) => answerRequest(deps, whoOf(request), request.params.id, request.body),
  )

  // Receipt and cancellation: the pharmacy closes its request, the lab is told.
  const pharmacyStep = (path: 'receipt' | 'cancel', to: 'received' | 'cancelled') =>
    app.post(
      `/emergency-requests/:id/${path}`,
      {
        config: { roles: ['pharmacy'] },
        schema: {
          tags: TAGS,
          operationId: to === 'received' ? 'confirmEmergencyReceipt' : 'cancelEmergencyRequest',
          summary: to === 'received' ? 'The pharmacy confirms receipt' : 'The pharmacy cancels its request',
          description:
            (to === 'received'
              ? 'After `accepted`, `partially_accepted` or `redirected`. Closes the request. The lab gets `emergency.request_received`.'
              : 'While `submitted`, `accepted`, `partially_accepted` or `redirected` (not after receipt, nor after a refusal). Closes the request. The lab gets `emergency.request_cancelled`.') +
            '\n\nAnother state: 409 `EMERGENCY_INVALID_TRANSITION` with `allowedTransitions`. Another pharmacy’s request: 404. The body may be `{}`.',
          headers: IdempotencyKeyHeader,
          params: IdParams,
          body: to === 'received' ? ReceiptInput : CancelInput,
          response: { 200: EmergencyRequest, ...problems(404, 409) },
        },
      },
      async (request) => closeByPharmacy(deps, whoOf(request), (request.params as { id: string }).id, to, { ...(request.body as Record<string, unknown>) }),
    )
  pharmacyStep('receipt', 'received')
  pharmacyStep('cancel', 'cancelled')
}

export default requestRoutes

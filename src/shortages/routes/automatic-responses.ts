/** Automatic-response routes: a lab's responses per presentation and per declaration. */
import { Type } from 'typebox'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { component } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { AutomaticResponse, AutomaticResponseInput, PresentationCode } from '../schemas.ts'
import { listResponses, removePresentationResponse, setDeclarationResponse, setPresentationResponse } from '../use-cases/automatic-responses.ts'
import type { Deps } from '../use-cases/context.ts'
import { IdParams, whoOf } from './common.ts'

const AutomaticResponseList = component(Type.Object({ items: Type.Array(AutomaticResponse) }, { $id: 'ShortageAutomaticResponseList' }))
const CodeParams = Type.Object({ code: PresentationCode })

export const automaticResponseRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.get(
    '/shortage-automatic-responses',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'listShortageAutomaticResponses',
        summary: 'The lab’s automatic responses (per presentation and per declaration)',
        response: { 200: AutomaticResponseList },
      },
    },
    async (request) => listResponses(deps, whoOf(request)),
  )

  app.put(
    '/shortage-automatic-responses/:code',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'setShortageAutomaticResponse',
        summary: 'Set the automatic response for one of the lab’s presentations',
        description:
          'Every pharmacy that signals the presentation receives it in the answer to its signal and on its feed (`shortage.automatic_response`); pharmacies whose signal is already open receive it now. A declaration’s own response, when set, takes precedence.',
        headers: IdempotencyKeyHeader,
        params: CodeParams,
        body: AutomaticResponseInput,
        response: { 200: AutomaticResponse, ...problems(404) },
      },
    },
    async (request) => setPresentationResponse(deps, whoOf(request), request.params.code, request.body),
  )

  app.delete(
    '/shortage-automatic-responses/:code',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'deleteShortageAutomaticResponse',
        summary: 'Remove the automatic response of one of the lab’s presentations',
        headers: IdempotencyKeyHeader,
        params: CodeParams,
        response: { 204: Type.Null({ description: 'Removed.' }), ...problems(404) },
      },
    },
    async (request, reply) => {
      await removePresentationResponse(deps, whoOf(request), request.params.code)
      return reply.code(204).send(null)
    },
  )

  app.put(
    '/shortage-declarations/:id/automatic-response',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'setShortageDeclarationAutomaticResponse',
        summary: 'Set the automatic response of a declaration (takes precedence over the presentations’ own)',
        description: 'Pharmacies with an open signal on its presentations receive it now on their feed (not for a draft). A closed declaration answers 409.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: AutomaticResponseInput,
        response: { 200: AutomaticResponse, ...problems(404, 409) },
      },
    },
    async (request) => setDeclarationResponse(deps, whoOf(request), request.params.id, request.body),
  )
}

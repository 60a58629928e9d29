/** Lab routes to open and close presentations to emergency requests, and the list of openings. */
import { Type } from 'typebox'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { Opening, OpeningInput, OpeningPage } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { closeOpening, listOpenings, setOpening } from '../use-cases/openings.ts'
import { CipParams, TAGS, whoOf } from './common.ts'

const openingRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.put(
    '/emergency-openings/:cip13',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: TAGS,
        operationId: 'setEmergencyOpening',
        summary: 'Open one of the lab’s presentations to emergency requests (or update its opening)',
        description: [
          'Subscribed labs only (403 `LAB_NOT_SUBSCRIBED`); the presentation must be the lab’s own (another lab’s or an unknown one: 404).',
          'Gives the emergency service’s contact, optional opening hours (free text for pharmacies), the hours the service keeps (`serviceHours`: ranges per weekday, Europe/Paris, open on public holidays or not), an optional maximum quantity per request and an optional escalation delay (default 4 hours), counted in the declared hours — or, without them, in office hours (Monday–Friday 09:00–18:00, national public holidays excepted).',
          'Declared hours that make no sense (a range ending before it starts, two ranges of a day overlapping) answer 400 naming the range. `PUT` replaces the whole opening: hours left out return to office hours.',
          'Opening does not make a request eligible by itself: the presentation must also be MITM or niche and have an active shortage declared.',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        params: CipParams,
        body: OpeningInput,
        response: { 200: Opening, ...problems(404) },
      },
    },
    async (request) => setOpening(deps, whoOf(request), request.params.cip13, request.body),
  )

  app.delete(
    '/emergency-openings/:cip13',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: TAGS,
        operationId: 'closeEmergencyOpening',
        summary: 'Close a presentation to emergency requests',
        description: 'New requests are refused (condition `opened`); requests already sent stay and must still be answered. Closing a closed opening changes nothing. Another lab’s presentation: 404.',
        headers: IdempotencyKeyHeader,
        params: CipParams,
        response: { 200: Opening, ...problems(404) },
      },
    },
    async (request) => closeOpening(deps, whoOf(request), request.params.cip13),
  )

  app.get(
    '/emergency-openings',
    {
      config: { roles: ['pharmacy', 'lab', 'ordre'] },
      schema: {
        tags: TAGS,
        operationId: 'listEmergencyOpenings',
        summary: 'Presentations open to emergency requests',
        description: [
          'Pharmacies and the operator: presentations open now, from subscribed labs that exploit them, by CIP13. A lab: its own openings, open and closed (filter with `open`).',
          'Being listed does not guarantee eligibility: the presentation must also be MITM or niche and have an active shortage when the request is sent.',
        ].join('\n\n'),
        querystring: Type.Object(
          { cip13: Type.Optional(CipParams.properties.cip13), open: Type.Optional(Type.Boolean({ description: 'Labs only: filter open or closed.' })), ...PageQuery },
          { additionalProperties: false },
        ),
        response: { 200: OpeningPage },
      },
    },
    async (request) => listOpenings(deps, whoOf(request), request.query),
  )
}

export default openingRoutes

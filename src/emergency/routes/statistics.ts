/** The emergency figures route: a lab's own, or the operator's (one lab's or national). */
import { Type } from 'typebox'
import { problems } from '../../platform/openapi.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { Statistics } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { statistics } from '../use-cases/statistics.ts'
import { TAGS, whoOf } from './common.ts'

const statisticsRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.get(
    '/emergency-statistics',
    {
      config: { roles: ['lab', 'ordre'] },
      schema: {
        tags: TAGS,
        operationId: 'getEmergencyStatistics',
        summary: 'Emergency figures: requests received, answered, median time to answer, acceptance rate (a lab’s, or national)',
        description: 'Requests submitted between `from` and `to` (Paris calendar days, inclusive; default: the last 30 days up to today). A lab reads its own figures (`labId`, if given, must be its own, else 404). The operator reads one lab’s with `labId`, or the national figures without it: every lab together, and `byLab`, each lab’s, most requests first. Time to answer is elapsed time, not business time.',
        querystring: Type.Object(
          {
            from: Type.Optional(Type.String({ format: 'date' })),
            to: Type.Optional(Type.String({ format: 'date' })),
            labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Statistics, ...problems(404) },
      },
    },
    async (request) => statistics(deps, whoOf(request), request.query),
  )
}

export default statisticsRoutes

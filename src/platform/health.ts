import type { FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import type { Database } from './db/index.ts'
import { sendProblem } from './errors.ts'
import { problems } from './openapi.ts'
import { ping } from './operations-queries.ts'

const Health = Type.Object({ status: Type.String({ examples: ['ok'] }) })

export default async function health(app: FastifyInstance, opts: { db: Database }) {
  const common = { config: { roles: 'public' as const } }
  app.get(
    '/health/live',
    { ...common, schema: { tags: ['operations'], summary: 'Liveness: the process answers', response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  )
  app.get(
    '/health/ready',
    {
      ...common,
      schema: {
        tags: ['operations'],
        summary: 'Readiness: the database answers and the instance is not stopping',
        description:
          '503 (with `Retry-After` and `reason`: `draining` or `database`) as soon as the instance has been asked to stop, so that the load balancer stops routing to it while it finishes its work, and when the database does not answer within 2 s.',
        response: { 200: Type.Object({ status: Type.String(), database: Type.String() }), ...problems(503) },
      },
    },
    async (_request, reply) => {
      if (app.drain?.draining) return sendProblem(reply.header('retry-after', '5'), 'SERVICE_UNAVAILABLE', {}, { reason: 'draining' })
      try {
        await Promise.race([
          ping(opts.db),
          new Promise((_, reject) => setTimeout(() => reject(new Error('database timeout')), 2000).unref()),
        ])
        return { status: 'ok', database: 'ok' }
      } catch (err) {
        reply.request.log.warn({ err }, 'readiness check failed')
        return sendProblem(reply.header('retry-after', '5'), 'SERVICE_UNAVAILABLE', {}, { reason: 'database' })
      }
    },
  )
}

/** What the DP-Ruptures route files share: who calls, and the id in the path. */
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { principalOf } from '../../platform/auth.ts'
import { langOf } from '../../platform/i18n.ts'
import type { Who } from '../use-cases/context.ts'

export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

export const whoOf = (request: FastifyRequest): Who => ({ principal: principalOf(request), requestId: request.id, lang: langOf(request) })

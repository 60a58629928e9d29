/** What the referential's route files share: who calls. */
import type { FastifyRequest } from 'fastify'
import { principalOf } from '../../platform/auth.ts'
import { langOf } from '../../platform/i18n.ts'
import type { Who } from '../use-cases/context.ts'

export const whoOf = (request: FastifyRequest): Who => ({ principal: principalOf(request), requestId: request.id, lang: langOf(request) })

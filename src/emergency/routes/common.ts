/** What the emergency route files share: the tag, path parameters, who calls. */
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { principalOf } from '../../platform/auth.ts'
import { langOf } from '../../platform/i18n.ts'
import type { Who } from '../use-cases/context.ts'

export const TAGS = ['emergency-requests']

export const CipParams = Type.Object({
  cip13: Type.String({ pattern: '^\\d{13,14}$', 'x-message': { fr: 'un CIP13 (13 chiffres) ou un GTIN-14 est attendu', en: 'a CIP13 (13 digits) or GTIN-14 is expected' } }),
})
export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

export const whoOf = (request: FastifyRequest): Who => ({ principal: principalOf(request), requestId: request.id, lang: langOf(request) })

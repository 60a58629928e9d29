import type { FastifyRequest } from 'fastify'
import { type Actor, actorOf } from './audit.ts'
import { type Principal, principalOf } from './auth.ts'
import { type Lang, langOf } from './i18n.ts'

/** Who calls a use case: for tenancy, the audit trail and the language of field errors. Built once per request. */
export interface Who {
  principal: Principal
  requestId: string
  lang: Lang
}

export const whoOf = (request: FastifyRequest): Who => ({ principal: principalOf(request), requestId: request.id, lang: langOf(request) })

/** The audit trail's actor for a caller. */
export const actor = (who: Who): Actor => actorOf(who.principal, who.requestId)

/** What every diffusion use case needs (the service, who calls) and the view of a message for its caller. */
import type { FastifyInstance } from 'fastify'
import type { Kysely } from 'kysely'
import type { Principal } from '../../platform/auth.ts'
import type { DB } from '../../platform/db/schema.ts'
import type { PipelineKind, RecallRow } from '../db.ts'
import type { Db } from '../queries/messages.ts'
import { toView } from '../queries/views.ts'
import { RECIPIENT_ROLES } from '../rules/kinds.ts'

export interface Deps {
  db: Kysely<DB>
  now: () => Date
  /** The instance itself, for the pipeline steps that block batches (they coordinate with the other instances). */
  app: FastifyInstance
}

export const depsOf = (app: FastifyInstance): Deps => ({ db: app.db, now: () => app.now(), app })

export type { Who } from '../../platform/who.ts'

export { actor } from '../../platform/who.ts'

/** A recipient sees the version in force and its own acknowledgement; the lab and ANSM the latest version. */
export const viewFor = (db: Db, kind: PipelineKind, r: RecallRow, principal: Pick<Principal, 'role' | 'org'>) =>
  toView(db, kind, r, RECIPIENT_ROLES.includes(principal.role as never) ? { recipientOrg: principal.org } : { ansm: principal.role === 'ansm' })

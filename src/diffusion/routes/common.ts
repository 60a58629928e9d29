/** What the diffusion route files share: the kind they serve, path parameters, who calls. */
import { Type } from 'typebox'
import type { App } from '../../platform/types.ts'
import type { PipelineKind } from '../db.ts'
import type { PipelineSchemas } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'

/** One kind of message as its routes name it: schemas, operationId noun, path, tag. */
export interface KindRoutes {
  kind: PipelineKind
  S: PipelineSchemas
  /** 'Recall' or 'Alert', in operationIds. */
  N: string
  base: string
  tags: string[]
  /** 'recall' or 'alert', in descriptions. */
  what: string
  deps: Deps
}

/** Adds one route (or one family of routes) of a kind. */
export type AddRoutes = (app: App, k: KindRoutes) => void

export { IdParams } from '../../platform/schemas.ts'
export const RecipientParams = Type.Object({ id: Type.String({ format: 'uuid' }), orgId: Type.String({ minLength: 1, maxLength: 20, description: 'The recipient (FINESS).' }) })
export const binary = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: 'string', format: 'binary' } } } })
export const OptionalComment = Type.Optional(Type.Object({ comment: Type.Optional(Type.String({ minLength: 1, maxLength: 5000 })) }, { additionalProperties: false }))
export const READERS = ['lab', 'ansm', 'pharmacy', 'wholesaler', 'hospital'] as const

export { whoOf } from '../../platform/who.ts'

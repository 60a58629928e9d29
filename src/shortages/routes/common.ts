/** What the DP-Ruptures route files share: who calls, and the id in the path. */
import { Type } from 'typebox'

export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

export { whoOf } from '../../platform/who.ts'

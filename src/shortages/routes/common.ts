/** What the DP-Ruptures route files share: who calls, and the id in the path. */
export { IdParams } from '../../platform/schemas.ts'

export { whoOf } from '../../platform/who.ts'

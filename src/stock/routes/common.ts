/** What the stock route files share: who calls. */

export { whoOf } from '../../platform/who.ts'

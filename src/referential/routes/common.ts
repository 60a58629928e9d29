/** What the referential's route files share: who calls. */

export { whoOf } from '../../platform/who.ts'

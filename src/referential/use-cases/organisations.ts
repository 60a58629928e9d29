/** The organisations' operations: read, list, register, update, a lab's subscription, history. */
import type { Kysely, Transaction } from 'kysely'
import type { Static } from 'typebox'
import { audit, auditHistory, diff } from '../../platform/audit.ts'
import type { DB, Role } from '../../platform/db/schema.ts'
import { AppError, conflict } from '../../platform/errors.ts'
import type { Lang } from '../../platform/i18n.ts'
import { departmentOfFiness, finessProblem, regionOfDepartment, rppsProblem, sirenProblem } from '../../platform/identifiers.ts'
import { orgNotFound } from '../errors.ts'
import * as q from '../queries/organisations.ts'
import type { OrganisationCreate, OrganisationPatch, SubscriptionPut } from '../schemas/organisations.ts'
import { toOrganisation } from '../views.ts'
import { actor, type Deps, type Who } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

/** Whether a lab has signed the access agreement (other services' rules ask it). */
export const isSubscribed = q.isSubscribed

/** The identifier each role carries, checked on creation. */
export function identifierProblem(role: Role, id: string) {
  switch (role) {
    case 'pharmacy':
    case 'hospital':
    case 'wholesaler':
      return finessProblem(id)
    case 'lab':
      return sirenProblem(id)
    case 'prescriber':
      return rppsProblem(id)
    default:
      return /^[A-Z][A-Z0-9_-]{1,19}$/.test(id) ? null : { fr: 'code fixe en majuscules (ex. ANSM)', en: 'fixed upper-case code (e.g. ANSM)' }
  }
}

/** The columns of an address given in a request (null clears it). */
function addressColumns(a: { line1: string; line2?: string | null; postalCode: string } | null) {
  return a ? { address_line1: a.line1, address_line2: a.line2?.trim() ? a.line2 : null, postal_code: a.postalCode } : { address_line1: null, address_line2: null, postal_code: null }
}

export async function getOrganisation(db: Kysely<DB> | Transaction<DB>, id: string) {
  const row = await q.organisationRow(db, id)
  return row ? toOrganisation(row) : null
}

/** A lab that may be named in a correction; anything else is refused with the field that named it. */
export async function assertLab(db: Kysely<DB> | Transaction<DB>, labId: string, field: string, lang: Lang) {
  if ((await q.organisationRole(db, labId)) === 'lab') return
  const message = lang === 'fr' ? `${labId} n’est pas un laboratoire enregistré` : `${labId} is not a registered lab`
  throw new AppError('UNKNOWN_LAB', { field, labId }, { errors: [{ field, code: 'unknown-lab', message }] })
}

/** The operator and ANSM read any organisation; others only their own (another one is not found). */
export async function readOrganisation(deps: Deps, who: Who, id: string) {
  const p = who.principal
  if (p.role !== 'ordre' && p.role !== 'ansm' && p.org !== id) throw orgNotFound()
  const org = await getOrganisation(deps.db, id)
  if (!org) throw orgNotFound()
  return org
}

export async function listOrganisations(deps: Deps, filter: q.OrganisationFilter, after: { id: string } | null, limit: number) {
  const rows = await q.listOrganisations(deps.db, filter, after, limit)
  const page = rows.slice(0, limit)
  return { items: page.map(toOrganisation), next: rows.length > limit ? { id: page[page.length - 1]!.id } : null }
}

/** Registers an organisation; the department comes from the FINESS for the roles that carry one. */
export async function createOrganisation(deps: Deps, who: Who, b: Static<typeof OrganisationCreate>) {
  const problem = identifierProblem(b.role, b.id)
  if (problem) throw new AppError('INVALID_IDENTIFIER', { field: 'body.id', ...problem }, { errors: [{ field: 'body.id', code: 'identifier', message: problem.fr }] })
  const department = ['pharmacy', 'hospital', 'wholesaler'].includes(b.role) ? departmentOfFiness(b.id) : (b.department ?? null)
  const org = await inTransaction(deps.db, async (tx) => {
    const inserted = await q.insertOrganisation(tx, {
      id: b.id, role: b.role, name: b.name, department, region: regionOfDepartment(department),
      city: b.city ?? null, email: b.email ?? null, phone: b.phone ?? null, fax: b.fax ?? null, ...addressColumns(b.address ?? null), updated_at: new Date(),
    })
    if (!inserted) throw conflict(`L’organisation ${b.id} existe déjà.`, `Organisation ${b.id} already exists.`)
    await audit(tx, actor(who), { action: 'organisation.created', objectType: 'organisation', objectId: b.id, changes: b })
    return getOrganisation(tx, b.id)
  })
  deps.invalidateOrganisation(b.id)
  return org!
}

/** Updates (or deactivates) an organisation; audited only when something changed. */
export async function updateOrganisation(deps: Deps, who: Who, id: string, body: Static<typeof OrganisationPatch>) {
  const org = await inTransaction(deps.db, async (tx) => {
    const before = await q.lockOrganisation(tx, id)
    if (!before) throw orgNotFound()
    const { address, ...rest } = body
    const set = { ...rest, ...(address !== undefined ? addressColumns(address) : {}) }
    const changes = diff({ ...before }, set)
    if (Object.keys(changes).length) {
      await q.updateOrganisation(tx, id, set)
      await audit(tx, actor(who), { action: 'organisation.updated', objectType: 'organisation', objectId: id, changes })
    }
    return getOrganisation(tx, id)
  })
  deps.invalidateOrganisation(id)
  return org!
}

/** Records whether a lab signed the access agreement; a date given is recorded even when the state is unchanged. */
export async function setLabSubscription(deps: Deps, who: Who, id: string, { subscribed, since }: Static<typeof SubscriptionPut>) {
  return inTransaction(deps.db, async (tx) => {
    const role = await q.organisationRole(tx, id)
    if (!role) throw orgNotFound()
    if (role !== 'lab') throw conflict('Seuls les laboratoires ont un abonnement.', 'Only labs have a subscription.')
    const before = await q.lockSubscription(tx, id)
    const at = since ? new Date(since) : deps.now()
    if (before?.subscribed !== subscribed || since) {
      await q.upsertSubscription(tx, id, subscribed, at)
      await audit(tx, actor(who), {
        action: subscribed ? 'lab.subscribed' : 'lab.unsubscribed',
        objectType: 'organisation',
        objectId: id,
        changes: { subscribed: [before?.subscribed ?? false, subscribed], since: [before?.since ?? null, at.toISOString()] },
      })
    }
    return (await getOrganisation(tx, id))!
  })
}

/** The operator reads any organisation's history; an organisation reads its own. */
export async function organisationHistory(deps: Deps, who: Who, id: string) {
  const p = who.principal
  if (p.role !== 'ordre' && p.org !== id) throw orgNotFound()
  if (!(await q.organisationExists(deps.db, id))) throw orgNotFound()
  return auditHistory(deps.db, 'organisation', id)
}

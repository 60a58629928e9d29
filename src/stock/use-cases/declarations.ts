/** Pharmacies' weekly declarations, and the operator's reading of the raw data. */
import { randomUUID } from 'node:crypto'
import type { Transaction } from 'kysely'
import { type Actor, audit } from '../../platform/audit.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import type { DB } from '../../platform/db/schema.ts'
import { AppError } from '../../platform/errors.ts'
import { departmentOfFiness } from '../../platform/identifiers.ts'
import { declarationNotFound } from '../errors.ts'
import * as q from '../queries.ts'
import { assertOpen, declarationErrors, mondayParam } from '../rules.ts'
import { mondayOf, weekAt, weekOfMonday } from '../time.ts'
import { iso, toDeclaration, weekInfo } from '../views.ts'
import { actor, type Deps, loadCampaign, OBJECT_CAMPAIGN, OBJECT_DECLARATION, type Who } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

type Item = { cip13: string; quantity: number }

/**
 * Declares the pharmacy's quantities for the current week, all or nothing. The campaign and the items are
 * checked before anything is written, all errors at once, each named by `fieldOf(index)`.
 */
export async function declare(deps: Deps, who: Who, campaignId: string, items: Item[], fieldOf: (i: number) => string, now: Date) {
  return inTransaction(deps.db, async (tx) => {
    // FOR SHARE: a concurrent close waits for this declaration, or this one sees the campaign closed.
    const campaign = await loadCampaign(tx, campaignId, 'share')
    assertOpen(campaign, now, who.lang)
    const errors = declarationErrors(items, await q.listedProducts(tx, campaign.id), fieldOf, who.lang)
    if (errors.length) throw new AppError('STOCK_DECLARATION_INVALID', { count: errors.length }, { errors })
    const result = await recordDeclarations(tx, { campaign, pharmacyId: who.principal.org, items, actor: actor(who), now })
    return { week: weekInfo(result.week), items: result.items }
  })
}

/** The pharmacy's department, from the referential (else from its FINESS). */
async function departmentOf(db: q.Db, pharmacyId: string) {
  return (await q.organisationDepartment(db, pharmacyId)) ?? departmentOfFiness(pharmacyId) ?? '??'
}

/**
 * Records the quantities of one pharmacy for the current week, in the caller's transaction: each product's
 * value replaces the week's previous one, which goes to the history; the aggregates move by the difference.
 * Items are handled in CIP13 order so that concurrent bulk declarations lock aggregate rows in the same order.
 */
async function recordDeclarations(tx: Transaction<DB>, input: { campaign: q.CampaignRow; pharmacyId: string; items: Item[]; actor: Actor; now: Date }) {
  const { campaign, pharmacyId, actor, now } = input
  const week = weekAt(now)
  const department = await departmentOf(tx, pharmacyId)
  const items = [...input.items].sort((a, b) => a.cip13.localeCompare(b.cip13))
  const out: Array<ReturnType<typeof toDeclaration> & { replaced: boolean }> = []
  for (const item of items) {
    const key = { campaign_id: campaign.id, pharmacy_id: pharmacyId, week: week.monday, cip13: item.cip13 }
    const cell = { campaign_id: campaign.id, week: week.monday, cip13: item.cip13 }
    const inserted = await q.insertDeclarationIfNew(tx, { id: randomUUID(), ...key, department, quantity: item.quantity, version: 1, first_declared_at: now, declared_at: now, declared_by: actor.user })
    if (inserted) {
      await q.bumpAggregate(tx, { ...cell, department }, item.quantity, 1)
      out.push({ ...toDeclaration(inserted), replaced: false })
      continue
    }
    const before = await q.lockDeclaration(tx, key)
    await q.insertHistory(tx, { declaration_id: before.id, version: before.version, quantity: before.quantity, declared_at: before.declared_at, declared_by: before.declared_by, replaced_at: now })
    const after = await q.updateDeclaration(tx, before.id, { quantity: item.quantity, version: before.version + 1, declared_at: now, declared_by: actor.user, department })
    if (before.department === department) {
      await q.bumpAggregate(tx, { ...cell, department }, item.quantity - before.quantity, 0)
    } else {
      // The pharmacy moved department in the referential during the week: its figure moves with it.
      await q.bumpAggregate(tx, { ...cell, department: before.department }, -before.quantity, -1)
      await q.bumpAggregate(tx, { ...cell, department }, item.quantity, 1)
    }
    out.push({ ...toDeclaration(after), replaced: true })
  }
  // The audit trail names who declared what, never the quantities: those are raw data, purged after the
  // retention, and the audit trail is kept for ever.
  await audit(
    tx,
    actor,
    {
      action: `${OBJECT_DECLARATION}.declared`,
      objectType: OBJECT_CAMPAIGN,
      objectId: campaign.id,
      changes: { pharmacy: pharmacyId, week: week.week, products: out.map((d) => ({ cip13: d.cip13, version: d.version, declarationId: d.id })) },
    },
    now,
  )
  return { week, items: out }
}

/** The pharmacy's own current values for a week (default: the current week). */
export async function myDeclarations(deps: Deps, who: Who, campaignId: string, weekLabel: string | undefined, now: Date) {
  const campaign = await loadCampaign(deps.db, campaignId)
  const week = weekLabel ? weekOfMonday(mondayParam(weekLabel, who.lang)) : weekAt(now)
  const rows = await q.pharmacyDeclarations(deps.db, campaign.id, who.principal.org, week.monday)
  return { week: weekInfo(week), items: rows.map(toDeclaration) }
}

/** One declaration: any for the operator, else only the calling pharmacy's own (another's is a 404). */
export async function getDeclaration(deps: Deps, who: Who, id: string) {
  const row = await q.findDeclaration(deps.db, id, who.principal.role === 'ordre' ? undefined : who.principal.org)
  if (!row) throw declarationNotFound()
  return toDeclaration(row)
}

/** Every value declared for one product and week: the past versions, then the current one. */
export async function declarationHistory(deps: Deps, id: string) {
  const row = await q.findDeclaration(deps.db, id)
  if (!row) throw declarationNotFound()
  const past = await q.declarationHistory(deps.db, row.id)
  return {
    declaration: toDeclaration(row),
    versions: [
      ...past.map((h) => ({ version: h.version, quantity: h.quantity, declaredAt: h.declared_at.toISOString(), declaredBy: h.declared_by, replacedAt: iso(h.replaced_at) })),
      { version: row.version, quantity: row.quantity, declaredAt: row.declared_at.toISOString(), declaredBy: row.declared_by, replacedAt: null },
    ],
  }
}

/** A page of a campaign's raw declarations; the cursor is bound to the campaign and the filters. */
export async function listDeclarations(deps: Deps, who: Pick<Who, 'lang'>, campaignId: string, query: { week?: string; cip13?: string; department?: string; limit: number; cursor?: string }) {
  const campaign = await loadCampaign(deps.db, campaignId)
  const { week, cip13, department, limit, cursor } = query
  const filter = { campaign: campaign.id, week, cip13, department }
  const monday = week ? mondayParam(week, who.lang) : undefined
  let after: { week: string; pharmacyId: string; cip13: string } | undefined
  if (cursor) {
    const c = decodeCursor<{ w: string; p: string; c: string }>(cursor, filter)
    // A cursor is only base64 JSON: check what it holds before it reaches SQL.
    if (typeof c.w !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(c.w) || mondayOf(c.w) !== c.w || typeof c.p !== 'string' || c.p.length > 20 || typeof c.c !== 'string' || !/^\d{13}$/.test(c.c)) {
      throw new AppError('INVALID_CURSOR')
    }
    after = { week: c.w, pharmacyId: c.p, cip13: c.c }
  }
  const rows = await q.listDeclarations(deps.db, campaign.id, { monday, cip13, department, after, limit })
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return { items: page.map(toDeclaration), nextCursor: rows.length > limit && last ? encodeCursor({ w: last.week, p: last.pharmacy_id, c: last.cip13 }, filter) : null }
}

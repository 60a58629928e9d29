/** A lab's declarations (ANSM reads them too): declare, list, read, history, update, move along the lifecycle. */
import { randomUUID } from 'node:crypto'
import type { Transaction } from 'kysely'
import type { Static } from 'typebox'
import type { DB } from '../../platform/db/schema.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { AppError, notFound } from '../../platform/errors.ts'
import { parisDay } from '../../platform/paris-time.ts'
import { cip13Of, unknownProduct } from '../../referential/rules/product-code.ts'
import type { DeclarationStatus } from '../db.ts'
import * as q from '../queries/declarations.ts'
import { itemsOf, presentationInfo } from '../queries/rows.ts'
import { fieldError } from '../rules/common.ts'
import { assertTransition, checkDeclaration, declarationNotFound, type DeclarationState, futureActualDate, isClosed } from '../rules/declarations.ts'
import { snapshotOf } from '../rules/views.ts'
import type { DeclarationInput, DeclarationPatch, TransitionInput } from '../schemas.ts'
import type { DeclarationFilter } from '../queries/search.ts'
import { actor, assertSubscribed, type Deps, type Who } from './context.ts'
import { getDeclaration, loadDeclarations } from './declaration-reads.ts'
import { recordVersion, versionsOf } from './versions.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

/** Alternatives may name a presentation by CIP13 or GTIN-14: kept as the CIP13. */
export function normaliseAlternatives(alternatives: Array<{ cip13?: string | undefined }> | undefined, lang: Who['lang']) {
  for (const [i, alt] of (alternatives ?? []).entries()) if (alt.cip13) alt.cip13 = cip13Of(alt.cip13, `body.alternatives.${i}.cip13`, lang)
}

/** The lab's declaration for a change, locked; checks the expected version. */
export async function lockOwn(tx: Transaction<DB>, id: string, labId: string, expectedVersion?: number) {
  const row = await q.lockOwnDeclaration(tx, id, labId)
  if (!row) throw declarationNotFound()
  if (expectedVersion !== undefined && expectedVersion !== row.version) throw new AppError('VERSION_MISMATCH', { current: row.version, expected: expectedVersion }, { currentVersion: row.version })
  return row
}

/** A closed declaration takes no more changes. */
export const assertOpen = (status: DeclarationStatus) => {
  if (isClosed(status)) throw new AppError('DECLARATION_CLOSED', { status }, { currentStatus: status })
}

/**
 * Declares a shortage on the lab's own presentations, none of which may already have an open declaration.
 * The referential gives MITM and ATC (recordVersion); pharmacies with an open signal hear of it unless it is a draft.
 */
export async function createDeclaration(deps: Deps, who: Who, b: Static<typeof DeclarationInput>) {
  const { principal, lang } = who
  await assertSubscribed(deps.db, principal.org)
  const cip13s = b.presentations.map((c, i) => cip13Of(c, `body.presentations.${i}`, lang))
  const state: DeclarationState = {
    kind: b.kind,
    cause: b.cause,
    cause_text: b.causeText ?? null,
    anticipated_start: b.anticipatedStart ?? null,
    actual_start: b.actualStart ?? null,
    estimated_end: b.estimatedEnd ?? null,
    end_unknown: b.estimatedEndUnknown ?? false,
    actual_end: b.actualEnd ?? null,
  }
  checkDeclaration(state, lang, 'body', parisDay(deps.now()))
  normaliseAlternatives(b.alternatives, lang)
  const now = deps.now()
  const status: DeclarationStatus = b.status ?? 'declared'
  const id = randomUUID()
  const created = await inTransaction(deps.db, async (tx) => {
    const products = await presentationInfo(tx, cip13s)
    for (const [i, cip13] of cip13s.entries()) {
      const p = products.find((x) => x.cip13 === cip13)
      if (!p || p.lab_id !== principal.org) throw unknownProduct(cip13, `body.presentations.${i}`, lang)
    }
    const taken = await q.lockActiveItem(tx, cip13s)
    if (taken) throw new AppError('PRESENTATION_ALREADY_DECLARED', { cip13: taken.cip13, declarationId: taken.declaration_id }, { declarationId: taken.declaration_id })
    await q.insertDeclaration(tx, {
      id,
      lab_id: principal.org,
      kind: b.kind,
      status,
      version: 1,
      change_seq: -Date.now(), // replaced by recordVersion in this transaction
      mitm: false,
      atc: null,
      cause: b.cause,
      cause_text: state.cause_text,
      anticipated_start: state.anticipated_start,
      actual_start: state.actual_start,
      estimated_end: state.estimated_end,
      end_unknown: state.end_unknown,
      actual_end: state.actual_end,
      stock_coverage_days: b.stockCoverageDays ?? null,
      allocation_in_place: b.allocation?.inPlace ?? false,
      allocation_details: b.allocation?.details ?? null,
      alternatives: JSON.stringify(b.alternatives ?? []),
      advice: b.advice ?? null,
      created_at: now,
      updated_at: now,
      declared_at: status === 'declared' ? now : null,
    })
    await q.insertItems(tx, id, cip13s)
    await recordVersion(tx, id, { action: 'created', reason: b.reason, actor: actor(who), now, previous: null })
    return getDeclaration(tx, id, principal.org)
  })
  return created!
}

export type ListQuery = Omit<DeclarationFilter, 'status' | 'updatedSince'> & { status?: DeclarationStatus | undefined; limit?: number | undefined; cursor?: string | undefined }

/** A lab lists its own declarations, drafts included; ANSM every lab's, never a draft. */
export async function listDeclarations(deps: Deps, who: Who, query: ListQuery) {
  const { principal } = who
  if (principal.role === 'lab') {
    await assertSubscribed(deps.db, principal.org)
    if (query.labId && query.labId !== principal.org) throw notFound('Le laboratoire', 'The lab')
  }
  const { limit = 50, cursor, ...rest } = query
  const cip13 = rest.cip13 ? cip13Of(rest.cip13, 'querystring.cip13', who.lang) : undefined
  const filter = { ...rest, cip13 }
  let beforeSeq: number | null = null
  if (cursor) {
    const after = decodeCursor<{ s: number }>(cursor, filter)
    if (!Number.isSafeInteger(after.s)) throw new AppError('INVALID_CURSOR')
    beforeSeq = after.s
  }
  const rows = await q.declarationPage(deps.db, filter, { labId: principal.role === 'lab' ? principal.org : null, beforeSeq, limit })
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return { items: await loadDeclarations(deps.db, page), nextCursor: rows.length > limit && last ? encodeCursor({ s: last.change_seq }, filter) : null }
}

/** One declaration: the lab's own, or any but a draft for ANSM. */
export async function readDeclaration(deps: Deps, who: Who, id: string) {
  const { principal } = who
  if (principal.role === 'lab') await assertSubscribed(deps.db, principal.org)
  const d = await getDeclaration(deps.db, id, principal.role === 'lab' ? principal.org : null)
  if (!d || (principal.role === 'ansm' && d.status === 'draft')) throw declarationNotFound()
  return d
}

/** Every version of a declaration (the lab's own, or any but a draft for ANSM). */
export async function declarationHistory(deps: Deps, who: Who, id: string) {
  const { principal } = who
  if (principal.role === 'lab') await assertSubscribed(deps.db, principal.org)
  const d = await q.declarationStatus(deps.db, id, principal.role === 'lab' ? principal.org : null)
  if (!d || (principal.role === 'ansm' && d.status === 'draft')) throw declarationNotFound()
  return { declarationId: d.id, versions: await versionsOf(deps.db, d.id) }
}

/** A new version with the fields given (never the kind or the presentations); a closed declaration stays as it is. */
export async function updateDeclaration(deps: Deps, who: Who, id: string, b: Static<typeof DeclarationPatch>) {
  const { principal, lang } = who
  await assertSubscribed(deps.db, principal.org)
  normaliseAlternatives(b.alternatives, lang)
  const now = deps.now()
  return inTransaction(deps.db, async (tx) => {
    const row = await lockOwn(tx, id, principal.org, b.expectedVersion)
    assertOpen(row.status)
    const previous = snapshotOf(row, (await itemsOf(tx, [row.id])).get(row.id) ?? [])
    const pick = <T>(v: T | undefined, current: T) => (v === undefined ? current : v)
    const next = {
      cause: pick(b.cause, row.cause),
      cause_text: pick(b.causeText, row.cause_text),
      anticipated_start: pick(b.anticipatedStart, row.anticipated_start),
      actual_start: pick(b.actualStart, row.actual_start),
      estimated_end: pick(b.estimatedEnd, row.estimated_end),
      end_unknown: pick(b.estimatedEndUnknown, row.end_unknown),
      actual_end: pick(b.actualEnd, row.actual_end),
      stock_coverage_days: pick(b.stockCoverageDays, row.stock_coverage_days),
      allocation_in_place: b.allocation ? b.allocation.inPlace : row.allocation_in_place,
      allocation_details: b.allocation ? (b.allocation.details ?? null) : row.allocation_details,
      alternatives: b.alternatives ?? row.alternatives,
      advice: pick(b.advice, row.advice),
    }
    if (b.estimatedEnd && b.estimatedEndUnknown === undefined) next.end_unknown = false
    if (b.estimatedEndUnknown === true && b.estimatedEnd === undefined) next.estimated_end = null
    checkDeclaration({ kind: row.kind, ...next }, lang, 'body', parisDay(now))
    await q.updateDeclaration(tx, row.id, { ...next, alternatives: JSON.stringify(next.alternatives), version: row.version + 1, updated_at: now })
    await recordVersion(tx, row.id, { action: 'updated', reason: b.reason, actor: actor(who), now, previous })
    return (await getDeclaration(tx, row.id, principal.org))!
  })
}

/**
 * Moves a declaration along its lifecycle: → ongoing sets the actual start, → resolved or discontinued the
 * actual end (`date`, else what it had, else today in Paris); closing frees its presentations.
 */
export async function transitionDeclaration(deps: Deps, who: Who, id: string, input: Static<typeof TransitionInput>) {
  const { principal, lang } = who
  await assertSubscribed(deps.db, principal.org)
  const { to, date, reason, expectedVersion } = input
  const now = deps.now()
  const today = parisDay(now)
  if (date && date > today && to !== 'declared' && to !== 'avoided') throw futureActualDate('body.date', date, today, lang)
  return inTransaction(deps.db, async (tx) => {
    const row = await lockOwn(tx, id, principal.org, expectedVersion)
    assertTransition(row.status, to, lang)
    const previous = snapshotOf(row, (await itemsOf(tx, [row.id])).get(row.id) ?? [])
    const set: Parameters<typeof q.updateDeclaration>[2] = { status: to, version: row.version + 1, updated_at: now }
    if (to === 'declared') set.declared_at = now
    if (to === 'ongoing') set.actual_start = date ?? row.actual_start ?? today
    if (to === 'resolved' || to === 'discontinued') {
      const end = date ?? row.actual_end ?? today
      const start = row.actual_start ?? row.anticipated_start
      if (start && end < start) throw fieldError('DATES_OUT_OF_ORDER', 'body.date', 'order', { fr: `la fin (${end}) est antérieure au début (${start})`, en: `the end (${end}) is before the start (${start})` }, lang)
      set.actual_end = end
    }
    if (isClosed(to)) {
      set.closed_at = now
      await q.deactivateItems(tx, row.id)
    }
    await q.updateDeclaration(tx, row.id, set)
    await recordVersion(tx, row.id, { action: `transition:${to}`, reason, actor: actor(who), now, previous })
    return (await getDeclaration(tx, row.id, principal.org))!
  })
}

/**
 * The ANSM pull: every MITM declaration (never a draft) whose current version changed after a cursor, in the
 * order of its change sequence (see nextChangeSeq in queries/declarations.ts: assigned under a row lock, so
 * sequences become visible in increasing order and "after N" never skips a late commit).
 *
 * Why not updated_at + id with a safety margin: timestamps come from the application clocks of several
 * instances and from transactions that commit in another order than they started; a margin only makes the
 * skip less likely and makes rows appear twice. With the change sequence:
 * - a declaration updated between two pages gets a new, higher sequence: if it was not yet read it leaves its
 *   old place and is read once, at its new place; if it was already read, the update is read once more, later
 *   in the same pull (it is a new version). Nothing is skipped, nothing is repeated without a change.
 * - the cursor holds the last sequence read and the pull's baseline (the sequence the client had reached
 *   when the pull started): each item carries its versions newer than the baseline, so that an intermediate
 *   version is never lost. The first pull (no cursor) carries the full history.
 * nextCursor is always given: keep it, and call again later to get what changed since.
 */
import type { Static } from 'typebox'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { AppError } from '../../platform/errors.ts'
import type { Lang } from '../../platform/i18n.ts'
import * as q from '../queries/declarations.ts'
import { fieldError } from '../rules/common.ts'
import type { DeclarationSnapshot } from '../schemas.ts'
import type { Deps } from './context.ts'
import { loadDeclarations } from './declaration-reads.ts'

export type PullQuery = q.MitmFilter & { limit?: number | undefined; cursor?: string | undefined }

interface Position {
  s: number
  b: number
}

async function pull(deps: Deps, query: PullQuery, lang: Lang, maxLimit: number) {
  const { cursor, limit: rawLimit, ...filters } = query
  const limit = Math.min(rawLimit ?? 100, maxLimit)
  if (filters.startFrom && filters.startTo && filters.startFrom > filters.startTo) {
    throw fieldError('DATES_OUT_OF_ORDER', 'querystring.startTo', 'order', { fr: `${filters.startTo} est avant ${filters.startFrom}`, en: `${filters.startTo} is before ${filters.startFrom}` }, lang)
  }
  let pos: Position = { s: 0, b: 0 }
  if (cursor) {
    pos = decodeCursor<Position>(cursor, filters)
    if (!Number.isSafeInteger(pos.s) || !Number.isSafeInteger(pos.b)) throw new AppError('INVALID_CURSOR')
  }
  const rows = await q.mitmAfter(deps.db, pos.s, filters, limit)
  const page = rows.slice(0, limit)
  const hasMore = rows.length > limit
  const last = page[page.length - 1]?.change_seq ?? pos.s
  // A finished pull's cursor moves the baseline: the next pull carries the versions made after it.
  const nextCursor = encodeCursor(hasMore ? { s: last, b: pos.b } : { s: last, b: last }, filters)
  return { rows: page, hasMore, nextCursor, baseline: pos.b }
}

/** One page of the pull (up to 500): each declaration's current state with its versions newer than the baseline. */
export async function pullMitmShortages(deps: Deps, query: PullQuery, lang: Lang) {
  const { rows, hasMore, nextCursor, baseline } = await pull(deps, query, lang, 500)
  const declarations = await loadDeclarations(deps.db, rows)
  const ids = rows.map((r) => r.id)
  const versions = ids.length ? await q.versionsAfter(deps.db, ids, baseline) : []
  const items = declarations.map((d, i) => {
    const { allowedTransitions: _t, ...rest } = d
    return {
      ...rest,
      changeSeq: rows[i]!.change_seq,
      versions: versions
        .filter((v) => v.declaration_id === d.id)
        .map((v) => ({
          version: v.version,
          status: v.status,
          action: v.action,
          reason: v.reason,
          at: v.at.toISOString(),
          actor: { role: v.actor_role, org: v.actor_org, user: v.actor_user },
          changes: {},
          snapshot: v.snapshot as Static<typeof DeclarationSnapshot>,
        })),
    }
  })
  return { items, nextCursor, hasMore }
}

/** One page of the pull for the spreadsheet (up to 10,000 lines): the declarations' current state only. */
export async function pullMitmDeclarations(deps: Deps, query: PullQuery, lang: Lang) {
  const limit = query.limit ?? 10_000
  const { rows, hasMore, nextCursor } = await pull(deps, { ...query, limit: Math.min(limit, 10_000) }, lang, 10_000)
  return { declarations: await loadDeclarations(deps.db, rows), hasMore, nextCursor }
}

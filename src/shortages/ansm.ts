import { stringify } from '../platform/csv.ts'
import type { Static } from 'typebox'
import { Type } from 'typebox'
import { principalOf } from '../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'
import { AppError } from '../platform/errors.ts'
import { langOf } from '../platform/i18n.ts'
import { problems } from '../platform/openapi.ts'
import { component } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import { type Db, declarationRows, fieldError, loadDeclarations } from './core.ts'
import { DeclarationSnapshot, DeclarationVersion, KIND_LABELS, nullable, STATUS_LABELS, STATUSES, AutomaticResponse } from './schemas.ts'
import { DateOnly } from './schemas.ts'

/**
 * The ANSM pull: every MITM declaration (never a draft) whose current version changed after a cursor, in the
 * order of its change sequence (see nextChangeSeq in core.ts: assigned under a row lock, so sequences become
 * visible in increasing order and "after N" never skips a late commit).
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
const Query = Type.Object(
  {
    status: Type.Optional(Type.Enum(STATUSES.filter((s) => s !== 'draft'))),
    labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'SIREN of the lab.' })),
    atc: Type.Optional(Type.String({ pattern: '^[A-Za-z](\\d{2}([A-Za-z]([A-Za-z](\\d{2})?)?)?)?$', description: 'ATC code or prefix (J01 matches J01CA04).' })),
    changedSince: Type.Optional(Type.String({ format: 'date-time', description: 'Only declarations changed after this instant (first pull).' })),
    startFrom: Type.Optional(DateOnly('Start (actual, else anticipated) on or after.')),
    startTo: Type.Optional(DateOnly('Start (actual, else anticipated) on or before.')),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 500, description: 'nextCursor of the previous call, with the same filters.' })),
  },
  { additionalProperties: false },
)
type QueryT = Static<typeof Query>

const MitmItem = Type.Object({
  ...DeclarationSnapshot.properties,
  automaticResponse: nullable(AutomaticResponse),
  changeSeq: Type.Integer({ description: 'Position of this version in the pull.' }),
  versions: Type.Array(DeclarationVersion, { description: 'The versions newer than the pull’s baseline (all of them on the first pull).' }),
})
const MitmPage = component(
  Type.Object(
    {
      items: Type.Array(MitmItem),
      nextCursor: Type.String({ description: 'Always given: pass it next time (now when hasMore, later otherwise) with the same filters.' }),
      hasMore: Type.Boolean(),
    },
    { $id: 'MitmShortagePage', description: 'MITM shortages changed after the cursor, oldest change first.' },
  ),
)

interface Position {
  s: number
  b: number
}

async function pull(db: Db, q: QueryT, lang: 'fr' | 'en', maxLimit: number) {
  const { cursor, limit: rawLimit, ...filters } = q
  const limit = Math.min(rawLimit ?? 100, maxLimit)
  if (filters.startFrom && filters.startTo && filters.startFrom > filters.startTo) {
    throw fieldError('DATES_OUT_OF_ORDER', 'querystring.startTo', 'order', { fr: `${filters.startTo} est avant ${filters.startFrom}`, en: `${filters.startTo} is before ${filters.startFrom}` }, lang)
  }
  let pos: Position = { s: 0, b: 0 }
  if (cursor) {
    pos = decodeCursor<Position>(cursor, filters)
    if (!Number.isSafeInteger(pos.s) || !Number.isSafeInteger(pos.b)) throw new AppError('INVALID_CURSOR')
  }
  let query = declarationRows(db).where('d.mitm', '=', true).where('d.status', '<>', 'draft').where('d.change_seq', '>', pos.s).orderBy('d.change_seq').limit(limit + 1)
  if (filters.status) query = query.where('d.status', '=', filters.status)
  if (filters.labId) query = query.where('d.lab_id', '=', filters.labId)
  if (filters.atc) query = query.where('d.atc', 'like', `${filters.atc.toUpperCase()}%`)
  if (filters.changedSince) query = query.where('d.updated_at', '>', new Date(filters.changedSince))
  const start = (eb: any) => eb.fn.coalesce('d.actual_start', 'd.anticipated_start')
  if (filters.startFrom) query = query.where((eb) => eb(start(eb), '>=', filters.startFrom!))
  if (filters.startTo) query = query.where((eb) => eb(start(eb), '<=', filters.startTo!))
  const rows = await query.execute()
  const page = rows.slice(0, limit)
  const hasMore = rows.length > limit
  const last = page[page.length - 1]?.change_seq ?? pos.s
  // A finished pull's cursor moves the baseline: the next pull carries the versions made after it.
  const nextCursor = encodeCursor(hasMore ? { s: last, b: pos.b } : { s: last, b: last }, filters)
  return { rows: page, hasMore, nextCursor, baseline: pos.b }
}

const CSV_COLUMNS = [
  ['id', 'Identifiant'],
  ['version', 'Version'],
  ['labId', 'Laboratoire (SIREN)'],
  ['labName', 'Laboratoire'],
  ['presentations', 'Présentations (CIP13)'],
  ['names', 'Dénomination'],
  ['atc', 'Classe ATC'],
  ['kind', 'Nature'],
  ['status', 'Statut'],
  ['cause', 'Cause'],
  ['causeText', 'Précision sur la cause'],
  ['anticipatedStart', 'Début prévu'],
  ['actualStart', 'Début constaté'],
  ['estimatedEnd', 'Fin estimée'],
  ['actualEnd', 'Fin réelle'],
  ['stockCoverageDays', 'Couverture de stock (jours)'],
  ['allocation', 'Contingentement'],
  ['alternatives', 'Alternatives'],
  ['advice', 'Conseils aux pharmaciens'],
  ['declaredAt', 'Déclarée le'],
  ['updatedAt', 'Mise à jour le'],
] as const

export const ansmRoutes: RoutePlugin = async (app) => {
  app.get(
    '/ansm/mitm-shortages',
    {
      config: { roles: ['ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'pullMitmShortages',
        summary: 'Pull the MITM shortage declarations changed after a cursor (ANSM)',
        description: [
          'Every declaration on a medicine of major therapeutic interest (MITM, from the referential), with its current state and its versions, oldest change first. Filters: status, lab, ATC class or prefix, change date, start dates.',
          'Incremental and stable while data changes: a declaration updated during the pull is read again once, later, with its new version; one not yet read is read once. `nextCursor` is always given; call again while `hasMore`, then keep it for the next pull.',
          'The same, as a spreadsheet: GET /v1/ansm/mitm-shortages.csv. A declaration’s full history: GET /v1/shortage-declarations/{id}/history.',
        ].join('\n\n'),
        querystring: Query,
        response: { 200: MitmPage },
      },
    },
    async (request) => {
      principalOf(request)
      const { rows, hasMore, nextCursor, baseline } = await pull(app.db, request.query, langOf(request), 500)
      const declarations = await loadDeclarations(app.db, rows)
      const ids = rows.map((r) => r.id)
      const versions = ids.length
        ? await app.db.selectFrom('shortage_declaration_versions').selectAll().where('declaration_id', 'in', ids).where('change_seq', '>', baseline).orderBy('version').execute()
        : []
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
    },
  )

  app.get(
    '/ansm/mitm-shortages.csv',
    {
      config: { roles: ['ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'pullMitmShortagesCsv',
        summary: 'The MITM shortage pull as CSV for spreadsheets (ANSM)',
        description:
          'UTF-8 with a byte-order mark (spreadsheets open it with the accents right), `;` separated, French column names, one line per declaration (current version). Same filters and cursor as the JSON pull (up to 10,000 lines per call); the next cursor is in the `X-Next-Cursor` header and `X-Has-More` says whether to call again now.',
        querystring: Query,
        response: {
          200: {
            description: 'CSV file',
            headers: { 'x-next-cursor': Type.String(), 'x-has-more': Type.String() },
            content: { 'text/csv': { schema: Type.String({ examples: ['\uFEFFIdentifiant;Version;Laboratoire (SIREN);…'] }) } },
          },
        },
      },
    },
    async (request, reply) => {
      principalOf(request)
      const q = { ...request.query, limit: request.query.limit ?? 10_000 }
      const { rows, hasMore, nextCursor } = await pull(app.db, { ...q, limit: Math.min(q.limit, 10_000) }, langOf(request), 10_000)
      const declarations = await loadDeclarations(app.db, rows)
      const records = declarations.map((d) => ({
        id: d.id,
        version: d.version,
        labId: d.lab.id,
        labName: d.lab.name,
        presentations: d.presentations.map((p) => p.cip13).join(' '),
        names: [...new Set(d.presentations.map((p) => p.name))].join(' | '),
        atc: d.atc ?? '',
        kind: KIND_LABELS[d.kind].fr,
        status: STATUS_LABELS[d.status].fr,
        cause: d.cause.fr,
        causeText: d.causeText ?? '',
        anticipatedStart: d.anticipatedStart ?? '',
        actualStart: d.actualStart ?? '',
        estimatedEnd: d.estimatedEndUnknown ? 'inconnue' : (d.estimatedEnd ?? ''),
        actualEnd: d.actualEnd ?? '',
        stockCoverageDays: d.stockCoverageDays ?? '',
        allocation: d.allocation.inPlace ? `oui${d.allocation.details ? ` : ${d.allocation.details}` : ''}` : 'non',
        alternatives: d.alternatives.map((a) => (a.cip13 ? `${a.cip13} ${a.description}` : a.description)).join(' | '),
        advice: d.advice ?? '',
        declaredAt: d.declaredAt ?? '',
        updatedAt: d.updatedAt,
      }))
      const csv = stringify(records, { header: true, bom: true, delimiter: ';', columns: CSV_COLUMNS.map(([key, header]) => ({ key, header })) })
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="ruptures-mitm.csv"')
        .header('x-next-cursor', nextCursor)
        .header('x-has-more', String(hasMore))
        .send(Buffer.from(csv, 'utf8') as unknown as string) // a Buffer is sent as is, never serialized
    },
  )
}

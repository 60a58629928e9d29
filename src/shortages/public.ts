/**
 * What DP-Ruptures publishes to everyone, without a token: the causes referential and the public list of
 * declared shortages and discontinuations (in the way of Health Canada's Drug Shortages Canada and the FDA's
 * drug shortages list), in JSON and CSV. Only what labs declare: never a pharmacy, a signal or an automatic
 * response. Also the declaration's view of a presentation's availability, for the product routes.
 */
import etag from '@fastify/etag'
import { stringify } from 'csv-stringify/sync'
import { type Static, Type } from 'typebox'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'
import { AppError } from '../platform/errors.ts'
import { langOf } from '../platform/i18n.ts'
import { problems } from '../platform/openapi.ts'
import { component, Page, PageQuery } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import { cip13Of, type Db, declarationRows, type DeclarationRow, itemsOf } from './core.ts'
import type { DeclarationKind, DeclarationStatus } from './db.ts'
import { type DeclarationFilter, filtered } from './search.ts'
import { CAUSES, Cause, type CauseCode, DateOnly, KIND_LABELS, KINDS, LabRef, nullable, PresentationCode, STATUS_LABELS, STATUSES } from './schemas.ts'

const PUBLIC_STATUSES = STATUSES.filter((s) => s !== 'draft')
const Label = Type.Object({ fr: Type.String(), en: Type.String() })

const CauseList = component(
  Type.Object(
    { items: Type.Array(Cause) },
    { $id: 'ShortageCauseList', description: 'The controlled list of shortage causes, French and English labels.', examples: [{ items: Object.entries(CAUSES).slice(0, 2).map(([code, l]) => ({ code, ...l })) }] },
  ),
)

const EXAMPLE = {
  id: '0f8e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e', version: 3, kind: 'observed', kindLabel: { fr: 'Rupture constatée', en: 'Observed shortage' }, status: 'ongoing', statusLabel: { fr: 'En cours', en: 'Ongoing' },
  lab: { id: '412345670', name: 'BIOGARAN' }, presentations: [{ cip13: '3400936128149', gtin: '03400936128149', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', label: 'plaquette(s) thermoformée(s) PVC aluminium de 12 gélule(s)' }],
  atc: 'J01CA04', mitm: true, cause: { code: 'raw_material', ...CAUSES.raw_material }, causeText: null, anticipatedStart: '2026-11-20', actualStart: '2026-12-01', estimatedEnd: '2027-01-15', estimatedEndUnknown: false, actualEnd: null,
  allocation: { inPlace: true, details: '80 % des ventes 2025' }, alternatives: [{ cip13: '3400936128200', description: 'Boîte de 16 gélules' }], advice: 'Privilégier les boîtes de 16 gélules.',
  source: 'lab', declaredAt: '2026-11-20T09:00:00.000Z', updatedAt: '2026-12-01T08:00:00.000Z', closedAt: null,
}
export const PublicShortage = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      version: Type.Integer(),
      kind: Type.Enum([...KINDS], { description: 'anticipated (risk of shortage), observed (shortage), discontinuation, availability_return.' }),
      kindLabel: Label,
      status: Type.Enum(PUBLIC_STATUSES),
      statusLabel: Label,
      lab: LabRef,
      presentations: Type.Array(Type.Object({ cip13: Type.String(), gtin: Type.String(), name: Type.String({ description: 'Medicine name.' }), label: Type.String({ description: 'The box.' }) })),
      atc: nullable(Type.String()),
      mitm: Type.Boolean({ description: 'Medicine of major therapeutic interest (from the referential).' }),
      cause: Cause,
      causeText: nullable(Type.String({ description: 'The lab’s words on the cause (the BDPM label for an imported declaration).' })),
      anticipatedStart: nullable(DateOnly()),
      actualStart: nullable(DateOnly()),
      estimatedEnd: nullable(DateOnly()),
      estimatedEndUnknown: Type.Boolean(),
      actualEnd: nullable(DateOnly()),
      allocation: Type.Object({ inPlace: Type.Boolean({ description: 'Quantities rationed to wholesalers (contingentement).' }), details: nullable(Type.String()) }),
      alternatives: Type.Array(Type.Object({ cip13: Type.Optional(Type.String()), description: Type.String() })),
      advice: nullable(Type.String({ description: 'Advice to pharmacists.' })),
      source: Type.Enum(['lab', 'bdpm'], { description: 'Declared by the lab, or imported from the BDPM availability file.' }),
      declaredAt: nullable(Type.String({ format: 'date-time' })),
      updatedAt: Type.String({ format: 'date-time' }),
      closedAt: nullable(Type.String({ format: 'date-time' })),
    },
    { $id: 'PublicShortage', description: 'A declared shortage, risk of shortage or discontinuation, as published to everyone.', examples: [EXAMPLE] },
  ),
)
const PublicShortagePage = Page(PublicShortage, 'PublicShortagePage')

const Query = Type.Object(
  {
    cip13: Type.Optional(PresentationCode),
    q: Type.Optional(Type.String({ minLength: 2, maxLength: 100, description: 'Words of the medicine’s name, accents and case ignored.' })),
    labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'SIREN of the lab.' })),
    atc: Type.Optional(Type.String({ pattern: '^[A-Za-z](\\d{2}([A-Za-z]([A-Za-z](\\d{2})?)?)?)?$', description: 'ATC code or prefix (J01 matches J01CA04).' })),
    mitm: Type.Optional(Type.Boolean()),
    kind: Type.Optional(Type.Enum([...KINDS])),
    status: Type.Optional(Type.Enum(PUBLIC_STATUSES)),
    updatedSince: Type.Optional(Type.String({ format: 'date-time', description: 'Only declarations changed at or after this instant.' })),
    ...PageQuery,
  },
  { additionalProperties: false },
)
type QueryT = Static<typeof Query>

const iso = (d: Date | null) => (d ? d.toISOString() : null)

function toPublic(r: DeclarationRow, presentations: Static<typeof PublicShortage>['presentations']): Static<typeof PublicShortage> {
  const cause = r.cause as CauseCode
  return {
    id: r.id,
    version: r.version,
    kind: r.kind,
    kindLabel: { fr: KIND_LABELS[r.kind].fr, en: KIND_LABELS[r.kind].en },
    status: r.status as Exclude<DeclarationStatus, 'draft'>,
    statusLabel: STATUS_LABELS[r.status],
    lab: { id: r.lab_id, name: r.lab_name },
    presentations,
    atc: r.atc,
    mitm: r.mitm,
    cause: { code: cause, ...(CAUSES[cause] ?? { fr: cause, en: cause }) },
    causeText: r.cause_text,
    anticipatedStart: r.anticipated_start,
    actualStart: r.actual_start,
    estimatedEnd: r.estimated_end,
    estimatedEndUnknown: r.end_unknown,
    actualEnd: r.actual_end,
    allocation: { inPlace: r.allocation_in_place, details: r.allocation_details },
    alternatives: (r.alternatives ?? []).map((a) => (a.cip13 ? { cip13: a.cip13, description: a.description } : { description: a.description })),
    advice: r.advice,
    source: r.source,
    declaredAt: iso(r.declared_at),
    updatedAt: r.updated_at.toISOString(),
    closedAt: iso(r.closed_at),
  }
}

/**
 * One page of the public list: every declaration but drafts, most recently changed first (by change sequence,
 * so a page never repeats an item; one changed while paging comes back first next time).
 */
export async function publicShortages(db: Db, query: QueryT, lang: 'fr' | 'en', maxLimit: number) {
  const { limit = 50, cursor, ...rest } = query
  const filter: DeclarationFilter & Record<string, unknown> = {
    ...rest,
    cip13: rest.cip13 ? cip13Of(rest.cip13, 'querystring.cip13', lang) : undefined,
    updatedSince: undefined,
  }
  let q = filtered(declarationRows(db), { ...filter, status: (rest.status ?? PUBLIC_STATUSES) as DeclarationStatus[] })
  if (rest.updatedSince) q = q.where('d.updated_at', '>=', new Date(rest.updatedSince))
  const key = { ...filter, updatedSince: rest.updatedSince }
  if (cursor) {
    const after = decodeCursor<{ s: number }>(cursor, key)
    if (!Number.isSafeInteger(after.s)) throw new AppError('INVALID_CURSOR')
    q = q.where('d.change_seq', '<', after.s)
  }
  const n = Math.min(limit, maxLimit)
  const rows = await q.orderBy('d.change_seq', 'desc').limit(n + 1).execute()
  const page = rows.slice(0, n)
  const items = await itemsOf(db, page.map((r) => r.id))
  const last = page[page.length - 1]
  return { items: page.map((r) => toPublic(r, items.get(r.id) ?? [])), nextCursor: rows.length > n && last ? encodeCursor({ s: last.change_seq }, key) : null }
}

const CSV_COLUMNS = [
  ['id', 'Identifiant'],
  ['version', 'Version'],
  ['kind', 'Nature'],
  ['status', 'Statut'],
  ['labId', 'Laboratoire (SIREN)'],
  ['labName', 'Laboratoire'],
  ['presentations', 'Présentations (CIP13)'],
  ['names', 'Dénomination'],
  ['atc', 'Classe ATC'],
  ['mitm', 'MITM'],
  ['cause', 'Cause'],
  ['causeText', 'Précision sur la cause'],
  ['anticipatedStart', 'Début prévu'],
  ['actualStart', 'Début constaté'],
  ['estimatedEnd', 'Fin estimée'],
  ['actualEnd', 'Fin réelle'],
  ['allocation', 'Contingentement'],
  ['alternatives', 'Alternatives'],
  ['advice', 'Conseils aux pharmaciens'],
  ['source', 'Source'],
  ['declaredAt', 'Déclarée le'],
  ['updatedAt', 'Mise à jour le'],
] as const

const CACHE_CONTROL = 'public, max-age=300'
const NotModified = Type.Null({ description: 'Not modified: the `If-None-Match` ETag is still the current one.' })
const CacheHeaders = Type.Object({
  etag: Type.String({ description: 'Send it back in If-None-Match to get 304 when nothing changed.' }),
  'cache-control': Type.String({ examples: [CACHE_CONTROL] }),
})


export const publicRoutes: RoutePlugin = async (app) => {
  // ETags (and 304 answers to If-None-Match) for these public, cacheable answers only.
  await app.register(etag)

  app.get(
    '/shortage-causes',
    {
      config: { roles: 'public' },
      schema: {
        tags: ['shortages'],
        operationId: 'listShortageCauses',
        summary: 'The causes of shortages, with French and English labels',
        description: 'The controlled list a declaration’s `cause` comes from (also in GET /v1/shortage-vocabulary). Public and cacheable.',
        response: { 200: { description: 'The causes.', headers: CacheHeaders.properties, content: { 'application/json': { schema: CauseList } } }, 304: NotModified },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600')
      return { items: Object.entries(CAUSES).map(([code, l]) => ({ code: code as CauseCode, fr: l.fr, en: l.en })) }
    },
  )

  app.get(
    '/public/shortages',
    {
      config: { roles: 'public' },
      schema: {
        tags: ['shortages'],
        operationId: 'listPublicShortages',
        summary: 'Public list of declared shortages and discontinuations (no token, cacheable)',
        description: [
          'Every declaration a lab has made public — risk of shortage, shortage, discontinuation, return to availability; drafts never — with the product, the lab, ATC, MITM, status, dates, cause, allocation, alternatives and advice. Declarations imported from the BDPM availability file are included (`source: "bdpm"`). Nothing about pharmacies or their signals.',
          'Most recently changed first. Filters: `cip13` (or GTIN-14), `q` (medicine name), `labId`, `atc` (code or prefix), `mitm`, `kind`, `status`, `updatedSince`. To keep a copy up to date, call again with `updatedSince` set to the `updatedAt` of the most recent item you hold.',
          'Cacheable: `Cache-Control: public, max-age=300` and an `ETag` (send it back in `If-None-Match`: 304 when nothing changed). The same list as a spreadsheet: GET /v1/public/shortages.csv.',
        ].join('\n\n'),
        querystring: Query,
        response: { 200: { description: 'One page of the list.', headers: CacheHeaders.properties, content: { 'application/json': { schema: PublicShortagePage } } }, 304: NotModified, ...problems(400) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', CACHE_CONTROL)
      return publicShortages(app.db, request.query, langOf(request), 200)
    },
  )

  app.get(
    '/public/shortages.csv',
    {
      config: { roles: 'public' },
      schema: {
        tags: ['shortages'],
        operationId: 'listPublicShortagesCsv',
        summary: 'The public shortage list as CSV for spreadsheets',
        description:
          'UTF-8 with a byte-order mark, `;` separated, French column names, one line per declaration. Same filters and cursor as GET /v1/public/shortages (up to 10,000 lines per call, `limit`); the next cursor is in the `X-Next-Cursor` header (absent on the last page). Cacheable like the JSON list.',
        querystring: Type.Object({ ...Query.properties, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 10_000 })) }, { additionalProperties: false }),
        response: {
          200: {
            description: 'CSV file',
            headers: { ...CacheHeaders.properties, 'x-next-cursor': Type.Optional(Type.String({ description: 'Pass as `cursor` for the next lines.' })) },
            content: { 'text/csv': { schema: Type.String({ examples: ['\uFEFFIdentifiant;Version;Nature;Statut;…'] }) } },
          },
          304: NotModified,
          ...problems(400),
        },
      },
    },
    async (request, reply) => {
      const { items, nextCursor } = await publicShortages(app.db, { ...request.query, limit: request.query.limit ?? 10_000 }, langOf(request), 10_000)
      const records = items.map((d) => ({
        id: d.id,
        version: d.version,
        kind: d.kindLabel.fr,
        status: d.statusLabel.fr,
        labId: d.lab.id,
        labName: d.lab.name,
        presentations: d.presentations.map((p) => p.cip13).join(' '),
        names: [...new Set(d.presentations.map((p) => p.name))].join(' | '),
        atc: d.atc ?? '',
        mitm: d.mitm ? 'oui' : 'non',
        cause: d.cause.fr,
        causeText: d.causeText ?? '',
        anticipatedStart: d.anticipatedStart ?? '',
        actualStart: d.actualStart ?? '',
        estimatedEnd: d.estimatedEndUnknown ? 'inconnue' : (d.estimatedEnd ?? ''),
        actualEnd: d.actualEnd ?? '',
        allocation: d.allocation.inPlace ? `oui${d.allocation.details ? ` : ${d.allocation.details}` : ''}` : 'non',
        alternatives: d.alternatives.map((a) => (a.cip13 ? `${a.cip13} ${a.description}` : a.description)).join(' | '),
        advice: d.advice ?? '',
        source: d.source === 'bdpm' ? 'BDPM' : 'laboratoire',
        declaredAt: d.declaredAt ?? '',
        updatedAt: d.updatedAt,
      }))
      const csv = stringify(records, { header: true, bom: true, delimiter: ';', columns: CSV_COLUMNS.map(([key, header]) => ({ key, header })) })
      reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="ruptures.csv"').header('cache-control', CACHE_CONTROL)
      if (nextCursor) reply.header('x-next-cursor', nextCursor)
      return reply.send(Buffer.from(csv, 'utf8') as unknown as string) // a Buffer is sent as is, never serialized
    },
  )
}

// ---- the declaration's view of a presentation's availability ------------------------------------------------

export interface DeclaredAvailability {
  id: string
  kind: DeclarationKind
  status: DeclarationStatus
  startDate: string | null
  /** Set when the shortage actually started (an anticipated one that materialised). */
  actualStart: string | null
  plannedEndDate: string | null
  endDate: string | null
  closedAt: Date | null
  /** The current version was written by the lab (through the API), not by the BDPM availability import. */
  byLab: boolean
}

/**
 * What the labs' declarations say of each presentation: its open declaration (declared or ongoing), else its
 * most recently closed one (null when there is none). The referential decides how this combines with the
 * BDPM availability file (referential/products.ts).
 */
export async function declaredAvailability(db: Db, cip13s: string[]): Promise<Map<string, DeclaredAvailability>> {
  const out = new Map<string, DeclaredAvailability>()
  if (cip13s.length === 0) return out
  const rows = await db
    .selectFrom('shortage_declaration_items as i')
    .innerJoin('shortage_declarations as d', 'd.id', 'i.declaration_id')
    .innerJoin('shortage_declaration_versions as v', (j) => j.onRef('v.declaration_id', '=', 'd.id').onRef('v.version', '=', 'd.version'))
    .select(['i.cip13', 'i.active', 'd.id', 'd.kind', 'd.status', 'd.actual_start', 'd.anticipated_start', 'd.estimated_end', 'd.actual_end', 'd.closed_at', 'v.actor_role'])
    .where('i.cip13', 'in', cip13s)
    .where('d.status', '<>', 'draft')
    // The open one first (one at most per presentation), then the most recently closed.
    .orderBy('i.active', 'desc')
    .orderBy('d.closed_at', (ob) => ob.desc().nullsLast())
    .execute()
  for (const r of rows) {
    if (out.has(r.cip13)) continue
    out.set(r.cip13, {
      kind: r.kind,
      status: r.status,
      id: r.id,
      startDate: r.actual_start ?? r.anticipated_start,
      actualStart: r.actual_start,
      plannedEndDate: r.estimated_end,
      endDate: r.actual_end,
      closedAt: r.closed_at,
      byLab: r.actor_role === 'lab',
    })
  }
  return out
}

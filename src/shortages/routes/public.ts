/**
 * What DP-Ruptures publishes to everyone, without a token: the causes referential and the public list of
 * declared shortages and discontinuations (in the way of Health Canada's Drug Shortages Canada and the FDA's
 * drug shortages list), in JSON and CSV. Only what labs declare: never a pharmacy, a signal or an automatic
 * response.
 */
import etag from '@fastify/etag'
import { stringify } from 'csv-stringify/sync'
import { type Static, Type } from 'typebox'
import { langOf } from '../../platform/i18n.ts'
import { problems } from '../../platform/openapi.ts'
import { PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { CAUSES, type CauseCode, CauseList, KINDS, PresentationCode, PUBLIC_STATUSES, type PublicShortage, PublicShortagePage } from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { publicShortages } from '../use-cases/public.ts'

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

/** One CSV line: a public declaration, in French. */
const csvRecord = (d: Static<typeof PublicShortage>) => ({
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
})

export const publicRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
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
      return publicShortages(deps.db, request.query, langOf(request), 200)
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
      const { items, nextCursor } = await publicShortages(deps.db, { ...request.query, limit: request.query.limit ?? 10_000 }, langOf(request), 10_000)
      const records = items.map(csvRecord)
      const csv = stringify(records, { header: true, bom: true, delimiter: ';', columns: CSV_COLUMNS.map(([key, header]) => ({ key, header })) })
      reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="ruptures.csv"').header('cache-control', CACHE_CONTROL)
      if (nextCursor) reply.header('x-next-cursor', nextCursor)
      return reply.send(csv) // text/csv: a string is sent as is (only JSON content types are serialized)
    },
  )
}

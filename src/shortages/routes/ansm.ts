/** ANSM routes: the incremental pull of MITM shortage declarations, as JSON and as CSV (see use-cases/ansm.ts). */
import { type Static, Type } from 'typebox'
import { principalOf } from '../../platform/auth.ts'
import { stringify } from '../../platform/csv.ts'
import { langOf } from '../../platform/i18n.ts'
import { component } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { AutomaticResponse, DateOnly, type Declaration, DeclarationSnapshot, DeclarationVersion, KIND_LABELS, nullable, STATUS_LABELS, STATUSES } from '../schemas.ts'
import { pullMitmDeclarations, pullMitmShortages } from '../use-cases/ansm.ts'
import type { Deps } from '../use-cases/context.ts'

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

/** One CSV line: a declaration's current version, in French. */
const csvRecord = (d: Static<typeof Declaration>) => ({
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
})

export const ansmRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
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
      return pullMitmShortages(deps, request.query, langOf(request))
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
      const { declarations, hasMore, nextCursor } = await pullMitmDeclarations(deps, request.query, langOf(request))
      const csv = stringify(declarations.map(csvRecord), { header: true, bom: true, delimiter: ';', columns: CSV_COLUMNS.map(([key, header]) => ({ key, header })) })
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="ruptures-mitm.csv"')
        .header('x-next-cursor', nextCursor)
        .header('x-has-more', String(hasMore))
        .send(csv) // text/csv: a string is sent as is (only JSON content types are serialized)
    },
  )
}

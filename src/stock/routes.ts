import { randomUUID } from 'node:crypto'
import { stringify } from '../platform/csv.ts'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { actorOf, audit } from '../platform/audit.ts'
import { principalOf } from '../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'
import { AppError, type FieldError } from '../platform/errors.ts'
import { publish } from '../platform/events/publish.ts'
import { langOf, type Lang } from '../platform/i18n.ts'
import { enqueue, RetryAt } from '../platform/jobs.ts'
import { IdempotencyKeyHeader, problems } from '../platform/openapi.ts'
import { Cip13, Page, PageQuery } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import './db.ts'
import {
  Aggregates,
  BulkInput,
  Campaign,
  CampaignInput,
  Declaration,
  DeclarationHistory,
  DeclarationInput,
  DeclarationList,
  DeclarationResult,
  DEFAULT_MIN_PHARMACIES,
  DEFAULT_RETENTION_DAYS,
  MAX_QUANTITY,
  WeekLabel,
} from './schemas.ts'
import {
  aggregatesOf,
  type CampaignRow,
  campaignNotFound,
  declarationNotFound,
  fieldError,
  isPublished,
  iso,
  loadCampaign,
  OBJECT_CAMPAIGN,
  productsOf,
  purgeAt,
  purgeExpired,
  recordDeclarations,
  RETENTION_QUEUE,
  statusOf,
  toCampaign,
  toDeclaration,
  weekInfo,
} from './service.ts'
import { mondayOf, mondayOfLabel, parisDay, weekAt, weekOfMonday } from './time.ts'

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
const CampaignPage = Page(Campaign, 'StockCampaignPage')
const DeclarationPage = Page(Declaration, 'StockDeclarationPage')

/** The Monday of a `week` query parameter, or a 400 naming it. */
function mondayParam(label: string, lang: Lang) {
  const monday = mondayOfLabel(label)
  if (!monday) throw fieldError('querystring.week', 'week', { fr: `la semaine ${label} n’existe pas`, en: `week ${label} does not exist` }, lang)
  return monday
}

const STATUS_TEXT = {
  scheduled: (c: CampaignRow) => ({ fr: `n’est pas encore ouverte (à partir du ${c.start_date})`, en: `is not open yet (from ${c.start_date})` }),
  ended: (c: CampaignRow) => ({ fr: `est terminée depuis le ${c.end_date}`, en: `ended on ${c.end_date}` }),
  closed: (c: CampaignRow) => ({ fr: `a été close par l’opérateur le ${parisDay(c.closed_at!)}`, en: `was closed by the operator on ${parisDay(c.closed_at!)}` }),
}

function assertOpen(c: CampaignRow, now: Date, lang: Lang) {
  const status = statusOf(c, now)
  if (status === 'open') return
  const text = STATUS_TEXT[status](c)
  throw new AppError('STOCK_CAMPAIGN_NOT_OPEN', { name: c.name, ...text }, { campaignStatus: status, errors: [{ field: 'params.id', code: status, message: text[lang] }] })
}

const CSV_COLUMNS = [
  ['week', 'Semaine'],
  ['monday', 'Lundi'],
  ['department', 'Département'],
  ['region', 'Région'],
  ['cip13', 'Code CIP13'],
  ['name', 'Produit'],
  ['totalQuantity', 'Quantité totale'],
  ['pharmacies', 'Nombre d’officines déclarantes'],
  ['secret', 'Secret statistique'],
] as const
const SECRET = { below_threshold: 'secret (moins de pharmacies que le seuil)', complementary: 'secret complémentaire' } as const

const AggregateQuery = Type.Object({ week: Type.Optional(WeekLabel) }, { additionalProperties: false })

export const stockRoutes: RoutePlugin = async (app) => {
  // ---- campaigns (operator) ------------------------------------------------------------------------------

  app.post(
    '/stock-campaigns',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'createStockCampaign',
        summary: 'Define a stock-declaration campaign (operator)',
        description: [
          'Name, the CIP13 list (each must exist in the referential), the weekly period, the first and last day declarations are accepted (Paris calendar), how long raw declarations are kept',
          `(\`retentionDays\`, default ${DEFAULT_RETENTION_DAYS}: six months after the end of each week) and the smallest number of pharmacies behind any published figure (\`minPharmacies\`, default ${DEFAULT_MIN_PHARMACIES}).`,
          'Pharmacies are told on their feed (`stock.campaign_created`).',
        ].join(' '),
        headers: IdempotencyKeyHeader,
        body: CampaignInput,
        response: { 201: Campaign, ...problems(400) },
      },
    },
    async (request, reply) => {
      const lang = langOf(request)
      const principal = principalOf(request)
      const body = request.body
      const now = app.now()
      const errors: FieldError[] = []
      if (body.endDate < body.startDate) {
        errors.push({ field: 'body.endDate', code: 'order', message: lang === 'fr' ? `la fin (${body.endDate}) précède le début (${body.startDate})` : `the end (${body.endDate}) is before the start (${body.startDate})` })
      }
      const known = new Set((await app.db.selectFrom('presentations').select('cip13').where('cip13', 'in', body.products).execute()).map((r) => r.cip13))
      body.products.forEach((cip13, i) => {
        if (!known.has(cip13)) errors.push({ field: `body.products.${i}`, code: 'unknown', message: lang === 'fr' ? `produit ${cip13} absent du référentiel` : `product ${cip13} is not in the referential` })
      })
      if (errors.length) throw new AppError('STOCK_CAMPAIGN_INVALID', { count: errors.length }, { errors })

      const campaign = await app.db.transaction().execute(async (tx) => {
        const id = randomUUID()
        const row = await tx
          .insertInto('stock_campaigns')
          .values({
            id,
            name: body.name,
            period: 'weekly',
            start_date: body.startDate,
            end_date: body.endDate,
            retention_days: body.retentionDays ?? DEFAULT_RETENTION_DAYS,
            min_pharmacies: body.minPharmacies ?? DEFAULT_MIN_PHARMACIES,
            created_at: now,
            created_by: principal.user,
          })
          .returningAll()
          .executeTakeFirstOrThrow()
        await tx.insertInto('stock_campaign_products').values(body.products.map((cip13, position) => ({ campaign_id: id, cip13, position }))).execute()
        await audit(tx, actorOf(principal, request.id), { action: `${OBJECT_CAMPAIGN}.created`, objectType: OBJECT_CAMPAIGN, objectId: id, changes: { ...body, retentionDays: row.retention_days, minPharmacies: row.min_pharmacies } }, now)
        await publish(
          tx,
          { type: 'stock.campaign_created', payload: { campaignId: id, name: body.name, products: body.products, startDate: body.startDate, endDate: body.endDate }, audience: { roles: ['pharmacy'] }, senderOrg: principal.org, subject: { type: OBJECT_CAMPAIGN, id } },
          now,
        )
        // The retention job: first due when the first week's raw data expires; it reschedules itself.
        await enqueue(tx, RETENTION_QUEUE, { campaignId: id }, { runAt: purgeAt(mondayOf([parisDay(now), body.startDate].sort()[1]!), row.retention_days), singletonKey: id })
        return toCampaign(row, (await productsOf(tx, [id])).get(id) ?? [], now)
      })
      return reply.code(201).send(campaign)
    },
  )

  app.get(
    '/stock-campaigns',
    {
      config: { roles: ['ordre', 'pharmacy', 'ministry'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'listStockCampaigns',
        summary: 'The campaigns, newest first (their definition, never their data)',
        description: 'A pharmacy’s LGO reads here which campaigns are `open` and which products to declare for the current week.',
        querystring: Type.Object({ status: Type.Optional(Type.Enum(['scheduled', 'open', 'ended', 'closed'])), ...PageQuery }, { additionalProperties: false }),
        response: { 200: CampaignPage },
      },
    },
    async (request) => {
      const { status, limit = 50, cursor } = request.query
      const now = app.now()
      const filter = { status }
      let q = app.db.selectFrom('stock_campaigns').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1)
      if (status === 'closed') q = q.where('closed_at', 'is not', null)
      else if (status) {
        const today = parisDay(now)
        q = q.where('closed_at', 'is', null)
        if (status === 'scheduled') q = q.where('start_date', '>', today)
        if (status === 'open') q = q.where('start_date', '<=', today).where('end_date', '>=', today)
        if (status === 'ended') q = q.where('end_date', '<', today)
      }
      if (cursor) {
        const after = decodeCursor<{ t: string; i: string }>(cursor, filter)
        if (typeof after.t !== 'string' || Number.isNaN(Date.parse(after.t)) || typeof after.i !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(after.i)) throw new AppError('INVALID_CURSOR')
        q = q.where((eb) => eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(new Date(after.t) as any, after.i)))
      }
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      const products = await productsOf(app.db, page.map((r) => r.id))
      const last = page[page.length - 1]
      return {
        items: page.map((r) => toCampaign(r, products.get(r.id) ?? [], now)),
        nextCursor: rows.length > limit && last ? encodeCursor({ t: last.created_at.toISOString(), i: last.id }, filter) : null,
      }
    },
  )

  app.get(
    '/stock-campaigns/:id',
    {
      config: { roles: ['ordre', 'pharmacy', 'ministry'] },
      schema: { tags: ['stock-campaigns'], operationId: 'getStockCampaign', summary: 'One campaign: its products, status and current week', params: IdParams, response: { 200: Campaign, ...problems(404) } },
    },
    async (request) => {
      const c = await loadCampaign(app.db, request.params.id)
      return toCampaign(c, (await productsOf(app.db, [c.id])).get(c.id) ?? [], app.now())
    },
  )

  app.post(
    '/stock-campaigns/:id/close',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'closeStockCampaign',
        summary: 'Close a campaign before its end (operator)',
        description: 'No declaration is accepted afterwards; every week of the campaign becomes final and its aggregates are published. Closing twice answers 409 `STOCK_CAMPAIGN_CLOSED`.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        response: { 200: Campaign, ...problems(404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const now = app.now()
      return app.db.transaction().execute(async (tx) => {
        const c = await loadCampaign(tx, request.params.id, true)
        if (c.closed_at) throw new AppError('STOCK_CAMPAIGN_CLOSED', { name: c.name, closedAt: parisDay(c.closed_at) }, { closedAt: c.closed_at.toISOString() })
        const row = await tx.updateTable('stock_campaigns').set({ closed_at: now, closed_by: principal.user }).where('id', '=', c.id).returningAll().executeTakeFirstOrThrow()
        await audit(tx, actorOf(principal, request.id), { action: `${OBJECT_CAMPAIGN}.closed`, objectType: OBJECT_CAMPAIGN, objectId: c.id, changes: { status: [statusOf(c, now), 'closed'] } }, now)
        return toCampaign(row, (await productsOf(tx, [c.id])).get(c.id) ?? [], now)
      })
    },
  )

  // ---- declarations (pharmacy) ---------------------------------------------------------------------------

  /** Checks the campaign and the items before anything is written; all errors at once, each naming its field. */
  async function declare(request: FastifyRequest & { params: { id: string } }, items: Array<{ cip13: string; quantity: number }>, fieldOf: (i: number) => string) {
    const lang = langOf(request)
    const principal = principalOf(request)
    const now = app.now()
    return app.db.transaction().execute(async (tx) => {
      // FOR SHARE: a concurrent close waits for this declaration, or this one sees the campaign closed.
      const campaign = await tx.selectFrom('stock_campaigns').selectAll().where('id', '=', request.params.id).forShare().executeTakeFirst()
      if (!campaign) throw campaignNotFound()
      assertOpen(campaign, now, lang)
      const listed = new Set((await tx.selectFrom('stock_campaign_products').select('cip13').where('campaign_id', '=', campaign.id).execute()).map((r) => r.cip13))
      const errors: FieldError[] = []
      const seen = new Map<string, number>()
      items.forEach((item, i) => {
        if (!listed.has(item.cip13)) {
          errors.push({ field: `${fieldOf(i)}.cip13`, code: 'not_in_campaign', message: lang === 'fr' ? `le produit ${item.cip13} ne fait pas partie de la campagne` : `product ${item.cip13} is not part of the campaign` })
        } else if (seen.has(item.cip13)) {
          errors.push({ field: `${fieldOf(i)}.cip13`, code: 'duplicate', message: lang === 'fr' ? `le produit ${item.cip13} figure déjà en position ${seen.get(item.cip13)}` : `product ${item.cip13} already appears at position ${seen.get(item.cip13)}` })
        }
        seen.set(item.cip13, i)
      })
      if (errors.length) throw new AppError('STOCK_DECLARATION_INVALID', { count: errors.length }, { errors })
      const result = await recordDeclarations(tx, { campaign, pharmacyId: principal.org, items, actor: actorOf(principal, request.id), now })
      return { week: weekInfo(result.week), items: result.items }
    })
  }

  app.post(
    '/stock-campaigns/:id/declarations',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'declareStock',
        summary: 'Declare the stock of one product for the current week',
        description: [
          'The week is the current ISO week of the Paris calendar (Monday 00:00 to the next Monday 00:00, Paris time). Declaring the same product again in the same week **replaces** the quantity (200, `replaced: true`); the previous value is kept in a history the operator reads. The first declaration of the week answers 201.',
          `Refused: a product not listed in the campaign (400 \`STOCK_DECLARATION_INVALID\`, field \`body.cip13\`), a quantity that is negative, not an integer or above ${MAX_QUANTITY} (400 \`VALIDATION_FAILED\`, field \`body.quantity\`), a campaign not open (409 \`STOCK_CAMPAIGN_NOT_OPEN\`, with \`status\`).`,
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: DeclarationInput,
        response: { 200: DeclarationResult, 201: DeclarationResult, ...problems(404, 409) },
      },
    },
    async (request, reply) => {
      const result = await declare(request, [request.body], () => 'body')
      return reply.code(result.items[0]!.replaced ? 200 : 201).send(result)
    },
  )

  app.post(
    '/stock-campaigns/:id/declarations/bulk',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'declareStockBulk',
        summary: 'Declare several products at once for the current week (LGO)',
        description:
          'All or nothing: when one item is refused, nothing is recorded and `errors` lists every refused item (`body.items.<index>.cip13` or `.quantity`). Each product replaces its own value of the week, as the single form does; products not sent keep their value. A product may appear once.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: BulkInput,
        response: { 200: DeclarationResult, ...problems(404, 409) },
      },
    },
    async (request) => declare(request, request.body.items, (i) => `body.items.${i}`),
  )

  app.get(
    '/stock-campaigns/:id/my-declarations',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'listMyStockDeclarations',
        summary: 'The pharmacy’s own current values for a week (default: the current week)',
        params: IdParams,
        querystring: Type.Object({ week: Type.Optional(WeekLabel) }, { additionalProperties: false }),
        response: { 200: DeclarationList, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const campaign = await loadCampaign(app.db, request.params.id)
      const week = request.query.week ? weekOfMonday(mondayParam(request.query.week, langOf(request))) : weekAt(app.now())
      const rows = await app.db.selectFrom('stock_declarations').selectAll().where('campaign_id', '=', campaign.id).where('pharmacy_id', '=', principal.org).where('week', '=', week.monday).orderBy('cip13').execute()
      return { week: weekInfo(week), items: rows.map(toDeclaration) }
    },
  )

  app.get(
    '/stock-declarations/:id',
    {
      config: { roles: ['pharmacy', 'ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'getStockDeclaration',
        summary: 'One declaration: the pharmacy’s own, or any for the operator',
        description: 'Another pharmacy’s declaration answers 404. After the retention the raw declaration is purged and answers 404 too.',
        params: IdParams,
        response: { 200: Declaration, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      let q = app.db.selectFrom('stock_declarations').selectAll().where('id', '=', request.params.id)
      if (principal.role !== 'ordre') q = q.where('pharmacy_id', '=', principal.org)
      const row = await q.executeTakeFirst()
      if (!row) throw declarationNotFound()
      return toDeclaration(row)
    },
  )

  // ---- raw data (operator) -------------------------------------------------------------------------------

  app.get(
    '/stock-declarations/:id/history',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'getStockDeclarationHistory',
        summary: 'Every value a pharmacy declared for one product and week (operator)',
        params: IdParams,
        response: { 200: DeclarationHistory, ...problems(404) },
      },
    },
    async (request) => {
      const row = await app.db.selectFrom('stock_declarations').selectAll().where('id', '=', request.params.id).executeTakeFirst()
      if (!row) throw declarationNotFound()
      const past = await app.db.selectFrom('stock_declaration_history').selectAll().where('declaration_id', '=', row.id).orderBy('version').execute()
      return {
        declaration: toDeclaration(row),
        versions: [
          ...past.map((h) => ({ version: h.version, quantity: h.quantity, declaredAt: h.declared_at.toISOString(), declaredBy: h.declared_by, replacedAt: iso(h.replaced_at) })),
          { version: row.version, quantity: row.quantity, declaredAt: row.declared_at.toISOString(), declaredBy: row.declared_by, replacedAt: null },
        ],
      }
    },
  )

  app.get(
    '/stock-campaigns/:id/declarations',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'listStockDeclarations',
        summary: 'Raw declarations of a campaign, by week, pharmacy and product (operator)',
        description: 'Current values only; a value’s history: GET /v1/stock-declarations/{id}/history. Weeks past the retention have been purged.',
        params: IdParams,
        querystring: Type.Object(
          { week: Type.Optional(WeekLabel), cip13: Type.Optional(Cip13), department: Type.Optional(Type.String({ pattern: '^(\\d{2}|2A|2B|97\\d)$' })), ...PageQuery },
          { additionalProperties: false },
        ),
        response: { 200: DeclarationPage, ...problems(404) },
      },
    },
    async (request) => {
      const campaign = await loadCampaign(app.db, request.params.id)
      const { week, cip13, department, limit = 50, cursor } = request.query
      const filter = { campaign: campaign.id, week, cip13, department }
      let q = app.db.selectFrom('stock_declarations').selectAll().where('campaign_id', '=', campaign.id).orderBy('week').orderBy('pharmacy_id').orderBy('cip13').limit(limit + 1)
      if (week) q = q.where('week', '=', mondayParam(week, langOf(request)))
      if (cip13) q = q.where('cip13', '=', cip13)
      if (department) q = q.where('department', '=', department)
      if (cursor) {
        const after = decodeCursor<{ w: string; p: string; c: string }>(cursor, filter)
        // A cursor is only base64 JSON: check what it holds before it reaches SQL.
        if (typeof after.w !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(after.w) || mondayOf(after.w) !== after.w || typeof after.p !== 'string' || after.p.length > 20 || typeof after.c !== 'string' || !/^\d{13}$/.test(after.c)) {
          throw new AppError('INVALID_CURSOR')
        }
        q = q.where((eb) => eb(eb.refTuple('week', 'pharmacy_id', 'cip13'), '>', eb.tuple(after.w, after.p, after.c)))
      }
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return { items: page.map(toDeclaration), nextCursor: rows.length > limit && last ? encodeCursor({ w: last.week, p: last.pharmacy_id, c: last.cip13 }, filter) : null }
    },
  )

  // ---- aggregates (ministry and operator) ----------------------------------------------------------------

  const aggregateDescription = [
    'Per complete week, product and department (the pharmacy’s department in the referential: 2A and 2B for Corsica, 971 to 976 overseas): total quantity and number of declaring pharmacies, and the national total.',
    'A week is published once it has ended (or the campaign is over), so that figures never change under the reader. A department with fewer declaring pharmacies than the campaign’s `minPharmacies` is suppressed (`below_threshold`); further cells, or the national total, are suppressed (`complementary`) so that no suppressed figure can be recovered by subtracting the published departments from the national total. Aggregates stay after the raw data is purged.',
  ].join('\n\n')

  async function published(request: { params: { id: string }; query: { week?: string | undefined } }, lang: Lang) {
    const now = app.now()
    const campaign = await loadCampaign(app.db, request.params.id)
    let monday: string | undefined
    if (request.query.week) {
      monday = mondayParam(request.query.week, lang)
      if (!isPublished(campaign, monday, now)) {
        const end = weekOfMonday(monday).end
        throw fieldError('querystring.week', 'not_published', { fr: `la semaine ${request.query.week} n’est pas terminée ; ses agrégats seront publiés le ${parisDay(end)}`, en: `week ${request.query.week} has not ended; its aggregates are published on ${parisDay(end)}` }, lang)
      }
    }
    return aggregatesOf(app.db, campaign, now, monday)
  }

  app.get(
    '/stock-campaigns/:id/aggregates',
    {
      config: { roles: ['ministry', 'ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'getStockAggregates',
        summary: 'Weekly aggregates by department and product (ministry, operator)',
        description: `${aggregateDescription}\n\nThe same as CSV: GET /v1/stock-campaigns/{id}/aggregates.csv.`,
        params: IdParams,
        querystring: AggregateQuery,
        response: { 200: Aggregates, ...problems(404) },
      },
    },
    async (request) => published(request, langOf(request)),
  )

  app.get(
    '/stock-campaigns/:id/aggregates.csv',
    {
      config: { roles: ['ministry', 'ordre'] },
      schema: {
        tags: ['stock-campaigns'],
        operationId: 'getStockAggregatesCsv',
        summary: 'Weekly aggregates as CSV for spreadsheets (ministry, operator)',
        description: `${aggregateDescription}\n\nUTF-8 with a byte-order mark, \`;\` separated, French column names; one line per week, product and department, then the product's national line (Département « France entière »). Suppressed figures are empty, with the reason in « Secret statistique ».`,
        params: IdParams,
        querystring: AggregateQuery,
        response: {
          200: { description: 'CSV file', content: { 'text/csv': { schema: Type.String({ examples: ['\uFEFFSemaine;Lundi;Département;Région;Code CIP13;Produit;Quantité totale;Nombre d’officines déclarantes;Secret statistique'] }) } } },
          ...problems(404),
        },
      },
    },
    async (request, reply) => {
      const data = await published(request, langOf(request))
      const records: Array<Record<string, string | number>> = []
      for (const w of data.weeks) {
        for (const p of w.products) {
          for (const d of p.departments) {
            records.push({ week: w.week, monday: w.monday, department: d.department, region: d.region ?? '', cip13: p.cip13, name: p.name, totalQuantity: d.totalQuantity ?? '', pharmacies: d.pharmacies ?? '', secret: d.reason ? SECRET[d.reason] : '' })
          }
          records.push({ week: w.week, monday: w.monday, department: 'France entière', region: '', cip13: p.cip13, name: p.name, totalQuantity: p.national.totalQuantity ?? '', pharmacies: p.national.pharmacies ?? '', secret: p.national.suppressed ? SECRET.complementary : '' })
        }
      }
      const csv = stringify(records, { header: true, bom: true, delimiter: ';', columns: CSV_COLUMNS.map(([key, header]) => ({ key, header })) })
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="stocks-${data.campaignId}.csv"`)
        .send(Buffer.from(csv, 'utf8') as unknown as string)
    },
  )
}

/**
 * Stock-declaration campaigns: the operator's campaigns, pharmacies' weekly declarations, the ministry's
 * aggregates. Registered with prefix '/v1'.
 */
const stockCampaignRoutes: RoutePlugin = async (app) => {
  await app.register(stockRoutes)
}
export default stockCampaignRoutes

/** Scheduled work of the stock campaigns: purging raw declarations past the retention. */
export function registerStockJobs(app: FastifyInstance) {
  app.jobs.register(RETENTION_QUEUE, async (payload: { campaignId?: unknown }, ctx) => {
    if (typeof payload?.campaignId !== 'string') return
    const result = await purgeExpired(app.db, payload.campaignId, ctx.now)
    if (result.declarations > 0) ctx.log.info({ campaignId: payload.campaignId, ...result }, 'stock declarations purged')
    if (result.next) throw new RetryAt(result.next, 'next retention deadline')
  })
}

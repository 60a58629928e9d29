/** Aggregate routes (ministry, operator): the published figures as JSON or CSV. */
import { Type } from 'typebox'
import { langOf } from '../../platform/i18n.ts'
import { problems } from '../../platform/openapi.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { Aggregates, IdParams, WeekQuery } from '../schemas.ts'
import { publishedAggregates } from '../use-cases/aggregates.ts'
import type { Deps } from '../use-cases/context.ts'
import { aggregatesCsv } from '../views.ts'

const aggregateDescription = [
  'Per complete week, product and department (the pharmacy’s department in the referential: 2A and 2B for Corsica, 971 to 976 overseas): total quantity and number of declaring pharmacies, and the national total.',
  'A week is published once it has ended (or the campaign is over), so that figures never change under the reader. A department with fewer declaring pharmacies than the campaign’s `minPharmacies` is suppressed (`below_threshold`); further cells, or the national total, are suppressed (`complementary`) so that no suppressed figure can be recovered by subtracting the published departments from the national total. Aggregates stay after the raw data is purged.',
].join('\n\n')

const aggregateRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
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
        querystring: WeekQuery,
        response: { 200: Aggregates, ...problems(404) },
      },
    },
    async (request) => publishedAggregates(deps, { lang: langOf(request) }, request.params.id, request.query.week, app.now()),
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
        querystring: WeekQuery,
        response: {
          200: { description: 'CSV file', content: { 'text/csv': { schema: Type.String({ examples: ['\uFEFFSemaine;Lundi;Département;Région;Code CIP13;Produit;Quantité totale;Nombre d’officines déclarantes;Secret statistique'] }) } } },
          ...problems(404),
        },
      },
    },
    async (request, reply) => {
      const data = await publishedAggregates(deps, { lang: langOf(request) }, request.params.id, request.query.week, app.now())
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="stocks-${data.campaignId}.csv"`)
        .send(aggregatesCsv(data)) // text/csv: a string is sent as is (only JSON content types are serialized)
    },
  )
}

export default aggregateRoutes

/** The end of a message: the lab closes it; the lab and ANSM read the report as JSON or PDF. */
import { Type } from 'typebox'
import { principalOf } from '../../platform/auth.ts'
import { langOf } from '../../platform/i18n.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { Report } from '../schemas.ts'
import { closeMessage, getReport, getReportPdf } from '../use-cases/closing.ts'
import { type AddRoutes, binary, IdParams, whoOf } from './common.ts'

export const close: AddRoutes = (app, { kind, S, N, base, tags, what, deps }) => {
  app.post(
    `${base}/:id/close`,
    {
      config: { roles: ['lab'] },
      schema: {
        tags,
        operationId: `close${N}`,
        summary: kind === 'recall' ? 'Close the recall: unblock, make the report, send it to ANSM' : 'Close the alert: make the report, send it to ANSM',
        description: 'Only a ' + what + ' in force. A correction still in review is cancelled. ' + (kind === 'recall' ? 'Blocked batches are released in the same transaction. ' : '') + 'The report (coverage, quantities, timeline) is stored, published to ANSM (`' + kind + '.report`) and readable as JSON and PDF.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false })),
        response: { 200: S.View, ...problems(404, 409) },
      },
    },
    async (request) => (await closeMessage(deps, kind, whoOf(request), request.params.id, request.body?.reason ?? null)) as never,
  )
}

export const report: AddRoutes = (app, { kind, N, base, tags, what, deps }) => {
  app.get(
    `${base}/:id/report`,
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags,
        operationId: `get${N}Report`,
        summary: 'The report (bilan), once closed',
        description: '404 until the ' + what + ' is closed.',
        params: IdParams,
        response: { 200: Report, ...problems(404) },
      },
    },
    async (request) => (await getReport(deps, kind, principalOf(request), request.params.id, langOf(request))) as never,
  )
}

export const reportPdf: AddRoutes = (app, { kind, N, base, tags, deps }) => {
  app.get(
    `${base}/:id/report/pdf`,
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags,
        operationId: `get${N}ReportPdf`,
        summary: 'The report (bilan) as a PDF',
        params: IdParams,
        response: { 200: binary('application/pdf', 'The report (PDF)'), ...problems(404) },
      },
    },
    async (request, reply) => {
      const { reference, pdf } = await getReportPdf(deps, kind, principalOf(request), request.params.id, langOf(request))
      return reply.type('application/pdf').header('content-disposition', `attachment; filename="bilan-${reference}.pdf"`).header('cache-control', 'private, no-store').send(pdf)
    },
  )
}

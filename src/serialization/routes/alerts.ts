/** The serial alerts' HTTP routes: lists, figures, the investigation workflow and pseudonym resolution. */
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { actorOf } from '../../platform/audit.ts'
import { principalOf } from '../../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import type { Role } from '../../platform/db/schema.ts'
import { AppError, notFound } from '../../platform/errors.ts'
import { langOf } from '../../platform/i18n.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { productCode } from '../rules/gs1.ts'
import { SCANNER_ROLES } from '../rules/pseudonyms.ts'
import { Alert, AlertFiguresSchema, AlertMessage, AlertPage, AlertReference, AlertStatusChange, AlertStatusSchema, AnsmAlertDecision, PackHistory, Pseudonym, PseudonymResolution } from '../schemas/alerts.ts'
import { ProductCodeParam } from '../schemas/packs.ts'
import { type AlertDeps, changeAlertStatus, decideEscalatedAlert, postAlertMessage, type Who } from '../use-cases/alert-workflow.ts'
import { type AlertContext, alertFigures, getAlert, listAlerts, packHistory } from '../use-cases/alerts.ts'
import { PseudonymDirectory, resolvePseudonym } from '../use-cases/pseudonyms.ts'

const TAG = 'serialization'
/** The lab (its products' alerts), the scanning organisation (its own), ANSM and the operator (all). */
const READERS: readonly Role[] = ['lab', ...SCANNER_ROLES, 'ansm', 'ordre']
const RefParams = Type.Object({ reference: AlertReference })
const whoOf = (request: FastifyRequest): Who => ({ principal: principalOf(request), requestId: request.id })

const alertRoutes: RoutePlugin = async (app) => {
  const ctx: AlertContext = { secret: app.config.SCAN_PSEUDONYM_SECRET, directory: new PseudonymDirectory(app.config.SCAN_PSEUDONYM_SECRET) }
  const deps: AlertDeps = { db: app.db, ctx, now: () => app.now() }

  app.get(
    '/serialization/alerts',
    {
      config: { roles: READERS },
      schema: {
        tags: [TAG],
        operationId: 'listSerialAlerts',
        summary: 'Alerts raised by scans (lab, pharmacy, ANSM, operator)',
        description:
          'Newest first. A lab sees the alerts on its products, a pharmacy (hospital, wholesaler) the ones it raised, ANSM and the operator all (filter `status=escalated` for the ones labs escalated to ANSM). The pharmacy is shown by its pseudonym, never its FINESS.',
        querystring: Type.Object(
          {
            status: Type.Optional(AlertStatusSchema),
            product: Type.Optional(ProductCodeParam),
            lab: Type.Optional(Type.String({ minLength: 9, maxLength: 9, description: 'SIREN (ANSM and operator only; a lab always sees its own).' })),
            pharmacy: Type.Optional(Pseudonym),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: AlertPage, ...problems(400) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { status, product, lab, pharmacy, limit = 50, cursor } = request.query
      let cip13: string | undefined
      if (product !== undefined) {
        const r = productCode(product, 'querystring.product')
        if ('error' in r) throw new AppError('INVALID_IDENTIFIER', { field: 'querystring.product', fr: r.error.fr, en: r.error.en }, { errors: [{ field: 'querystring.product', code: 'identifier', message: r.error[langOf(request)] }] })
        cip13 = r.cip13
      }
      const filter = { status, product: cip13, lab: principal.role === 'ordre' || principal.role === 'ansm' ? lab : undefined, pharmacy }
      const before = cursor ? decodeCursor<{ seq: number }>(cursor, filter).seq : undefined
      const { items, last } = await listAlerts(app.db, ctx, principal, filter, { before, limit })
      return { items, nextCursor: last !== null ? encodeCursor({ seq: last }, filter) : null }
    },
  )

  app.get(
    '/serialization/alerts/figures',
    {
      config: { roles: ['lab', 'ansm', 'ordre'] },
      schema: {
        tags: [TAG],
        operationId: 'getSerialAlertFigures',
        summary: 'Alert figures per lab and alert rate per product (lab, ANSM, operator)',
        description: 'Alerts per lab by status, conclusion and code; per product, the alerts, the scans logged and the rate alerts / scans. A lab sees its own; ANSM and the operator all, or one lab with `lab`.',
        querystring: Type.Object(
          {
            lab: Type.Optional(Type.String({ minLength: 9, maxLength: 9, description: 'SIREN (ANSM and operator only).' })),
            since: Type.Optional(Type.String({ format: 'date-time', description: 'Count from this instant.' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: AlertFiguresSchema, ...problems(400) },
      },
    },
    async (request) => alertFigures(app.db, principalOf(request), { lab: request.query.lab, since: request.query.since ? new Date(request.query.since) : undefined }),
  )

  app.get(
    '/serialization/alerts/:reference',
    {
      config: { roles: READERS },
      schema: {
        tags: [TAG],
        operationId: 'getSerialAlert',
        summary: 'One alert with its questions and answers',
        description: 'Another lab’s or another pharmacy’s alert answers 404.',
        params: RefParams,
        response: { 200: Alert, ...problems(404) },
      },
    },
    async (request) => getAlert(app.db, ctx, principalOf(request), request.params.reference),
  )

  app.get(
    '/serialization/alerts/:reference/pack-history',
    {
      config: { roles: ['lab', 'ansm', 'ordre'] },
      schema: {
        tags: [TAG],
        operationId: 'getSerialAlertPackHistory',
        summary: 'The history of an alert’s pack, for its investigation (lab, ANSM, operator)',
        description: 'Every scan and every state change of the pack (same product and serial), oldest first, each organisation and user shown by its pseudonym. Another lab’s alert answers 404.',
        params: RefParams,
        response: { 200: PackHistory, ...problems(404) },
      },
    },
    async (request) => packHistory(app.db, ctx, principalOf(request), request.params.reference),
  )

  app.put(
    '/serialization/alerts/:reference/status',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: [TAG],
        operationId: 'setSerialAlertStatus',
        summary: 'Investigate or close an alert on your product (lab)',
        description:
          'new → under_investigation → closed; closing needs a `conclusion` (technical_error, scanning_error, falsification_suspected, other). With falsification_suspected the alert is not closed but escalated to ANSM (status `escalated`, event `serialization.alert.escalated` on ANSM’s feed), which closes it. Another step answers 409; the current status again changes nothing. The pharmacy is told on its feed. Recorded in the audit trail.',
        headers: IdempotencyKeyHeader,
        params: RefParams,
        body: AlertStatusChange,
        response: { 200: Alert, ...problems(404, 409, 422) },
      },
    },
    async (request) => changeAlertStatus(deps, whoOf(request), request.params.reference, request.body),
  )

  app.put(
    '/serialization/alerts/:reference/ansm-decision',
    {
      config: { roles: ['ansm'] },
      schema: {
        tags: [TAG],
        operationId: 'decideEscalatedSerialAlert',
        summary: 'Close an alert a lab escalated (ANSM)',
        description: 'Only on an `escalated` alert (otherwise 409): ANSM records its conclusion (falsification_confirmed, no_falsification, other) and closes the alert. The lab and the pharmacy are told on their feeds. Recorded in the audit trail.',
        headers: IdempotencyKeyHeader,
        params: RefParams,
        body: AnsmAlertDecision,
        response: { 200: Alert, ...problems(404, 409, 422) },
      },
    },
    async (request) => decideEscalatedAlert(deps, whoOf(request), request.params.reference, request.body),
  )

  app.post(
    '/serialization/alerts/:reference/messages',
    {
      config: { roles: ['lab', ...SCANNER_ROLES, 'ansm'] },
      schema: {
        tags: [TAG],
        operationId: 'postSerialAlertMessage',
        summary: 'Ask the pharmacy a question (lab), answer it (pharmacy), write to the lab (ANSM)',
        description:
          'A lab’s question goes to the pharmacy’s feed (`serialization.alert.question`), the pharmacy’s answer to the lab’s (`serialization.alert.answer`, with the pseudonym only); on an escalated alert ANSM may write to the lab (`serialization.alert.question`, from ansm). Not on a closed alert (409). Recorded in the audit trail.',
        headers: IdempotencyKeyHeader,
        params: RefParams,
        body: AlertMessage,
        response: { 201: Alert, ...problems(404, 409, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(await postAlertMessage(deps, whoOf(request), request.params.reference, request.body.text)),
  )

  app.post(
    '/serialization/pseudonyms/:pseudonym/resolve',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: [TAG],
        operationId: 'resolvePharmacyPseudonym',
        summary: 'Resolve a pharmacy pseudonym to its FINESS (operator)',
        description: 'Only the operator may; every attempt, found or not, is recorded in the audit trail with its reason. An unknown pseudonym answers 404.',
        headers: IdempotencyKeyHeader,
        params: Type.Object({ pseudonym: Pseudonym }),
        body: Type.Object({ reason: Type.String({ minLength: 3, maxLength: 500, description: 'Why (e.g. the alert reference under investigation).' }) }, { additionalProperties: false }),
        response: { 200: PseudonymResolution, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { pseudonym } = request.params
      const match = await resolvePseudonym(app.db, app.config.SCAN_PSEUDONYM_SECRET, actorOf(principal, request.id), pseudonym, request.body.reason, app.now())
      if (!match) throw notFound(`Le pseudonyme ${pseudonym}`, `Pseudonym ${pseudonym}`)
      return { pseudonym, org: match.id, role: match.role, name: match.name }
    },
  )
}

export default alertRoutes

/** The lab's routes: upload packs, read its batches with their figures, set a batch's or a product's status. */
import { Type } from 'typebox'
import { actorOf } from '../../platform/audit.ts'
import { principalOf } from '../../platform/auth.ts'
import { AppError } from '../../platform/errors.ts'
import { langOf } from '../../platform/i18n.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { expiryField } from '../rules/gs1.ts'
import { cip13Of } from '../rules/product-code.ts'
import { Batch, BatchFigures, BatchPage, PackUpload, PackUploadReport, ProductCodeParam, ProductStatus, StatusChange } from '../schemas/packs.ts'
import { changeBatchStatus, getBatch, type LabDeps, listBatches, setProductStatus } from '../use-cases/lab.ts'
import { uploadPacks } from '../use-cases/upload.ts'

const TAG = 'serialization'
const ProductParams = Type.Object({ code: ProductCodeParam })
const BatchParams = Type.Object({ code: ProductCodeParam, batch: Batch })

const labRoutes: RoutePlugin = async (app) => {
  const deps: LabDeps = { db: app.db, now: () => app.now(), instance: app }

  app.post(
    '/serialization/packs',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: [TAG],
        operationId: 'uploadPacks',
        summary: 'Upload packs of one batch (lab)',
        description:
          'Product (one of your presentations: another lab’s product answers 404), batch, expiry and up to 10,000 serials per call; for a larger batch, stream its serials as text, one per line, to `POST /v1/serialization/products/{code}/batches/{batch}/packs` (up to 1,000,000 in one call), or send several calls. Idempotent: a serial already uploaded in this batch is counted `unchanged`; in another batch of the product, it is reported in `conflicts` and left as it was. A batch already declared with another expiry answers 409.',
        headers: IdempotencyKeyHeader,
        body: PackUpload,
        response: { 200: PackUploadReport, ...problems(404, 409, 413, 422) },
      },
    },
    async (request) => {
      const lang = langOf(request)
      const principal = principalOf(request)
      const cip13 = cip13Of(request.body.product, 'body.product', lang)
      const expiry = expiryField(request.body.expiry, 'body.expiry', app.now())
      if ('error' in expiry) throw new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field: 'body.expiry', code: 'format', message: expiry.error[lang] }] })
      return uploadPacks(app.db, { ...actorOf(principal, request.id), org: principal.org }, { cip13, batch: request.body.batch, expiry: expiry.expiry, serials: request.body.serials }, app.now())
    },
  )

  app.get(
    '/serialization/products/:code/batches',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: [TAG],
        operationId: 'listSerialBatches',
        summary: 'Your batches of a product with their figures (lab)',
        description: 'Each batch with its status and its packs counted per state. Another lab’s product answers 404.',
        params: ProductParams,
        querystring: Type.Object(PageQuery),
        response: { 200: BatchPage, ...problems(404) },
      },
    },
    async (request) => listBatches(deps, principalOf(request).org, cip13Of(request.params.code, 'params.code', langOf(request)), request.query),
  )

  app.get(
    '/serialization/products/:code/batches/:batch',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: [TAG],
        operationId: 'getSerialBatch',
        summary: 'One of your batches with its figures (lab)',
        params: BatchParams,
        response: { 200: BatchFigures, ...problems(404) },
      },
    },
    async (request) => getBatch(deps, principalOf(request).org, cip13Of(request.params.code, 'params.code', langOf(request)), request.params.batch),
  )

  app.put(
    '/serialization/products/:code/batches/:batch/status',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: [TAG],
        operationId: 'setSerialBatchStatus',
        summary: 'Recall, withdraw or expire one of your batches (lab)',
        description:
          'Every pack of the batch then answers BATCH_RECALLED, WITHDRAWN or EXPIRED at verification, at every state change and at the dispensation check, and no undo is accepted on it; the answer comes once every API instance blocks the batch. Your status is kept apart from DP-Rappels: setting active again does not lift a recall that still blocks the batch (`status` says what the packs answer, `labStatus` what you set). Setting the current status again changes nothing. Recorded in the audit trail.',
        headers: IdempotencyKeyHeader,
        params: BatchParams,
        body: StatusChange,
        response: { 200: BatchFigures, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const cip13 = cip13Of(request.params.code, 'params.code', langOf(request))
      const input = { cip13, batch: request.params.batch, status: request.body.status, reason: request.body.reason ?? null }
      return changeBatchStatus(deps, { ...actorOf(principal, request.id), org: principal.org }, input)
    },
  )

  app.put(
    '/serialization/products/:code/status',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: [TAG],
        operationId: 'setSerialProductStatus',
        summary: 'Recall, withdraw or expire a whole product (lab)',
        description: 'Applies to every batch of the product, at verification, at every state change and at the dispensation check, once every API instance blocks it (its own batch statuses are kept and apply again when the product is set back to active). Recorded in the audit trail.',
        headers: IdempotencyKeyHeader,
        params: ProductParams,
        body: StatusChange,
        response: { 200: ProductStatus, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const cip13 = cip13Of(request.params.code, 'params.code', langOf(request))
      const previous = await setProductStatus(app, { ...actorOf(principal, request.id), org: principal.org }, { cip13, status: request.body.status, reason: request.body.reason ?? null }, app.now())
      return { product: cip13, status: request.body.status, previous }
    },
  )
}

export default labRoutes
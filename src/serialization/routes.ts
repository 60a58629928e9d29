import type { FastifyRequest } from 'fastify'
import { type Static, Type } from 'typebox'
import { actorOf } from '../platform/audit.ts'
import { principalOf } from '../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'
import { ROLES, type Role } from '../platform/db/schema.ts'
import { AppError, notFound } from '../platform/errors.ts'
import { type Lang, langOf } from '../platform/i18n.ts'
import { IdempotencyKeyHeader, problems } from '../platform/openapi.ts'
import { PageQuery } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import { recordScan } from './alerts.ts'
import alertRoutes from './alerts-routes.ts'
import uploadStreamRoutes from './upload-stream-routes.ts'
import { alertOn } from './alert-rules.ts'
import { ALERT_TEXT, RETURN_CODE_NAMES, RETURN_CODES, type ReturnCodeName } from './codes.ts'
import { scannerMemo } from './pseudonyms.ts'
import { parisDay } from '../platform/paris-time.ts'
import { expiryField } from './gs1.ts'
import { cip13Of } from './product-code.ts'
import {
  BatchFigures,
  BatchPage,
  Batch,
  BulkChange,
  BulkResult,
  BulkVerify,
  PackChange,
  PackInput,
  PackResult,
  PackUpload,
  PackUploadReport,
  ProductCodeParam,
  ProductStatus,
  ReturnCodeEntry,
  StatusChange,
} from './schemas.ts'
import {
  assertLabProduct,
  batchFigures,
  changePackState,
  type PackInput as PackInputValue,
  type PackRef,
  type PackResult as PackOutcome,
  resolvePack,
  setBatchStatus,
  setProductStatus,
  uploadPacks,
} from './service.ts'
import { ChangeBatcher } from './change-batch.ts'
import { VerifyBatcher } from './verify-batch.ts'

/** Who verifies and decommissions packs. */
const VERIFIERS: readonly Role[] = ['pharmacy', 'hospital', 'wholesaler']
const TAG = 'serialization'

type Result = Static<typeof PackResult>

function render(outcome: PackOutcome, lang: Lang): Result {
  const text = (outcome.alert && ALERT_TEXT[outcome.code]) || RETURN_CODES[outcome.code]
  return { ...outcome, message: text[lang] }
}

/** The scan was read with its letters' case inverted: the keyboard hint, before any alert (alerts.ts recordScan). */
const CAPS_LOCK = {
  field: 'dataMatrix',
  code: 'KEYBOARD_CASE_INVERTED',
  fr: 'Le numéro de série et le lot lus correspondent, casse inversée, à une boîte connue : la touche Verr. Maj. est sans doute activée sur le poste ou le lecteur. Désactivez-la et scannez de nouveau.',
  en: 'The serial and batch read match a known pack with their case inverted: Caps Lock is probably on at the workstation or the scanner. Turn it off and scan again.',
}

function invalid(errors: Array<{ field: string; code: string; position?: number; fr: string; en: string }>, lang: Lang): Result {
  return {
    ok: false,
    code: 'INVALID_CODE' satisfies ReturnCodeName,
    message: RETURN_CODES.INVALID_CODE[lang],
    alert: false,
    pack: null,
    errors: errors.map((e) => ({ field: e.field, code: e.code, ...(e.position !== undefined ? { position: e.position } : {}), message: e[lang] })),
  }
}

const summary = (results: Result[]) => ({
  total: results.length,
  ok: results.filter((r) => r.ok).length,
  failed: results.filter((r) => !r.ok).length,
  alerts: results.filter((r) => r.alert).length,
})

const ProductParams = Type.Object({ code: ProductCodeParam })
const BatchParams = Type.Object({ code: ProductCodeParam, batch: Batch })

const routes: RoutePlugin = async (app) => {
  // Verifications and state changes share one count per organisation (a bulk call counts once).
  const perMinute = app.config.SERIALIZATION_RATE_PER_MINUTE
  const limited = perMinute > 0 ? { preHandler: app.rateLimit({ max: perMinute, timeWindow: 60_000 }) } : {}
  // Who scans, as pseudonyms: no FINESS and no user id is stored by serialization (pseudonyms.ts).
  const scannerOf = scannerMemo(app.config.SCAN_PSEUDONYM_SECRET)
  const verifier = new VerifyBatcher(app.database)
  const changes = new ChangeBatcher(app.database)
  // Every answer about a readable French pack is logged (pseudonymised) and, when it raises an alert
  // (alert-rules.ts), the alert's reference comes back to the pharmacy (alerts.ts). The hot paths (a verification
  // without alert, a successful change) are logged by their own statement; the others here.
  const logged = async (request: FastifyRequest, ref: PackRef, action: string, r: { outcome: PackOutcome; logged: boolean }, now: Date, lang: Lang): Promise<Result> => {
    if (r.logged) return render(r.outcome, lang)
    const record = await recordScan(app.database, scannerOf(principalOf(request)), ref, action, r.outcome, now)
    if (record.capsLock) return invalid([CAPS_LOCK], lang)
    return render(record.alertReference ? { ...r.outcome, alertReference: record.alertReference } : r.outcome, lang)
  }
  const verifyOne = async (request: FastifyRequest, input: PackInputValue): Promise<Result> => {
    const lang = langOf(request)
    const now = app.now()
    const resolved = resolvePack(input, now)
    if (!resolved.ok) return invalid(resolved.errors, lang)
    return logged(request, resolved.pack, 'verify', await verifier.verify(scannerOf(principalOf(request)), resolved.pack, now), now, lang)
  }
  /** The pack of a change as read (before any database work). */
  const readChange = ({ action: _action, transactionId: _txn, ...pack }: Static<typeof PackChange>, now: Date) => resolvePack(pack, now)
  const changeOne = async (request: FastifyRequest, input: Static<typeof PackChange>, now = app.now(), resolved = readChange(input, now)): Promise<Result> => {
    const lang = langOf(request)
    const { action, transactionId } = input
    if (!resolved.ok) return invalid(resolved.errors, lang)
    const r = await changePackState(app.database, scannerOf(principalOf(request)), { action, pack: resolved.pack, transactionId }, now, changes)
    return logged(request, resolved.pack, action, r, now, lang)
  }
  await app.register(alertRoutes)
  await app.register(uploadStreamRoutes)

  app.get(
    '/serialization/return-codes',
    {
      config: { roles: ROLES },
      schema: {
        tags: [TAG],
        operationId: 'listSerializationReturnCodes',
        summary: 'Catalogue of pack verification return codes',
        description: 'Every `code` a pack verification or state change may answer, with what the pharmacist should do (French and English), on which attempts it raises an alert (verification, decommission, undo), and the national system’s (NMVS) code.',
        response: { 200: Type.Array(ReturnCodeEntry) },
      },
    },
    async () => RETURN_CODE_NAMES.map((code) => ({ code, ...RETURN_CODES[code], alertOn: alertOn(code) })),
  )

  app.post(
    '/serialization/packs/verify',
    {
      config: { roles: VERIFIERS, idempotency: false },
      ...limited,
      schema: {
        tags: [TAG],
        operationId: 'verifyPack',
        summary: 'Verify one pack (read-only)',
        description:
          'Give the scanned DataMatrix string, or the product, serial, batch and expiry. The answer is always 200 with a return code: `PACK_ACTIVE` means the box may be dispensed; anything else says why not and what to do (`alert: true`: quarantine the box). An unreadable scan answers `INVALID_CODE` with each problem and its position, before any pack is looked up. Read-only for the pack; the scan is logged under a pseudonym of your organisation, and an alert code also answers `alertReference`: the alert sent to the product’s lab. Verifications and state changes share a rate per organisation (`SERIALIZATION_RATE_PER_MINUTE`): beyond it, 429 `TOO_MANY_REQUESTS` with `Retry-After`, and nothing is done. An `Idempotency-Key` is ignored: every call answers from the pack’s state at that moment, never a stored answer.',
        body: PackInput,
        response: { 200: PackResult },
      },
    },
    async (request) => verifyOne(request, request.body),
  )

  app.post(
    '/serialization/packs/verify-bulk',
    {
      config: { roles: VERIFIERS, idempotency: false },
      ...limited,
      schema: {
        tags: [TAG],
        operationId: 'verifyPacks',
        summary: 'Verify up to 100 packs in one call',
        description: 'One result per pack, in the order given; partial success is normal. An `Idempotency-Key` is ignored, as for a single verification.',
        body: BulkVerify,
        response: { 200: BulkResult },
      },
    },
    async (request) => {
      // Concurrently: they join one verification statement (verify-batch.ts); one result per pack, in order.
      const results = await Promise.all(request.body.packs.map((p) => verifyOne(request, p)))
      return { results, summary: summary(results) }
    },
  )

  app.post(
    '/serialization/packs/state',
    {
      config: { roles: VERIFIERS },
      ...limited,
      schema: {
        tags: [TAG],
        operationId: 'changePackState',
        summary: 'Dispense, destroy, mark stolen, sample, free sample, lock, export, unlock or undo one pack',
        description:
          'Exactly once: of many concurrent requests for the same active pack, one answers `STATE_CHANGED` with its `transactionId`; the others `ALREADY_INACTIVE` with the pack’s state. Undo (and unlock) names the `transactionId` of the change to revert and is accepted within 10 days, from the same organisation and user, never for a destroyed or stolen pack nor on a recalled, withdrawn or expired batch. Another organisation’s transaction answers `UNDO_OTHER_ORGANISATION`, without its details. An answer with `alert: true` (possible falsification) carries `alertReference`, the alert sent to the product’s lab. Send an `Idempotency-Key` to retry safely: a retry replays the first answer. Verifications and state changes share a rate per organisation (`SERIALIZATION_RATE_PER_MINUTE`): beyond it, 429 `TOO_MANY_REQUESTS` with `Retry-After`, and nothing is done.',
        headers: IdempotencyKeyHeader,
        body: PackChange,
        response: { 200: PackResult, ...problems(409, 422) },
      },
    },
    async (request) => changeOne(request, request.body),
  )

  app.post(
    '/serialization/packs/state-bulk',
    {
      config: { roles: VERIFIERS },
      ...limited,
      schema: {
        tags: [TAG],
        operationId: 'changePackStates',
        summary: 'Change the state of up to 100 packs in one call',
        description: 'Each item has its own action; one result per item, in order. Partial success is normal. When each pack is named once, the items are processed together (a bulk of 100 costs about one database statement); a pack named twice makes the call process its items one after the other, so that the second sees the first’s change.',
        headers: IdempotencyKeyHeader,
        body: BulkChange,
        response: { 200: BulkResult, ...problems(409, 422) },
      },
    },
    async (request) => {
      const items = request.body.items
      // Each pack named once: the items run together and join one grouped statement (change-batch.ts). A pack named
      // twice: in order, so that the second sees the first's change.
      const now = app.now()
      const reads = items.map((item) => readChange(item, now))
      const named = reads.flatMap((r) => (r.ok && r.pack.cip13 ? [`${r.pack.cip13} ${r.pack.serial}`] : []))
      let results: Result[] = []
      if (new Set(named).size === named.length) results = await Promise.all(items.map((item, i) => changeOne(request, item, now, reads[i])))
      else for (const [i, item] of items.entries()) results.push(await changeOne(request, item, now, reads[i]))
      return { results, summary: summary(results) }
    },
  )

  // ---- the lab's side --------------------------------------------------------------------------------------

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
    async (request) => {
      const cip13 = cip13Of(request.params.code, 'params.code', langOf(request))
      await assertLabProduct(app.db, principalOf(request).org, cip13)
      const limit = request.query.limit ?? 50
      const after = request.query.cursor ? decodeCursor<{ batch: string }>(request.query.cursor, { cip13 }).batch : undefined
      const items = await batchFigures(app.db, cip13, { limit, today: parisDay(app.now()), ...(after !== undefined ? { after } : {}) })
      return { items, nextCursor: items.length === limit ? encodeCursor({ batch: items.at(-1)!.batch }, { cip13 }) : null }
    },
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
    async (request) => {
      const cip13 = cip13Of(request.params.code, 'params.code', langOf(request))
      await assertLabProduct(app.db, principalOf(request).org, cip13)
      const [batch] = await batchFigures(app.db, cip13, { batch: request.params.batch, limit: 1, today: parisDay(app.now()) })
      if (!batch) throw notFound(`Le lot ${request.params.batch}`, `Batch ${request.params.batch}`)
      return batch
    },
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
      const { batch } = request.params
      const previous = await setBatchStatus(app, { ...actorOf(principal, request.id), org: principal.org }, { cip13, batch, status: request.body.status, reason: request.body.reason ?? null }, app.now())
      if (previous === null) throw notFound(`Le lot ${batch}`, `Batch ${batch}`)
      const [figures] = await batchFigures(app.db, cip13, { batch, limit: 1, today: parisDay(app.now()) })
      return figures!
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

export default routes

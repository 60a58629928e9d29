/** The scanners' pack routes (pharmacy, hospital, wholesaler): verify and change state, one or in bulk; the return codes. */
import { Type } from 'typebox'
import { principalOf } from '../../platform/auth.ts'
import { ROLES, type Role } from '../../platform/db/schema.ts'
import { langOf } from '../../platform/i18n.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { alertOn } from '../rules/alerts.ts'
import { RETURN_CODE_NAMES, RETURN_CODES } from '../rules/codes.ts'
import { BulkChange, BulkResult, BulkVerify, PackChange, PackInput, PackResult, ReturnCodeEntry } from '../schemas/packs.ts'
import { changePack, changePacks, packDeps, verifyPack, verifyPacks } from '../use-cases/packs.ts'

/** Who verifies and decommissions packs. */
const VERIFIERS: readonly Role[] = ['pharmacy', 'hospital', 'wholesaler']
const TAG = 'serialization'

const packRoutes: RoutePlugin = async (app) => {
  // Verifications and state changes share one count per organisation (a bulk call counts once).
  const perMinute = app.config.SERIALIZATION_RATE_PER_MINUTE
  const limited = perMinute > 0 ? { preHandler: app.rateLimit({ max: perMinute, timeWindow: 60_000 }) } : {}
  const deps = packDeps(app.database, () => app.now(), app.config.SCAN_PSEUDONYM_SECRET)

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
    async (request) => verifyPack(deps, principalOf(request), langOf(request), request.body),
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
    async (request) => verifyPacks(deps, principalOf(request), langOf(request), request.body.packs),
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
    async (request) => changePack(deps, principalOf(request), langOf(request), request.body),
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
    async (request) => changePacks(deps, principalOf(request), langOf(request), request.body.items),
  )
}

export default packRoutes

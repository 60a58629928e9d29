import { randomUUID } from 'node:crypto'
import type { Transaction } from 'kysely'
import type { DB } from '../platform/db/schema.ts'
import { type Static, Type } from 'typebox'
import { actorOf, audit, diff } from '../platform/audit.ts'
import { principalOf } from '../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'
import { AppError, notFound } from '../platform/errors.ts'
import { langOf } from '../platform/i18n.ts'
import { IdempotencyKeyHeader, problems } from '../platform/openapi.ts'
import { component, Page, PageQuery } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import {
  assertTransition,
  checkDeclaration,
  cip13Of,
  declarationNotFound,
  declarationRows,
  type DeclarationState,
  fieldError,
  futureActualDate,
  getDeclaration,
  isClosed,
  loadDeclarations,
  notifySignallers,
  OBJECT_RESPONSE,
  presentationInfo,
  recordVersion,
  responseQuery,
  snapshotOf,
  itemsOf,
  toResponse,
  unknownProduct,
  versionsOf,
} from './core.ts'
import type { DeclarationStatus } from './db.ts'
import {
  AutomaticResponse,
  AutomaticResponseInput,
  CAUSES,
  Cause,
  Declaration,
  DeclarationInput,
  DeclarationPatch,
  DeclarationVersion,
  KIND_LABELS,
  KINDS,
  PresentationCode,
  STATUS_LABELS,
  STATUSES,
  TRANSITIONS,
  TransitionInput,
} from './schemas.ts'
import { filtered } from './search.ts'
import { assertSubscribed } from './signals.ts'
import { parisDay } from '../platform/paris-time.ts'

const DeclarationPage = Page(Declaration, 'ShortageDeclarationPage')
const DeclarationHistory = component(
  Type.Object(
    { declarationId: Type.String({ format: 'uuid' }), versions: Type.Array(DeclarationVersion) },
    { $id: 'ShortageDeclarationHistory', description: 'Every version of the declaration, oldest first, with who made it and what changed.' },
  ),
)
const Vocabulary = component(
  Type.Object(
    {
      causes: Type.Array(Cause),
      kinds: Type.Array(Type.Object({ code: Type.Enum([...KINDS]), fr: Type.String(), en: Type.String(), bdpmStatus: Type.Integer({ description: 'BDPM availability status code.' }) })),
      statuses: Type.Array(Type.Object({ code: Type.Enum([...STATUSES]), fr: Type.String(), en: Type.String(), next: Type.Array(Type.Enum([...STATUSES])) })),
    },
    { $id: 'ShortageVocabulary', description: 'Controlled lists of DP-Ruptures with French and English labels.' },
  ),
)
const AutomaticResponseList = component(Type.Object({ items: Type.Array(AutomaticResponse) }, { $id: 'ShortageAutomaticResponseList' }))
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
const CodeParams = Type.Object({ code: PresentationCode })

export const declarationRoutes: RoutePlugin = async (app) => {
  app.get(
    '/shortage-vocabulary',
    {
      config: { roles: 'public' },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageVocabulary',
        summary: 'Causes, kinds and statuses of shortage declarations (French and English labels)',
        description: 'Public and cacheable. `statuses[].next` is the lifecycle: the statuses each one may move to.',
        response: { 200: Vocabulary },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600')
      return {
        causes: Object.entries(CAUSES).map(([code, l]) => ({ code: code as keyof typeof CAUSES, ...l })),
        kinds: KINDS.map((code) => ({ code, fr: KIND_LABELS[code].fr, en: KIND_LABELS[code].en, bdpmStatus: KIND_LABELS[code].bdpm })),
        statuses: STATUSES.map((code) => ({ code, ...STATUS_LABELS[code], next: TRANSITIONS[code] })),
      }
    },
  )

  app.post(
    '/shortage-declarations',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'createShortageDeclaration',
        summary: 'Declare a shortage on the lab’s own presentations',
        description: [
          'Subscribed labs only (403 `LAB_NOT_SUBSCRIBED`). Every presentation must be the lab’s own (another lab’s or an unknown one answers 404 naming the field).',
          'A presentation has at most one open declaration (409 `PRESENTATION_ALREADY_DECLARED`). `mitm` comes from the referential. Starts as `declared` (default) or `draft`.',
          'Pharmacies with an open signal on one of the presentations get `shortage.declaration_updated` on their feed (not for a draft).',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        body: DeclarationInput,
        response: { 201: Declaration, ...problems(404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const lang = langOf(request)
      const b = request.body
      const cip13s = b.presentations.map((c, i) => cip13Of(c, `body.presentations.${i}`, lang))
      const state: DeclarationState = {
        kind: b.kind,
        cause: b.cause,
        cause_text: b.causeText ?? null,
        anticipated_start: b.anticipatedStart ?? null,
        actual_start: b.actualStart ?? null,
        estimated_end: b.estimatedEnd ?? null,
        end_unknown: b.estimatedEndUnknown ?? false,
        actual_end: b.actualEnd ?? null,
      }
      checkDeclaration(state, lang, 'body', parisDay(app.now()))
      for (const [i, alt] of (b.alternatives ?? []).entries()) if (alt.cip13) alt.cip13 = cip13Of(alt.cip13, `body.alternatives.${i}.cip13`, lang)
      const now = app.now()
      const status: DeclarationStatus = b.status ?? 'declared'
      const id = randomUUID()
      const created = await app.db.transaction().execute(async (tx) => {
        const products = await presentationInfo(tx, cip13s)
        for (const [i, cip13] of cip13s.entries()) {
          const p = products.find((x) => x.cip13 === cip13)
          if (!p || p.lab_id !== principal.org) throw unknownProduct(cip13, `body.presentations.${i}`, lang)
        }
        const taken = await tx
          .selectFrom('shortage_declaration_items')
          .select(['cip13', 'declaration_id'])
          .where('cip13', 'in', cip13s)
          .where('active', '=', true)
          .forUpdate()
          .executeTakeFirst()
        if (taken) throw new AppError('PRESENTATION_ALREADY_DECLARED', { cip13: taken.cip13, declarationId: taken.declaration_id }, { declarationId: taken.declaration_id })
        await tx
          .insertInto('shortage_declarations')
          .values({
            id,
            lab_id: principal.org,
            kind: b.kind,
            status,
            version: 1,
            change_seq: -Date.now(), // replaced by recordVersion in this transaction
            mitm: false,
            atc: null,
            cause: b.cause,
            cause_text: state.cause_text,
            anticipated_start: state.anticipated_start,
            actual_start: state.actual_start,
            estimated_end: state.estimated_end,
            end_unknown: state.end_unknown,
            actual_end: state.actual_end,
            stock_coverage_days: b.stockCoverageDays ?? null,
            allocation_in_place: b.allocation?.inPlace ?? false,
            allocation_details: b.allocation?.details ?? null,
            alternatives: JSON.stringify(b.alternatives ?? []),
            advice: b.advice ?? null,
            created_at: now,
            updated_at: now,
            declared_at: status === 'declared' ? now : null,
          })
          .execute()
        await tx.insertInto('shortage_declaration_items').values(cip13s.map((cip13) => ({ declaration_id: id, cip13, active: true }))).execute()
        await recordVersion(tx, id, { action: 'created', reason: b.reason, actor: actorOf(principal, request.id), now, previous: null })
        return getDeclaration(tx, id, principal.org)
      })
      return reply.code(201).send(created!)
    },
  )

  app.get(
    '/shortage-declarations',
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'listShortageDeclarations',
        summary: 'Declarations, most recently changed first (a lab’s own; every lab’s for ANSM)',
        description:
          'A lab lists its own declarations, drafts included (`labId`, if given, must be its own: another lab answers 404). ANSM lists and searches every declaration of every lab, MITM or not, never a draft. Filters: `status`, `kind`, `cip13` (or GTIN-14), `labId`, `atc` (code or prefix), `mitm`, `q` (words of the medicine’s name, accents and case ignored). MITM declarations changed since a cursor are pulled incrementally with GET /v1/ansm/mitm-shortages.',
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Enum([...STATUSES])),
            kind: Type.Optional(Type.Enum([...KINDS])),
            cip13: Type.Optional(PresentationCode),
            labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'SIREN of the lab.' })),
            atc: Type.Optional(Type.String({ pattern: '^[A-Za-z](\\d{2}([A-Za-z]([A-Za-z](\\d{2})?)?)?)?$', description: 'ATC code or prefix (J01 matches J01CA04).' })),
            mitm: Type.Optional(Type.Boolean()),
            q: Type.Optional(Type.String({ minLength: 2, maxLength: 100, description: 'Words of the medicine’s name.' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: DeclarationPage, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.role === 'lab') {
        await assertSubscribed(app, principal.org)
        if (request.query.labId && request.query.labId !== principal.org) throw notFound('Le laboratoire', 'The lab')
      }
      const { limit = 50, cursor, ...rest } = request.query
      const cip13 = rest.cip13 ? cip13Of(rest.cip13, 'querystring.cip13', langOf(request)) : undefined
      const filter = { ...rest, cip13 }
      let q = filtered(declarationRows(app.db), filter).orderBy('d.change_seq', 'desc').limit(limit + 1)
      q = principal.role === 'lab' ? q.where('d.lab_id', '=', principal.org) : q.where('d.status', '<>', 'draft')
      if (cursor) {
        const after = decodeCursor<{ s: number }>(cursor, filter)
        if (!Number.isSafeInteger(after.s)) throw new AppError('INVALID_CURSOR')
        q = q.where('d.change_seq', '<', after.s)
      }
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      return { items: await loadDeclarations(app.db, page), nextCursor: rows.length > limit && last ? encodeCursor({ s: last.change_seq }, filter) : null }
    },
  )

  app.get(
    '/shortage-declarations/:id',
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageDeclaration',
        summary: 'One declaration, current version (the lab’s own; ANSM any)',
        params: IdParams,
        response: { 200: Declaration, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.role === 'lab') await assertSubscribed(app, principal.org)
      const d = await getDeclaration(app.db, request.params.id, principal.role === 'lab' ? principal.org : null)
      if (!d || (principal.role === 'ansm' && d.status === 'draft')) throw declarationNotFound()
      return d
    },
  )

  app.get(
    '/shortage-declarations/:id/history',
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageDeclarationHistory',
        summary: 'Every version of a declaration and who made it (the lab’s own; ANSM any)',
        params: IdParams,
        response: { 200: DeclarationHistory, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      if (principal.role === 'lab') await assertSubscribed(app, principal.org)
      let q = app.db.selectFrom('shortage_declarations').select(['id', 'status']).where('id', '=', request.params.id)
      if (principal.role === 'lab') q = q.where('lab_id', '=', principal.org)
      const d = await q.executeTakeFirst()
      if (!d || (principal.role === 'ansm' && d.status === 'draft')) throw declarationNotFound()
      return { declarationId: d.id, versions: (await versionsOf(app.db, d.id)) as any }
    },
  )

  /** Loads the lab's declaration for a change, locked; checks the expected version. */
  async function lockOwn(tx: Transaction<DB>, id: string, labId: string, expectedVersion?: number) {
    const row = await declarationRows(tx).where('d.id', '=', id).where('d.lab_id', '=', labId).forUpdate('d').executeTakeFirst()
    if (!row) throw declarationNotFound()
    if (expectedVersion !== undefined && expectedVersion !== row.version) throw new AppError('VERSION_MISMATCH', { current: row.version, expected: expectedVersion }, { currentVersion: row.version })
    return row
  }

  app.patch(
    '/shortage-declarations/:id',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'updateShortageDeclaration',
        summary: 'Update a declaration: a new version',
        description:
          'Any field but the kind and the presentations. Each update is a new version in the history. A closed declaration answers 409 `DECLARATION_CLOSED`; with `expectedVersion`, a stale version answers 409 `VERSION_MISMATCH`. Pharmacies with an open signal on its presentations get the update on their feed.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: DeclarationPatch,
        response: { 200: Declaration, ...problems(404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const lang = langOf(request)
      const b = request.body
      for (const [i, alt] of (b.alternatives ?? []).entries()) if (alt.cip13) alt.cip13 = cip13Of(alt.cip13, `body.alternatives.${i}.cip13`, lang)
      const now = app.now()
      return app.db.transaction().execute(async (tx) => {
        const row = await lockOwn(tx, request.params.id, principal.org, b.expectedVersion)
        if (isClosed(row.status)) throw new AppError('DECLARATION_CLOSED', { status: row.status }, { currentStatus: row.status })
        const previous = snapshotOf(row, (await itemsOf(tx, [row.id])).get(row.id) ?? [])
        const pick = <T>(v: T | undefined, current: T) => (v === undefined ? current : v)
        const next = {
          cause: pick(b.cause, row.cause),
          cause_text: pick(b.causeText, row.cause_text),
          anticipated_start: pick(b.anticipatedStart, row.anticipated_start),
          actual_start: pick(b.actualStart, row.actual_start),
          estimated_end: pick(b.estimatedEnd, row.estimated_end),
          end_unknown: pick(b.estimatedEndUnknown, row.end_unknown),
          actual_end: pick(b.actualEnd, row.actual_end),
          stock_coverage_days: pick(b.stockCoverageDays, row.stock_coverage_days),
          allocation_in_place: b.allocation ? b.allocation.inPlace : row.allocation_in_place,
          allocation_details: b.allocation ? (b.allocation.details ?? null) : row.allocation_details,
          alternatives: b.alternatives ?? row.alternatives,
          advice: pick(b.advice, row.advice),
        }
        if (b.estimatedEnd && b.estimatedEndUnknown === undefined) next.end_unknown = false
        if (b.estimatedEndUnknown === true && b.estimatedEnd === undefined) next.estimated_end = null
        checkDeclaration({ kind: row.kind, ...next }, lang, 'body', parisDay(now))
        await tx
          .updateTable('shortage_declarations')
          .set({ ...next, alternatives: JSON.stringify(next.alternatives), version: row.version + 1, updated_at: now })
          .where('id', '=', row.id)
          .execute()
        await recordVersion(tx, row.id, { action: 'updated', reason: b.reason, actor: actorOf(principal, request.id), now, previous })
        return (await getDeclaration(tx, row.id, principal.org))!
      })
    },
  )

  app.post(
    '/shortage-declarations/:id/transitions',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'transitionShortageDeclaration',
        summary: 'Move a declaration along its lifecycle',
        description: [
          'draft → declared → ongoing → resolved, or avoided, or discontinued (declared may also go straight to resolved or discontinued). An illegal move answers 409 `INVALID_TRANSITION` with `allowedTransitions`.',
          '→ ongoing sets the actual start (`date`, or today in Paris); → resolved or discontinued sets the actual end. Closing frees the presentations for a new declaration.',
          'Every pharmacy with an open signal on its presentations gets `shortage.declaration_updated` (or `shortage.declaration_closed`) on its feed.',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: TransitionInput,
        response: { 200: Declaration, ...problems(404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const lang = langOf(request)
      const { to, date, reason, expectedVersion } = request.body
      const now = app.now()
      const today = parisDay(now)
      if (date && date > today && to !== 'declared' && to !== 'avoided') throw futureActualDate('body.date', date, today, lang)
      return app.db.transaction().execute(async (tx) => {
        const row = await lockOwn(tx, request.params.id, principal.org, expectedVersion)
        assertTransition(row.status, to, lang)
        const previous = snapshotOf(row, (await itemsOf(tx, [row.id])).get(row.id) ?? [])
        const set: Record<string, unknown> = { status: to, version: row.version + 1, updated_at: now }
        if (to === 'declared') set.declared_at = now
        if (to === 'ongoing') set.actual_start = date ?? row.actual_start ?? today
        if (to === 'resolved' || to === 'discontinued') {
          const end = date ?? row.actual_end ?? today
          const start = row.actual_start ?? row.anticipated_start
          if (start && end < start) throw fieldError('DATES_OUT_OF_ORDER', 'body.date', 'order', { fr: `la fin (${end}) est antérieure au début (${start})`, en: `the end (${end}) is before the start (${start})` }, lang)
          set.actual_end = end
        }
        if (isClosed(to)) {
          set.closed_at = now
          await tx.updateTable('shortage_declaration_items').set({ active: false }).where('declaration_id', '=', row.id).execute()
        }
        await tx.updateTable('shortage_declarations').set(set).where('id', '=', row.id).execute()
        await recordVersion(tx, row.id, { action: `transition:${to}`, reason, actor: actorOf(principal, request.id), now, previous })
        return (await getDeclaration(tx, row.id, principal.org))!
      })
    },
  )

  // ---- automatic responses ------------------------------------------------------------------------------

  app.get(
    '/shortage-automatic-responses',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'listShortageAutomaticResponses',
        summary: 'The lab’s automatic responses (per presentation and per declaration)',
        response: { 200: AutomaticResponseList },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const rows = await responseQuery(app.db).where('r.lab_id', '=', principal.org).orderBy('r.updated_at', 'desc').execute()
      return { items: rows.map(toResponse) }
    },
  )

  const responseValues = (b: Static<typeof AutomaticResponseInput>, user: string, now: Date) => ({
    message: b.message,
    expected_return: b.expectedReturn ?? null,
    alternatives: JSON.stringify(b.alternatives ?? []),
    emergency_contact: b.emergencyContact ?? null,
    allocation_rules: b.allocationRules ?? null,
    updated_at: now,
    updated_by: user,
  })

  app.put(
    '/shortage-automatic-responses/:code',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'setShortageAutomaticResponse',
        summary: 'Set the automatic response for one of the lab’s presentations',
        description:
          'Every pharmacy that signals the presentation receives it in the answer to its signal and on its feed (`shortage.automatic_response`); pharmacies whose signal is already open receive it now. A declaration’s own response, when set, takes precedence.',
        headers: IdempotencyKeyHeader,
        params: CodeParams,
        body: AutomaticResponseInput,
        response: { 200: AutomaticResponse, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const lang = langOf(request)
      const cip13 = cip13Of(request.params.code, 'params.code', lang)
      for (const [i, alt] of (request.body.alternatives ?? []).entries()) if (alt.cip13) alt.cip13 = cip13Of(alt.cip13, `body.alternatives.${i}.cip13`, lang)
      const now = app.now()
      return app.db.transaction().execute(async (tx) => {
        const [product] = await presentationInfo(tx, [cip13])
        if (!product || product.lab_id !== principal.org) throw unknownProduct(cip13, 'params.code', lang)
        const before = await responseQuery(tx).where('r.cip13', '=', cip13).executeTakeFirst()
        const values = responseValues(request.body, principal.user, now)
        if (before) await tx.updateTable('shortage_automatic_responses').set({ ...values, lab_id: principal.org }).where('id', '=', before.id).execute()
        else await tx.insertInto('shortage_automatic_responses').values({ id: randomUUID(), lab_id: principal.org, cip13, declaration_id: null, ...values }).execute()
        const after = toResponse((await responseQuery(tx).where('r.cip13', '=', cip13).executeTakeFirstOrThrow()))
        await audit(tx, actorOf(principal, request.id), { action: `${OBJECT_RESPONSE}.set`, objectType: OBJECT_RESPONSE, objectId: cip13, changes: diff(before ? toResponse(before) : null, after) }, now)
        await notifySignallers(tx, [cip13], now)
        return after
      })
    },
  )

  app.delete(
    '/shortage-automatic-responses/:code',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'deleteShortageAutomaticResponse',
        summary: 'Remove the automatic response of one of the lab’s presentations',
        headers: IdempotencyKeyHeader,
        params: CodeParams,
        response: { 204: Type.Null({ description: 'Removed.' }), ...problems(404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const lang = langOf(request)
      const cip13 = cip13Of(request.params.code, 'params.code', lang)
      const now = app.now()
      await app.db.transaction().execute(async (tx) => {
        const before = await responseQuery(tx).where('r.cip13', '=', cip13).where('r.lab_id', '=', principal.org).executeTakeFirst()
        if (!before) throw notFound('La réponse automatique', 'The automatic response')
        await tx.deleteFrom('shortage_automatic_responses').where('id', '=', before.id).execute()
        await audit(tx, actorOf(principal, request.id), { action: `${OBJECT_RESPONSE}.removed`, objectType: OBJECT_RESPONSE, objectId: cip13, changes: { before: toResponse(before) } }, now)
      })
      return reply.code(204).send(null)
    },
  )

  app.put(
    '/shortage-declarations/:id/automatic-response',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'setShortageDeclarationAutomaticResponse',
        summary: 'Set the automatic response of a declaration (takes precedence over the presentations’ own)',
        description: 'Pharmacies with an open signal on its presentations receive it now on their feed (not for a draft). A closed declaration answers 409.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: AutomaticResponseInput,
        response: { 200: AutomaticResponse, ...problems(404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const lang = langOf(request)
      for (const [i, alt] of (request.body.alternatives ?? []).entries()) if (alt.cip13) alt.cip13 = cip13Of(alt.cip13, `body.alternatives.${i}.cip13`, lang)
      const now = app.now()
      return app.db.transaction().execute(async (tx) => {
        const row = await lockOwn(tx, request.params.id, principal.org)
        if (isClosed(row.status)) throw new AppError('DECLARATION_CLOSED', { status: row.status }, { currentStatus: row.status })
        const before = await responseQuery(tx).where('r.declaration_id', '=', row.id).executeTakeFirst()
        const values = responseValues(request.body, principal.user, now)
        if (before) await tx.updateTable('shortage_automatic_responses').set(values).where('id', '=', before.id).execute()
        else await tx.insertInto('shortage_automatic_responses').values({ id: randomUUID(), lab_id: principal.org, cip13: null, declaration_id: row.id, ...values }).execute()
        const after = toResponse(await responseQuery(tx).where('r.declaration_id', '=', row.id).executeTakeFirstOrThrow())
        await audit(tx, actorOf(principal, request.id), { action: `${OBJECT_RESPONSE}.set`, objectType: OBJECT_RESPONSE, objectId: row.id, changes: diff(before ? toResponse(before) : null, after) }, now)
        if (row.status !== 'draft') {
          const items = (await itemsOf(tx, [row.id])).get(row.id) ?? []
          await notifySignallers(tx, items.map((i) => i.cip13), now)
        }
        return after
      })
    },
  )
}

export { loadDeclarations }

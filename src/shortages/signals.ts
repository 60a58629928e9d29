import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Kysely, Selectable, Transaction } from 'kysely'
import { sql } from 'kysely'
import { type Static, Type } from 'typebox'
import { type Actor, actorOf, audit, SYSTEM } from '../platform/audit.ts'
import { principalOf } from '../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'
import type { DatabaseHandle } from '../platform/db/index.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError, notFound } from '../platform/errors.ts'
import { publish } from '../platform/events/publish.ts'
import { langOf } from '../platform/i18n.ts'
import { REGIONS, toGtin14 } from '../platform/identifiers.ts'
import { enqueue, RetryAt } from '../platform/jobs.ts'
import { IdempotencyKeyHeader, problems } from '../platform/openapi.ts'
import { component, Page, PageQuery } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import { isSubscribed } from '../referential/queries/organisations.ts'
import { answerFor, cip13Of, type Db, fieldError, isUuid, OBJECT_SIGNAL, summaryOf, unknownProduct } from './core.ts'
import type { Alternative, ShortageDeclarationsTable, ShortageSignalsTable } from './db.ts'
import { AutomaticResponse, DateOnly, nullable, Signal, SignalInput } from './schemas.ts'
import { DAY, HOUR, parisDay, parisStartOfDay, parisText } from '../platform/paris-time.ts'

export const SIGNAL_LAPSE_QUEUE = 'shortages.signal-lapse'
export const SIGNAL_RULE_MS = 72 * HOUR
export const DEFAULT_LAPSE_DAYS = 30

export type ShortageOptions = {
  /** Days after which an open signal that was not renewed lapses (SHORTAGE_SIGNAL_LAPSE_DAYS, default 30). */
  signalLapseDays?: number
  /** Public statistics: smallest number of distinct pharmacies behind a published figure (default 3). */
  publicMinPharmacies?: number
}

export function lapseDays(opts: ShortageOptions): number {
  const raw = opts.signalLapseDays ?? DEFAULT_LAPSE_DAYS
  if (!Number.isInteger(raw) || raw < 1 || raw > 365) throw new Error(`SHORTAGE_SIGNAL_LAPSE_DAYS: an integer from 1 to 365 is expected (got ${raw})`)
  return raw
}

/** Only subscribed labs use DP-Ruptures. */
export async function assertSubscribed(app: FastifyInstance, labId: string) {
  if (!(await isSubscribed(app.db, labId))) throw new AppError('LAB_NOT_SUBSCRIBED')
}

type SignalRow = Selectable<ShortageSignalsTable> & { product_name: string }
/** What an answer shows of a signal. */
type SignalView = Omit<SignalRow, 'pharmacy_id' | 'department' | 'region' | 'lab_id' | 'first_response_at'>

const signalQuery = (db: Db) =>
  db
    .selectFrom('shortage_signals as s')
    .innerJoin('presentations as p', 'p.cip13', 's.cip13')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .selectAll('s')
    .select('m.name as product_name')

async function toSignal(db: Db, r: SignalView, answer?: Awaited<ReturnType<typeof answerFor>>): Promise<Static<typeof Signal>> {
  const a = answer ?? (r.status === 'open' ? await answerFor(db, r.cip13) : { automaticResponse: null, declaration: null })
  return {
    id: r.id,
    cip13: r.cip13,
    gtin: toGtin14(r.cip13),
    productName: r.product_name,
    status: r.status,
    wholesaler: r.wholesaler,
    lastSupplyDate: r.last_supply_date,
    unavailableSince: r.unavailable_since.toISOString(),
    createdAt: r.created_at.toISOString(),
    renewedAt: r.renewed_at.toISOString(),
    lapsesAt: r.lapses_at.toISOString(),
    closedAt: r.closed_at ? r.closed_at.toISOString() : null,
    closeReason: r.close_reason,
    automaticResponse: a.automaticResponse,
    declaration: a.declaration,
  }
}

/**
 * The duplicate path (every LGO retry takes it) in one prepared statement: the pharmacy's open signal on the
 * presentation with the product name, the presentation's current non-draft declaration and the automatic response
 * answerFor (core.ts) would give — the declaration's own, else the presentation's, from a subscribed lab (the
 * presentation's own only from the lab that exploits the product). Same answer as signalQuery + toSignal, in one
 * round trip planned once per connection instead of three planned on every call.
 */
const OPEN_SIGNAL_SQL = `
  with sig as (
    select s.*, m.name as product_name, m.lab_id as product_lab_id
    from shortage_signals s
    join presentations p on p.cip13 = s.cip13
    join medicines m on m.cis = p.cis
    where s.pharmacy_id = $1 and s.cip13 = $2 and s.status = 'open'
  ), dec as (
    select d.id, d.kind, d.status, d.version, d.estimated_end, d.end_unknown, d.actual_end, d.allocation_in_place, d.advice, d.lab_id
    from shortage_declaration_items i
    join shortage_declarations d on d.id = i.declaration_id
    where i.cip13 = $2 and i.active and d.status <> 'draft' and exists (select 1 from sig)
    limit 1
  ), resp as (
    select r.*, o.name as lab_name
    from shortage_automatic_responses r
    join organisations o on o.id = r.lab_id
    join lab_subscriptions ls on ls.lab_id = r.lab_id and ls.subscribed
    where exists (select 1 from sig)
      and (r.declaration_id = (select id from dec) or (r.cip13 = $2 and r.lab_id = (select product_lab_id from sig)))
    order by (r.declaration_id is null)
    limit 1
  )
  select sig.id, sig.cip13, sig.product_name, sig.status, sig.wholesaler, sig.last_supply_date, sig.unavailable_since, sig.created_at,
    sig.renewed_at, sig.lapses_at, sig.closed_at, sig.close_reason,
    dec.id as d_id, dec.kind as d_kind, dec.status as d_status, dec.version as d_version, dec.estimated_end as d_estimated_end,
    dec.end_unknown as d_end_unknown, dec.actual_end as d_actual_end, dec.allocation_in_place as d_allocation_in_place, dec.advice as d_advice,
    dec.lab_id as d_lab_id,
    resp.id as r_id, resp.lab_id as r_lab_id, resp.lab_name as r_lab_name, resp.cip13 as r_cip13, resp.declaration_id as r_declaration_id,
    resp.message as r_message, resp.expected_return as r_expected_return, resp.alternatives as r_alternatives,
    resp.emergency_contact as r_emergency_contact, resp.allocation_rules as r_allocation_rules, resp.updated_at as r_updated_at
  from sig left join dec on true left join resp on true`

interface OpenSignalRow extends SignalView {
  d_id: string | null
  d_kind: ShortageDeclarationsTable['kind'] | null
  d_status: ShortageDeclarationsTable['status'] | null
  d_version: number | null
  d_estimated_end: string | null
  d_end_unknown: boolean | null
  d_actual_end: string | null
  d_allocation_in_place: boolean | null
  d_advice: string | null
  d_lab_id: string | null
  r_id: string | null
  r_lab_id: string | null
  r_lab_name: string | null
  r_cip13: string | null
  r_declaration_id: string | null
  r_message: string | null
  r_expected_return: string | null
  r_alternatives: Alternative[] | null
  r_emergency_contact: string | null
  r_allocation_rules: string | null
  r_updated_at: Date | null
}

/** The pharmacy's open signal on the presentation, as the API answers it; null when there is none. */
async function openSignal(database: DatabaseHandle, pharmacyId: string, cip13: string): Promise<Static<typeof Signal> | null> {
  const [r] = await database.prepared<OpenSignalRow>('shortage_signal_open', OPEN_SIGNAL_SQL, [pharmacyId, cip13])
  if (!r) return null
  const declaration = r.d_id
    ? summaryOf({
        id: r.d_id, kind: r.d_kind!, status: r.d_status!, version: r.d_version!, estimated_end: r.d_estimated_end, end_unknown: r.d_end_unknown!,
        actual_end: r.d_actual_end, allocation_in_place: r.d_allocation_in_place!, advice: r.d_advice,
      })
    : null
  const automaticResponse: Static<typeof AutomaticResponse> | null = r.r_id
    ? {
        scope: r.r_declaration_id ? 'declaration' : 'presentation',
        cip13: r.r_cip13,
        declarationId: r.r_declaration_id,
        lab: { id: r.r_lab_id!, name: r.r_lab_name! },
        message: r.r_message!,
        expectedReturn: r.r_expected_return,
        alternatives: r.r_alternatives ?? [],
        emergencyContact: r.r_emergency_contact,
        allocationRules: r.r_allocation_rules,
        updatedAt: r.r_updated_at!.toISOString(),
      }
    : null
  return toSignal(database.db, r, { automaticResponse, declaration, labId: r.r_lab_id ?? r.d_lab_id })
}

const SignalPage = Page(Signal, 'ShortageSignalPage')
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
const signalNotFound = () => notFound('Le signalement', 'The signal')

const SignalMap = component(
  Type.Object(
    {
      from: DateOnly(),
      to: DateOnly(),
      openSignals: Type.Integer({ description: 'Open signals now on the selected presentations.' }),
      byPresentation: Type.Array(Type.Object({ cip13: Type.String(), name: Type.String(), open: Type.Integer() })),
      byDepartment: Type.Array(Type.Object({ department: Type.String(), region: nullable(Type.String()), open: Type.Integer() })),
      byRegion: Type.Array(Type.Object({ region: Type.String(), name: Type.String(), open: Type.Integer() })),
      overTime: Type.Array(Type.Object({ day: DateOnly(), opened: Type.Integer({ description: 'Signals made that day (Paris calendar).' }) })),
    },
    {
      $id: 'ShortageSignalMap',
      description: 'The "cartographie": counts only, never which pharmacy.',
      examples: [
        {
          from: '2026-10-24', to: '2026-11-22', openSignals: 3, byPresentation: [{ cip13: '3400936128149', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', open: 3 }],
          byDepartment: [{ department: '75', region: '11', open: 2 }, { department: '69', region: '84', open: 1 }],
          byRegion: [{ region: '11', name: 'Île-de-France', open: 2 }, { region: '84', name: 'Auvergne-Rhône-Alpes', open: 1 }],
          overTime: [{ day: '2026-11-21', opened: 1 }, { day: '2026-11-22', opened: 2 }],
        },
      ],
    },
  ),
)

const Settings = component(
  Type.Object(
    {
      signalThreshold: nullable(
        Type.Integer({ minimum: 1, maximum: 100000, description: 'An event `shortage.signal_threshold_reached` reaches your feed (and webhooks) when the open signals on one of your presentations reach this number; null: no alert.' }),
      ),
    },
    { $id: 'ShortageLabSettings', additionalProperties: false, examples: [{ signalThreshold: 10 }] },
  ),
)

/** Lapses one signal if it is still open and its deadline passed; otherwise runs again at the (renewed) deadline. */
export async function lapseSignal(db: Kysely<DB>, signalId: string, now: Date) {
  await db.transaction().execute(async (tx) => {
    const s = await tx.selectFrom('shortage_signals').select(['status', 'lapses_at', 'pharmacy_id', 'cip13']).where('id', '=', signalId).forUpdate().executeTakeFirst()
    if (!s || s.status !== 'open') return
    if (s.lapses_at > now) throw new RetryAt(s.lapses_at, 'renewed')
    await tx.updateTable('shortage_signals').set({ status: 'lapsed', closed_at: now, close_reason: 'lapsed' }).where('id', '=', signalId).execute()
    await audit(tx, { ...SYSTEM, user: 'shortage-lapse' }, { action: `${OBJECT_SIGNAL}.lapsed`, objectType: OBJECT_SIGNAL, objectId: signalId, changes: { status: ['open', 'lapsed'] } }, now)
    await publish(tx, { type: 'shortage.signal_lapsed', payload: { signalId, cip13: s.cip13 }, audience: { orgs: [s.pharmacy_id] }, subject: { type: OBJECT_SIGNAL, id: signalId } }, now)
  })
}

/** Publishes the threshold event when the open signals on a presentation reach the lab's threshold. */
async function checkThreshold(tx: Transaction<DB>, labId: string | null, cip13: string, productName: string, now: Date) {
  if (!labId) return
  const settings = await tx
    .selectFrom('shortage_lab_settings as s')
    .innerJoin('lab_subscriptions as l', (j) => j.onRef('l.lab_id', '=', 's.lab_id').on('l.subscribed', '=', true))
    .select('s.signal_threshold')
    .where('s.lab_id', '=', labId)
    .executeTakeFirst()
  if (!settings?.signal_threshold) return
  const { n } = await tx.selectFrom('shortage_signals').select((eb) => eb.fn.countAll<number>().as('n')).where('cip13', '=', cip13).where('status', '=', 'open').executeTakeFirstOrThrow()
  // Counted after the audit append, whose transaction-scoped lock orders concurrent signals: the crossing is seen once.
  if (Number(n) !== settings.signal_threshold) return
  await publish(
    tx,
    {
      type: 'shortage.signal_threshold_reached',
      payload: { cip13, productName, openSignals: Number(n), threshold: settings.signal_threshold },
      audience: { orgs: [labId] },
      subject: { type: 'shortage-presentation', id: cip13 },
    },
    now,
  )
}

export const signalRoutes: RoutePlugin<ShortageOptions> = async (app, opts) => {
  const lapseMs = lapseDays(opts) * DAY

  app.post(
    '/shortage-signals',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'createShortageSignal',
        summary: 'Signal a presentation the pharmacy cannot obtain (rupture constatée)',
        description: [
          'Accepted once the presentation has been unavailable for **72 hours**: counted from `unavailableSince` (an instant, or a day meaning 00:00 Paris time, so that a daylight-saving change is counted in real hours). Earlier, 400 `SIGNAL_TOO_EARLY` says from when it may be signalled.',
          'One open signal per pharmacy and presentation: signalling again answers **200 with the open signal** and changes nothing. A new signal answers 201.',
          'The answer carries the lab’s automatic response and current declaration when there is one; the automatic response is also published on the pharmacy’s feed (`shortage.automatic_response`).',
          `An open signal lapses ${lapseDays(opts)} days after it was made or last renewed (POST …/renew).`,
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        body: SignalInput,
        response: { 200: Signal, 201: Signal, ...problems(404) },
      },
    },
    async (request, reply) => {
      const lang = langOf(request)
      const principal = principalOf(request)
      const body = request.body
      const cip13 = cip13Of(body.code, 'body.code', lang)
      const now = app.now()
      const existing = await openSignal(app.database, principal.org, cip13)
      if (existing) return reply.code(200).send(existing)

      const product = await app.db
        .selectFrom('presentations as p')
        .innerJoin('medicines as m', 'm.cis', 'p.cis')
        .select(['m.name', 'm.lab_id'])
        .where('p.cip13', '=', cip13)
        .executeTakeFirst()
      if (!product) throw unknownProduct(cip13, 'body.code', lang)

      const since = body.unavailableSince.length === 10 ? parisStartOfDay(body.unavailableSince) : new Date(body.unavailableSince)
      if (since.getTime() > now.getTime()) {
        throw fieldError('DATES_OUT_OF_ORDER', 'body.unavailableSince', 'future', { fr: 'la date de début d’indisponibilité est dans le futur', en: 'the start of unavailability is in the future' }, lang)
      }
      if (body.lastSupplyDate && body.lastSupplyDate > parisDay(since)) {
        throw fieldError('DATES_OUT_OF_ORDER', 'body.lastSupplyDate', 'order', {
          fr: `le dernier approvisionnement (${body.lastSupplyDate}) est postérieur au début de l’indisponibilité (${parisDay(since)})`,
          en: `the last supply (${body.lastSupplyDate}) is after the start of unavailability (${parisDay(since)})`,
        }, lang)
      }
      const eligible = new Date(since.getTime() + SIGNAL_RULE_MS)
      if (now < eligible) {
        throw new AppError(
          'SIGNAL_TOO_EARLY',
          { sinceFr: parisText(since, 'fr'), sinceEn: parisText(since, 'en'), eligibleFr: parisText(eligible, 'fr'), eligibleEn: parisText(eligible, 'en') },
          {
            eligibleAt: eligible.toISOString(),
            errors: [{ field: 'body.unavailableSince', code: '72h', message: lang === 'fr' ? `moins de 72 heures : signalable à partir du ${parisText(eligible, 'fr')}` : `less than 72 hours: may be signalled from ${parisText(eligible, 'en')}` }],
          },
        )
      }

      const result = await app.db.transaction().execute(async (tx) => {
        const org = await tx.selectFrom('organisations').select(['department', 'region']).where('id', '=', principal.org).executeTakeFirstOrThrow()
        const id = randomUUID()
        const inserted = await tx
          .insertInto('shortage_signals')
          .values({
            id,
            pharmacy_id: principal.org,
            department: org.department,
            region: org.region,
            cip13,
            lab_id: product.lab_id,
            wholesaler: body.wholesaler,
            last_supply_date: body.lastSupplyDate ?? null,
            unavailable_since: since,
            status: 'open',
            created_at: now,
            renewed_at: now,
            lapses_at: new Date(now.getTime() + lapseMs),
          })
          .onConflict((oc) => oc.columns(['pharmacy_id', 'cip13']).where('status', '=', 'open').doNothing())
          .returning('id')
          .executeTakeFirst()
        if (!inserted) return null // a concurrent request made it: answer with that one
        await audit(tx, actorOf(principal, request.id), { action: `${OBJECT_SIGNAL}.created`, objectType: OBJECT_SIGNAL, objectId: id, changes: { cip13, wholesaler: body.wholesaler, unavailableSince: since.toISOString(), lastSupplyDate: body.lastSupplyDate ?? null } }, now)
        const answer = await answerFor(tx, cip13)
        if (answer.automaticResponse) {
          await tx.updateTable('shortage_signals').set({ first_response_at: now }).where('id', '=', id).execute()
          await publish(
            tx,
            {
              type: 'shortage.automatic_response',
              payload: { signalId: id, cip13, productName: product.name, automaticResponse: answer.automaticResponse, declaration: answer.declaration },
              audience: { orgs: [principal.org] },
              senderOrg: answer.automaticResponse.lab.id,
              subject: { type: OBJECT_SIGNAL, id },
            },
            now,
          )
        }
        await checkThreshold(tx, product.lab_id, cip13, product.name, now)
        await enqueue(tx, SIGNAL_LAPSE_QUEUE, { signalId: id }, { runAt: new Date(now.getTime() + lapseMs), singletonKey: id })
        const row = await signalQuery(tx).where('s.id', '=', id).executeTakeFirstOrThrow()
        return toSignal(tx, row, answer)
      })
      if (!result) {
        const open = await signalQuery(app.db).where('s.pharmacy_id', '=', principal.org).where('s.cip13', '=', cip13).where('s.status', '=', 'open').executeTakeFirstOrThrow()
        return reply.code(200).send(await toSignal(app.db, open))
      }
      return reply.code(201).send(result)
    },
  )

  app.get(
    '/shortage-signals',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'listShortageSignals',
        summary: 'The pharmacy’s own signals, newest first',
        querystring: Type.Object({ status: Type.Optional(Type.Enum(['open', 'closed', 'lapsed'])), ...PageQuery }, { additionalProperties: false }),
        response: { 200: SignalPage },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { status, limit = 50, cursor } = request.query
      const filter = { status }
      let q = signalQuery(app.db).where('s.pharmacy_id', '=', principal.org).orderBy('s.created_at', 'desc').orderBy('s.id', 'desc').limit(limit + 1)
      if (status) q = q.where('s.status', '=', status)
      if (cursor) {
        const after = decodeCursor<{ t: string; i: string }>(cursor, filter)
        if (typeof after.t !== 'string' || typeof after.i !== 'string' || !isUuid(after.i)) throw new AppError('INVALID_CURSOR')
        q = q.where((eb) => eb(eb.refTuple('s.created_at', 's.id'), '<', eb.tuple(new Date(after.t) as any, after.i)))
      }
      const rows = await q.execute()
      const page = rows.slice(0, limit)
      const items = []
      for (const r of page) items.push(await toSignal(app.db, r))
      const last = page[page.length - 1]
      return { items, nextCursor: rows.length > limit && last ? encodeCursor({ t: last.created_at.toISOString(), i: last.id }, filter) : null }
    },
  )

  app.get(
    '/shortage-signals/:id',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageSignal',
        summary: 'One of the pharmacy’s signals, with the lab’s current answer',
        params: IdParams,
        response: { 200: Signal, ...problems(404) },
      },
    },
    async (request) => {
      const row = await signalQuery(app.db).where('s.id', '=', request.params.id).where('s.pharmacy_id', '=', principalOf(request).org).executeTakeFirst()
      if (!row) throw signalNotFound()
      return toSignal(app.db, row)
    },
  )

  const changeSignal = (action: 'close' | 'renew') => async (request: FastifyRequest) => {
    const principal = principalOf(request)
    const params = request.params as { id: string }
    const body = request.body as { reason?: string } | undefined
    const now = app.now()
    return app.db.transaction().execute(async (tx) => {
      const s = await tx.selectFrom('shortage_signals').select(['status']).where('id', '=', params.id).where('pharmacy_id', '=', principal.org).forUpdate().executeTakeFirst()
      if (!s) throw signalNotFound()
      if (s.status !== 'open') throw new AppError('SIGNAL_NOT_OPEN', { status: s.status }, { currentStatus: s.status })
      const actor: Actor = actorOf(principal, request.id)
      if (action === 'close') {
        const reason = body?.reason ?? 'supplied'
        await tx.updateTable('shortage_signals').set({ status: 'closed', closed_at: now, close_reason: reason }).where('id', '=', params.id).execute()
        await audit(tx, actor, { action: `${OBJECT_SIGNAL}.closed`, objectType: OBJECT_SIGNAL, objectId: params.id, changes: { status: ['open', 'closed'], reason } }, now)
      } else {
        const lapsesAt = new Date(now.getTime() + lapseMs)
        await tx.updateTable('shortage_signals').set({ renewed_at: now, lapses_at: lapsesAt }).where('id', '=', params.id).execute()
        await audit(tx, actor, { action: `${OBJECT_SIGNAL}.renewed`, objectType: OBJECT_SIGNAL, objectId: params.id, changes: { lapsesAt: lapsesAt.toISOString() } }, now)
        // The pending lapse job finds the new deadline and waits for it; enqueue in case it already ran.
        await enqueue(tx, SIGNAL_LAPSE_QUEUE, { signalId: params.id }, { runAt: lapsesAt, singletonKey: params.id })
      }
      return toSignal(tx, await signalQuery(tx).where('s.id', '=', params.id).executeTakeFirstOrThrow())
    })
  }

  app.post(
    '/shortage-signals/:id/close',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'closeShortageSignal',
        summary: 'Close a signal: the pharmacy is supplied again',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 200, examples: ['supplied'] })) }, { additionalProperties: false })),
        response: { 200: Signal, ...problems(404, 409) },
      },
    },
    changeSignal('close'),
  )

  app.post(
    '/shortage-signals/:id/renew',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: ['shortages'],
        operationId: 'renewShortageSignal',
        summary: 'Renew an open signal: the presentation is still missing',
        description: `Pushes the lapse deadline to ${lapseDays(opts)} days from now.`,
        headers: IdempotencyKeyHeader,
        params: IdParams,
        response: { 200: Signal, ...problems(404, 409) },
      },
    },
    changeSignal('renew'),
  )

  // ---- lab view -----------------------------------------------------------------------------------------

  app.get(
    '/shortage-signals-map',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageSignalMap',
        summary: 'Open signals on the lab’s presentations, by department, region and day (never which pharmacy)',
        description: 'Without `cip13`, every presentation of the lab. `from`/`to` (Paris days, default the last 30) bound `overTime`; the other counts are the signals open now. Another lab’s presentation answers 404.',
        querystring: Type.Object(
          { cip13: Type.Optional(Type.String({ pattern: '^0?\\d{13}$' })), from: Type.Optional(DateOnly()), to: Type.Optional(DateOnly()) },
          { additionalProperties: false },
        ),
        response: { 200: SignalMap, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const lang = langOf(request)
      const now = app.now()
      const to = request.query.to ?? parisDay(now)
      const from = request.query.from ?? parisDay(new Date(parisStartOfDay(to).getTime() - 29 * DAY + 12 * HOUR))
      if (from > to) throw fieldError('DATES_OUT_OF_ORDER', 'querystring.from', 'order', { fr: `${from} est après ${to}`, en: `${from} is after ${to}` }, lang)
      let cip13: string | undefined
      if (request.query.cip13) {
        cip13 = cip13Of(request.query.cip13, 'querystring.cip13', lang)
        const own = await app.db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select('p.cip13').where('p.cip13', '=', cip13).where('m.lab_id', '=', principal.org).executeTakeFirst()
        if (!own) throw unknownProduct(cip13, 'querystring.cip13', lang)
      }
      // The lab's presentations as the referential says now (a product that moved to another lab moves with its signals).
      const base = () => {
        let q = app.db
          .selectFrom('shortage_signals as s')
          .innerJoin('presentations as p', 'p.cip13', 's.cip13')
          .innerJoin('medicines as m', 'm.cis', 'p.cis')
          .where('m.lab_id', '=', principal.org)
        if (cip13) q = q.where('s.cip13', '=', cip13)
        return q
      }
      const open = () => base().where('s.status', '=', 'open')
      const [byPresentation, byDepartment, overTime] = await Promise.all([
        open().select((eb) => ['s.cip13', 'm.name', eb.fn.countAll<number>().as('n')]).groupBy(['s.cip13', 'm.name']).orderBy('s.cip13').execute(),
        open().select((eb) => ['s.department', 's.region', eb.fn.countAll<number>().as('n')]).groupBy(['s.department', 's.region']).orderBy('s.department').execute(),
        base()
          .select((eb) => [sql<string>`to_char(s.created_at at time zone 'Europe/Paris', 'YYYY-MM-DD')`.as('day'), eb.fn.countAll<number>().as('n')])
          .where('s.created_at', '>=', parisStartOfDay(from))
          .where('s.created_at', '<', parisStartOfDay(nextDay(to)))
          .groupBy(sql`1`)
          .orderBy(sql`1`)
          .execute(),
      ])
      const regions = new Map<string, number>()
      for (const d of byDepartment) if (d.region) regions.set(d.region, (regions.get(d.region) ?? 0) + Number(d.n))
      return {
        from,
        to,
        openSignals: byPresentation.reduce((a, r) => a + Number(r.n), 0),
        byPresentation: byPresentation.map((r) => ({ cip13: r.cip13, name: r.name, open: Number(r.n) })),
        byDepartment: byDepartment.map((r) => ({ department: r.department ?? '?', region: r.region, open: Number(r.n) })),
        byRegion: [...regions].sort(([a], [b]) => a.localeCompare(b)).map(([region, n]) => ({ region, name: REGIONS[region] ?? region, open: n })),
        overTime: overTime.map((r) => ({ day: r.day, opened: Number(r.n) })),
      }
    },
  )

  app.get(
    '/shortage-settings',
    {
      config: { roles: ['lab'] },
      schema: { tags: ['shortages'], operationId: 'getShortageSettings', summary: 'The lab’s DP-Ruptures settings (signal threshold)', response: { 200: Settings } },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const row = await app.db.selectFrom('shortage_lab_settings').select('signal_threshold').where('lab_id', '=', principal.org).executeTakeFirst()
      return { signalThreshold: row?.signal_threshold ?? null }
    },
  )

  app.put(
    '/shortage-settings',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'updateShortageSettings',
        summary: 'Set the signal threshold that raises an event',
        headers: IdempotencyKeyHeader,
        body: Settings,
        response: { 200: Settings },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      await assertSubscribed(app, principal.org)
      const now = app.now()
      const threshold = request.body.signalThreshold
      await app.db.transaction().execute(async (tx) => {
        const before = await tx.selectFrom('shortage_lab_settings').select('signal_threshold').where('lab_id', '=', principal.org).executeTakeFirst()
        await tx
          .insertInto('shortage_lab_settings')
          .values({ lab_id: principal.org, signal_threshold: threshold, updated_at: now })
          .onConflict((oc) => oc.column('lab_id').doUpdateSet({ signal_threshold: threshold, updated_at: now }))
          .execute()
        await audit(tx, actorOf(principal, request.id), { action: 'shortage-settings.updated', objectType: 'shortage-settings', objectId: principal.org, changes: { signalThreshold: [before?.signal_threshold ?? null, threshold] } }, now)
      })
      return { signalThreshold: threshold }
    },
  )
}

function nextDay(day: string) {
  const d = new Date(`${day}T12:00:00Z`)
  return new Date(d.getTime() + DAY).toISOString().slice(0, 10)
}

/** Scheduled work: lapsing signals that were not renewed. */
export function registerSignalJobs(app: FastifyInstance) {
  app.jobs.register(SIGNAL_LAPSE_QUEUE, async (payload: { signalId?: unknown }, ctx) => {
    if (typeof payload?.signalId !== 'string') return
    await lapseSignal(app.db, payload.signalId, ctx.now)
  })
}

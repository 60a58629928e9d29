/**
 * A pharmacy's signals: signal a presentation it cannot obtain (72 hours after it became unavailable), list,
 * read, close, renew; and the job that lapses a signal not renewed in time.
 */
import { randomUUID } from 'node:crypto'
import type { Kysely, Transaction } from 'kysely'
import type { Static } from 'typebox'
import { audit, SYSTEM } from '../../platform/audit.ts'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import type { DatabaseHandle } from '../../platform/db/index.ts'
import type { DB } from '../../platform/db/schema.ts'
import { AppError, notFound } from '../../platform/errors.ts'
import { publish } from '../../platform/events/publish.ts'
import { toGtin14 } from '../../platform/identifiers.ts'
import { enqueue, RetryAt } from '../../platform/jobs.ts'
import { HOUR, parisDay, parisStartOfDay, parisText } from '../../platform/paris-time.ts'
import { cip13Of, unknownProduct } from '../../referential/rules/product-code.ts'
import type { SignalStatus } from '../db.ts'
import type { Db } from '../queries/rows.ts'
import * as q from '../queries/signals.ts'
import { fieldError, isUuid, OBJECT_SIGNAL } from '../rules/common.ts'
import { summaryOf } from '../rules/views.ts'
import type { AutomaticResponse, Signal, SignalInput } from '../schemas.ts'
import { answerFor } from './answers.ts'
import { actor, type Deps, type Who } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

export const SIGNAL_LAPSE_QUEUE = 'shortages.signal-lapse'
export const SIGNAL_RULE_MS = 72 * HOUR

const signalNotFound = () => notFound('Le signalement', 'The signal')

async function toSignal(db: Db, r: q.SignalView, answer?: Awaited<ReturnType<typeof answerFor>>): Promise<Static<typeof Signal>> {
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

/** The pharmacy's open signal on the presentation, as the API answers it; null when there is none. */
async function openSignal(database: DatabaseHandle, pharmacyId: string, cip13: string): Promise<Static<typeof Signal> | null> {
  const r = await q.openSignalWithAnswer(database, pharmacyId, cip13)
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

/** The 72-hour rule and the dates' order; answers the instant unavailability started. */
function unavailableSince(body: Static<typeof SignalInput>, now: Date, lang: Who['lang']): Date {
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
  return since
}

/**
 * Signals a presentation. One open signal per pharmacy and presentation: signalling again (or a concurrent
 * request that won) answers the open one, `created: false`. A new signal gets the lab's answer at once (and on
 * the pharmacy's feed when there is an automatic response), may cross the lab's threshold, and lapses unless renewed.
 */
export async function createSignal(deps: Deps, who: Who, body: Static<typeof SignalInput>, lapseMs: number): Promise<{ created: boolean; signal: Static<typeof Signal> }> {
  const { principal, lang } = who
  const cip13 = cip13Of(body.code, 'body.code', lang)
  const now = deps.now()
  const existing = await openSignal(deps.database, principal.org, cip13)
  if (existing) return { created: false, signal: existing }

  const product = await q.productOf(deps.db, cip13)
  if (!product) throw unknownProduct(cip13, 'body.code', lang)
  const since = unavailableSince(body, now, lang)

  const result = await inTransaction(deps.db, async (tx) => {
    const org = await q.locationOf(tx, principal.org)
    const id = randomUUID()
    const inserted = await q.insertOpenSignal(tx, {
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
    if (!inserted) return null // a concurrent request made it: answer with that one
    await audit(tx, actor(who), { action: `${OBJECT_SIGNAL}.created`, objectType: OBJECT_SIGNAL, objectId: id, changes: { cip13, wholesaler: body.wholesaler, unavailableSince: since.toISOString(), lastSupplyDate: body.lastSupplyDate ?? null } }, now)
    const answer = await answerFor(tx, cip13)
    if (answer.automaticResponse) {
      await q.markFirstResponse(tx, id, now)
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
    return toSignal(tx, await q.signalById(tx, id), answer)
  })
  if (!result) return { created: false, signal: await toSignal(deps.db, await q.openSignalOf(deps.db, principal.org, cip13)) }
  return { created: true, signal: result }
}

/** Publishes the threshold event when the open signals on a presentation reach the lab's threshold. */
async function checkThreshold(tx: Transaction<DB>, labId: string | null, cip13: string, productName: string, now: Date) {
  if (!labId) return
  const settings = await q.subscribedThreshold(tx, labId)
  if (!settings?.signal_threshold) return
  const { n } = await q.openSignalCount(tx, cip13)
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

/** The pharmacy's own signals, newest first. */
export async function listSignals(deps: Deps, who: Who, query: { status?: SignalStatus | undefined; limit?: number | undefined; cursor?: string | undefined }) {
  const { status, limit = 50, cursor } = query
  const filter = { status }
  let after: { t: string; i: string } | null = null
  if (cursor) {
    after = decodeCursor<{ t: string; i: string }>(cursor, filter)
    if (typeof after.t !== 'string' || typeof after.i !== 'string' || !isUuid(after.i)) throw new AppError('INVALID_CURSOR')
  }
  const rows = await q.signalPage(deps.db, who.principal.org, { status, after, limit })
  const page = rows.slice(0, limit)
  const items = []
  for (const r of page) items.push(await toSignal(deps.db, r))
  const last = page[page.length - 1]
  return { items, nextCursor: rows.length > limit && last ? encodeCursor({ t: last.created_at.toISOString(), i: last.id }, filter) : null }
}

export async function readSignal(deps: Deps, who: Who, id: string) {
  const row = await q.pharmacySignal(deps.db, id, who.principal.org)
  if (!row) throw signalNotFound()
  return toSignal(deps.db, row)
}

/** Closes (the pharmacy is supplied again) or renews (pushes the lapse deadline) one of the pharmacy's open signals. */
export async function changeSignal(deps: Deps, who: Who, id: string, change: { action: 'close'; reason: string | undefined } | { action: 'renew'; lapseMs: number }) {
  const { principal } = who
  const now = deps.now()
  return inTransaction(deps.db, async (tx) => {
    const s = await q.lockPharmacySignal(tx, id, principal.org)
    if (!s) throw signalNotFound()
    if (s.status !== 'open') throw new AppError('SIGNAL_NOT_OPEN', { status: s.status }, { currentStatus: s.status })
    if (change.action === 'close') {
      const reason = change.reason ?? 'supplied'
      await q.closeSignal(tx, id, reason, now)
      await audit(tx, actor(who), { action: `${OBJECT_SIGNAL}.closed`, objectType: OBJECT_SIGNAL, objectId: id, changes: { status: ['open', 'closed'], reason } }, now)
    } else {
      const lapsesAt = new Date(now.getTime() + change.lapseMs)
      await q.renewSignal(tx, id, now, lapsesAt)
      await audit(tx, actor(who), { action: `${OBJECT_SIGNAL}.renewed`, objectType: OBJECT_SIGNAL, objectId: id, changes: { lapsesAt: lapsesAt.toISOString() } }, now)
      // The pending lapse job finds the new deadline and waits for it; enqueue in case it already ran.
      await enqueue(tx, SIGNAL_LAPSE_QUEUE, { signalId: id }, { runAt: lapsesAt, singletonKey: id })
    }
    return toSignal(tx, await q.signalById(tx, id))
  })
}

/** Lapses one signal if it is still open and its deadline passed; otherwise runs again at the (renewed) deadline. */
export async function lapseSignal(db: Kysely<DB>, signalId: string, now: Date) {
  await inTransaction(db, async (tx) => {
    const s = await q.lockSignal(tx, signalId)
    if (!s || s.status !== 'open') return
    if (s.lapses_at > now) throw new RetryAt(s.lapses_at, 'renewed')
    await q.lapse(tx, signalId, now)
    await audit(tx, { ...SYSTEM, user: 'shortage-lapse' }, { action: `${OBJECT_SIGNAL}.lapsed`, objectType: OBJECT_SIGNAL, objectId: signalId, changes: { status: ['open', 'lapsed'] } }, now)
    await publish(tx, { type: 'shortage.signal_lapsed', payload: { signalId, cip13: s.cip13 }, audience: { orgs: [s.pharmacy_id] }, subject: { type: OBJECT_SIGNAL, id: signalId } }, now)
  })
}

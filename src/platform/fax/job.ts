import { randomUUID } from 'node:crypto'
import { type Kysely, sql, type Transaction } from 'kysely'
import { audit, SYSTEM } from '../audit.ts'
import type { Config } from '../config.ts'
import type { DB } from '../db/schema.ts'
import { eventTypeLabel } from '../events/event-types.ts'
import { publish } from '../events/publish.ts'
import { type JobContext, type JobRunner, RetryAt } from '../jobs.ts'
import type { Metrics } from '../metrics.ts'
import './db.ts'
import type { FaxGateway } from './gateway.ts'
import { postalAddress } from './letter.ts'
import { renderFaxPdf } from './render.ts'
import { inTransaction } from '../db/transaction.ts'

/** The queue publish() feeds for recipients without an integration (payload { eventId, orgId }). */
export const FAX_QUEUE = 'fax.send'
/** The default of FAX_RETRY_MINUTES: seven attempts over about eight hours, then a paper letter. */
export const DEFAULT_FAX_RETRY_MINUTES = [2, 10, 30, 60, 120, 240]

export interface FaxJobOptions {
  /**
   * Longest wait for the gateway. The job runner runs one job at a time and leases it for 5 minutes: a gateway
   * that hangs must not stall the other jobs nor outlive the lease (another instance would then send it again).
   */
  timeoutMs?: number
  /** Minutes before each retry (default: the configuration's FAX_RETRY_MINUTES). */
  retryMinutes?: number[]
  /** For the ±10 % jitter of the retry times (tests fix it). */
  random?: () => number
}

export interface FaxJobPayload {
  eventId: string
  orgId: string
}

/** What the job needs of the app: a FastifyInstance fits; tests may pass their own job runner. */
export interface FaxJobHost {
  db: Kysely<DB>
  config: Pick<Config, 'PUBLIC_URL'> & Partial<Pick<Config, 'FAX_RETRY_MINUTES'>>
  jobs: JobRunner
  metrics?: Metrics
}

/** Registers the 'fax.send' handler: render the notice, hand it to the gateway, record the outcome. */
export function registerFaxJobs(app: FaxJobHost, gateway: FaxGateway, opts: FaxJobOptions = {}) {
  const retry = opts.retryMinutes ?? app.config.FAX_RETRY_MINUTES ?? DEFAULT_FAX_RETRY_MINUTES
  const random = opts.random ?? Math.random
  app.jobs.register(FAX_QUEUE, (payload, ctx) => sendFax(app, gateway, payload, ctx, { timeoutMs: opts.timeoutMs ?? 60_000, retry, random }))
}

/** When to try again after the given number of failed attempts; null when the schedule is exhausted. */
export function nextFaxAttempt(failed: number, retryMinutes: number[], now: Date, random: () => number = Math.random): Date | null {
  const minutes = retryMinutes[failed - 1]
  if (minutes === undefined) return null
  // ±10 %, so that the faxes of one broadcast are not all retried in the same second.
  return new Date(now.getTime() + Math.round(minutes * 60_000 * (0.9 + 0.2 * random())))
}

const FINAL = ['sent', 'paper_letter'] as const

async function sendFax(app: FaxJobHost, gateway: FaxGateway, raw: unknown, ctx: JobContext, opts: { timeoutMs: number; retry: number[]; random: () => number }) {
  const payload = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Partial<FaxJobPayload> | null
  const eventId = payload?.eventId
  const orgId = payload?.orgId
  if (typeof eventId !== 'string' || typeof orgId !== 'string') {
    ctx.log.error({ job: ctx.id, payload: raw }, 'fax job without eventId/orgId: dropped')
    return
  }
  const log = ctx.log.child({ job: ctx.id, eventId, orgId, attempt: ctx.attempt })

  const row = await app.db
    .selectFrom('event_deliveries as d')
    .innerJoin('events as e', 'e.id', 'd.event_id')
    .innerJoin('organisations as o', 'o.id', 'd.org_id')
    .leftJoin('organisations as s', 's.id', 'e.sender_org')
    .select([
      'd.fax', 'd.fax_status', 'e.type', 'e.created_at', 'e.payload', 'e.subject_type', 'e.subject_id', 'e.sender_org',
      'o.name as recipient_name', 'o.fax as recipient_fax', 'o.role as recipient_role', 'o.address_line1', 'o.address_line2', 'o.postal_code', 'o.city',
      's.name as sender_name', 's.phone as sender_phone', 's.fax as sender_fax',
    ])
    .where('d.event_id', '=', eventId)
    .where('d.org_id', '=', orgId)
    .executeTakeFirst()
  if (!row) {
    log.warn('fax job for a delivery that does not exist: dropped')
    return
  }
  // Idempotent: a fax already sent, or given up for a paper letter, is never sent again.
  if (!row.fax || row.fax_status === 'sent' || row.fax_status === 'paper_letter') return

  let sent: { id: string }
  try {
    if (!row.recipient_fax?.trim()) throw new Error('the recipient has no fax number')
    const pdf = await renderFaxPdf({
      event: {
        id: eventId,
        type: row.type,
        createdAt: row.created_at,
        payload: row.payload,
        subject: row.subject_type && row.subject_id ? { type: row.subject_type, id: row.subject_id } : null,
      },
      recipient: { id: orgId, name: row.recipient_name, fax: row.recipient_fax },
      sender: row.sender_org ? { id: row.sender_org, name: row.sender_name ?? row.sender_org, phone: row.sender_phone, fax: row.sender_fax } : null,
      now: ctx.now,
      serviceUrl: app.config.PUBLIC_URL,
    })
    sent = await withTimeout(gateway.send({ to: row.recipient_fax, pdf, reference: `${eventId}-${orgId}` }), opts.timeoutMs)
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err)
    // The attempts are counted on the delivery (the job is rescheduled with RetryAt, which does not count them).
    const outcome = await inTransaction(app.db, async (tx) => {
      const r = await tx
        .updateTable('event_deliveries')
        .set({ fax_attempts: sql`fax_attempts + 1`, fax_status: 'failed' })
        .where('event_id', '=', eventId)
        .where('org_id', '=', orgId)
        .where('fax_status', 'not in', FINAL)
        .returning('fax_attempts')
        .executeTakeFirst()
      if (!r) return null
      const next = nextFaxAttempt(r.fax_attempts, opts.retry, ctx.now, opts.random)
      if (next) return { attempts: r.fax_attempts, next }
      await tx.updateTable('event_deliveries').set({ fax_status: 'paper_letter' }).where('event_id', '=', eventId).where('org_id', '=', orgId).execute()
      await askForLetter(tx, { eventId, orgId, row, attempts: r.fax_attempts, error, now: ctx.now })
      return { attempts: r.fax_attempts, next: null }
    })
    if (!outcome) return
    if (!outcome.next) {
      log.error({ err, attempts: outcome.attempts }, 'fax failed for good: a paper letter must be sent')
      return
    }
    log.warn({ err, attempts: outcome.attempts, next: outcome.next }, 'fax failed, will retry')
    throw new RetryAt(outcome.next, error)
  }

  const recorded = await inTransaction(app.db, async (tx) => {
    const r = await tx
      .updateTable('event_deliveries')
      .set({
        fax_status: 'sent',
        fax_attempts: sql`fax_attempts + 1`,
        // Both read the row as it was: the first delivery (any channel) keeps its time and channel.
        delivered_at: sql`coalesce(delivered_at, ${ctx.now}::timestamptz)`,
        delivered_via: sql`case when delivered_at is null then 'fax' else delivered_via end`,
      })
      .where('event_id', '=', eventId)
      .where('org_id', '=', orgId)
      .where('fax_status', 'not in', FINAL)
      .returning('fax_attempts')
      .executeTakeFirst()
    if (r) {
      await audit(tx, SYSTEM, { action: 'fax.sent', objectType: 'event', objectId: eventId, changes: { orgId, attempts: r.fax_attempts, gatewayId: sent.id } }, ctx.now)
    }
    return r !== undefined
  })
  if (recorded) app.metrics?.delivered.inc({ channel: 'fax' })
  log.info({ gatewayId: sent.id }, 'fax sent')
}

/**
 * The fax was given up: a letter to send, and the sender (the lab whose message it was; the operator for the
 * service's own messages) is told on its feed, with the recipient's postal address and where to get the letter.
 */
async function askForLetter(
  tx: Transaction<DB>,
  p: { eventId: string; orgId: string; attempts: number; error: string; now: Date; row: { type: string; payload: unknown; subject_type: string | null; subject_id: string | null; sender_org: string | null; recipient_name: string; recipient_role: string; recipient_fax: string | null; address_line1: string | null; address_line2: string | null; postal_code: string | null; city: string | null } },
) {
  const { row } = p
  const id = randomUUID()
  const inserted = await tx
    .insertInto('paper_letters')
    .values({ id, event_id: p.eventId, org_id: p.orgId, sender_org: row.sender_org, status: 'pending', fax_attempts: p.attempts, last_error: p.error, created_at: p.now })
    .onConflict((oc) => oc.columns(['event_id', 'org_id']).doNothing())
    .returning('id')
    .executeTakeFirst()
  if (!inserted) return
  const payload = row.payload as { reference?: unknown } | null
  await publish(
    tx,
    {
      type: 'fax.letter_required',
      payload: {
        letterId: id,
        eventId: p.eventId,
        eventType: row.type,
        eventLabel: eventTypeLabel(row.type),
        reference: typeof payload?.reference === 'string' ? payload.reference : null,
        subject: row.subject_type && row.subject_id ? { type: row.subject_type, id: row.subject_id } : null,
        recipient: { id: p.orgId, name: row.recipient_name, role: row.recipient_role, fax: row.recipient_fax, address: postalAddress(row) },
        attempts: p.attempts,
        lastError: p.error,
        letterUrl: `/v1/paper-letters/${id}/pdf`,
        recordSentUrl: `/v1/paper-letters/${id}/sent`,
      },
      audience: row.sender_org ? { orgs: [row.sender_org] } : { roles: ['ordre'] },
      senderOrg: null,
      subject: { type: 'paper_letter', id },
    },
    p.now,
  )
  await audit(tx, SYSTEM, { action: 'fax.paper_letter_needed', objectType: 'event', objectId: p.eventId, changes: { orgId: p.orgId, attempts: p.attempts, letterId: id } }, p.now)
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`fax gateway did not answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

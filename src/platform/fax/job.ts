import { type Kysely, sql } from 'kysely'
import { audit, SYSTEM } from '../audit.ts'
import type { Config } from '../config.ts'
import type { DB } from '../db/schema.ts'
import type { JobContext, JobRunner } from '../jobs.ts'
import type { Metrics } from '../metrics.ts'
import type { FaxGateway } from './gateway.ts'
import { renderFaxPdf } from './render.ts'

/** The queue publish() feeds for recipients without an integration (payload { eventId, orgId }, 5 attempts). */
export const FAX_QUEUE = 'fax.send'

export interface FaxJobOptions {
  /**
   * Longest wait for the gateway. The job runner runs one job at a time and leases it for 5 minutes: a gateway
   * that hangs must not stall the other jobs nor outlive the lease (another instance would then send it again).
   */
  timeoutMs?: number
}

export interface FaxJobPayload {
  eventId: string
  orgId: string
}

/** What the job needs of the app: a FastifyInstance fits; tests may pass their own job runner. */
export interface FaxJobHost {
  db: Kysely<DB>
  config: Pick<Config, 'PUBLIC_URL'>
  jobs: JobRunner
  metrics?: Metrics
}

/** Registers the 'fax.send' handler: render the notice, hand it to the gateway, record the outcome. */
export function registerFaxJobs(app: FaxJobHost, gateway: FaxGateway, opts: FaxJobOptions = {}) {
  app.jobs.register(FAX_QUEUE, (payload, ctx) => sendFax(app, gateway, payload, ctx, opts.timeoutMs ?? 60_000))
}

const FINAL = ['sent', 'paper_letter'] as const

async function sendFax(app: FaxJobHost, gateway: FaxGateway, raw: unknown, ctx: JobContext, timeoutMs: number) {
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
      'o.name as recipient_name', 'o.fax as recipient_fax', 's.name as sender_name', 's.phone as sender_phone',
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
      sender: row.sender_org ? { id: row.sender_org, name: row.sender_name ?? row.sender_org, phone: row.sender_phone } : null,
      now: ctx.now,
      serviceUrl: app.config.PUBLIC_URL,
    })
    sent = await withTimeout(gateway.send({ to: row.recipient_fax, pdf, reference: `${eventId}-${orgId}` }), timeoutMs)
  } catch (err) {
    const last = ctx.attempt >= ctx.maxAttempts
    const attempts = await app.db.transaction().execute(async (tx) => {
      const r = await tx
        .updateTable('event_deliveries')
        .set({ fax_attempts: sql`fax_attempts + 1`, fax_status: last ? 'paper_letter' : 'failed' })
        .where('event_id', '=', eventId)
        .where('org_id', '=', orgId)
        .where('fax_status', 'not in', FINAL)
        .returning('fax_attempts')
        .executeTakeFirst()
      if (r && last) {
        await audit(tx, SYSTEM, { action: 'fax.paper_letter_needed', objectType: 'event', objectId: eventId, changes: { orgId, attempts: r.fax_attempts } }, ctx.now)
      }
      return r?.fax_attempts
    })
    if (last) {
      log.error({ err, attempts }, 'fax failed for good: a paper letter must be sent')
      return
    }
    log.warn({ err, attempts }, 'fax failed, will retry')
    throw err
  }

  const recorded = await app.db.transaction().execute(async (tx) => {
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

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`fax gateway did not answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

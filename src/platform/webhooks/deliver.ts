import { randomBytes } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { isIP } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { sql } from 'kysely'
import { Webhook } from 'standardwebhooks'
import { audit, SYSTEM } from '../audit.ts'
import { eventFields } from '../events/feed.ts'
import { publish } from '../events/publish.ts'
import { WEBHOOK_QUEUE } from '../events/sequencer.ts'
import { type JobContext, RetryAt } from '../jobs.ts'
import { ForbiddenAddressError, guardedLookup, hostOf, isForbiddenAddress } from './ssrf.ts'
import { inTransaction } from '../db/transaction.ts'

/**
 * Sends one webhook delivery (job 'webhook.deliver', payload {deliveryId}), following the Standard Webhooks
 * specification: `webhook-id` (the delivery id: the same for every attempt and replay, so receivers can
 * deduplicate), `webhook-timestamp` (unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
 * `id.timestamp.body`, computed by the `standardwebhooks` library). During the 24 h after a rotation the
 * header carries two signatures, new and previous secret, separated by a space.
 *
 * The job reschedules itself between attempts (RetryAt); the delivery row keeps the attempts, the next attempt
 * time and the last outcome for GET /v1/webhooks/:id/deliveries. Deliveries are not ordered between
 * themselves: the body's `pos` (the event's position in the recipient's feed) lets a receiver order them.
 */

/** Delay before each retry, after attempt n (Standard Webhooks schedule): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const RETRY_SCHEDULE_MS = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]
/** The first attempt and the retries: about 27 h in all. */
export const MAX_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1
/** A receiver's Retry-After is honoured up to this. */
export const RETRY_AFTER_CAP_MS = 24 * 3_600_000
export const DELIVERY_TIMEOUT_MS = 10_000
/** Enough of the receiver's answer to explain a failure. */
const ERROR_SNIPPET = 300
const USER_AGENT = 'PortailDP-Webhooks/1 (Standard Webhooks)'
/** The jobs of this queue are rescheduled with RetryAt, which does not count; this only bounds crashes. */
export const WEBHOOK_JOB_MAX_ATTEMPTS = 1000

/** The delay before the retry that follows attempt n (1-based), ±10 % jitter so that retries do not come in waves. */
export function retryDelay(attempt: number, random: () => number = Math.random): number {
  const base = RETRY_SCHEDULE_MS[Math.min(Math.max(attempt, 1), RETRY_SCHEDULE_MS.length) - 1]!
  return Math.round(base * (0.9 + 0.2 * random()))
}

/** Retry-After as seconds or an HTTP date, in ms from now (capped); null when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: Date): number | null {
  const v = (Array.isArray(value) ? value[0] : value)?.trim()
  if (!v) return null
  let ms: number
  if (/^\d+$/.test(v)) ms = Number(v) * 1000
  else {
    const at = Date.parse(v)
    if (Number.isNaN(at)) return null
    ms = at - now.getTime()
  }
  return Math.min(Math.max(ms, 0), RETRY_AFTER_CAP_MS)
}

/** The secrets that sign a delivery now: the current one, and the previous one during the day after a rotation. */
export function signingSecrets(endpoint: { secret: string; previous_secret: string | null; previous_secret_expires_at: Date | null }, at: Date) {
  const secrets = [endpoint.secret]
  if (endpoint.previous_secret && endpoint.previous_secret_expires_at && endpoint.previous_secret_expires_at > at) secrets.push(endpoint.previous_secret)
  return secrets
}

/** The headers of a delivery (Standard Webhooks): the same for a real delivery and a test one. */
export function signedHeaders(webhookId: string, at: Date, body: string, secrets: string[]): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(webhookId, at, body)).join(' '),
  }
}

/** A signing secret in the Standard Webhooks format: `whsec_` and the base64 of 32 random bytes. */
export const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`

export interface Outcome {
  /** HTTP status, or null when no response came (timeout, connection refused, forbidden address). */
  status: number | null
  retryAfter?: string | string[]
  error: string | null
}

export interface SendOptions {
  allowPrivate: boolean
  timeoutMs: number
}

/** POSTs the body; never throws: the outcome says what happened. */
export function send(rawUrl: string, body: string, headers: Record<string, string>, opts: SendOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false
    let timer: NodeJS.Timeout | undefined
    const done = (o: Outcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(o)
    }
    let url: URL
    try {
      url = new URL(rawUrl)
    } catch {
      return done({ status: null, error: 'invalid URL' })
    }
    const secure = url.protocol === 'https:'
    if (!secure && !(url.protocol === 'http:' && opts.allowPrivate)) return done({ status: null, error: `scheme ${url.protocol} not allowed` })
    if (url.username || url.password) return done({ status: null, error: 'credentials in URL not allowed' })
    const host = hostOf(url)
    // An IP address is connected to without a lookup: check it here; names go through guardedLookup.
    if (!opts.allowPrivate && isIP(host) && isForbiddenAddress(host)) return done({ status: null, error: new ForbiddenAddressError(host, host).message })

    const request = (secure ? https : http).request(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      // A connection per delivery: no pooled socket skips the address check, nothing is left open.
      agent: false,
      ...(opts.allowPrivate ? {} : { lookup: guardedLookup }),
    })
    timer = setTimeout(() => {
      request.destroy(new Error(`timeout after ${opts.timeoutMs / 1000} s`))
    }, opts.timeoutMs)
    request.on('error', (err: NodeJS.ErrnoException) => {
      const message = err instanceof ForbiddenAddressError ? err.message : err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message
      done({ status: null, error: message })
    })
    request.on('response', (res) => {
      const status = res.statusCode ?? 0
      if (status >= 200 && status < 300) {
        done({ status, error: null })
        // The answer's body is not needed: close rather than read whatever the receiver streams.
        request.destroy()
        return
      }
      // Keep the start of the answer to explain the failure, then drop the connection.
      let snippet = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        snippet += chunk
        if (snippet.length >= ERROR_SNIPPET) res.destroy()
      })
      const finish = () => {
        const text = snippet.slice(0, ERROR_SNIPPET).replace(/\s+/g, ' ').trim()
        done({ status, retryAfter: res.headers['retry-after'], error: `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}${text ? `: ${text}` : ''}` })
      }
      res.on('end', finish)
      res.on('close', finish)
      res.on('error', finish)
    })
    request.end(body)
  })
}

export interface WebhookJobOptions {
  /** Per-attempt timeout (default 10 s); tests shorten it. */
  timeoutMs?: number
}

/** Registers the 'webhook.deliver' job handler. */
export function registerWebhookJobs(app: FastifyInstance, opts: WebhookJobOptions = {}) {
  const timeoutMs = opts.timeoutMs ?? app.config.WEBHOOK_TIMEOUT_MS ?? DELIVERY_TIMEOUT_MS
  app.jobs.register(WEBHOOK_QUEUE, (payload: { deliveryId?: string }, ctx) => deliver(app, String(payload?.deliveryId ?? ''), ctx, timeoutMs))
}

async function deliver(app: FastifyInstance, deliveryId: string, ctx: JobContext, timeoutMs: number) {
  const { db } = app
  if (!/^[0-9a-f-]{36}$/i.test(deliveryId)) return
  const row = await db
    .selectFrom('webhook_deliveries as wd')
    .innerJoin('webhook_endpoints as w', 'w.id', 'wd.endpoint_id')
    .innerJoin('events as e', 'e.id', 'wd.event_id')
    .leftJoin('event_deliveries as d', (j) => j.onRef('d.event_id', '=', 'wd.event_id').onRef('d.org_id', '=', 'wd.org_id'))
    .select([
      'wd.id', 'wd.status', 'wd.attempts', 'wd.org_id', 'wd.event_id',
      'w.id as endpoint_id', 'w.url', 'w.active', 'w.secret', 'w.previous_secret', 'w.previous_secret_expires_at',
      'e.type', 'e.created_at', 'e.sender_org', 'e.subject_type', 'e.subject_id', 'e.payload', 'e.id as eid',
      'd.pos',
    ])
    .where('wd.id', '=', deliveryId)
    .executeTakeFirst()
  // Gone, or already settled (a stale job after a replay): nothing to send.
  if (!row || row.status !== 'pending') return

  if (!row.active) {
    await db
      .updateTable('webhook_deliveries')
      .set({ status: 'failed', last_error: 'endpoint disabled', next_attempt_at: null })
      .where('id', '=', row.id)
      .where('status', '=', 'pending')
      .execute()
    return
  }

  const { id, type, createdAt, sender, subject, payload } = eventFields({ ...row, id: row.eid })
  const body = JSON.stringify({ id, type, createdAt, sender, subject, payload, pos: row.pos ?? null })
  const sentAt = app.now()
  const headers = signedHeaders(row.id, sentAt, body, signingSecrets(row, sentAt))
  const outcome = await send(row.url, body, headers, { allowPrivate: app.config.WEBHOOK_ALLOW_PRIVATE, timeoutMs })
  const now = app.now()
  const attempts = row.attempts + 1
  const attempt = { attempts, last_attempt_at: now, last_status_code: outcome.status }

  if (outcome.status !== null && outcome.status >= 200 && outcome.status < 300) {
    await inTransaction(db, async (tx) => {
      await tx
        .updateTable('webhook_deliveries')
        .set({ ...attempt, status: 'succeeded', succeeded_at: now, next_attempt_at: null, last_error: null })
        .where('id', '=', row.id)
        .execute()
      await tx.updateTable('webhook_endpoints').set({ failure_streak: 0 }).where('id', '=', row.endpoint_id).where('failure_streak', '<>', 0).execute()
      await tx
        .updateTable('event_deliveries')
        .set({ delivered_at: now, delivered_via: 'webhook' })
        .where('event_id', '=', row.event_id)
        .where('org_id', '=', row.org_id)
        .where('delivered_at', 'is', null)
        .execute()
    })
    app.metrics.webhookAttempts.inc({ outcome: 'success' })
    app.metrics.delivered.inc({ channel: 'webhook' })
    ctx.log.debug({ delivery: row.id, status: outcome.status }, 'webhook delivered')
    return
  }

  // 410 Gone: the receiver asks us to stop. Other failures count towards the streak and are retried.
  const gone = outcome.status === 410
  let next: Date | null = null
  let disabledFor: string | null = null
  await inTransaction(db, async (tx) => {
    const endpoint = await tx
      .updateTable('webhook_endpoints')
      .set({ failure_streak: sql`failure_streak + 1` })
      .where('id', '=', row.endpoint_id)
      .returning(['failure_streak', 'org_id', 'url'])
      .executeTakeFirstOrThrow()
    const streak = endpoint.failure_streak
    const disableFor = gone ? 'gone' : streak >= app.config.WEBHOOK_DISABLE_AFTER ? 'failure_streak' : null
    let disabled = false
    if (disableFor) {
      const reason =
        disableFor === 'gone'
          ? `the receiver answered 410 Gone on ${now.toISOString()}`
          : `${streak} consecutive failed attempts (last: ${outcome.error ?? 'unknown'}) on ${now.toISOString()}`
      // Only the attempt that flips it publishes: another instance may be failing a delivery of the same endpoint.
      const flipped = await tx
        .updateTable('webhook_endpoints')
        .set({ active: false, disabled_reason: reason, updated_at: now })
        .where('id', '=', row.endpoint_id)
        .where('active', '=', true)
        .returning('id')
        .executeTakeFirst()
      disabled = true
      if (flipped) {
        disabledFor = disableFor
        await audit(
          tx,
          SYSTEM,
          { action: 'webhook.disabled', objectType: 'webhook_endpoint', objectId: row.endpoint_id, changes: { active: [true, false], reason: disableFor, disabledReason: reason } },
          now,
        )
        await publish(
          tx,
          {
            type: 'webhook.endpoint_disabled',
            payload: { endpointId: row.endpoint_id, url: endpoint.url, reason: disableFor, failureStreak: streak, lastError: outcome.error, disabledAt: now.toISOString() },
            audience: { orgs: [endpoint.org_id] },
            senderOrg: null,
            subject: { type: 'webhook_endpoint', id: row.endpoint_id },
          },
          now,
        )
      }
    }
    const last = disabled || attempts >= MAX_ATTEMPTS
    if (!last) {
      const retryAfter = parseRetryAfter(outcome.retryAfter, now)
      // Never earlier than the schedule, nor than the receiver asked.
      next = new Date(now.getTime() + Math.max(retryDelay(attempts), retryAfter ?? 0))
    }
    await tx
      .updateTable('webhook_deliveries')
      .set({ ...attempt, status: last ? 'failed' : 'pending', next_attempt_at: next, last_error: outcome.error })
      .where('id', '=', row.id)
      .execute()
  })
  app.metrics.webhookAttempts.inc({ outcome: 'failure' })
  if (disabledFor) app.metrics.webhookDisabled.inc({ reason: disabledFor })
  ctx.log.info({ delivery: row.id, endpoint: row.endpoint_id, attempt: attempts, error: outcome.error, next }, next ? 'webhook attempt failed, will retry' : 'webhook delivery failed')
  if (next) throw new RetryAt(next, outcome.error ?? 'webhook attempt failed')
}

import { createHash } from 'node:crypto'
import { canonicalJson } from './canonical-json.ts'
import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler, onSendHookHandler, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { sql } from 'kysely'
import type { Database } from './db/index.ts'
import { AppError } from './errors.ts'

declare module 'fastify' {
  interface FastifyRequest {
    idempotency: { scope: string; key: string } | null
  }
  interface FastifyContextConfig {
    /**
     * false: the route's answer is computed at each call and never replayed; an Idempotency-Key is ignored. For
     * read-only checks (dispensation check, pack verification): a replayed answer could be stale, e.g. "clear" for
     * a batch recalled since.
     */
    idempotency?: false
  }
}

const KEY = /^[\x21-\x7e]{8,255}$/
const METHODS = new Set(['POST', 'PATCH', 'PUT', 'DELETE'])
/** A 'running' record older than this belonged to a request that died with its process: the key may be reused. */
const STALE_MS = 120_000
const KEPT_HEADERS = ['content-type', 'location', 'etag']

/**
 * Idempotency-Key for every write, one mechanism for all routes. The first request reserves the key
 * (scoped per organisation); its response is stored when it is sent. A replay returns that response with
 * `Idempotent-Replayed: true`. 5xx and 429 answers are not kept, so a retry after a failure runs again.
 * Routes declared with `config.idempotency: false` (read-only checks) ignore the key.
 */
export default fp(
  async function idempotency(app: FastifyInstance, opts: { db: Database; ttlHours: number }) {
    const { db } = opts
    app.decorateRequest('idempotency', null)

    // Route hooks, put on the writes only (see onRoute below); without a key they return at once, without a
    // promise (callback style).
    const claimHook: preHandlerHookHandler = (request, reply, done) => {
      const key = request.headers['idempotency-key']
      if (key === undefined || !METHODS.has(request.method)) return done()
      // After a replay the reply is already sent: the request must not go on to its handler.
      claim(request, reply, key).then((replayed) => (replayed ? undefined : done()), done)
    }

    async function claim(request: FastifyRequest, reply: FastifyReply, key: string | string[]) {
      if (typeof key !== 'string' || !KEY.test(key)) throw new AppError('IDEMPOTENCY_KEY_INVALID')
      const scope = request.principal?.org ?? `anonymous:${request.ip}`
      const hash = requestHash(request)
      for (let attempt = 0; attempt < 3; attempt++) {
        const inserted = await db
          .insertInto('idempotency_keys')
          .values({ org_id: scope, key, request_hash: hash, state: 'running', expires_at: sql<Date>`now() + make_interval(hours => ${opts.ttlHours})` as any })
          .onConflict((oc) => oc.columns(['org_id', 'key']).doNothing())
          .returning('key')
          .executeTakeFirst()
        if (inserted) {
          request.idempotency = { scope, key }
          return false
        }
        const existing = await db.selectFrom('idempotency_keys').selectAll().where('org_id', '=', scope).where('key', '=', key).executeTakeFirst()
        if (!existing) continue // purged between the two statements
        const stale = existing.state === 'running' && Date.now() - existing.created_at.getTime() > STALE_MS
        if (existing.expires_at.getTime() < Date.now() || stale) {
          // The database decides (its timestamps have microseconds): only an expired or abandoned record goes.
          await db
            .deleteFrom('idempotency_keys')
            .where('org_id', '=', scope)
            .where('key', '=', key)
            .where((eb) =>
              eb.or([
                eb('expires_at', '<', sql<Date>`now()`),
                eb.and([eb('state', '=', 'running'), eb('created_at', '<', sql<Date>`now() - make_interval(secs => ${STALE_MS / 1000})`)]),
              ]),
            )
            .execute()
          continue
        }
        if (existing.request_hash !== hash) throw new AppError('IDEMPOTENCY_KEY_REUSED')
        if (existing.state === 'running') throw new AppError('IDEMPOTENCY_IN_PROGRESS')
        replay(reply, existing)
        app.metrics?.idempotencyReplays.inc({ route: request.routeOptions.url ?? 'unmatched' })
        return true
      }
      throw new AppError('IDEMPOTENCY_IN_PROGRESS')
    }

    const recordHook: onSendHookHandler = (request, reply, payload, done) => {
      const idem = request.idempotency
      if (!idem) return done(null, payload)
      request.idempotency = null
      record(idem, reply, payload).then((p) => done(null, p), (err) => done(err))
    }

    async function record(idem: { scope: string; key: string }, reply: FastifyReply, payload: unknown) {
      const where = db.deleteFrom('idempotency_keys').where('org_id', '=', idem.scope).where('key', '=', idem.key)
      // Failures and throttling are not kept: a retry after Retry-After must run again.
      if (reply.statusCode >= 500 || reply.statusCode === 429 || (payload !== null && payload !== undefined && typeof payload !== 'string' && !Buffer.isBuffer(payload))) {
        // Not replayable (failure, or a stream): let the client retry. When the delete fails too (the database is
        // away), the answer stays the one being sent (a 503 with Retry-After), not an error of this hook; the
        // key, left running, is freed after STALE_MS.
        await where.execute().catch((err) => reply.log.warn({ err }, 'idempotency key not released'))
        return payload
      }
      const headers: Record<string, string> = {}
      for (const h of KEPT_HEADERS) {
        const v = reply.getHeader(h)
        if (v !== undefined) headers[h] = String(v)
      }
      await db
        .updateTable('idempotency_keys')
        .set({ state: 'done', status_code: reply.statusCode, response_headers: JSON.stringify(headers), response_body: payload == null ? null : payload.toString() })
        .where('org_id', '=', idem.scope)
        .where('key', '=', idem.key)
        .execute()
      return payload
    }

    // If the request dies before a response is sent (client gone, crash in a hook), free the key.
    const releaseHook: onResponseHookHandler = (request, _reply, done) => {
      const idem = request.idempotency
      if (!idem) return done()
      db.deleteFrom('idempotency_keys').where('org_id', '=', idem.scope).where('key', '=', idem.key).where('state', '=', 'running').execute().then(() => done(), done)
    }

    // Ahead of the route's own hooks, as global hooks would run; not on routes that answer afresh at each call.
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method]
      if (route.config?.idempotency === false || !methods.some((m) => METHODS.has(m))) return
      route.preHandler = [claimHook, ...hooksOf(route.preHandler)]
      route.onSend = [recordHook, ...hooksOf(route.onSend)]
      route.onResponse = [releaseHook, ...hooksOf(route.onResponse)]
    })
  },
  { name: 'idempotency', dependencies: ['auth'] },
)

/** A route option's hooks (none, one or several) as a list. */
function hooksOf<H>(hooks: H | H[] | undefined): H[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]
}

function requestHash(request: FastifyRequest) {
  return createHash('sha256')
    .update(`${request.method} ${request.url}\n`)
    .update(canonicalJson(request.body ?? null))
    .digest('hex')
}

function replay(reply: FastifyReply, row: { status_code: number | null; response_headers: Record<string, string> | null; response_body: string | null }) {
  reply.code(row.status_code ?? 200)
  for (const [h, v] of Object.entries(row.response_headers ?? {})) reply.header(h, v)
  reply.header('idempotent-replayed', 'true')
  return reply.send(row.response_body ?? '')
}

/** Removes expired keys; run by the scheduled purge. */
export async function purgeIdempotencyKeys(db: Database) {
  const r = await db.deleteFrom('idempotency_keys').where('expires_at', '<', sql<Date>`now()`).executeTakeFirst()
  return Number(r.numDeletedRows)
}

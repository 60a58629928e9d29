/** The lab's streamed upload: a batch's serials as text/plain, one per line, read as they arrive (few at once). */
import { Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { actorOf } from '../../platform/audit.ts'
import { principalOf } from '../../platform/auth.ts'
import { AppError } from '../../platform/errors.ts'
import { closeConnectionAfter } from '../../platform/connection.ts'
import { langOf, type Text } from '../../platform/i18n.ts'
import { problems } from '../../platform/openapi.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { expiryField } from '../rules/gs1.ts'
import { cip13Of } from '../rules/product-code.ts'
import { Batch, PackStreamReport, ProductCodeParam, STREAM_CONFLICTS_LISTED } from '../schemas/packs.ts'
import { INVALID_LINES_LISTED, MAX_STREAMED_SERIALS, STREAM_BODY_LIMIT, STREAM_CHUNK } from '../rules/stream-upload.ts'
import { uploadPackStream } from '../use-cases/upload.ts'

const TAG = 'serialization'
/**
 * Streamed uploads running at once on one instance. Each holds a database connection and its transaction for as
 * long as its body takes to arrive: a few slow (or hostile) uploads must not take the pool that verifications and
 * decommissions use. Beyond: 503 with Retry-After, before anything is read.
 */
export const MAX_CONCURRENT_STREAMS = 2
const RETRY_AFTER_S = 30
let running = 0
/** Streamed uploads running now in this process (one server per process). */
export const streamsRunning = () => running
const n = (v: number) => v.toLocaleString('en')

/** The body as the parser handed it over: a stream, taken aside before validation (see preValidation below). */
const bodies = new WeakMap<FastifyRequest, Readable>()

/** text/plain, in UTF-8 (or its ASCII subset) when a charset is named. */
function isPlainText(header: string | undefined): boolean {
  if (!header) return false
  const [type = '', ...params] = header.split(';').map((p) => p.trim().toLowerCase())
  if (type !== 'text/plain') return false
  const charset = params.find((p) => p.startsWith('charset='))?.slice(8).replace(/^"|"$/g, '')
  return charset === undefined || charset === 'utf-8' || charset === 'utf8' || charset === 'us-ascii'
}

const TEXT_ONLY: Text = {
  fr: 'Envoyez les numéros de série en text/plain (UTF-8), un par ligne.',
  en: 'Send the serial numbers as text/plain (UTF-8), one per line.',
}
const BUSY: Text = {
  fr: `${MAX_CONCURRENT_STREAMS} envois en flux sont déjà en cours sur ce serveur : rien n’a été lu ni enregistré ; réessayez après le délai indiqué par Retry-After.`,
  en: `${MAX_CONCURRENT_STREAMS} streamed uploads are already running on this server: nothing was read or recorded; retry after the Retry-After delay.`,
}
const NO_IDEMPOTENCY_KEY: Text = {
  fr: 'cette opération ne prend pas de clé d’idempotence : renvoyer le même corps est sans danger (les numéros déjà reçus sont comptés « unchanged »)',
  en: 'this operation takes no idempotency key: sending the same body again is safe (serials already received count as "unchanged")',
}

const uploadStreamRoutes: RoutePlugin = async (app) => {
  // In this plugin only: text/plain bodies are handed to the handler unread, as a stream; no other parser. The body
  // limit is enforced while reading (a parser that streams is not held to it by Fastify); a declared length above
  // it is refused before anything is read.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('text/plain', (request, payload, done) => {
    if (Number(request.headers['content-length']) > request.routeOptions.bodyLimit) return done(new AppError('PAYLOAD_TOO_LARGE'), undefined)
    done(null, payload)
  })

  app.post(
    '/serialization/products/:code/batches/:batch/packs',
    {
      config: { roles: ['lab'] },
      bodyLimit: STREAM_BODY_LIMIT,
      onRequest: (request, _reply, done) => {
        const lang = langOf(request)
        // Before the body is read. The Idempotency-Key hook (on every write) hashes the parsed body, which here is a stream:
        // a key would be claimed for any body alike, so it is refused rather than honoured wrongly.
        if (request.headers['idempotency-key'] !== undefined) {
          return done(new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field: 'headers.idempotency-key', code: 'not_accepted', message: NO_IDEMPOTENCY_KEY[lang] }] }))
        }
        if (!isPlainText(request.headers['content-type'])) return done(new AppError('UNSUPPORTED_MEDIA_TYPE', {}, { detail: TEXT_ONLY[lang] }))
        done()
      },
      // The parsed body is the stream; the schema below documents it as text and would reject the stream object:
      // the stream is set aside and the validator given an empty string (params and query are validated as usual).
      preValidation: (request, _reply, done) => {
        const body: unknown = request.body
        if (body instanceof Readable) bodies.set(request, body)
        request.body = ''
        done()
      },
      schema: {
        tags: [TAG],
        operationId: 'uploadPacksAsText',
        summary: 'Upload the packs of one batch as a stream of serials, one per line (lab)',
        description: [
          `For large batches (the JSON upload takes 10,000 serials per call): the body is \`text/plain\` (UTF-8), one serial per line, up to ${n(MAX_STREAMED_SERIALS)} serials and ${STREAM_BODY_LIMIT / 1024 / 1024} MiB; lines end with \\n or \\r\\n, empty lines are ignored, nothing else is trimmed (a serial with a space is invalid). The product is in the path (one of your presentations, CIP13 or GTIN-14: another lab’s product answers 404), the batch too, its expiry in the query (\`YYYY-MM-DD\` or \`YYMMDD\`; a batch already declared with another expiry answers 409).`,
          '',
          `All or nothing, in one transaction: the serials are inserted ${n(STREAM_CHUNK)} at a time as the lines arrive. Any invalid line (1 to 20 characters of the GS1 character set 82, like \`serials\` in the JSON upload) answers 400 \`VALIDATION_FAILED\` after the whole body is read, with the first ${INVALID_LINES_LISTED} invalid lines in \`errors\` (\`field\`: \`body.line.N\`, N counting every line from 1) and their total in \`invalidLines\`; nothing is recorded. More than ${n(MAX_STREAMED_SERIALS)} serials: 413 \`TOO_MANY_SERIALS\`; a larger body: 413 \`PAYLOAD_TOO_LARGE\`; another content type: 415. At most ${MAX_CONCURRENT_STREAMS} streamed uploads run at once on one server: beyond, 503 with \`Retry-After\`, before anything is read.`,
          '',
          `Idempotent by itself: sending the same body again creates nothing (a serial already in this batch is counted \`unchanged\`), so this operation takes no \`Idempotency-Key\` (a request carrying one is refused with 400). A serial repeated in the body counts as \`unchanged\` too: \`received\` = \`created\` + \`unchanged\` + \`conflictCount\`. A serial already uploaded in another batch of the product is left as it was and counted in \`conflictCount\`; the first ${n(STREAM_CONFLICTS_LISTED)} are listed in \`conflicts\`.`,
        ].join('\n'),
        params: Type.Object({ code: ProductCodeParam, batch: Batch }),
        querystring: Type.Object({
          expiry: Type.String({ description: 'The batch’s expiry: YYYY-MM-DD, or YYMMDD as printed (day 00 = end of month).', examples: ['2027-12-31'] }),
        }),
        consumes: ['text/plain'],
        body: Type.String({ description: 'One serial per line (\\n or \\r\\n), UTF-8.', examples: ['10000000001\n10000000002\n10000000003\n'] }),
        response: {
          200: PackStreamReport,
          ...problems(404, 409, 413),
          415: { ...problems(415)[415], description: 'Le corps n’est pas en text/plain (UTF-8) — the body is not text/plain (UTF-8)' },
        },
      },
    },
    async (request, reply) => {
      const lang = langOf(request)
      const principal = principalOf(request)
      const cip13 = cip13Of(request.params.code, 'params.code', lang)
      const expiry = expiryField(request.query.expiry, 'querystring.expiry', app.now())
      if ('error' in expiry) throw new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field: 'querystring.expiry', code: 'format', message: expiry.error[lang] }] })
      const body = bodies.get(request)!
      if (running >= MAX_CONCURRENT_STREAMS) {
        reply.header('retry-after', String(RETRY_AFTER_S))
        closeConnectionAfter(request, reply)
        body.resume()
        throw new AppError('SERVICE_UNAVAILABLE', {}, { detail: BUSY[lang] })
      }
      running++
      try {
        return await uploadPackStream(
          app.db,
          { ...actorOf(principal, request.id), org: principal.org },
          { cip13, batch: request.params.batch, expiry: expiry.expiry },
          body,
          { maxBytes: request.routeOptions.bodyLimit, now: app.now(), lang },
        )
      } catch (err) {
        // Answered before the end of the body (404, 409, 413): the rest is discarded and the connection closed.
        if (!body.readableEnded) {
          closeConnectionAfter(request, reply)
          body.resume()
        }
        throw err
      } finally {
        running--
      }
    },
  )
}

export default uploadStreamRoutes

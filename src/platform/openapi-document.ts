import { EVENT_TYPE_NAMES, EVENT_TYPES } from './events/event-types.ts'
import { eventSchemaId } from './events/catalogue.ts'
import { ERRORS, problemDescription } from './errors.ts'

/**
 * What the contract says about every operation without each route repeating it, applied once to the document
 * @fastify/swagger builds (its transformObject): a description for every success answer, an example for every
 * JSON body (the schema's own example, else one made from the schema), the problem codes each operation may
 * answer with an example per error status, the headers sent (Location, Idempotent-Replayed, Retry-After,
 * rate-limit headers), named request bodies, the typed event union and the webhooks it sends. A route added
 * tomorrow gets all of it; test/contract.test.ts checks that it holds for every operation.
 */

type Doc = Record<string, any>
type Schema = Record<string, any>

const SUCCESS_TEXT: Record<string, string> = {
  200: 'OK',
  201: 'Créé — created',
  202: 'Accepté — accepted',
  204: 'Sans contenu — no content',
  304: 'Non modifié (ETag) — not modified',
}

/** Codes any operation may answer with, by status, when the status is documented for it. */
const PLATFORM_CODES: Record<number, string[]> = {
  400: ['VALIDATION_FAILED'],
  401: ['UNAUTHENTICATED', 'TOKEN_INVALID', 'TOKEN_EXPIRED'],
  403: ['FORBIDDEN_ROLE', 'ORGANISATION_NOT_REGISTERED'],
  404: ['NOT_FOUND'],
  409: ['CONFLICT', 'CONCURRENT_CHANGE'],
  413: ['PAYLOAD_TOO_LARGE'],
  414: ['URI_TOO_LONG'],
  415: ['UNSUPPORTED_MEDIA_TYPE'],
  422: [],
  429: ['RATE_LIMITED'],
  431: ['HEADERS_TOO_LARGE'],
  500: ['INTERNAL'],
  503: ['SERVICE_UNAVAILABLE'],
}

/**
 * The codes of each service, by the paths that answer them (a code's status must also be documented on the
 * operation to be listed there). A route may add its own in its schema (`x-problem-codes`).
 */
const AREA_CODES: Array<[RegExp, RegExp | string[]]> = [
  [/^\/v1\/(recalls|alerts)\b/, /^RECALL_/],
  [/^\/v1\/emergency-/, /^EMERGENCY_|^LAB_NOT_SUBSCRIBED$/],
  [/^\/v1\/eprescriptions\b|^\/eprescriptions\b/, /^EPRESCRIPTION_/],
  [/^\/v1\/stock-/, /^STOCK_/],
  [/^\/v1\/ansm\//, ['DATES_OUT_OF_ORDER']],
  [/^\/v1\/shortage-/, ['DATES_OUT_OF_ORDER', 'SIGNAL_TOO_EARLY', 'DECLARATION_CLOSED', 'INVALID_TRANSITION', 'PRESENTATION_ALREADY_DECLARED', 'SIGNAL_NOT_OPEN', 'VERSION_MISMATCH', 'LAB_NOT_SUBSCRIBED']],
  [/^\/v1\/serialization\//, ['BATCH_EXPIRY_CONFLICT', 'TOO_MANY_SERIALS']],
  [/^\/v1\/webhooks\b/, ['WEBHOOK_URL_REFUSED']],
  [/^\/v1\/paper-letters\b/, ['POSTAL_ADDRESS_MISSING']],
  [/^\/v1\/(products|medicines|lab-holders|generic-groups)\b/, ['PRODUCT_CODE_IS_CIS', 'UNKNOWN_LAB']],
]

/** Operations that send a Location header with their 201 (the address of what was created). */
const LOCATION_OPERATIONS = new Set(['createWebhookEndpoint', 'issueEprescription', 'createOrganisation'])

const RATE_HEADERS = {
  'x-ratelimit-limit': { description: 'Requests allowed per minute for your organisation (verifications and state changes together).', schema: { type: 'integer' } },
  'x-ratelimit-remaining': { description: 'Requests left in the current minute.', schema: { type: 'integer' } },
  'x-ratelimit-reset': { description: 'Seconds until the count starts again.', schema: { type: 'integer' } },
}
const REPLAYED = { description: '`true` when this answer is the stored answer of an earlier request with the same Idempotency-Key.', schema: { type: 'string', enum: ['true'] } }
const RETRY_AFTER = { description: 'Seconds to wait before retrying.', schema: { type: 'integer' }, example: 5 }

const JSON_TYPE = /^application\/(.+\+)?json\b/
const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

export function completeDocument(doc: Doc): Doc {
  const schemas = (doc.components.schemas ??= {}) as Record<string, Schema>
  const resolve = (s: Schema | undefined): Schema | undefined => (s?.$ref ? schemas[String(s.$ref).split('/').pop()!] : s)
  const examples = (doc.components.examples ??= {}) as Record<string, unknown>
  // Sent on every answer (the request id to quote to support; yours when you sent X-Request-Id): declared once.
  doc.components.headers = { ...doc.components.headers, RequestId: { description: 'The request id (yours when you sent `X-Request-Id`): quote it to support.', schema: { type: 'string' } } }
  typedEvents(doc, schemas)
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (method === 'parameters') continue
      // Query parameters that have a default may be left out.
      for (const p of op.parameters ?? []) if (p.in === 'query' && p.schema && 'default' in p.schema) p.required = false
      nameRequestBody(op, schemas)
      for (const media of Object.values<any>(op.requestBody?.content ?? {})) addExample(media, resolve, schemas)
      const idempotent = (op.parameters ?? []).some((p: any) => p.in === 'header' && p.name === 'idempotency-key')
      const codes = problemCodes(path, method, op)
      op['x-problem-codes'] = codes
      for (const [status, response] of Object.entries<any>(op.responses ?? {})) {
        const s = Number(status)
        if (s < 400) {
          if (!response.description || response.description === 'Default Response') response.description = SUCCESS_TEXT[status] ?? 'OK'
          for (const [type, media] of Object.entries<any>(response.content ?? {})) if (JSON_TYPE.test(type)) addExample(media, resolve, schemas)
          // A stream of events: each message's `data` is a FeedEvent (the shape OpenAPI 3.2 names itemSchema).
          const stream = response.content?.['text/event-stream']
          if (stream) stream['x-item-schema'] = { $ref: '#/components/schemas/FeedEvent' }
          const headers: Record<string, unknown> = {}
          if (s === 201 && LOCATION_OPERATIONS.has(op.operationId)) headers.location = { description: 'The address of what was created.', schema: { type: 'string' } }
          if (Object.keys(response.content ?? {}).some((t) => /^(text\/csv|application\/pdf)/.test(t))) headers['content-disposition'] = { description: 'attachment; filename="…": the name to save the file under.', schema: { type: 'string' } }
          response.headers = { ...response.headers, ...headers }
        } else {
          const own = codes.filter((c) => ERRORS[c]?.status === s)
          response.content ??= { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } }
          for (const media of Object.values<any>(response.content)) {
            if (media.example !== undefined || media.examples !== undefined) continue
            // One example per code, shared by reference (components/examples): its own status and code.
            const code = own[0] ?? PLATFORM_CODES[s]?.[0] ?? 'INTERNAL'
            const name = `Problem${code.split('_').map((w) => w.charAt(0) + w.slice(1).toLowerCase()).join('')}`
            examples[name] ??= { summary: `${s} ${code}`, value: problemExample(code, s) }
            media.examples = { [code]: { $ref: `#/components/examples/${name}` } }
          }
          if (own.length) {
            const line = `Codes : ${own.map((c) => `\`${c}\``).join(', ')}`
            if (!String(response.description ?? '').includes(line)) response.description = `${response.description ?? ''}\n\n${line}`.trim()
          }
          if (s === 429 || s === 503) response.headers = { ...response.headers, 'retry-after': RETRY_AFTER }
        }
        // Headers of answers whatever their status. The rate counts: once authenticated (the refusals after that
        // carry them too). Idempotent-Replayed: successes and refusals are stored and replayed (idempotency.ts), all
        // but 429 and 5xx, which the client may retry.
        const headers: Record<string, unknown> = {}
        if (op['x-rate-limited'] && s !== 401 && s !== 403) Object.assign(headers, RATE_HEADERS)
        if (idempotent && s < 500 && s !== 429) headers['idempotent-replayed'] = REPLAYED
        response.headers = { ...response.headers, ...headers, 'x-request-id': { $ref: '#/components/headers/RequestId' } }
      }
    }
  }
  // Named schemas and examples in alphabetical order: the order in which modules happen to load (which defines them)
  // is not something moving a file should change in the contract.
  doc.components.schemas = sortedByKey(schemas)
  doc.components.examples = sortedByKey(examples)
  return doc
}

const sortedByKey = <T>(o: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))

/** The problem codes an operation may answer with: the platform's for each documented status, its service's, its own. */
function problemCodes(path: string, method: string, op: any): string[] {
  const statuses = new Set(Object.keys(op.responses ?? {}).map(Number).filter((s) => s >= 400))
  const out = new Set<string>()
  const body = op.requestBody !== undefined
  for (const s of statuses) {
    for (const c of PLATFORM_CODES[s] ?? []) out.add(c)
    if (s === 400) {
      // A body sent where none is expected is still parsed (and refused when it is not JSON).
      if (body || method !== 'get') out.add('MALFORMED_BODY')
      // An identifier (a CIP13, an organisation's number…) read from the path, a filter or a body.
      if (body || (op.parameters ?? []).some((p: any) => p.in === 'path' || (p.in === 'query' && p.name !== 'cursor' && p.name !== 'limit'))) out.add('INVALID_IDENTIFIER')
      if ((op.parameters ?? []).some((p: any) => p.in === 'query' && p.name === 'cursor')) out.add('INVALID_CURSOR')
    }
  }
  const idempotent = (op.parameters ?? []).some((p: any) => p.in === 'header' && p.name === 'idempotency-key')
  if (idempotent) for (const c of ['IDEMPOTENCY_KEY_INVALID', 'IDEMPOTENCY_IN_PROGRESS', 'IDEMPOTENCY_KEY_REUSED']) out.add(c)
  if (op['x-rate-limited']) out.add('TOO_MANY_REQUESTS')
  for (const [re, codes] of AREA_CODES) {
    if (!re.test(path)) continue
    const list = Array.isArray(codes) ? codes : Object.keys(ERRORS).filter((c) => codes.test(c))
    for (const c of list) out.add(c)
  }
  for (const c of op['x-problem-codes'] ?? []) out.add(c)
  return [...out].filter((c) => ERRORS[c] && statuses.has(ERRORS[c].status)).sort((a, b) => ERRORS[a]!.status - ERRORS[b]!.status || a.localeCompare(b))
}

function problemExample(code: string, status: number) {
  const def = ERRORS[code] ?? ERRORS.INTERNAL!
  return {
    type: `/problems/${code.toLowerCase()}`,
    title: def.title.fr,
    status,
    detail: problemDescription(code in ERRORS ? code : 'INTERNAL', 'fr').description,
    code,
    requestId: 'req-1a2b3c',
    ...(code === 'VALIDATION_FAILED' ? { errors: [{ field: 'body', code: 'required', message: 'doit avoir la propriété requise « … »' }] } : {}),
  }
}

/** An inline request body becomes a named component (`<OperationId>Input`): generated clients name its type. */
function nameRequestBody(op: any, schemas: Record<string, Schema>) {
  for (const [type, media] of Object.entries<any>(op.requestBody?.content ?? {})) {
    if (!media.schema || media.schema.$ref) continue
    const base = `${upperFirst(op.operationId ?? 'Request')}${type.startsWith('text/') ? 'Text' : ''}Input`
    schemas[base] = media.schema
    media.schema = { $ref: `#/components/schemas/${base}` }
  }
}

function addExample(media: any, resolve: (s: Schema | undefined) => Schema | undefined, schemas: Record<string, Schema>) {
  if (!media?.schema || media.example !== undefined || media.examples !== undefined) return
  const example = sample(media.schema, schemas, 0)
  if (example !== undefined) media.example = example
  void resolve
}

const SAMPLE_STRINGS: Record<string, string> = {
  'date-time': '2026-11-22T09:00:00.000Z',
  date: '2026-11-22',
  uuid: '7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b',
  email: 'contact@example.fr',
  uri: 'https://example.fr/',
  cip13: '3400936128149',
}

/**
 * An example made from a schema: its own example first (`examples[0]`, `default`, `const`, `enum[0]`), else one
 * built from its properties (the required ones, and the optional ones that carry an example).
 */
export function sample(schema: Schema | undefined, schemas: Record<string, Schema>, depth: number): unknown {
  if (!schema || depth > 12) return undefined
  if (schema.$ref) return sample(schemas[String(schema.$ref).split('/').pop()!], schemas, depth + 1)
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0]
  if (schema.example !== undefined) return schema.example
  if (schema.const !== undefined) return schema.const
  if (schema.default !== undefined) return schema.default
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0]
  const options = schema.oneOf ?? schema.anyOf
  if (Array.isArray(options)) {
    const pick = options.find((o: Schema) => o.type !== 'null') ?? options[0]
    return sample(pick, schemas, depth + 1)
  }
  if (Array.isArray(schema.allOf)) {
    return Object.assign({}, ...schema.allOf.map((s: Schema) => sample(s, schemas, depth + 1) ?? {}))
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {}
      const required = new Set<string>(schema.required ?? [])
      const entries = Object.entries<Schema>(schema.properties ?? {})
      for (const [k, v] of entries) {
        const has = required.has(k) || (resolveShallow(v, schemas)?.examples?.length ?? 0) > 0
        if (!has) continue
        const x = sample(v, schemas, depth + 1)
        if (x !== undefined) out[k] = x
      }
      // A patch needs at least one field.
      for (const [k, v] of entries) {
        if (Object.keys(out).length >= (schema.minProperties ?? 0)) break
        const x = sample(v, schemas, depth + 1)
        if (x !== undefined && !(k in out)) out[k] = x
      }
      return out
    }
    case 'array': {
      const item = sample(schema.items, schemas, depth + 1)
      return item === undefined ? [] : [item]
    }
    case 'string': {
      if (schema.format && SAMPLE_STRINGS[schema.format]) return SAMPLE_STRINGS[schema.format]
      const min = schema.minLength ?? 0
      const text = 'exemple'
      return text.length >= min ? text.slice(0, schema.maxLength ?? text.length) : text.padEnd(min, 'x')
    }
    case 'integer':
    case 'number':
      return schema.minimum !== undefined && schema.minimum > 1 ? schema.minimum : schema.maximum !== undefined && schema.maximum < 1 ? schema.maximum : 1
    case 'boolean':
      return true
    case 'null':
      return null
    default:
      // Any value (a schema without type): null is one.
      return null
  }
}

const resolveShallow = (s: Schema | undefined, schemas: Record<string, Schema>) => (s?.$ref ? schemas[String(s.$ref).split('/').pop()!] : s)

/**
 * The feed item, the stream's `data` and the webhook body are one of the typed events, told apart by `type`;
 * the document's `webhooks` lists every event a webhook endpoint receives.
 */
function typedEvents(doc: Doc, schemas: Record<string, Schema>) {
  const refs = EVENT_TYPE_NAMES.map((t) => ({ $ref: `#/components/schemas/${eventSchemaId(t)}` }))
  const mapping = Object.fromEntries(EVENT_TYPE_NAMES.map((t) => [t, `#/components/schemas/${eventSchemaId(t)}`]))
  schemas.FeedEvent = {
    description: 'An event of your feed (also the `data` of the stream and the body of a webhook delivery): one of the event types below, told apart by `type`; each type has its own payload.',
    oneOf: refs,
    discriminator: { propertyName: 'type', mapping },
  }
  doc.webhooks = Object.fromEntries(
    EVENT_TYPE_NAMES.map((t) => [
      t,
      {
        post: {
          operationId: `on${eventSchemaId(t)}`,
          summary: EVENT_TYPES[t].label.en,
          description: `${EVENT_TYPES[t].description}\n\nSigned per Standard Webhooks (headers \`webhook-id\`, \`webhook-timestamp\`, \`webhook-signature\`). Answer 2xx within 10 s; anything else is retried; 410 Gone disables the endpoint.`,
          tags: ['webhooks'],
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${eventSchemaId(t)}` } } } },
          responses: { 200: { description: 'Received.' }, 410: { description: 'Gone: the endpoint is disabled.' } },
        },
      },
    ]),
  )
}

/**
 * Contract-driven fuzzing: every operation of the OpenAPI document the app serves is called with requests made
 * from its own schemas and examples (openapi-sampler), with a token of each role it allows, then with hostile
 * mutations drawn by fast-check. Every answer is checked against the same document: no 5xx, a documented status,
 * a body valid against the documented schema (ajv), every error application/problem+json, French unless English
 * was asked, never a regular expression shown. Nothing here names a route: a route added tomorrow is fuzzed too.
 *
 * Seeded: FUZZ_SEED reproduces a run, FUZZ_N multiplies the number of generated cases.
 */
import { randomUUID } from 'node:crypto'
import type http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import OpenAPISampler from 'openapi-sampler'
import { isCip13 } from '../../src/platform/identifiers.ts'
import type { Role } from '../../src/platform/db/schema.ts'
import { signDevToken } from '../../src/platform/tokens.ts'
import type { Config } from '../../src/platform/config.ts'
import { loadDemoData } from '../../src/demo/seed.ts'
import { connectHttp2, http2Request, testApp } from '../helpers.ts'

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261122)
export const FUZZ_N = Math.max(1, Number(process.env.FUZZ_N ?? 1))

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type Doc = Record<string, any>

export interface Operation {
  method: string
  path: string
  op: Record<string, any>
  /** Roles allowed (x-roles); 'public' when the operation needs no token. */
  roles: Role[] | 'public'
  params: Array<{ name: string; in: 'path' | 'query' | 'header'; required: boolean; schema: any }>
  body?: { type: string; schema: any; required: boolean }
  stream: boolean
}

export interface Request {
  method: string
  url: string
  headers: Record<string, string>
  payload?: string | Buffer
}

/** An answer as the checks read it; 'not sent': the transport cannot carry that request (see fuzzApp). */
export type Sent = { statusCode: number; headers: Record<string, unknown>; body: string } | 'not sent'

export interface Case {
  op: Operation
  kind: string
  request: Request
  /** English asked: messages may be English; otherwise they must be French. */
  lang: 'fr' | 'en'
}

export interface Failure {
  operation: string
  kind: string
  status: number
  problem: string
  request: string
}

/** The demo organisations a token is made for, per role (two labs: the examples name products of either). */
export const ORGS: Record<Role, string[]> = {
  pharmacy: ['750100010', '690100020'],
  lab: ['412345670', '301234563'],
  ansm: ['ANSM'],
  wholesaler: ['920100070'],
  hospital: ['750100080'],
  prescriber: ['10001234565'],
  ordre: ['ORDRE'],
  ministry: ['MINISTERE'],
}
const ALL_ROLES = Object.keys(ORGS) as Role[]

const JSON_TYPES = /^application\/(.+\+)?json\b/

export class ContractFuzzer {
  readonly doc: Doc
  /** The document with an example for every patterned string that has none (fast-check's stringMatching). */
  private readonly sampleDoc: Doc
  readonly operations: Operation[]
  readonly failures: Failure[] = []
  readonly statusCounts = new Map<number, number>()
  requests = 0
  /** Requests the transport could not carry (fuzzApp's HTTP/2 header limit). */
  notSent = 0
  /** Milliseconds spent per operation, to see where a run's time goes. */
  readonly timeByOperation = new Map<string, number>()
  private readonly ajv: Ajv
  private readonly validators = new Map<string, ReturnType<Ajv['compile']>>()
  /** Identifiers seen in answers, by the path prefix and name of the parameter they can fill. */
  private readonly pool = new Map<string, Set<string>>()
  private readonly tokens = new Map<string, string>()
  private readonly samples = new WeakMap<object, Json>()
  /** Every problem type answered: each must resolve to its description. */
  readonly problemTypes = new Set<string>()

  constructor(
    readonly app: FastifyInstance,
    readonly config: Config,
    doc: Doc,
    /** How a request reaches the app: app.inject (no network) unless given, e.g. over HTTP/2. */
    private readonly send: (request: Request) => Promise<Sent> = async (request) => app.inject(request as any),
  ) {
    this.doc = doc
    this.sampleDoc = withPatternExamples(structuredClone(doc))
    // Response schemas are validated against the document's own components.
    const ajv = new Ajv({ strict: false, allErrors: false, validateFormats: true })
    addFormats(ajv)
    ajv.addFormat('cip13', { type: 'string', validate: (v: string) => isCip13(v) })
    ajv.addSchema({ $id: 'openapi', components: JSON.parse(JSON.stringify(doc.components).replaceAll('"#/components/', '"openapi#/components/')) })
    this.ajv = ajv
    this.operations = operationsOf(doc)
  }

  token(role: Role, org: string, extra: { expiresIn?: number } = {}) {
    const key = `${role}:${org}:${extra.expiresIn ?? ''}`
    let token = this.tokens.get(key)
    if (!token) this.tokens.set(key, (token = signDevToken(this.config, { role, org, sub: `fuzz-${role}`, ...extra })))
    return token
  }

  // ---- generation -------------------------------------------------------------------------------------

  /** A value from the schema's examples (or made from it), computed once per schema; a copy each time. */
  sample(schema: any): Json {
    if (!schema || typeof schema !== 'object') return null
    let v = this.samples.get(schema)
    if (v === undefined) {
      const own = schema.$ref ? schema : withPatternExamples(structuredClone(schema))
      v = (OpenAPISampler.sample(own, { skipReadOnly: true, skipNonRequired: false, quiet: true }, this.sampleDoc) as Json) ?? null
      this.samples.set(schema, v)
    }
    return v !== null && typeof v === 'object' ? structuredClone(v) : v
  }

  /** The value a path parameter takes: an identifier seen in an earlier answer, else the schema's example. */
  pathValue(op: Operation, name: string, pick: number): string {
    const seen = [...(this.pool.get(poolKey(op.path, name)) ?? [])]
    if (seen.length && pick % 4 !== 3) return seen[pick % seen.length]!
    const p = op.params.find((x) => x.name === name && x.in === 'path')
    return String(this.sample(p?.schema ?? { type: 'string' }) ?? 'x')
  }

  /** A valid request from the schemas and examples, for one role's organisation. */
  validRequest(op: Operation, auth: { role: Role; org: string } | null, pick = 0, dropOptional: number[] = []): { path: Record<string, string>; query: Record<string, string>; headers: Record<string, string>; body?: Json } {
    const path: Record<string, string> = {}
    const query: Record<string, string> = {}
    const headers: Record<string, string> = {}
    for (const p of op.params) {
      if (p.in === 'path') path[p.name] = this.pathValue(op, p.name, pick)
      else if (p.in === 'query') {
        if (!p.required && dropOptional.includes(op.params.indexOf(p))) continue
        const v = this.sample(p.schema)
        if (v === undefined || v === null) continue
        // A long-poll or stream that waits for news would only slow the run down.
        if (p.name === 'wait') continue
        query[p.name] = Array.isArray(v) ? v.join(',') : String(v)
      } else if (p.in === 'header' && p.name === 'idempotency-key') {
        if (pick % 2 === 0) headers[p.name] = randomUUID()
      }
    }
    if (auth) headers.authorization = `Bearer ${this.token(auth.role, auth.org)}`
    let body: Json | undefined
    if (op.body) {
      body = this.sample(op.body.schema)
      if (body && typeof body === 'object' && !Array.isArray(body) && dropOptional.length) {
        const required = new Set<string>(resolve(this.doc, op.body.schema)?.required ?? [])
        const keys = Object.keys(body).filter((k) => !required.has(k))
        for (const i of dropOptional) if (keys.length) delete (body as Record<string, Json>)[keys[i % keys.length]!]
      }
    }
    return { path, query, headers, body }
  }

  build(op: Operation, parts: { path: Record<string, string>; rawPath?: Record<string, string>; query: Record<string, string | string[]>; rawQuery?: string; headers: Record<string, string>; body?: Json; payload?: string | Buffer; contentType?: string | null }): Request {
    let url = op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => parts.rawPath?.[name] ?? encodeURIComponent(parts.path[name] ?? 'x'))
    const qs = new URLSearchParams()
    for (const [k, v] of Object.entries(parts.query)) for (const x of Array.isArray(v) ? v : [v]) qs.append(k, x)
    const q = [qs.toString(), parts.rawQuery].filter(Boolean).join('&')
    if (q) url += `?${q}`
    const headers = { ...parts.headers }
    let payload: string | Buffer | undefined = parts.payload
    if (payload === undefined && parts.body !== undefined && op.body) {
      payload = typeof parts.body === 'string' && !JSON_TYPES.test(op.body.type) ? parts.body : JSON.stringify(parts.body)
    }
    if (payload !== undefined) {
      const ct = parts.contentType === undefined ? (op.body?.type ?? 'application/json') : parts.contentType
      if (ct !== null) headers['content-type'] = ct
    }
    return { method: op.method, url, headers, payload }
  }

  // ---- running and checking ---------------------------------------------------------------------------

  async run(c: Case): Promise<{ status: number; body: any } | null> {
    this.requests++
    const { request } = c
    if (c.lang === 'en') request.headers['accept-language'] = 'en'
    let res
    const started = performance.now()
    if (c.op.stream) {
      // A stream never ends: read the status and headers, then hang up.
      const streamed: any = await this.app.inject({ ...request, payloadAsStream: true } as any)
      const chunks: Buffer[] = []
      if (streamed.statusCode >= 300) {
        for await (const chunk of streamed.stream()) chunks.push(Buffer.from(chunk))
      } else streamed.stream().destroy()
      res = { statusCode: streamed.statusCode, headers: streamed.headers, body: Buffer.concat(chunks).toString('utf8') }
    } else {
      // An answer that does not come is a finding too (a long-poll that ignores its bound, a lock never freed).
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ANSWER_WITHIN_MS)))
      const answered = await Promise.race([this.send(request), timeout])
      clearTimeout(timer)
      if (!answered) {
        this.fail(c, 0, `no answer within ${ANSWER_WITHIN_MS} ms`)
        return null
      }
      if (answered === 'not sent') {
        this.requests--
        this.notSent++
        return null
      }
      res = answered
    }
    const key = `${c.op.method} ${c.op.path}`
    this.timeByOperation.set(key, (this.timeByOperation.get(key) ?? 0) + performance.now() - started)
    this.statusCounts.set(res.statusCode, (this.statusCounts.get(res.statusCode) ?? 0) + 1)
    const body = this.check(c, res.statusCode, res.headers as Record<string, string>, res.body)
    if (res.statusCode >= 200 && res.statusCode < 300 && body && typeof body === 'object') this.harvest(c.op.path, body)
    return { status: res.statusCode, body }
  }

  private fail(c: Case, status: number, problem: string) {
    const r = c.request
    const payload = r.payload === undefined ? '' : ` ${String(r.payload).slice(0, 300)}${String(r.payload).length > 300 ? '…' : ''}`
    this.failures.push({ operation: `${c.op.method} ${c.op.path}`, kind: c.kind, status, problem, request: `${r.method} ${r.url.slice(0, 300)}${payload}` })
  }

  check(c: Case, status: number, headers: Record<string, string>, text: string): any {
    if (status >= 500) this.fail(c, status, `server error: ${text.slice(0, 300)}`)
    const documented = c.op.op.responses?.[String(status)] ?? c.op.op.responses?.default
    if (!documented) this.fail(c, status, `status ${status} not documented (${Object.keys(c.op.op.responses ?? {}).join(', ')})`)
    const ct = String(headers['content-type'] ?? '')
    const media = ct.split(';')[0]!.trim()
    if (status >= 400 && media !== 'application/problem+json') this.fail(c, status, `error not problem+json: ${ct} ${text.slice(0, 200)}`)
    let body: any
    if (JSON_TYPES.test(media)) {
      try {
        body = JSON.parse(text)
      } catch {
        this.fail(c, status, `body is not JSON though ${media}`)
        return undefined
      }
    }
    if (documented) {
      const content = documented.content as Record<string, { schema?: any }> | undefined
      if (!content) {
        if (status !== 204 && text.length && status < 400) this.fail(c, status, 'a body where the contract documents none')
      } else if (status !== 204 || text.length) {
        const entry = content[media] ?? Object.entries(content).find(([k]) => k.endsWith('/*') && media.startsWith(k.slice(0, -1)))?.[1]
        if (!entry) this.fail(c, status, `content type ${ct || '(none)'} not documented (${Object.keys(content).join(', ')})`)
        else if (body !== undefined && entry.schema) {
          const validate = this.validator(entry.schema)
          if (!validate(body)) this.fail(c, status, `body does not match its schema: ${this.ajv.errorsText(validate.errors, { dataVar: 'body' })} — ${text.slice(0, 200)}`)
        }
      }
    }
    if (status >= 400 && body && typeof body === 'object') this.checkLanguage(c, status, body)
    return body
  }

  /** French unless English was asked; a person reads it, so no regular expression and no validator jargon. */
  private checkLanguage(c: Case, status: number, body: any) {
    const texts: string[] = [body.title, body.detail, ...(Array.isArray(body.errors) ? body.errors.map((e: any) => e?.message) : [])].filter((x) => typeof x === 'string')
    for (const text of texts) {
      if (REGEX_SHOWN.test(text)) this.fail(c, status, `a regular expression is shown: ${text}`)
      if (c.lang === 'fr' && ENGLISH.test(text)) this.fail(c, status, `English in a French answer: ${text}`)
    }
    if (typeof body.type === 'string' && !body.type.startsWith(`/problems/`)) this.fail(c, status, `problem type ${body.type} is not a /problems/ URI`)
    else if (typeof body.type === 'string') this.problemTypes.add(body.type)
  }

  // By the schema itself, not by the operation: most answers share theirs (every problem+json answer is a Problem),
  // and compiling one is most of what checking an answer costs.
  private validator(schema: any) {
    const text = JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/')
    let v = this.validators.get(text)
    if (!v) this.validators.set(text, (v = this.ajv.compile(JSON.parse(text))))
    return v
  }

  /** Remembers identifiers from an answer so that operations under the same path can use them. */
  private harvest(path: string, body: any) {
    const base = path.replace(/\/\{[^}]+\}.*$/, '').replace(/\/$/, '')
    const items = Array.isArray(body) ? body : Array.isArray(body.items) ? [...body.items, body] : [body]
    for (const item of items.slice(0, 20)) {
      if (!item || typeof item !== 'object') continue
      for (const [k, v] of Object.entries(item)) {
        if ((typeof v === 'string' && v.length <= 100) || (typeof v === 'number' && Number.isInteger(v))) {
          const key = poolKey(`${base}/{${k}}`, k)
          const set = this.pool.get(key) ?? new Set<string>()
          if (set.size < 8) set.add(String(v))
          this.pool.set(key, set)
        }
      }
    }
  }

  /** GET on every problem type seen: a documented answer (200) for each. */
  async checkProblemTypes() {
    for (const type of this.problemTypes) {
      const res = await this.app.inject({ method: 'GET', url: type })
      this.requests++
      if (res.statusCode !== 200) this.failures.push({ operation: `GET ${type}`, kind: 'problem type', status: res.statusCode, problem: 'a problem type that does not resolve', request: `GET ${type}` })
    }
  }

  allowedAuths(op: Operation): Array<{ role: Role; org: string } | null> {
    if (op.roles === 'public') return [null]
    return op.roles.flatMap((role) => ORGS[role].map((org) => ({ role, org })))
  }

  /** The roles not allowed on an operation (a 403 expected). */
  forbiddenRoles(op: Operation): Role[] {
    return op.roles === 'public' ? [] : ALL_ROLES.filter((r) => !(op.roles as Role[]).includes(r))
  }

  report(): string {
    const byProblem = new Map<string, Failure[]>()
    for (const f of this.failures) {
      const key = `${f.operation} [${f.kind}] ${f.status}: ${f.problem.replace(/ — .*$/, '').slice(0, 160)}`
      byProblem.set(key, [...(byProblem.get(key) ?? []), f])
    }
    return [...byProblem.entries()]
      .slice(0, 60)
      .map(([k, fs]) => `${k} (×${fs.length})\n    ${fs[0]!.request}`)
      .join('\n')
  }
}

const ANSWER_WITHIN_MS = 10_000
const ENGLISH = /\b(must|should|NOT have|properties|required property|is not|fields?)\b/
const REGEX_SHOWN = /\\[dDwWsS]|\^\(|\^\[|\]\{|\]\+\$|\]\*\$|\)\$|\(\?:/

const poolKey = (path: string, name: string) => `${path.slice(0, path.indexOf(`{${name}}`))}|${name}`

/** Gives every string schema with a pattern and no example one that matches, drawn by fast-check. */
function withPatternExamples<T>(node: T): T {
  if (Array.isArray(node)) node.forEach(withPatternExamples)
  else if (node && typeof node === 'object') {
    const s = node as Record<string, any>
    if (typeof s.pattern === 'string' && !s.examples && s.example === undefined && !s.enum) {
      try {
        s.examples = fc.sample(fc.stringMatching(new RegExp(s.pattern, 'u'), { size: 'xsmall' }), { seed: FUZZ_SEED, numRuns: 1 })
      } catch {
        // an expression fast-check cannot generate from: the sampler's placeholder will do
      }
    }
    for (const v of Object.values(s)) withPatternExamples(v)
  }
  return node
}

/** Resolves a local $ref of the document. */
export function resolve(doc: Doc, schema: any): any {
  let s = schema
  for (let i = 0; s && s.$ref && i < 10; i++) s = s.$ref.split('/').slice(1).reduce((o: any, k: string) => o?.[k.replaceAll('~1', '/').replaceAll('~0', '~')], doc)
  return s
}

export function operationsOf(doc: Doc): Operation[] {
  const out: Operation[] = []
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue
      const roles = Array.isArray(op['x-roles']) ? (op['x-roles'] as Role[]) : 'public'
      const params = (op.parameters ?? []).map((p: any) => {
        const r = resolve(doc, p)
        return { name: r.name, in: r.in, required: !!r.required, schema: r.schema ?? { type: 'string' } }
      })
      let body: Operation['body']
      const content = op.requestBody?.content as Record<string, { schema: any }> | undefined
      if (content) {
        const type = Object.keys(content).find((k) => JSON_TYPES.test(k)) ?? Object.keys(content)[0]!
        body = { type, schema: content[type]!.schema ?? { type: 'string' }, required: !!op.requestBody.required }
      }
      const ok = op.responses?.['200']?.content ?? {}
      out.push({ method: method.toUpperCase(), path, op, roles, params, body, stream: 'text/event-stream' in ok })
    }
  }
  return out
}

// ---- hostile values, drawn by fast-check ----------------------------------------------------------------

/** Strings a careless service chokes on: NUL, lone surrogates, quoting, traversal, control characters. */
export const hostileString = fc.oneof(
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfffy', '\udc00\ud800', "'", '"', "1' OR '1'='1", '\\', '../../etc/passwd', '%00', '\u202e', '\r\n', '=cmd|" /C calc"!A0', '', ' ', '😀', 'é'.repeat(3)),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
)
/** Numbers outside any sane range, written as raw JSON (some cannot come from JSON.stringify). */
export const hostileNumberText = fc.constantFrom('1e309', '-1e309', '99999999999999999999', `1${'0'.repeat(400)}`, '-99999999999999999999', '1.5', '-1', '0', '1e-400', '9007199254740993', '2147483648', '-2147483649', '32768')
/** Values of the wrong type for whatever field they replace. */
export const wrongValue = fc.constantFrom<Json>(1, -1, 1.5, 'x', '2', 'true', true, false, null, [], {}, [1], { a: 1 }, [null])
/** Query or path parameter values (already URL-encoded where needed). */
export const hostileParam = fc.oneof(
  fc.constantFrom('1e309', '-1e309', '99999999999999999999', `1${'0'.repeat(400)}`, 'NaN', 'Infinity', '-Infinity', '-1', '1.5', '0x1F', '', '%00', 'a%00b', '%ED%A0%80', '%27', '%22', '%27%20OR%20%271%27%3D%271', '..', '..%2F..%2Fetc%2Fpasswd', '%2e%2e%2f', '%25', '%ff', '%', 'null', 'true', '[]', '{}', 'é', '%F0%9F%98%80'),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
  fc.integer({ min: 101, max: 300 }).map((n) => 'a'.repeat(n)),
)
export const hostileContentType = fc.constantFrom('text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/octet-stream', 'text/csv', 'application/merge-patch+json', null)
export const malformedJson = fc.constantFrom('{', '{"a":', '[1,2', '{"a":1}}', 'nul', '\u0000', "{'a':1}", '{"a":1,}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '"', '1e309', '[]', '""', 'null', '{}', ' ')
/** A forged pagination cursor: base64url of anything, or not base64 at all. */
export const forgedCursor = fc.oneof(
  fc.json().map((j) => Buffer.from(j).toString('base64url')),
  fc.record({ p: fc.oneof(fc.json().map((j) => JSON.parse(j)), fc.dictionary(fc.string(), hostileString)), f: fc.string({ maxLength: 12 }) }).map((o) => Buffer.from(JSON.stringify(o)).toString('base64url')),
  fc.string({ maxLength: 60 }).map(encodeURIComponent),
  fc.constantFrom('%00', '%ff', 'a'.repeat(600)),
)

export type Mutation =
  | { kind: 'body-wrong-type'; at: number; value: Json }
  | { kind: 'body-missing-field'; at: number }
  | { kind: 'body-extra-field'; at: number; name: string }
  | { kind: 'body-hostile-string'; at: number; value: string }
  | { kind: 'body-huge-string'; at: number; size: number }
  | { kind: 'body-hostile-number'; at: number; text: string }
  | { kind: 'body-malformed-json'; text: string }
  | { kind: 'body-not-object'; value: Json }
  | { kind: 'content-type'; type: string | null }
  | { kind: 'query-hostile'; at: number; value: string }
  | { kind: 'query-repeated'; at: number }
  | { kind: 'query-unknown'; name: string }
  | { kind: 'cursor-forged'; value: string }
  | { kind: 'path-hostile'; at: number; value: string }
  | { kind: 'auth'; how: 'none' | 'garbage' | 'basic' | 'expired' | 'unknown-org' | 'forbidden-role' | 'huge' | 'wrong-scheme' }
  | { kind: 'idempotency-key'; value: string }

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('body-wrong-type' as const), at: fc.nat(), value: wrongValue }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('body-missing-field' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('body-extra-field' as const), at: fc.nat(), name: fc.constantFrom('extra', '__proto__x', 'constructor', '') }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('body-hostile-string' as const), at: fc.nat(), value: hostileString }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('body-huge-string' as const), at: fc.nat(), size: fc.constantFrom(1_000_000, 70_000, 10_001) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('body-hostile-number' as const), at: fc.nat(), text: hostileNumberText }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('body-malformed-json' as const), text: malformedJson }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('body-not-object' as const), value: wrongValue }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('content-type' as const), type: hostileContentType }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('query-hostile' as const), at: fc.nat(), value: hostileParam }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('query-repeated' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('query-unknown' as const), name: fc.constantFrom('x', 'limit[]', '__proto__', 'constructor') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cursor-forged' as const), value: forgedCursor }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('path-hostile' as const), at: fc.nat(), value: hostileParam }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('auth' as const), how: fc.constantFrom('none', 'garbage', 'basic', 'expired', 'unknown-org', 'forbidden-role', 'huge', 'wrong-scheme') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('idempotency-key' as const), value: fc.oneof(fc.constantFrom('short', 'a'.repeat(300), 'é'.repeat(10), 'with space in it'), fc.string({ minLength: 8, maxLength: 20 })) }) },
)

/** Paths (as key lists) to every value inside a JSON value, the root excluded. */
export function leaves(value: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = []
  if (Array.isArray(value)) value.forEach((v, i) => out.push([...prefix, i], ...leaves(v, [...prefix, i])))
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push([...prefix, k], ...leaves(v, [...prefix, k]))
  return out
}

export function setAt(root: Json, path: Array<string | number>, value: Json | undefined): Json {
  if (!path.length) return value as Json
  const copy = structuredClone(root) as any
  let node = copy
  for (const k of path.slice(0, -1)) node = node[k]
  const last = path.at(-1)!
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1)
    else delete node[last]
  } else node[last] = value
  return copy
}

// ---- the phases ---------------------------------------------------------------------------------------

/** Creating operations first (they feed identifiers to the others), deletions last. */
export function ordered(ops: Operation[]): Operation[] {
  const rank = (o: Operation) => (o.method === 'DELETE' ? 3 : o.method === 'POST' && !o.path.includes('{') ? 0 : o.method === 'GET' && !o.path.includes('{') ? 1 : 2)
  return [...ops].sort((a, b) => rank(a) - rank(b) || a.path.split('{').length - b.path.split('{').length)
}

/** Valid requests: every operation, every allowed role (each of its organisations), a role it does not allow. */
export async function validPhase(f: ContractFuzzer, rounds: number, firstRound = 0) {
  for (let round = firstRound; round < firstRound + rounds; round++) {
    for (const op of ordered(f.operations)) {
      const [drop] = fc.sample(fc.array(fc.nat(20), { maxLength: 3 }), { seed: FUZZ_SEED + round * 7919 + hash(op.method + op.path), numRuns: 1 })
      for (const auth of f.allowedAuths(op)) {
        const parts = f.validRequest(op, auth, round, round === 0 ? [] : drop)
        await f.run({ op, kind: round === 0 ? 'valid (examples)' : 'valid (optional fields dropped)', request: f.build(op, parts), lang: round % 2 ? 'en' : 'fr' })
      }
      if (round === 0) {
        for (const role of f.forbiddenRoles(op).slice(0, 2)) {
          const parts = f.validRequest(op, { role, org: ORGS[role][0]! })
          await f.run({ op, kind: `role ${role} not allowed`, request: f.build(op, parts), lang: 'fr' })
        }
      }
    }
  }
}

/**
 * Sets up an app for fuzzing: the demo data (organisations, products, shortages) and the served contract. With
 * `http2`, the app listens and every request but the streams goes over one HTTP/2 connection (platform/http2.ts).
 */
export async function fuzzApp(t: Parameters<typeof testApp>[0], opts: { http2?: boolean } = {}) {
  const { app, database, config } = await testApp(t, { seed: false })
  await loadDemoData(database.db)
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  if (!opts.http2) return new ContractFuzzer(app, config, doc)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const session = await connectHttp2(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
  t.teardown(() => session.destroy())
  return new ContractFuzzer(app, config, doc, (request) => overHttp2(session, request))
}

/** Node refuses a header list over 64 KiB (the stream is reset, no answer): such a request is not sent. */
const HTTP2_HEADER_LIST_LIMIT = 65_535

async function overHttp2(session: http2.ClientHttp2Session, request: Request): Promise<Sent> {
  const size = Object.entries(request.headers).reduce((n, [k, v]) => n + k.length + String(v).length + 32, request.url.length + 64)
  if (size > HTTP2_HEADER_LIST_LIMIT) return 'not sent'
  const { status, headers, body } = await http2Request(session, request.method, request.url, request.headers, request.payload)
  return { statusCode: status, headers, body }
}

/** What a run prints: the seed to reproduce it, its size and time, where the time went, what broke. */
export function summary(f: ContractFuzzer, started: number) {
  const seconds = (Date.now() - started) / 1000
  const statuses = JSON.stringify(Object.fromEntries([...f.statusCounts].sort((a, b) => a[0] - b[0])))
  const slowest = [...f.timeByOperation].sort((a, b) => b[1] - a[1]).slice(0, 8)
  return [
    `FUZZ_SEED=${FUZZ_SEED} FUZZ_N=${FUZZ_N}: ${f.requests} requests in ${seconds.toFixed(1)} s on ${process.env.DATABASE_URL ? 'PostgreSQL' : 'the embedded database'}; statuses ${statuses}`,
    `slowest operations: ${slowest.map(([k, ms]) => `${k} ${Math.round(ms)} ms`).join('; ')}`,
    ...(f.failures.length ? [`answers outside the contract (reproduce with FUZZ_SEED=${FUZZ_SEED} FUZZ_N=${FUZZ_N}):\n${f.report()}`] : []),
  ]
}

/** The same creating write sent several times at once: one may win, the others get a documented answer. */
export async function racePhase(f: ContractFuzzer, copies = 8) {
  for (const op of f.operations) {
    if (!['POST', 'PUT', 'DELETE', 'PATCH'].includes(op.method) || op.stream) continue
    const auth = f.allowedAuths(op)[0] ?? null
    const parts = f.validRequest(op, auth, 1)
    delete parts.headers['idempotency-key']
    const request = f.build(op, parts)
    await Promise.all(Array.from({ length: copies }, () => f.run({ op, kind: 'concurrent duplicates', request: { ...request, headers: { ...request.headers } }, lang: 'fr' })))
    // And the same with one Idempotency-Key: one runs, the others replay or wait.
    if (op.params.some((p) => p.name === 'idempotency-key')) {
      const key = randomUUID()
      await Promise.all(Array.from({ length: 4 }, () => f.run({ op, kind: 'concurrent duplicates (same key)', request: { ...request, headers: { ...request.headers, 'idempotency-key': key } }, lang: 'fr' })))
      // The key again with another body: refused, documented.
      if (request.payload !== undefined) await f.run({ op, kind: 'idempotency key reused', request: { ...request, headers: { ...request.headers, 'idempotency-key': key }, payload: `${request.payload} ` === request.payload ? request.payload : JSON.stringify({ other: true }) }, lang: 'fr' })
    }
  }
  // PUT racing DELETE on the same resource.
  for (const put of f.operations.filter((o) => o.method === 'PUT')) {
    const del = f.operations.find((o) => o.method === 'DELETE' && o.path === put.path)
    if (!del) continue
    const auth = f.allowedAuths(put)[0] ?? null
    const parts = f.validRequest(put, auth, 1)
    const requests = [f.build(put, parts), f.build(del, { ...f.validRequest(del, auth, 1), path: parts.path }), f.build(put, parts), f.build(del, { ...f.validRequest(del, auth, 1), path: parts.path })]
    for (let i = 0; i < 3; i++) {
      await Promise.all(requests.map((request, j) => f.run({ op: j % 2 ? del : put, kind: 'PUT racing DELETE', request: { ...request, headers: { ...request.headers } }, lang: 'fr' })))
    }
  }
}

/** Hostile mutations of valid requests, drawn by fast-check from the seed; `share` splits the operations between files. */
export async function hostilePhase(f: ContractFuzzer, perOperation: number, share: { part: number; of: number } = { part: 0, of: 1 }) {
  for (const op of ordered(f.operations).filter((_o, i) => i % share.of === share.part)) {
    // Drawn in excess: a mutation that does not apply (a body mutation on a GET) gives way to the next.
    const mutations = fc.sample(mutation, { seed: FUZZ_SEED + hash(op.method + op.path), numRuns: perOperation * 4 })
    const auths = f.allowedAuths(op)
    let sent = 0
    for (const [i, m] of mutations.entries()) {
      if (sent >= perOperation) break
      const auth = auths[i % auths.length] ?? null
      const request = applyMutation(f, op, auth, m, i)
      if (!request) continue
      sent++
      await f.run({ op, kind: m.kind, request, lang: i % 3 === 2 ? 'en' : 'fr' })
    }
  }
}

function applyMutation(f: ContractFuzzer, op: Operation, auth: { role: Role; org: string } | null, m: Mutation, i: number): Request | null {
  const parts: Parameters<ContractFuzzer['build']>[1] = f.validRequest(op, auth, i)
  const bodyLeaves = parts.body === undefined ? [] : leaves(parts.body)
  const query = op.params.filter((p) => p.in === 'query')
  const pathParams = op.params.filter((p) => p.in === 'path')
  const pick = <T>(list: T[], at: number) => list[at % list.length]!
  const raw = new Map<string, string>()
  switch (m.kind) {
    case 'body-wrong-type':
    case 'body-hostile-string':
    case 'body-huge-string':
    case 'body-hostile-number': {
      if (parts.body === undefined) return null
      const strings = m.kind === 'body-hostile-string' || m.kind === 'body-huge-string' ? bodyLeaves.filter((p) => typeof getAt(parts.body!, p) === 'string') : bodyLeaves
      const targets = strings.length ? strings : [[] as Array<string | number>]
      const at = pick(targets, m.at)
      if (m.kind === 'body-wrong-type') parts.body = setAt(parts.body, at, m.value)
      else if (m.kind === 'body-hostile-string') parts.body = setAt(parts.body, at, m.value)
      else if (m.kind === 'body-huge-string') parts.body = setAt(parts.body, at, 'x'.repeat(m.size))
      else {
        const marker = `__RAW_${i}__`
        raw.set(`"${marker}"`, m.text)
        parts.body = setAt(parts.body, at, marker)
      }
      break
    }
    case 'body-missing-field': {
      const objects = bodyLeaves.filter((p) => typeof p.at(-1) === 'string')
      if (!objects.length) return null
      parts.body = setAt(parts.body!, pick(objects, m.at), undefined)
      break
    }
    case 'body-extra-field': {
      if (!parts.body || typeof parts.body !== 'object' || Array.isArray(parts.body)) return null
      parts.body = { ...parts.body, [m.name]: 1 }
      break
    }
    case 'body-malformed-json':
      if (!op.body && op.method === 'GET') return null
      parts.payload = m.text
      parts.contentType = 'application/json'
      break
    case 'body-not-object':
      if (!op.body) return null
      parts.body = m.value
      break
    case 'content-type':
      if (op.method === 'GET') return null
      parts.payload = parts.body === undefined ? '{}' : typeof parts.body === 'string' ? parts.body : JSON.stringify(parts.body)
      parts.contentType = m.type
      break
    case 'query-hostile': {
      // Not the long-poll's wait: a "hostile" value the service rightly reads as a wait (039, 39 s) would be answered
      // only when that wait is over, after the run's time limit for an answer (as in validRequest).
      const hostile = query.filter((q) => q.name !== 'wait')
      if (!hostile.length) return null
      const p = pick(hostile, m.at)
      delete parts.query[p.name]
      parts.rawQuery = `${encodeURIComponent(p.name)}=${m.value}`
      break
    }
    case 'query-repeated': {
      if (!query.length) return null
      const p = pick(query, m.at)
      const v = String(f.sample(p.schema) ?? '1')
      parts.query[p.name] = [v, v, 'x']
      break
    }
    case 'query-unknown':
      parts.query[m.name] = '1'
      break
    case 'cursor-forged': {
      const p = query.find((q) => q.name === 'cursor' || q.name === 'after')
      if (!p) return null
      delete parts.query[p.name]
      parts.rawQuery = `${p.name}=${m.value}`
      break
    }
    case 'path-hostile': {
      // A dot segment (.., %2e%2e) is removed by URL normalisation (RFC 3986, 5.2.4) here as in every client: the
      // request names another path (PUT /v1/lab-holders/.. is PUT /v1/), never this operation with that value.
      if (!pathParams.length || /^(\.|%2e){1,2}$/i.test(m.value)) return null
      const p = pick(pathParams, m.at)
      parts.rawPath = { [p.name]: m.value === '' ? '%20' : m.value }
      break
    }
    case 'auth': {
      if (op.roles === 'public') return null
      if (m.how === 'none') delete parts.headers.authorization
      else if (m.how === 'garbage') parts.headers.authorization = 'Bearer abc.def.ghi'
      else if (m.how === 'basic') parts.headers.authorization = 'Basic dXNlcjpwYXNz'
      else if (m.how === 'wrong-scheme') parts.headers.authorization = `Token ${f.token(auth!.role, auth!.org)}`
      else if (m.how === 'expired') parts.headers.authorization = `Bearer ${f.token(auth!.role, auth!.org, { expiresIn: -3600 })}`
      else if (m.how === 'unknown-org') parts.headers.authorization = `Bearer ${f.token(auth!.role, '999999999')}`
      else if (m.how === 'huge') parts.headers.authorization = `Bearer ${'a'.repeat(100_000)}`
      else {
        const role = f.forbiddenRoles(op)[0]
        if (!role) return null
        parts.headers.authorization = `Bearer ${f.token(role, ORGS[role][0]!)}`
      }
      break
    }
    case 'idempotency-key':
      if (!op.params.some((p) => p.name === 'idempotency-key')) return null
      parts.headers['idempotency-key'] = m.value
      break
  }
  const request = f.build(op, parts)
  if (raw.size && typeof request.payload === 'string') for (const [k, v] of raw) request.payload = request.payload.replace(k, v)
  return request
}

function getAt(root: Json, path: Array<string | number>): Json {
  return path.reduce<any>((o, k) => o?.[k], root)
}

function hash(s: string) {
  let h = 0
  for (const ch of s) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0
  return Math.abs(h)
}

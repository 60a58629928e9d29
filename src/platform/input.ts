import { AjvCompiler } from '@fastify/ajv-compiler'
import type { ValidatorFactory } from '@fastify/ajv-compiler'
import type { Plugin } from 'ajv'
import ajvFormats from 'ajv-formats'

/**
 * What every route gets from the platform before its handler runs, so that no route can forget it:
 * - JSON bodies are validated strictly (a "2" is not a number, "true" not a boolean); only the query string,
 *   path parameters and headers, which are text by nature, are coerced;
 * - NaN and ±Infinity are never numbers (1e309 in JSON or in a query string parses to Infinity; a 400-digit
 *   integer too);
 * - integers without bounds are bounded to PostgreSQL's integer range (a 400-digit number would overflow the
 *   column and fail as a 500), shown as such in the contract;
 * - strings holding NUL or a lone surrogate are refused field by field (PostgreSQL stores neither in text or
 *   jsonb, and a lone surrogate is not Unicode);
 * - a number in the query string, a path parameter or a header is read only from plain decimal digits (Ajv's
 *   coercion reads text as JavaScript does: "0x1F" would be 31, "1e1" 10, " 5" 5).
 */

export const INT4_MIN = -2147483648
export const INT4_MAX = 2147483647

/** The years a business date may fall in, unless its schema says otherwise (a birth date does). */
export const DATE_MIN = '2000-01-01'
export const DATE_MAX = '2100-12-31'

/**
 * Bounds in place every integer and every date of a request schema that has no bound, following references
 * to named schemas. Bigint values (feed positions) and older dates (birth dates) declare their own bounds.
 * A year before 2000 is a typing mistake in this service (0050-06-15 would even be read back as 1950).
 */
export function boundIntegers(schema: unknown, lookup: (id: string) => unknown, seen = new Set<unknown>()): void {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return
  seen.add(schema)
  if (Array.isArray(schema)) {
    for (const s of schema) boundIntegers(s, lookup, seen)
    return
  }
  const s = schema as Record<string, unknown>
  const types = Array.isArray(s.type) ? s.type : [s.type]
  if (types.includes('integer')) {
    if (s.maximum === undefined && s.exclusiveMaximum === undefined) s.maximum = INT4_MAX
    if (s.minimum === undefined && s.exclusiveMinimum === undefined) s.minimum = INT4_MIN
  }
  if ((s.format === 'date' || s.format === 'date-time') && s.formatMinimum === undefined) {
    s.formatMinimum = s.format === 'date' ? DATE_MIN : `${DATE_MIN}T00:00:00Z`
    if (s.formatMaximum === undefined) s.formatMaximum = s.format === 'date' ? DATE_MAX : `${DATE_MAX}T23:59:59Z`
  }
  if (typeof s.$ref === 'string') boundIntegers(lookup(s.$ref.replace(/#.*$/, '')), lookup, seen)
  for (const [k, v] of Object.entries(s)) {
    if (k === 'examples' || k === 'default' || k === 'const' || k === 'enum') continue
    if (v && typeof v === 'object') boundIntegers(v, lookup, seen)
  }
}

export interface InputError {
  keyword: 'unicode' | 'finite' | 'decimal'
  instancePath: string
  params: { reason?: 'nul' | 'surrogate'; type?: 'integer' | 'number' }
  message: string
}

const NUL = '\u0000'
/** In Unicode mode a surrogate matches only when it is not half of a pair. */
const LONE_SURROGATE = /\p{Cs}/u

function badString(s: string): 'nul' | 'surrogate' | null {
  if (s.includes(NUL)) return 'nul'
  if (LONE_SURROGATE.test(s)) return 'surrogate'
  return null
}

const pointer = (k: string | number) => `/${String(k).replace(/~/g, '~0').replace(/\//g, '~1')}`

/**
 * Every string (value or key) of a parsed request part that PostgreSQL or Unicode would refuse, and every
 * number that is not finite. (Ajv's strictNumbers does not see what its own coercion made of "1e309".)
 */
export function inputErrors(data: unknown, path = '', out: InputError[] = [], depth = 0): InputError[] {
  if (out.length >= 20 || depth > 64) return out
  if (typeof data === 'number') {
    if (!Number.isFinite(data)) out.push({ keyword: 'finite', instancePath: path, params: {}, message: 'finite' })
  } else if (typeof data === 'string') {
    const reason = badString(data)
    if (reason) out.push({ keyword: 'unicode', instancePath: path, params: { reason }, message: reason })
  } else if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) inputErrors(data[i], path + pointer(i), out, depth + 1)
  } else if (data && typeof data === 'object') {
    for (const [k, v] of Object.entries(data)) {
      const reason = badString(k)
      if (reason) out.push({ keyword: 'unicode', instancePath: path + pointer(k.replace(/\u0000/g, '\\0')), params: { reason }, message: reason })
      else inputErrors(v, path + pointer(k), out, depth + 1)
    }
  }
  return out
}

/**
 * Whether inputErrors would find anything, without building the paths it reports: every request part goes through
 * it, and almost none has anything to report, so the detailed walk runs only for those.
 */
export function anyBadInput(data: unknown, depth = 0): boolean {
  if (depth > 64) return false // where inputErrors stops looking
  if (typeof data === 'number') return !Number.isFinite(data)
  if (typeof data === 'string') return badString(data) !== null
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) if (anyBadInput(data[i], depth + 1)) return true
    return false
  }
  if (data && typeof data === 'object') {
    for (const k in data) {
      if (!Object.hasOwn(data, k)) continue
      if (badString(k) !== null || anyBadInput((data as Record<string, unknown>)[k], depth + 1)) return true
    }
  }
  return false
}

/** How every client writes a number in a URL or a header. */
const DECIMAL = { integer: /^-?\d+$/, number: /^-?\d+(\.\d+)?$/ } as const
type NumericField = { name: string; type: keyof typeof DECIMAL }

/** The numeric fields of a query string, path or headers schema (its own properties, or those of the schema it names). */
function numericFields(schema: unknown, external: Record<string, unknown>): NumericField[] {
  type Props = { $ref?: string; properties?: Record<string, { type?: unknown }> }
  let s = schema as Props | undefined
  if (typeof s?.$ref === 'string') {
    const id = s.$ref.replace(/#.*$/, '')
    s = (external[id] ?? Object.values(external).find((x) => (x as { $id?: string })?.$id === id)) as Props | undefined
  }
  const out: NumericField[] = []
  for (const [name, p] of Object.entries(s?.properties ?? {})) {
    const types = [p?.type].flat()
    if (types.includes('integer')) out.push({ name, type: 'integer' })
    else if (types.includes('number')) out.push({ name, type: 'number' })
  }
  return out
}

/** The numeric fields given as text that is not a plain decimal: read before Ajv coerces them. */
function notDecimal(data: unknown, fields: NumericField[]): InputError[] | null {
  if (!data || typeof data !== 'object') return null
  let out: InputError[] | null = null
  for (const f of fields) {
    const v = (data as Record<string, unknown>)[f.name]
    if (typeof v === 'string' && !DECIMAL[f.type].test(v)) (out ??= []).push({ keyword: 'decimal', instancePath: pointer(f.name), params: { type: f.type }, message: 'decimal' })
  }
  return out
}

type Compile = ReturnType<ValidatorFactory>
type Validate = ReturnType<Compile>

/**
 * Fastify's validator factory (@fastify/ajv-compiler) twice over the same named schemas: one that coerces,
 * for the query string, parameters and headers; one that does not, for bodies. Each compiled validator then
 * refuses NUL, lone surrogates and non-finite numbers with the other errors of the same request part.
 */
// One set of compilers per process: each Ajv instance caches what it compiled by schema object, and the route schemas
// are module constants, so a second app in the same process (tests build dozens) reuses the validators of the first.
// Fastify asks for compilers about 24 times per app with the same shared schemas (copied for each app): they are
// looked up by the identity of those copies, then by their content, computed once per app.
const pool = AjvCompiler()
type Compilers = { coercing: Compile; strict: Compile }
type External = Parameters<ValidatorFactory>[0]
type Options = NonNullable<Parameters<ValidatorFactory>[1]>
// ajv-formats with its formatMinimum/formatMaximum keywords (date bounds), instead of the plain one the compiler adds
// when no plugin is ajv-formats (it knows it by its name, so the plugin is passed itself, with its options). The
// CommonJS module is its own default export: `.default` is the plugin with its declared type.
const withDateBounds: [Plugin<unknown>, unknown] = [ajvFormats.default as Plugin<unknown>, { keywords: true }]
const byContent = new Map<string, Compilers>()
let last: { shared: unknown[]; options: unknown; compilers: Compilers } | undefined

function compilers(externalSchemas: External, options: Options | undefined): Compilers {
  const shared = Object.values(externalSchemas)
  if (last && last.options === options?.customOptions && last.shared.length === shared.length && last.shared.every((s, i) => s === shared[i])) return last.compilers
  const key = JSON.stringify([externalSchemas, options?.customOptions])
  let made = byContent.get(key)
  if (!made) {
    const base = options?.mode === 'JTD' ? undefined : options?.customOptions
    const plugins: NonNullable<Options['plugins']> = [withDateBounds]
    made = {
      coercing: pool(externalSchemas, { onCreate: options?.onCreate, customOptions: base, plugins }),
      strict: pool(externalSchemas, { onCreate: options?.onCreate, customOptions: { ...base, coerceTypes: false }, plugins }),
    }
    byContent.set(key, made)
  }
  last = { shared, options: options?.customOptions, compilers: made }
  return made
}

export function validatorFactory(): ValidatorFactory {
  return (externalSchemas, options) => {
    const { coercing, strict } = compilers(externalSchemas, options)
    return (route) => {
      const inner = (route.httpPart === 'body' ? strict : coercing)(route)
      const numeric = route.httpPart === 'body' ? [] : numericFields(route.schema, externalSchemas as Record<string, unknown>)
      // Ajv's validators are type guards with their schema attached; the wrapper keeps both.
      const wrapped = Object.assign(
        function validate(this: unknown, data: unknown, ctx?: Parameters<Validate>[1]) {
          const text = numeric.length ? notDecimal(data, numeric) : null // before Ajv's coercion rewrites the values
          const ok = inner.call(this, data, ctx)
          const value = ctx ? (ctx.parentData as Record<string | number, unknown>)[ctx.parentDataProperty] : data
          const bad = anyBadInput(value) ? inputErrors(value) : []
          if (!bad.length && !text) {
            wrapped.errors = inner.errors
            return ok
          }
          // A field refused for its digits is reported once, for that reason.
          const named = new Set(text?.map((e) => e.instancePath))
          const others = (inner.errors ?? []).filter((e) => !named.has(e.instancePath))
          const ours = [...(text ?? []), ...bad.filter((e) => !named.has(e.instancePath))]
          wrapped.errors = [...others, ...ours.map((e) => ({ ...e, schemaPath: '#' }))]
          return false
        },
        { schema: inner.schema, schemaEnv: inner.schemaEnv, errors: null as Validate['errors'] },
      ) as Validate
      return wrapped
    }
  }
}

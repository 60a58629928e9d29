import { isIP } from 'node:net'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

const Bool = Type.Enum(['true', 'false', '1', '0'])

/** Environment variables the service reads. Conventional names; documented in the README. */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Enum(['development', 'test', 'production'], { default: 'development' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  /** Also speak HTTP/2 without TLS (prior knowledge) on PORT, beside HTTP/1.1 (default: on). */
  HTTP2_CLEARTEXT: Type.Optional(Bool),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  /** PostgreSQL connection string. Absent: the embedded database (PGlite) in PGLITE_DIR. */
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_POOL_MAX: Type.Integer({ minimum: 1, maximum: 500, default: 20 }),
  /** Connections opened at start and kept when idle (at most DATABASE_POOL_MAX). */
  DATABASE_POOL_MIN: Type.Integer({ minimum: 0, maximum: 500, default: 4 }),
  PGLITE_DIR: Type.String({ minLength: 1, default: '.data/pglite' }),
  /** Apply pending migrations on start. Always on for the embedded database. */
  AUTO_MIGRATE: Type.Optional(Bool),
  /** Load the demo organisations and products on an empty database (embedded default: on). */
  DEMO_DATA: Type.Optional(Bool),
  /** Shared HS256 secret: development only, refused in production. */
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /** PEM public key (RS256/ES256) of the identity provider. */
  JWT_PUBLIC_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN PUBLIC KEY-----' })),
  /** JWKS document of the identity provider (OIDC). */
  JWT_JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  /** Oldest token accepted, from its `iat` (seconds); tokens must carry `iat`. */
  JWT_MAX_AGE_SECONDS: Type.Integer({ minimum: 60, maximum: 30 * 86400, default: 86400 }),
  /**
   * Whom to believe about the client's address (X-Forwarded-For): `false` (default: the connection's peer),
   * `true` (any proxy: only when nothing else can reach the service), a hop count, or addresses/CIDRs.
   */
  TRUST_PROXY: Type.String({ minLength: 1, default: 'false' }),
  JWT_ALGORITHMS: Type.String({ pattern: '^(RS256|ES256|PS256|HS256)(,(RS256|ES256|PS256|HS256))*$', default: 'RS256,ES256' }),
  IDEMPOTENCY_TTL_HOURS: Type.Integer({ minimum: 24, maximum: 24 * 30, default: 24 }),
  /** Public base address, used in printed links. */
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Load shedding: answer 503 when the event loop lags more than this (ms). 0 disables. */
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, default: 1000 }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 100, default: 10000 }),
  /** On SIGTERM: readiness answers 503 and the instance keeps serving this long (ms) before it stops listening. */
  DRAIN_DELAY_MS: Type.Integer({ minimum: 0, maximum: 300_000, default: 5000 }),
  /** Longest wait for a database connection from the pool (ms); beyond it the request answers 503. */
  DATABASE_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5000 }),
  /** Bearer token required to read /metrics. */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  /** Serve /metrics on this port only (not on PORT). */
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  /** Address of the metrics port (default: HOST). */
  METRICS_HOST: Type.Optional(Type.String({ minLength: 1 })),
  /** Let webhook endpoints point at private or loopback addresses (development only). */
  WEBHOOK_ALLOW_PRIVATE: Type.Optional(Bool),
  /** How long a webhook receiver has to answer (ms). */
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 10000 }),
  /** Consecutive failed webhook attempts after which an endpoint is disabled. */
  WEBHOOK_DISABLE_AFTER: Type.Integer({ minimum: 1, default: 50 }),
  /** A Server-Sent Events client that has not read for this long is disconnected (it resumes). */
  STREAM_STALL_MS: Type.Integer({ minimum: 100, default: 10000 }),
  /** Days after which a pharmacy's shortage signal that was not renewed lapses. */
  SHORTAGE_SIGNAL_LAPSE_DAYS: Type.Integer({ minimum: 1, maximum: 365, default: 30 }),
  /** Pack verifications and state changes per organisation and minute, on each instance (0: no limit). */
  SERIALIZATION_RATE_PER_MINUTE: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 1200 }),
  /** Business hours (Mon–Fri 09:00–18:00 Europe/Paris, public holidays excepted) after which an unanswered emergency request is escalated. */
  EMERGENCY_ESCALATION_BUSINESS_HOURS: Type.Integer({ minimum: 1, maximum: 72, default: 4 }),
  /** EC P-256 private key (PEM PKCS#8; one line with \n accepted) that signs e-prescription receipts (ES256). */
  RECEIPT_SIGNING_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN PRIVATE KEY-----' })),
  /** Folder where the default fax adapter writes the PDF it would send. */
  FAX_SPOOL_DIR: Type.String({ minLength: 1, default: '.data/fax-spool' }),
  /** Minutes to wait before each retry of a failed fax; after the last, a paper letter is asked of the sender. */
  FAX_RETRY_MINUTES: Type.String({ pattern: '^[1-9][0-9]{0,3}(,[1-9][0-9]{0,3}){0,19}$', default: '2,10,30,60,120,240' }),
  /** Key of the pharmacy pseudonym in the serialization scan log (HMAC-SHA256 of the FINESS); at least 32 characters. */
  SCAN_PSEUDONYM_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /** Key of the keyed hashes (HMAC-SHA256) of e-prescription access codes and dispensation secrets; at least 32 characters. Changing it voids every code and secret. */
  EPRESCRIPTION_CODE_KEY: Type.Optional(Type.String({ minLength: 32 })),
  /** Days before the end of the previous dispensation's treatment from which a renewal may be dispensed. */
  EPRESCRIPTION_RENEWAL_TOLERANCE_DAYS: Type.Integer({ minimum: 0, maximum: 15, default: 5 }),
})

type Raw = Static<typeof ConfigSchema>

export interface Config extends Omit<Raw, 'AUTO_MIGRATE' | 'DEMO_DATA' | 'HTTP2_CLEARTEXT' | 'JWT_ALGORITHMS' | 'WEBHOOK_ALLOW_PRIVATE' | 'SCAN_PSEUDONYM_SECRET' | 'TRUST_PROXY' | 'EPRESCRIPTION_CODE_KEY' | 'FAX_RETRY_MINUTES'> {
  /** Fastify's trustProxy: trust no proxy, every proxy, this many hops, or these addresses and networks. */
  TRUST_PROXY: boolean | number | string[]
  FAX_RETRY_MINUTES: number[]
  SCAN_PSEUDONYM_SECRET: string
  EPRESCRIPTION_CODE_KEY: string
  AUTO_MIGRATE: boolean
  HTTP2_CLEARTEXT: boolean
  WEBHOOK_ALLOW_PRIVATE: boolean
  DEMO_DATA: boolean
  JWT_ALGORITHMS: string[]
  /** 'secret' (development HS256), 'pem' or 'jwks' (asymmetric, production). */
  authMode: 'secret' | 'pem' | 'jwks'
  embedded: boolean
}

/** The development secret used when nothing is configured outside production. Never valid in production. */
export const DEV_JWT_SECRET = 'development-only-secret-never-use-in-production-0000'
/** The development key of the scan-log pharmacy pseudonyms when none is configured. Never valid in production. */
export const DEV_SCAN_PSEUDONYM_SECRET = 'development-only-scan-pseudonym-key-never-in-production'
/** The development key of the e-prescription code hashes when none is configured (the migration that hashed the existing rows uses the same). */
export const DEV_EPRESCRIPTION_CODE_KEY = 'development-only-eprescription-code-key-never-in-production'

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Configuration invalide :\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

const truthy = (v: unknown) => v === true || v === 'true' || v === '1'

/** Reads and validates the environment; throws ConfigError naming each wrong variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const known = Object.keys(ConfigSchema.properties)
  // Empty strings count as unset, as shells and compose files often produce them.
  const input: Record<string, unknown> = {}
  for (const k of known) if (env[k] !== undefined && env[k] !== '') input[k] = env[k]
  const given = new Set(Object.keys(input)) // before the defaults fill `input` in
  const withDefaults = Value.Default(ConfigSchema, Value.Convert(ConfigSchema, input))
  const problems = [
    ...new Set(
      [...Value.Errors(ConfigSchema, withDefaults)].map((e) => {
        const name = e.instancePath.replace(/^\//, '')
        const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues
        const why = allowed ? `valeurs admises : ${allowed.join(', ')}` : e.message
        return `${name}: ${why} (valeur reçue : ${JSON.stringify(input[name] ?? null)})`
      }),
    ),
  ]
  if (problems.length) throw new ConfigError(problems)
  const raw = withDefaults as Raw

  const authModes = [raw.JWT_PUBLIC_KEY && 'pem', raw.JWT_JWKS_URL && 'jwks'].filter(Boolean) as Array<'pem' | 'jwks'>
  // The default minimum follows a smaller maximum; a minimum set above the maximum is a mistake to name.
  if (given.has('DATABASE_POOL_MIN') && raw.DATABASE_POOL_MIN > raw.DATABASE_POOL_MAX) {
    problems.push(`DATABASE_POOL_MIN : au plus DATABASE_POOL_MAX (${raw.DATABASE_POOL_MAX}) (valeur reçue : ${raw.DATABASE_POOL_MIN})`)
  }
  raw.DATABASE_POOL_MIN = Math.min(raw.DATABASE_POOL_MIN, raw.DATABASE_POOL_MAX)
  if (authModes.length > 1) problems.push('JWT_PUBLIC_KEY et JWT_JWKS_URL : ne configurer que l’un des deux')
  const authMode = authModes[0] ?? 'secret'
  const production = raw.NODE_ENV === 'production'
  if (production && authMode === 'secret') {
    problems.push('JWT_PUBLIC_KEY ou JWT_JWKS_URL : obligatoire en production (le secret partagé JWT_SECRET est réservé au développement)')
  }
  if (production && authMode !== 'secret' && (!raw.JWT_ISSUER || !raw.JWT_AUDIENCE)) {
    problems.push('JWT_ISSUER et JWT_AUDIENCE : obligatoires en production')
  }
  const algorithms = raw.JWT_ALGORITHMS.split(',')
  if (authMode !== 'secret' && algorithms.includes('HS256')) problems.push('JWT_ALGORITHMS : HS256 interdit avec une clé publique')
  const trustProxy = parseTrustProxy(raw.TRUST_PROXY)
  if (trustProxy === null) problems.push(`TRUST_PROXY : attendu true, false, un nombre de relais (1, 2…) ou des adresses IP / réseaux CIDR séparés par des virgules (valeur reçue : ${JSON.stringify(raw.TRUST_PROXY)})`)
  if (production && truthy(raw.WEBHOOK_ALLOW_PRIVATE)) problems.push('WEBHOOK_ALLOW_PRIVATE : interdit en production')
  if (production && !raw.RECEIPT_SIGNING_KEY) problems.push('RECEIPT_SIGNING_KEY : obligatoire en production (clé privée EC P-256, PEM PKCS#8, qui signe les reçus de délivrance)')
  if (production && !raw.SCAN_PSEUDONYM_SECRET) problems.push('SCAN_PSEUDONYM_SECRET : obligatoire en production (au moins 32 caractères aléatoires ; clé des pseudonymes des pharmacies dans le journal des scans)')
  if (problems.length) throw new ConfigError(problems)

  const embedded = !raw.DATABASE_URL
  return {
    ...raw,
    JWT_SECRET: authMode === 'secret' ? (raw.JWT_SECRET ?? DEV_JWT_SECRET) : undefined,
    JWT_ALGORITHMS: authMode === 'secret' ? ['HS256'] : algorithms,
    SCAN_PSEUDONYM_SECRET: raw.SCAN_PSEUDONYM_SECRET ?? DEV_SCAN_PSEUDONYM_SECRET,
    // Required in production: the e-prescription service refuses to start without it.
    EPRESCRIPTION_CODE_KEY: raw.EPRESCRIPTION_CODE_KEY ?? DEV_EPRESCRIPTION_CODE_KEY,
    AUTO_MIGRATE: embedded || truthy(raw.AUTO_MIGRATE),
    HTTP2_CLEARTEXT: raw.HTTP2_CLEARTEXT === undefined || truthy(raw.HTTP2_CLEARTEXT),
    WEBHOOK_ALLOW_PRIVATE: truthy(raw.WEBHOOK_ALLOW_PRIVATE),
    FAX_RETRY_MINUTES: raw.FAX_RETRY_MINUTES.split(',').map(Number),
    DEMO_DATA: raw.DEMO_DATA === undefined ? embedded : truthy(raw.DEMO_DATA),
    TRUST_PROXY: trustProxy!,
    authMode,
    embedded,
  }
}

/** TRUST_PROXY as Fastify takes it; null when it is none of the accepted forms. */
export function parseTrustProxy(value: string): boolean | number | string[] | null {
  const v = value.trim()
  if (v === 'true' || v === 'false') return v === 'true'
  if (/^\d+$/.test(v)) return Number(v) <= 100 ? Number(v) : null
  const list = v.split(',').map((x) => x.trim()).filter(Boolean)
  const valid = (entry: string) => {
    const [address = '', bits, ...rest] = entry.split('/')
    const family = isIP(address)
    if (!family || rest.length) return false
    return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))
  }
  return list.length && list.every(valid) ? list : null
}

import fastifyJwt from '@fastify/jwt'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import buildGetJwks from 'get-jwks'
import type { Config } from './config.ts'
import type { Database } from './db/index.ts'
import { ROLES, type Role } from './db/schema.ts'
import { AppError } from './errors.ts'

export interface Principal {
  role: Role
  /** Organisation identifier: FINESS, SIREN, RPPS or the fixed code of ANSM / ORDRE / MINISTERE. */
  org: string
  /** The person (or system user) acting for the organisation. */
  user: string
}

/** 'public' routes need no token; otherwise the roles that may call it. */
export type RouteRoles = readonly Role[] | 'public'

declare module 'fastify' {
  interface FastifyContextConfig {
    roles?: RouteRoles
  }
  interface FastifyRequest {
    principal: Principal | null
  }
}
declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { role: Role; org: string; sub: string }
    user: { role: Role; org: string; sub: string }
  }
}

type Claims = { role: Role; org: string; sub: string }

/** Clock difference tolerated between the identity provider and this service for `iat`. */
export const CLOCK_SKEW_MS = 60_000

interface OrgStatus {
  role: Role
  active: boolean
}

/**
 * Whether an organisation is registered and active, cached for a few seconds: every authenticated request
 * needs it and it changes rarely. The operator's changes invalidate the entry on this instance at once;
 * other instances see them within ORG_CACHE_MS.
 */
export class OrganisationCache {
  static readonly ORG_CACHE_MS = 10_000
  private readonly entries = new Map<string, { value: OrgStatus | null; expires: number }>()
  constructor(private readonly db: Database) {}
  /** The cached entry when still fresh (undefined otherwise): the hot path, without a promise. */
  peek(id: string): OrgStatus | null | undefined {
    const hit = this.entries.get(id)
    return hit && hit.expires > Date.now() ? hit.value : undefined
  }
  async get(id: string): Promise<OrgStatus | null> {
    const now = Date.now()
    const hit = this.entries.get(id)
    if (hit && hit.expires > now) return hit.value
    const row = await this.db.selectFrom('organisations').select(['role', 'active']).where('id', '=', id).executeTakeFirst()
    const value = row ? { role: row.role, active: row.active } : null
    if (this.entries.size > 50_000) this.entries.clear()
    this.entries.set(id, { value, expires: now + OrganisationCache.ORG_CACHE_MS })
    return value
  }
  invalidate(id: string) {
    this.entries.delete(id)
  }
}

const JWT_ERRORS: Record<string, string> = {
  FST_JWT_NO_AUTHORIZATION_IN_HEADER: 'UNAUTHENTICATED',
  FST_JWT_AUTHORIZATION_TOKEN_EXPIRED: 'TOKEN_EXPIRED',
}

export default fp(
  async function auth(app: FastifyInstance, opts: { config: Config; db: Database }) {
    const { config } = opts
    const verify = {
      algorithms: config.JWT_ALGORITHMS as any,
      ...(config.JWT_ISSUER ? { allowedIss: config.JWT_ISSUER } : {}),
      ...(config.JWT_AUDIENCE ? { allowedAud: config.JWT_AUDIENCE } : {}),
      requiredClaims: ['exp', 'iat', 'role', 'org', 'sub'],
      // A token older than this (from its iat) is refused as expired, whatever its exp says.
      maxAge: config.JWT_MAX_AGE_SECONDS, // seconds, as @fastify/jwt takes a number
      // Verified tokens are cached (until their expiry) so that the signature is checked once per token.
      cache: 10_000,
    }
    if (config.authMode === 'jwks') {
      const url = new URL(config.JWT_JWKS_URL!)
      const getJwks = buildGetJwks({ jwksPath: url.pathname, providerDiscovery: false, ttl: 10 * 60_000 })
      await app.register(fastifyJwt, {
        decode: { complete: true },
        secret: (_request: FastifyRequest, token: any) =>
          getJwks.getPublicKey({ domain: url.origin, alg: token.header.alg, kid: token.header.kid }),
        verify,
      })
    } else if (config.authMode === 'pem') {
      await app.register(fastifyJwt, { secret: { public: config.JWT_PUBLIC_KEY! }, verify })
    } else {
      await app.register(fastifyJwt, { secret: config.JWT_SECRET!, verify })
    }

    const orgs = new OrganisationCache(opts.db)
    app.decorate('organisations', orgs)
    app.decorateRequest('principal', null)

    app.addHook('onRoute', (route) => {
      const roles = route.config?.roles
      if (roles === undefined && route.url.startsWith('/v1')) throw new Error(`route ${route.method} ${route.url} must declare config.roles`)
    })

    // Verified tokens by their Authorization header, until they expire: a workstation sends the same token for
    // hours, and decoding, hashing and checking it again on every request is most of authentication's cost.
    // (The verifier's own cache still hashes and decodes the token each time.)
    const verified = new Map<string, { claims: Claims; expiresMs: number }>()
    const admit = (request: FastifyRequest, roles: readonly Role[], claims: Claims, org: OrgStatus | null) => {
      if (!org || !org.active || org.role !== claims.role) throw new AppError('ORGANISATION_NOT_REGISTERED', { org: claims.org, role: claims.role })
      if (!roles.includes(claims.role)) throw new AppError('FORBIDDEN_ROLE', { role: claims.role, allowed: roles.join(', ') })
      request.principal = { role: claims.role, org: claims.org, user: claims.sub }
    }
    const authenticate = async (request: FastifyRequest, roles: readonly Role[], header: string | undefined) => {
      let claims: Claims
      try {
        claims = await request.jwtVerify()
      } catch (err: any) {
        throw new AppError(JWT_ERRORS[err?.code] ?? 'TOKEN_INVALID', tokenReason(err))
      }
      if (!ROLES.includes(claims.role) || typeof claims.org !== 'string' || typeof claims.sub !== 'string') {
        throw new AppError('TOKEN_INVALID', { fr: 'les revendications role, org et sub sont obligatoires', en: 'claims role, org and sub are required' })
      }
      // The verifier checks iat's age, not that it is in the past: a token issued "tomorrow" (a wrong clock,
      // or a forged lifetime) is refused beyond the clock skew tolerated between us and the identity provider.
      const { exp, iat } = claims as { exp?: unknown; iat?: unknown }
      if (typeof iat !== 'number' || iat * 1000 > Date.now() + CLOCK_SKEW_MS) {
        throw new AppError('TOKEN_INVALID', { fr: 'émis dans le futur (iat) : vérifiez l’horloge de l’émetteur', en: 'issued in the future (iat): check the issuer’s clock' })
      }
      if (header !== undefined && typeof exp === 'number') {
        if (verified.size >= 10_000) verified.clear()
        verified.set(header, { claims, expiresMs: Math.min(exp * 1000, iat * 1000 + config.JWT_MAX_AGE_SECONDS * 1000) })
      }
      admit(request, roles, claims, orgs.peek(claims.org) ?? (await orgs.get(claims.org)))
    }
    // Callback style: a known token of a known organisation is admitted without a promise (every request).
    app.addHook('onRequest', (request, _reply, done) => {
      const roles = request.routeOptions.config?.roles
      if (!roles || roles === 'public') return done()
      const header = request.headers.authorization
      const hit = header === undefined ? undefined : verified.get(header)
      const org = hit && hit.expiresMs > Date.now() ? orgs.peek(hit.claims.org) : undefined
      if (hit && org !== undefined) {
        try {
          admit(request, roles, hit.claims, org)
        } catch (err) {
          return done(err as Error)
        }
        return done()
      }
      authenticate(request, roles, header).then(() => done(), done)
    })
  },
  { name: 'auth' },
)

function tokenReason(err: any): Record<string, string> {
  const m = String(err?.message ?? '')
  if (/malformed|format/i.test(m)) return { fr: 'format incorrect (attendu : Bearer <jeton JWT>)', en: 'wrong format (expected: Bearer <JWT>)' }
  if (/algorithm/i.test(m)) return { fr: 'algorithme non admis', en: 'algorithm not allowed' }
  if (/iss/i.test(m)) return { fr: 'émetteur non admis', en: 'issuer not allowed' }
  if (/aud/i.test(m)) return { fr: 'audience non admise', en: 'audience not allowed' }
  if (/signature/i.test(m)) return { fr: 'signature invalide', en: 'invalid signature' }
  if (/required|claim/i.test(m)) return { fr: 'revendication obligatoire manquante (exp, iat, role, org, sub)', en: 'missing required claim (exp, iat, role, org, sub)' }
  return {}
}

declare module 'fastify' {
  interface FastifyInstance {
    organisations: OrganisationCache
  }
}

/** The caller, on routes that require authentication. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('UNAUTHENTICATED')
  return request.principal
}

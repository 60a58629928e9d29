import { createSigner } from 'fast-jwt'
import type { Config } from './config.ts'
import type { Role } from './db/schema.ts'

export interface TokenClaims {
  role: Role
  org: string
  sub?: string
  /** Lifetime in seconds (default 12 hours). */
  expiresIn?: number
}

/** Signs a development token with the shared secret. Production tokens come from the identity provider. */
export function signDevToken(config: Config, claims: TokenClaims): string {
  if (config.authMode !== 'secret' || !config.JWT_SECRET) {
    throw new Error('Development tokens need the shared-secret mode (no JWT_PUBLIC_KEY / JWT_JWKS_URL)')
  }
  const sign = createSigner({
    key: config.JWT_SECRET,
    algorithm: 'HS256',
    expiresIn: (claims.expiresIn ?? 12 * 3600) * 1000,
    ...(config.JWT_ISSUER ? { iss: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE ? { aud: config.JWT_AUDIENCE } : {}),
  })
  return sign({ role: claims.role, org: claims.org, sub: claims.sub ?? `${claims.role}-user@${claims.org}` })
}

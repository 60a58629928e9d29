import { createHmac } from 'node:crypto'
import type { Kysely } from 'kysely'
import type { DB } from '../platform/db/schema.ts'

// No FINESS and no user identifier is stored in clear in a serialization table (scan log, pack transactions, alerts
// and their messages): keyed pseudonyms, HMAC-SHA256 with SCAN_PSEUDONYM_SECRET, base64url, 22 characters (132
// bits). Stable for a given secret; without it they cannot be reversed nor recomputed from the public list of FINESS
// numbers. The same formulas are written in migrations/0014 for the rows that existed before.

/** Roles that scan packs (their organisation is "the pharmacy" of a scan or an alert). */
export const SCANNER_ROLES = ['pharmacy', 'hospital', 'wholesaler'] as const

/** Who scans, as the serialization tables know them: the role, and the organisation's and user's pseudonyms. */
export interface Scanner {
  role: string
  org: string
  user: string
}

/** The Scanner of an authenticated organisation's user (memoised pseudonyms: the hot path asks for one per scan). */
export function scannerMemo(secret: string): (principal: { role: string; org: string; user: string }) => Scanner {
  const orgOf = pseudonymMemo(secret)
  const users = new Map<string, string>()
  return ({ role, org, user }) => {
    const key = `${org}\u0000${user}`
    let u = users.get(key)
    if (u === undefined) {
      if (users.size >= 100_000) users.clear()
      users.set(key, (u = userPseudonym(secret, org, user)))
    }
    return { role, org: orgOf(org), user: u }
  }
}

/** An organisation's pseudonym (a pharmacy, hospital or wholesaler in the scan log; any organisation elsewhere). */
export const pharmacyPseudonym = (secret: string, org: string) => createHmac('sha256', secret).update(org, 'utf8').digest('base64url').slice(0, 22)

/** A user's pseudonym, within its organisation (the same user id in two organisations gives two pseudonyms). */
export const userPseudonym = (secret: string, org: string, user: string) => createHmac('sha256', secret).update(`user\u0000${org}\u0000${user}`, 'utf8').digest('base64url').slice(0, 22)

/** pharmacyPseudonym with a bounded per-process memo (the hot path computes one per scan). */
export function pseudonymMemo(secret: string, max = 100_000): (org: string) => string {
  const memo = new Map<string, string>()
  return (org) => {
    let p = memo.get(org)
    if (p === undefined) {
      if (memo.size >= max) memo.clear()
      p = pharmacyPseudonym(secret, org)
      memo.set(org, p)
    }
    return p
  }
}

/**
 * The scanning organisation behind a pseudonym, for the service's own routing only (an alert's outcome or a lab's
 * question reaches the pharmacy's feed): recomputed over the scanning organisations, kept in memory, never stored
 * and never shown. A person re-identifies a pharmacy only through the operator's audited route (alerts.ts).
 */
export class PseudonymDirectory {
  private map = new Map<string, string>()
  private builtAt = 0

  constructor(private readonly secret: string) {}

  async orgOf(db: Kysely<DB>, pseudonym: string): Promise<string | null> {
    const known = this.map.get(pseudonym)
    if (known !== undefined) return known
    // A new organisation since the last build: rebuild, at most once every few seconds.
    if (Date.now() - this.builtAt > 5_000) {
      const orgs = await db.selectFrom('organisations').select('id').where('role', 'in', [...SCANNER_ROLES]).execute()
      const map = new Map<string, string>()
      for (const o of orgs) map.set(pharmacyPseudonym(this.secret, o.id), o.id)
      this.map = map
      this.builtAt = Date.now()
    }
    return this.map.get(pseudonym) ?? null
  }
}

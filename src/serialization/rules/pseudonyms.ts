// No FINESS and no user identifier is stored in clear in a serialization table (scan log, pack transactions, alerts
// and their messages): keyed pseudonyms, HMAC-SHA256 with SCAN_PSEUDONYM_SECRET, base64url, 22 characters (132
// bits). Stable for a given secret; without it they cannot be reversed nor recomputed from the public list of FINESS
// numbers. The same formulas are written in migrations/0014 for the rows that existed before.
import { createHmac } from 'node:crypto'

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

/** Who is behind a pharmacy's pseudonym: the service's own routing directory, and the operator's audited resolution. */
import type { Kysely } from 'kysely'
import { type Actor, audit } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { inTransaction } from '../../platform/db/transaction.ts'
import * as q from '../queries/pseudonyms.ts'
import { pharmacyPseudonym } from '../rules/pseudonyms.ts'

/**
 * The scanning organisation behind a pseudonym, for the service's own routing only (an alert's outcome or a lab's
 * question reaches the pharmacy's feed): recomputed over the scanning organisations, kept in memory, never stored
 * and never shown. A person re-identifies a pharmacy only through the operator's audited route (resolvePseudonym).
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
      const orgs = await q.scanningOrganisationIds(db)
      const map = new Map<string, string>()
      for (const o of orgs) map.set(pharmacyPseudonym(this.secret, o.id), o.id)
      this.map = map
      this.builtAt = Date.now()
    }
    return this.map.get(pseudonym) ?? null
  }
}

/**
 * The organisation behind a pseudonym: recomputed over the scanning organisations (a few tens of thousands of
 * HMACs), nothing stored. Every attempt is audited, found or not.
 */
export async function resolvePseudonym(db: Kysely<DB>, secret: string, actor: Actor, pseudonym: string, reason: string, now: Date) {
  const orgs = await q.scanningOrganisations(db)
  const match = orgs.find((o) => pharmacyPseudonym(secret, o.id) === pseudonym) ?? null
  await inTransaction(db, (tx) =>
    audit(tx, actor, { action: 'serialization.pseudonym.resolved', objectType: 'pharmacy_pseudonym', objectId: pseudonym, changes: { found: match !== null, org: match?.id ?? null, reason } }, now),
  )
  return match
}

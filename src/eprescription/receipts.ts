import { createHash } from 'node:crypto'
import { calculateJwkThumbprint, CompactSign, exportJWK, generateKeyPair, importPKCS8, type JWK } from 'jose'
import type { Kysely, Transaction } from 'kysely'
import { canonicalJson } from '../platform/canonical-json.ts'
import type { DB } from '../platform/db/schema.ts'
import * as q from './queries.ts'

type KeyLike = Awaited<ReturnType<typeof generateKeyPair>>['privateKey']

export const RECEIPT_TYPE = 'dispensation-receipt+jws'
export const RECEIPT_ISSUER = 'portail-dp/eprescription'

export interface SigningKey {
  kid: string
  privateKey: KeyLike
  publicJwk: JWK
  /** True when generated at start (development): receipts signed by it verify only while its public key is kept. */
  ephemeral: boolean
}

/**
 * The receipt signing key: RECEIPT_SIGNING_KEY (PKCS#8 PEM, EC P-256) from the configuration, or, outside
 * production, a key generated at start. Its public part is stored in eprescription_receipt_keys when it first
 * signs, so that every receipt ever issued (by any instance, before any restart) still verifies with the JWKS.
 */
export async function loadSigningKey(pem: string | undefined, production: boolean): Promise<SigningKey> {
  let privateKey: KeyLike
  let publicJwk: JWK
  if (pem) {
    // Environment variables often carry a PEM on one line with literal \n.
    privateKey = (await importPKCS8(pem.replace(/\\n/g, '\n').trim(), 'ES256', { extractable: true })) as KeyLike
    const jwk = await exportJWK(privateKey)
    publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }
  } else {
    if (production) throw new Error('RECEIPT_SIGNING_KEY (PEM PKCS#8, EC P-256) is required in production to sign e-prescription receipts')
    const pair = await generateKeyPair('ES256', { extractable: true })
    privateKey = pair.privateKey
    publicJwk = await exportJWK(pair.publicKey)
  }
  const kid = await calculateJwkThumbprint(publicJwk)
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' }, ephemeral: !pem }
}

let persisted = new WeakSet<SigningKey>()
/** Stores the public key (once per process) in the caller's transaction. */
export async function persistPublicKey(tx: Transaction<DB>, key: SigningKey, now: Date) {
  if (persisted.has(key)) return
  await q.insertReceiptKey(tx, key.kid, key.publicJwk, now)
}
export function markPersisted(key: SigningKey) {
  persisted.add(key)
}
export function resetPersisted() {
  persisted = new WeakSet()
}

export async function publishedKeys(db: Kysely<DB>, current: SigningKey): Promise<{ keys: JWK[] }> {
  const rows = await q.receiptKeys(db)
  const keys = rows.map((r) => r.jwk as JWK)
  if (!keys.some((k) => k.kid === current.kid)) keys.push(current.publicJwk)
  return { keys }
}

/** The digest of what was dispensed: SHA-256 of the canonical JSON of the recorded lines, base64url. */
export const digestOf = (lines: unknown[]) => `sha-256:${createHash('sha256').update(canonicalJson(lines)).digest('base64url')}`

export interface ReceiptClaims {
  iss: string
  iat: number
  prescriptionId: string
  dispensation: number
  pharmacy: string
  acceptedAt: string
  closedAt: string
  /** What was dispensed: see digestOf. */
  digest: string
  /** The prescription as issued (sha-256 of its canonical JSON, see issuedContent); absent from receipts signed before it existed. */
  prescriptionDigest?: string
}

export async function signReceipt(key: SigningKey, claims: ReceiptClaims): Promise<string> {
  return new CompactSign(new TextEncoder().encode(canonicalJson(claims)))
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: RECEIPT_TYPE })
    .sign(key.privateKey)
}

/**
 * Who may open a prescription, as rules: ID + access code (a pharmacy taking it, the patient), the current secret
 * of the pharmacy that holds it, or the prescriber's own right. Codes and secrets are stored as keyed hashes
 * (HMAC-SHA256 with EPRESCRIPTION_CODE_KEY): a copy of the database opens nothing. The throttle's limits are
 * here; counting wrong codes is use-cases/access.ts.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { AppError } from '../../platform/errors.ts'
import { prescriptionNotFound } from '../errors.ts'
import type { Loaded } from '../queries.ts'

export const THROTTLE = {
  windowMs: 15 * 60_000,
  /** Wrong codes one caller may give for one prescription within the window. */
  perCallerPerPrescription: 5,
  /** Wrong codes one caller may give in all within the window (guessing many prescriptions). */
  perCaller: 20,
  /** Wrong codes on one prescription, from anyone, that alert the operator (once per window). */
  alertAfter: 10,
}

const mac = (key: string, text: string) => createHmac('sha256', key).update(text).digest('base64url')
export const accessCodeHash = (key: string, prescriptionId: string, code: string) => mac(key, `access-code:${prescriptionId}:${code}`)
export const secretHash = (key: string, dispensationId: string, secret: string) => mac(key, `secret:${dispensationId}:${secret}`)
export const newSecret = () => randomBytes(32).toString('base64url')

export const sameHash = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

/** 'org:<FINESS>' for a pharmacy, 'ip:<address>' for a patient. */
export type Caller = `org:${string}` | `ip:${string}`

/** The prescriber's own check of a code it holds (to print the QR code): no throttle, its own prescription. */
export function codeMatches(key: string, p: { id: string; access_code_hash: string }, accessCode: string) {
  return sameHash(p.access_code_hash, accessCodeHash(key, p.id, accessCode))
}

export type Holding = Loaded['dispensations'][number]

/**
 * The dispensation of this pharmacy that the secret opens, whatever its state: 404 when the pharmacy never held
 * the prescription, 403 when the secret is not one of its own. The caller decides what each state allows.
 */
export function dispensationOf(l: Loaded, key: string, org: string, secret: string): Holding {
  const mine = l.dispensations.filter((d) => d.pharmacy_org === org)
  if (mine.length === 0) throw prescriptionNotFound(l.p.id)
  const d = mine.find((x) => sameHash(x.secret_hash, secretHash(key, x.id, secret)))
  if (!d) throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: false })
  return d
}

/** A live holding: the pharmacy's open dispensation. A released or closed one answers 403 with nothing of the prescription. */
export function liveHolding(l: Loaded, key: string, org: string, secret: string): Holding {
  const d = dispensationOf(l, key, org, secret)
  if (d.status === 'released') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true, state: 'released' })
  if (d.status === 'closed') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true, state: 'closed' })
  return d
}

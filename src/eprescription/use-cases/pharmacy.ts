/** The pharmacy's operations: take, read what it holds, record lines, release, close, receipts. */
import { randomUUID } from 'node:crypto'
import type { Transaction } from 'kysely'
import { audit } from '../../platform/audit.ts'
import type { DB } from '../../platform/db/schema.ts'
import { AppError, notFound } from '../../platform/errors.ts'
import { publish } from '../../platform/events/publish.ts'
import { productFacts } from '../../referential/use-cases/medicine-facts.ts'
import { dispensationOf, liveHolding, newSecret, secretHash } from '../rules/access.ts'
import { authenticateWithCode } from './access.ts'
import type { QuantityReason } from '../db.ts'
import { fieldError, invalid, prescriptionNotFound } from '../errors.ts'
import { display } from '../ids.ts'
import * as q from '../queries.ts'
import type { Loaded } from '../queries.ts'
import { digestOf, markPersisted, persistPublicKey, RECEIPT_ISSUER, type ReceiptClaims, signReceipt } from '../receipts.ts'
import { type Decision, decideDelivery, type Refusal } from '../rules/dispensing.ts'
import { deliveredCounts, digestOfIssued, dispensedLineView, effectiveStatus, issuedContent, openDispensationView, prescriptionView, windows } from '../views.ts'
import { actor, type Deps, type Who } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

const dayText = (d: Date) => new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', day: '2-digit', month: '2-digit', year: 'numeric' }).format(d)
const tooEarly = (line: number | null, from: Date) =>
  new AppError('EPRESCRIPTION_RENEWAL_TOO_EARLY', { line, notBefore: from.toISOString(), notBeforeDay: dayText(from) }, { notBefore: from.toISOString(), ...(line ? { line } : {}) })

/**
 * Takes the prescription with ID + access code: in_progress, held by this pharmacy with a new secret. The same
 * pharmacy asking again (lost answer, lost secret) gets a new secret and the previous one stops working: only
 * one secret is live, and the service keeps none in clear. Refused while no line may be dispensed yet
 * (renewals), with the date from which one may.
 */
export async function takePrescription(deps: Deps, who: Who, id: string, accessCode: string, now: Date) {
  await authenticateWithCode(deps.db, deps.codeKey, id, accessCode, `org:${who.principal.org}`, now)
  const secret = newSecret()
  const { l, d } = await inTransaction(deps.db, async (tx) => {
    const l = (await q.load(tx, id, { forUpdate: true }))!
    const status = effectiveStatus(l.p, now)
    if (status === 'cancelled') throw new AppError('EPRESCRIPTION_CANCELLED', { cancelledAt: l.p.cancelled_at?.toISOString() })
    if (status === 'expired') throw new AppError('EPRESCRIPTION_EXPIRED', { validUntil: l.p.valid_until.toISOString() }, { validUntil: l.p.valid_until.toISOString() })
    if (status === 'completed') throw new AppError('EPRESCRIPTION_COMPLETED')
    if (status === 'draft') throw new AppError('EPRESCRIPTION_NOT_FOUND')
    if (status === 'in_progress') {
      const open = l.dispensations.find((x) => x.status === 'open')!
      if (open.pharmacy_org !== who.principal.org) throw new AppError('EPRESCRIPTION_IN_PROGRESS')
      await q.updateDispensation(tx, open.id, { secret_hash: secretHash(deps.codeKey, open.id, secret) })
      await audit(tx, actor(who), { action: 'eprescription.secret.renewed', objectType: 'eprescription', objectId: id, changes: { dispensation: open.id } }, now)
      await q.logAccess(tx, id, who.principal, 'secret.renewed', now)
      return { l, d: open }
    }
    const next = [...windows(l, deps.toleranceDays).values()].filter((d): d is Date => d !== null)
    if (next.length && next.every((d) => d.getTime() > now.getTime())) throw tooEarly(null, new Date(Math.min(...next.map((d) => d.getTime()))))
    const dispensationId = randomUUID()
    await q.insertDispensation(tx, {
      id: dispensationId, prescription_id: id, seq: null, pharmacy_org: who.principal.org, pharmacy_user: who.principal.user,
      secret_hash: secretHash(deps.codeKey, dispensationId, secret), status: 'open', accepted_at: now, released_at: null, closed_at: null, digest: null, receipt: null, receipt_kid: null,
    })
    await q.setStatus(tx, id, { status: 'in_progress', holder_org: who.principal.org }, now)
    await audit(tx, actor(who), { action: 'eprescription.accepted', objectType: 'eprescription', objectId: id, changes: { status: ['ready', 'in_progress'], pharmacy: who.principal.org, dispensation: dispensationId } }, now)
    await q.logAccess(tx, id, who.principal, 'accepted', now)
    const reloaded = (await q.load(tx, id))!
    return { l: reloaded, d: reloaded.dispensations.find((x) => x.id === dispensationId)! }
  })
  return { secret, prescription: prescriptionView(l, { kind: 'pharmacy', org: who.principal.org }, now, deps.toleranceDays), dispensation: openDispensationView(d) }
}

async function loadOr404(db: q.Db, id: string, forUpdate = false): Promise<Loaded> {
  const l = await q.load(db, id, { forUpdate })
  if (!l) throw prescriptionNotFound(id)
  return l
}

/** What the pharmacy holds, with its live secret. */
export async function getHeld(deps: Deps, who: Who, id: string, secret: string, now: Date) {
  const l = await loadOr404(deps.db, id)
  const d = liveHolding(l, deps.codeKey, who.principal.org, secret)
  await q.logAccess(deps.db, id, who.principal, 'read', now)
  return { prescription: prescriptionView(l, { kind: 'pharmacy', org: who.principal.org }, now, deps.toleranceDays), dispensation: openDispensationView(d) }
}

export interface LineInput {
  outcome: 'delivered' | 'not_delivered'
  cip13?: string
  quantity?: number
  batch?: string
  /** Ignored: the service decides whether the delivery is a substitution. */
  substituted?: boolean
  quantityReason?: QuantityReason
  dosageChange?: { dosage: string; reason: string }
  reason?: string
}

function refusal(r: Refusal, line: number, cip13: string, lang: Who['lang']): AppError {
  const errors = (field: string, message: { fr: string; en: string }) => [{ field, code: r.code.toLowerCase(), message: message[lang] }]
  switch (r.code) {
    case 'EPRESCRIPTION_NOT_A_SUBSTITUTE':
      return new AppError(r.code, { field: 'body.cip13', line, cip13, why: r.why, groupId: r.group?.id ?? null }, { errors: errors('body.cip13', { fr: 'produit non substituable à cette ligne', en: 'product not a substitute for this line' }), line, why: r.why })
    case 'EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED':
      return new AppError(r.code, { field: 'body.cip13', line, why: r.why, medicine: r.medicine }, { errors: errors('body.cip13', { fr: 'ligne « non substituable »', en: 'line is "non substitutable"' }), line, why: r.why })
    case 'EPRESCRIPTION_QUANTITY_EXCEEDED':
      return new AppError(r.code, { field: 'body.quantity', line, why: r.why, allowed: r.allowed, delivered: r.delivered, unit: r.unit, maxBoxes: r.maxBoxes }, {
        errors: errors('body.quantity', { fr: 'quantité supérieure à la prescription', en: 'quantity above the prescription' }),
        line, allowed: r.allowed, delivered: r.delivered, unit: r.unit, maxBoxes: r.maxBoxes,
      })
    case 'EPRESCRIPTION_QUANTITY_UNVERIFIABLE':
      return new AppError(r.code, { field: 'body.quantity', line, cip13: r.cip13 }, { errors: errors('body.quantityReason', { fr: 'raison requise', en: 'reason required' }), line })
  }
}

/**
 * Records what was delivered for a line (replacing what was recorded, until the close). The service decides
 * whether the product may be given on the line and whether it is a substitution; early renewals and larger
 * quantities without a stated reason are refused, naming the line and why.
 */
export async function recordLine(deps: Deps, who: Who, id: string, lineNo: number, b: LineInput, secret: string, now: Date) {
  const errors: Array<{ field: string; code: string; message: { fr: string; en: string } }> = []
  const notAllowed = (k: string) => errors.push({ field: `body.${k}`, code: 'not-allowed', message: { fr: `sans objet pour ce résultat (${b.outcome})`, en: `not applicable to this outcome (${b.outcome})` } })
  const required = (k: string) => errors.push({ field: `body.${k}`, code: 'required', message: { fr: 'champ obligatoire pour ce résultat', en: 'required for this outcome' } })
  if (b.outcome === 'delivered') {
    if (!b.cip13) required('cip13')
    if (!b.quantity) required('quantity')
    if (b.reason !== undefined) notAllowed('reason')
  } else {
    if (!b.reason) required('reason')
    for (const k of ['cip13', 'quantity', 'batch', 'substituted', 'dosageChange', 'quantityReason'] as const) if (b[k] !== undefined) notAllowed(k)
  }
  if (errors.length) throw invalid(errors, who.lang)

  return inTransaction(deps.db, async (tx) => {
    const l = await loadOr404(tx, id, true)
    const d = dispensationOf(l, deps.codeKey, who.principal.org, secret)
    if (d.status === 'released') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true, state: 'released' })
    if (d.status === 'closed') throw new AppError('EPRESCRIPTION_DISPENSATION_CLOSED')
    const line = l.lines.find((x) => x.line_no === lineNo)
    if (!line) throw notFound(`La ligne ${lineNo}`, `Line ${lineNo}`)
    let decided: { cis: string; decision: Decision } | null = null
    if (b.outcome === 'delivered') {
      if ((deliveredCounts(l).get(lineNo) ?? 0) >= 1 + line.renewals) throw new AppError('EPRESCRIPTION_LINE_EXHAUSTED', { line: lineNo })
      const from = windows(l, deps.toleranceDays).get(lineNo)
      if (from && from.getTime() > now.getTime()) throw tooEarly(lineNo, from)
      const facts = await productFacts(tx, [b.cip13!, ...(line.cip13 ? [line.cip13] : [])])
      const delivered = facts.get(b.cip13!)
      if (!delivered) throw fieldError('EPRESCRIPTION_UNKNOWN_PRODUCT', { cip13: b.cip13 }, 'body.cip13', { fr: `CIP13 ${b.cip13} inconnu du référentiel`, en: `CIP13 ${b.cip13} not in the referential` }, who.lang)
      const prescribed = line.cip13 ? (facts.get(line.cip13) ?? null) : null
      const result = decideDelivery(line, prescribed, delivered, q.previousDelivery(l, lineNo)?.cis ?? null, { quantity: b.quantity!, ...(b.quantityReason ? { quantityReason: b.quantityReason } : {}) })
      if (!result.ok) throw refusal(result.refusal, lineNo, b.cip13!, who.lang)
      decided = { cis: delivered.cis, decision: result.decision }
    }
    const decision = decided?.decision
    const row = {
      dispensation_id: d.id,
      line_no: lineNo,
      outcome: b.outcome,
      cip13: b.cip13 ?? null,
      quantity: b.quantity ?? null,
      batch: b.batch ?? null,
      cis: decided?.cis ?? null,
      units: decision?.units ?? null,
      match: decision?.match ?? null,
      quantity_reason: decision?.quantityReason ?? null,
      substituted: decision?.substituted ?? false,
      dosage_changed_to: b.dosageChange?.dosage ?? null,
      dosage_change_reason: b.dosageChange?.reason ?? null,
      not_delivered_reason: b.reason ?? null,
      recorded_at: now,
    }
    await q.upsertDispensedLine(tx, row)
    await audit(
      tx,
      actor(who),
      {
        action: 'eprescription.line.recorded',
        objectType: 'eprescription',
        objectId: id,
        changes: {
          dispensation: d.id, line: lineNo, outcome: b.outcome, cip13: row.cip13, quantity: row.quantity, batch: row.batch, match: row.match, substituted: row.substituted,
          quantityReason: row.quantity_reason, dosageChanged: row.dosage_changed_to !== null, reason: row.not_delivered_reason,
        },
      },
      now,
    )
    await q.logAccess(tx, id, who.principal, 'line.recorded', now)
    const reloaded = (await q.load(tx, id))!
    return openDispensationView(reloaded.dispensations.find((x) => x.id === d.id)!)
  })
}

/** Gives the prescription back: ready again, the secret voided, what was recorded discarded. */
export async function releasePrescription(deps: Deps, who: Who, id: string, secret: string, now: Date) {
  const l = await inTransaction(deps.db, async (tx) => {
    const l = await loadOr404(tx, id, true)
    const d = dispensationOf(l, deps.codeKey, who.principal.org, secret)
    // A voided secret opens nothing, not even a repeated release: send an Idempotency-Key to have the first answer replayed.
    if (d.status === 'released') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true, state: 'released' })
    if (d.status === 'closed') throw new AppError('EPRESCRIPTION_DISPENSATION_CLOSED')
    await q.updateDispensation(tx, d.id, { status: 'released', released_at: now })
    await q.setStatus(tx, id, { status: 'ready', holder_org: null }, now)
    await audit(tx, actor(who), { action: 'eprescription.released', objectType: 'eprescription', objectId: id, changes: { status: ['in_progress', 'ready'], dispensation: d.id } }, now)
    await q.logAccess(tx, id, who.principal, 'released', now)
    return (await q.load(tx, id))!
  })
  return prescriptionView(l, { kind: 'pharmacy', org: who.principal.org }, now, deps.toleranceDays)
}

function receiptView(l: Loaded, d: Loaded['dispensations'][number], now: Date) {
  const claims = JSON.parse(Buffer.from(d.receipt!.split('.')[1]!, 'base64url').toString('utf8')) as ReceiptClaims
  return { jws: d.receipt!, kid: d.receipt_kid!, claims, dispensed: d.lines.map(dispensedLineView), prescriptionStatus: effectiveStatus(l.p, now) }
}

/**
 * Closes the dispensation and signs the receipt: the prescription, the pharmacy, accept and close times, the
 * digest of what was dispensed and the digest of the prescription as issued. Closing again answers the same
 * receipt (a retried close after a lost answer).
 */
export async function closeDispensation(deps: Deps, who: Who, id: string, secret: string, now: Date) {
  const result = await inTransaction(deps.db, async (tx: Transaction<DB>) => {
    const l = await loadOr404(tx, id, true)
    const d = dispensationOf(l, deps.codeKey, who.principal.org, secret)
    if (d.status === 'released') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true, state: 'released' })
    if (d.status === 'closed') {
      await q.logAccess(tx, id, who.principal, 'receipt', now)
      return { l, dispensationId: d.id, signed: false }
    }
    if (d.lines.length === 0) throw new AppError('EPRESCRIPTION_DISPENSATION_EMPTY')
    const seq = l.p.dispensations_closed + 1
    const dispensed = d.lines.map(dispensedLineView)
    // Prescriptions issued before the digest was kept get it now: their issued content never changes.
    const prescriptionDigest = l.p.issued_digest ?? digestOfIssued(issuedContent(l.p, l.lines))
    const claims: ReceiptClaims = {
      iss: RECEIPT_ISSUER,
      iat: Math.floor(now.getTime() / 1000),
      prescriptionId: id,
      dispensation: seq,
      pharmacy: who.principal.org,
      acceptedAt: d.accepted_at.toISOString(),
      closedAt: now.toISOString(),
      digest: digestOf(dispensed),
      prescriptionDigest,
    }
    const jws = await signReceipt(deps.signingKey, claims)
    await persistPublicKey(tx, deps.signingKey, now)
    await q.updateDispensation(tx, d.id, { status: 'closed', seq, closed_at: now, digest: claims.digest, receipt: jws, receipt_kid: deps.signingKey.kid })
    const counts = deliveredCounts({ dispensations: l.dispensations.map((x) => (x.id === d.id ? { ...x, status: 'closed' as const } : x)) })
    const done = l.lines.every((x) => (counts.get(x.line_no) ?? 0) >= 1 + x.renewals)
    const status = done ? 'completed' : 'ready'
    await q.setStatus(tx, id, { status, holder_org: null, dispensations_closed: seq, completed_at: done ? now : null, issued_digest: prescriptionDigest }, now)
    await audit(tx, actor(who), { action: 'eprescription.dispensation.closed', objectType: 'eprescription', objectId: id, changes: { status: ['in_progress', status], dispensation: seq, digest: claims.digest, prescriptionDigest } }, now)
    await q.logAccess(tx, id, who.principal, 'dispensation.closed', now)
    // The prescriber learns that a dispensation closed; what was dispensed is read from GET (objection applies there).
    await publish(
      tx,
      {
        type: 'eprescription.dispensation.closed',
        payload: { prescriptionId: id, displayId: display(id), dispensation: seq, status, closedAt: now.toISOString() },
        audience: { orgs: [l.p.prescriber_org] },
        senderOrg: who.principal.org,
        subject: { type: 'eprescription', id },
      },
      now,
    )
    return { l: null, dispensationId: d.id, signed: true }
  })
  if (result.signed) markPersisted(deps.signingKey) // its public key committed with the receipt
  const l = result.l ?? (await q.load(deps.db, id))!
  return receiptView(l, l.dispensations.find((x) => x.id === result.dispensationId)!, now)
}

/** A receipt again, for the pharmacy that closed the dispensation. */
export async function getReceipt(deps: Deps, who: Who, id: string, seq: number, now: Date) {
  const l = await q.load(deps.db, id)
  const d = l?.dispensations.find((x) => x.status === 'closed' && x.seq === seq && x.pharmacy_org === who.principal.org)
  if (!l || !d) throw notFound(`Le reçu ${seq} de l’ordonnance ${display(id)}`, `Receipt ${seq} of prescription ${display(id)}`)
  await q.logAccess(deps.db, id, who.principal, 'receipt', now)
  return receiptView(l, d, now)
}

/** The prescription for its FHIR Bundle: the prescriber's own, or the one this pharmacy holds with a live secret. */
export async function loadForFhir(deps: Deps, who: Who, id: string, secret: string | undefined, now: Date) {
  const l = await loadOr404(deps.db, id)
  if (who.principal.role === 'prescriber') {
    if (l.p.prescriber_org !== who.principal.org) throw prescriptionNotFound(id)
  } else liveHolding(l, deps.codeKey, who.principal.org, secret ?? '')
  await q.logAccess(deps.db, id, who.principal, 'fhir', now)
  const facts = await productFacts(deps.db, l.lines.flatMap((x) => (x.cip13 ? [x.cip13] : [])))
  return { l, medicines: new Map([...facts].map(([cip13, f]) => [cip13, { cis: f.cis, name: f.name }])) }
}

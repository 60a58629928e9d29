/** The prescriber's operations: issue, follow, list, cancel, renew the access code, QR code and FHIR Bundle. */
import { audit } from '../../platform/audit.ts'
import { AppError } from '../../platform/errors.ts'
import type { Text } from '../../platform/i18n.ts'
import { enqueue } from '../../platform/jobs.ts'
import { findSubstanceMedicines, hasComposition, productFacts } from '../../referential/use-cases/medicine-facts.ts'
import { searchName } from '../../referential/rules/search-name.ts'
import { accessCodeHash, codeMatches } from '../rules/access.ts'
import { fieldError, invalid, prescriptionNotFound } from '../errors.ts'
import { newAccessCode, newPrescriptionId } from '../ids.ts'
import * as q from '../queries.ts'
import type { Loaded } from '../queries.ts'
import { RETENTION_QUEUE } from './retention.ts'
import { purgeAt } from '../rules/retention.ts'
import { digestOfIssued, effectiveStatus, issuedContent, prescriptionView, summaryView } from '../views.ts'
import { actor, type Deps, type Who } from './context.ts'
import { inTransaction } from '../../platform/db/transaction.ts'

const DAY = 86_400_000
const addMonths = (d: Date, n: number) => {
  const x = new Date(d)
  x.setUTCMonth(x.getUTCMonth() + n)
  return x
}

export interface IssueLine {
  cip13?: string
  substance?: string
  strength?: string
  form?: string
  dosage: string
  quantity?: number
  units?: number
  durationDays?: number
  renewals?: number
  nonSubstitutable?: boolean
}
export interface IssueInput {
  patient: { familyName: string; givenName: string; birthDate: string }
  lines: IssueLine[]
  validUntil?: string
}

type FieldProblem = { field: string; code: string; message: Text }

/** The combinations the schema cannot express, and the validity. */
function checkIssue(b: IssueInput, now: Date): { errors: FieldProblem[]; validUntil: Date } {
  const errors: FieldProblem[] = []
  b.lines.forEach((x, i) => {
    const f = `body.lines.${i}`
    if (!x.cip13 === !x.substance) errors.push({ field: f, code: 'one-of', message: { fr: 'indiquez soit cip13, soit substance (une seule)', en: 'give either cip13 or substance (one of them)' } })
    if (x.cip13 && (x.strength || x.form)) errors.push({ field: `${f}.${x.strength ? 'strength' : 'form'}`, code: 'not-allowed', message: { fr: 'réservé à une prescription par substance', en: 'only for a prescription by substance' } })
    if (x.substance && !x.strength) errors.push({ field: `${f}.strength`, code: 'required', message: { fr: 'le dosage est obligatoire pour une prescription par substance', en: 'the strength is required for a prescription by substance' } })
    if (x.substance && !x.form) errors.push({ field: `${f}.form`, code: 'required', message: { fr: 'la forme est obligatoire pour une prescription par substance', en: 'the form is required for a prescription by substance' } })
    if (x.quantity === undefined && x.units === undefined && x.durationDays === undefined) {
      errors.push({ field: `${f}.quantity`, code: 'required', message: { fr: 'indiquez une quantité (boîtes ou unités) ou une durée (durationDays)', en: 'give a quantity (boxes or units) or a duration (durationDays)' } })
    }
    if (x.quantity !== undefined && x.units !== undefined) errors.push({ field: `${f}.units`, code: 'one-of', message: { fr: 'indiquez la quantité en boîtes (quantity) ou en unités (units), pas les deux', en: 'give the quantity in boxes (quantity) or in units (units), not both' } })
    if ((x.renewals ?? 0) > 0 && x.durationDays === undefined) {
      errors.push({ field: `${f}.durationDays`, code: 'required', message: { fr: 'une ligne à renouveler indique la durée de traitement, qui fixe la date de chaque renouvellement', en: 'a renewable line gives the treatment duration, which sets the date of each renewal' } })
    }
  })
  const today = now.toISOString().slice(0, 10)
  if (b.patient.birthDate > today || b.patient.birthDate < '1900-01-01') errors.push({ field: 'body.patient.birthDate', code: 'range', message: { fr: 'date de naissance invraisemblable', en: 'implausible birth date' } })
  const maxRenewals = Math.max(...b.lines.map((x) => x.renewals ?? 0))
  const limit = addMonths(now, maxRenewals > 0 ? 12 : 3)
  let validUntil: Date
  if (b.validUntil) {
    validUntil = new Date(b.validUntil)
    if (validUntil.getTime() <= now.getTime()) errors.push({ field: 'body.validUntil', code: 'range', message: { fr: 'doit être dans le futur', en: 'must be in the future' } })
    else if (validUntil.getTime() > limit.getTime()) {
      errors.push({
        field: 'body.validUntil',
        code: 'range',
        message: maxRenewals > 0 ? { fr: 'au plus 12 mois après l’émission', en: 'at most 12 months after issue' } : { fr: 'au plus 3 mois après l’émission pour une ordonnance non renouvelable', en: 'at most 3 months after issue for a non-renewable prescription' },
      })
    }
  } else if (maxRenewals === 0) {
    validUntil = addMonths(now, 3)
  } else {
    const period = Math.max(...b.lines.filter((x) => (x.renewals ?? 0) > 0).map((x) => x.durationDays ?? 30))
    const needed = now.getTime() + (1 + maxRenewals) * period * DAY
    validUntil = new Date(Math.min(limit.getTime(), Math.max(addMonths(now, 3).getTime(), needed)))
  }
  return { errors, validUntil }
}

/**
 * Issues a prescription. Presentation lines must name a CIP13 of the referential; substance lines a substance,
 * strength and form that some medicine of the referential carries (when the composition is loaded). Answers the
 * ID and the access code, which the service keeps only as a keyed hash: this answer is the one to print.
 */
export async function issuePrescription(deps: Deps, who: Who, b: IssueInput, now: Date): Promise<{ id: string; accessCode: string }> {
  const { errors, validUntil } = checkIssue(b, now)
  if (errors.length) throw invalid(errors, who.lang)

  const facts = await productFacts(deps.db, b.lines.flatMap((x) => (x.cip13 ? [x.cip13] : [])))
  b.lines.forEach((x, i) => {
    if (x.cip13 && !facts.has(x.cip13)) {
      throw fieldError('EPRESCRIPTION_UNKNOWN_PRODUCT', { cip13: x.cip13 }, `body.lines.${i}.cip13`, { fr: `CIP13 ${x.cip13} inconnu du référentiel`, en: `CIP13 ${x.cip13} not in the referential` }, who.lang)
    }
  })
  const substanceCodes = new Map<number, string | null>()
  const checkSubstances = b.lines.some((x) => x.substance) && (await hasComposition(deps.db))
  for (const [i, x] of b.lines.entries()) {
    if (!x.substance || !checkSubstances) continue
    const found = await findSubstanceMedicines(deps.db, { substance: x.substance, strength: x.strength!, form: x.form! })
    if (found.count === 0) {
      const field = `body.lines.${i}.${found.why === 'strength' ? 'strength' : found.why === 'form' ? 'form' : 'substance'}`
      throw fieldError('EPRESCRIPTION_UNKNOWN_SUBSTANCE', { substance: x.substance, strength: x.strength, form: x.form, why: found.why }, field, { fr: 'aucun médicament du référentiel ne correspond', en: 'no medicine in the referential matches' }, who.lang)
    }
    substanceCodes.set(i, found.substanceCodes?.join(',') ?? null)
  }

  const accessCode = newAccessCode()
  const id = await inTransaction(deps.db, async (tx) => {
    const base = {
      prescriber_org: who.principal.org,
      prescriber_user: who.principal.user,
      status: 'ready' as const,
      access_code_hash: '',
      issued_digest: null,
      patient_family_name: b.patient.familyName,
      patient_given_name: b.patient.givenName,
      patient_birth_date: b.patient.birthDate,
      issued_at: now,
      valid_until: validUntil,
      holder_org: null,
      cancelled_at: null,
      cancel_reason: null,
      completed_at: null,
      expired_at: null,
      updated_at: now,
    }
    const id = await q.insertPrescription(tx, newPrescriptionId, base)
    const lines = b.lines.map((x, i) => {
      const product = x.cip13 ? facts.get(x.cip13)! : null
      return {
        prescription_id: id,
        line_no: i + 1,
        cip13: x.cip13 ?? null,
        substance: x.substance ?? null,
        strength: x.strength ?? null,
        form: x.form ?? null,
        label: product ? `${product.name} — ${product.label}` : `${x.substance} ${x.strength} ${x.form}`,
        dosage: x.dosage,
        quantity: x.quantity ?? null,
        units: x.units ?? null,
        duration_days: x.durationDays ?? null,
        renewals: x.renewals ?? 0,
        non_substitutable: x.nonSubstitutable ?? false,
        substance_code: substanceCodes.get(i) ?? null,
      }
    })
    await q.insertLines(tx, lines)
    const digest = digestOfIssued(issuedContent({ ...base, id }, lines))
    await q.setStatus(tx, id, { access_code_hash: accessCodeHash(deps.codeKey, id, accessCode), issued_digest: digest }, now)
    // No patient data in the audit trail: it outlives the prescription (retention purges the prescription only).
    await audit(
      tx,
      actor(who),
      { action: 'eprescription.issued', objectType: 'eprescription', objectId: id, changes: { status: [null, 'ready'], lines: b.lines.length, renewals: b.lines.map((x) => x.renewals ?? 0), validUntil: validUntil.toISOString(), digest } },
      now,
    )
    await q.logAccess(tx, id, who.principal, 'issued', now)
    await enqueue(tx, RETENTION_QUEUE, { id }, { runAt: validUntil, singletonKey: id, maxAttempts: 5 })
    return id
  })
  return { id, accessCode }
}

/** The prescriber's own prescription, or 404. */
async function owned(deps: Deps, who: Who, id: string, opts: { forUpdate?: boolean; db?: q.Db } = {}): Promise<Loaded> {
  const l = await q.load(opts.db ?? deps.db, id, opts)
  if (!l || l.p.prescriber_org !== who.principal.org) throw prescriptionNotFound(id)
  return l
}

export async function getPrescription(deps: Deps, who: Who, id: string, now: Date) {
  const l = await owned(deps, who, id)
  await q.logAccess(deps.db, id, who.principal, 'read', now)
  return prescriptionView(l, { kind: 'prescriber' }, now, deps.toleranceDays)
}

/** The prescription after issue or a change, as its prescriber sees it (no access-log entry: the write has one). */
export async function viewAfterWrite(deps: Deps, who: Who, id: string, now: Date) {
  return prescriptionView(await owned(deps, who, id), { kind: 'prescriber' }, now, deps.toleranceDays)
}

export interface ListInput extends q.ListFilter {
  limit: number
  after: { t: Date; id: string } | null
}

/** The prescriber's prescriptions, newest first; each one listed is an access, in its patient's log. */
export async function listPrescriptions(deps: Deps, who: Who, input: ListInput, now: Date) {
  const rows = await q.listOwned(deps.db, who.principal.org, { ...input, patient: input.patient ? searchName(input.patient).trim() : undefined }, input.after, input.limit, now)
  const page = rows.slice(0, input.limit)
  const { lines, deliveries } = await q.linesAndDeliveries(deps.db, page.map((p) => p.id))
  await q.logAccess(deps.db, page.map((p) => p.id), who.principal, 'listed', now)
  const items = page.map((p) =>
    summaryView(
      p,
      lines.filter((x) => x.prescription_id === p.id),
      deliveries.filter((d) => d.prescription_id === p.id),
      now,
      deps.toleranceDays,
    ),
  )
  const last = page[page.length - 1]
  return { items, next: rows.length > input.limit && last ? { t: last.issued_at.toISOString(), id: last.id } : null }
}

/** When a prescription's retention job should next look at it. */
async function retentionRunAt(db: q.Db, l: Loaded, status: ReturnType<typeof effectiveStatus>, now: Date) {
  const at = purgeAt({ ...l.p, status, lastClosedAt: await q.lastClosedAt(db, l.p.id) })
  return at ?? new Date(Math.max(l.p.valid_until.getTime(), now.getTime() + DAY))
}

/** Cancels what no pharmacy holds; what was already dispensed stays, with its retention. */
export async function cancelPrescription(deps: Deps, who: Who, id: string, reason: string | undefined, now: Date) {
  await inTransaction(deps.db, async (tx) => {
    const l = await owned(deps, who, id, { forUpdate: true, db: tx })
    const status = effectiveStatus(l.p, now)
    if (status === 'cancelled') return
    if (status !== 'ready') throw new AppError('EPRESCRIPTION_NOT_CANCELLABLE', { status })
    await q.setStatus(tx, id, { status: 'cancelled', cancelled_at: now, cancel_reason: reason ?? null }, now)
    await audit(tx, actor(who), { action: 'eprescription.cancelled', objectType: 'eprescription', objectId: id, changes: { status: ['ready', 'cancelled'], reason: reason ?? null, dispensations: l.p.dispensations_closed } }, now)
    await q.logAccess(tx, id, who.principal, 'cancelled', now)
    const runAt = await retentionRunAt(tx, { ...l, p: { ...l.p, status: 'cancelled', cancelled_at: now } }, 'cancelled', now)
    const moved = await tx.updateTable('jobs').set({ run_at: runAt }).where('queue', '=', RETENTION_QUEUE).where('singleton_key', '=', id).where('state', '=', 'pending').executeTakeFirst()
    if (Number(moved.numUpdatedRows) === 0) await enqueue(tx, RETENTION_QUEUE, { id }, { runAt, singletonKey: id, maxAttempts: 5 })
  })
  return viewAfterWrite(deps, who, id, now)
}

/**
 * A new access code, for a reprint: the previous one stops opening the prescription (a pharmacy already holding
 * it keeps its secret). Only while the prescription can still be dispensed.
 */
export async function renewAccessCode(deps: Deps, who: Who, id: string, now: Date): Promise<{ accessCode: string }> {
  const accessCode = newAccessCode()
  await inTransaction(deps.db, async (tx) => {
    const l = await owned(deps, who, id, { forUpdate: true, db: tx })
    const status = effectiveStatus(l.p, now)
    if (status !== 'ready' && status !== 'in_progress') throw new AppError('EPRESCRIPTION_NOT_ACTIVE', { status })
    await q.setStatus(tx, id, { access_code_hash: accessCodeHash(deps.codeKey, id, accessCode) }, now)
    await audit(tx, actor(who), { action: 'eprescription.access-code.renewed', objectType: 'eprescription', objectId: id, changes: { accessCode: 'renewed' } }, now)
    await q.logAccess(tx, id, who.principal, 'access-code.renewed', now)
  })
  return { accessCode }
}

/** The prescriber's own prescription and the code it holds for it (to draw the QR code): 404 for a wrong code. */
export async function checkOwnCode(deps: Deps, who: Who, id: string, accessCode: string) {
  const l = await owned(deps, who, id)
  if (!codeMatches(deps.codeKey, l.p, accessCode)) throw new AppError('EPRESCRIPTION_NOT_FOUND')
}

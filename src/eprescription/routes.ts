import { randomBytes, randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type Transaction } from 'kysely'
import { Type } from 'typebox'
import { actorOf, audit, SYSTEM } from '../platform/audit.ts'
import { principalOf } from '../platform/auth.ts'
import type { DB } from '../platform/db/schema.ts'
import { AppError, notFound } from '../platform/errors.ts'
import type {} from '../platform/events/plugin.ts'
import { publish } from '../platform/events/publish.ts'
import { langOf, type Lang, type Text } from '../platform/i18n.ts'
import { enqueue, RetryAt } from '../platform/jobs.ts'
import { IdempotencyKeyHeader, problems } from '../platform/openapi.ts'
import type { RoutePlugin } from '../platform/types.ts'
import './db.ts'
import { fhirBundle, prescriptionPdf, qrPng, qrSvg } from './documents.ts'
import { fieldError, invalid } from './errors.ts'
import { ACCESS_CODE_LENGTH, display, ID_LENGTH, newAccessCode, newPrescriptionId, parseChecked, parseQr, qrPayload } from './ids.ts'
import { digestOf, loadSigningKey, markPersisted, persistPublicKey, publishedKeys, RECEIPT_ISSUER, type ReceiptClaims, signReceipt, type SigningKey } from './receipts.ts'
import {
  AccessLogEntry,
  Dispensation,
  DispensedLineInput,
  Eprescription,
  EprescriptionCreate,
  EprescriptionTake,
  EprescriptionTaken,
  Jwks,
  PrescriptionIdParam,
  Receipt,
} from './schemas.ts'
import {
  authenticateWithCode,
  deliveredCounts,
  dispensedLineView,
  effectiveStatus,
  load,
  type Loaded,
  logAccess,
  openDispensationView,
  PATIENT_ACTOR,
  prescriptionView,
  purgeFailures,
  recordFailure,
  RETENTION,
  secretMatches,
} from './service.ts'

export const RETENTION_QUEUE = 'eprescription.retention'
const TAGS = ['eprescription']
const SECRET_HEADER = 'x-eprescription-secret'
const ACCESS_CODE_HEADER = 'x-access-code'

const IdParams = Type.Object({ id: PrescriptionIdParam })
const SecretHeaders = Type.Object({
  ...IdempotencyKeyHeader.properties,
  [SECRET_HEADER]: Type.String({ minLength: 1, maxLength: 100, description: 'The secret returned when the pharmacy took the prescription.' }),
})
const AccessCodeHeaders = Type.Object({
  ...IdempotencyKeyHeader.properties,
  [ACCESS_CODE_HEADER]: Type.String({ minLength: 1, maxLength: 60, description: 'The access code printed under the QR code (dashes and case ignored).' }),
})
const binary = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: 'string', format: 'binary' } } } })

// ---- input parsing -----------------------------------------------------------------------------------------
const ID_REASONS: Record<'length' | 'character' | 'check', Text> = {
  length: { fr: `un identifiant d’ordonnance compte ${ID_LENGTH} caractères`, en: `a prescription ID has ${ID_LENGTH} characters` },
  character: { fr: 'caractère non admis (chiffres et lettres, sauf I, L, O et U)', en: 'character not allowed (digits and letters except I, L, O and U)' },
  check: { fr: 'caractère de contrôle incorrect : vérifiez la saisie (faute de frappe ou inversion)', en: 'wrong check character: check what was typed (typo or swapped characters)' },
}
const CODE_REASONS: Record<'length' | 'character' | 'check', Text> = {
  length: { fr: `un code d’accès compte ${ACCESS_CODE_LENGTH} caractères`, en: `an access code has ${ACCESS_CODE_LENGTH} characters` },
  character: ID_REASONS.character,
  check: ID_REASONS.check,
}

function parseId(raw: string, field: string, lang: Lang): string {
  const r = parseChecked(raw, ID_LENGTH)
  if (r.ok) return r.value
  throw fieldError('EPRESCRIPTION_ID_INVALID', ID_REASONS[r.reason], field, ID_REASONS[r.reason], lang)
}
function parseAccessCode(raw: string, field: string, lang: Lang): string {
  const r = parseChecked(raw, ACCESS_CODE_LENGTH)
  if (r.ok) return r.value
  throw fieldError('EPRESCRIPTION_ACCESS_CODE_INVALID', CODE_REASONS[r.reason], field, CODE_REASONS[r.reason], lang)
}

const prescriptionNotFound = (id: string) => notFound(`L’ordonnance ${display(id)}`, `Prescription ${display(id)}`)
const addMonths = (d: Date, n: number) => {
  const x = new Date(d)
  x.setUTCMonth(x.getUTCMonth() + n)
  return x
}
const DAY = 86_400_000

/** When a prescription may be purged, given its state; null while it is live. */
export function purgeAt(p: Loaded['p'], status: string): Date | null {
  if (status === 'cancelled') return new Date(p.cancelled_at!.getTime() + RETENTION.cancelledDays * DAY)
  if (status === 'expired' && p.dispensations_closed === 0) return new Date(p.valid_until.getTime() + RETENTION.expiredUndispensedDays * DAY)
  if (status === 'expired') return addMonths(p.valid_until, 12 * RETENTION.dispensedYears)
  if (status === 'completed') return addMonths(p.completed_at!, 12 * RETENTION.dispensedYears)
  return null
}

/** The dispensation of this pharmacy that the secret opens; 404 when the pharmacy never held the prescription. */
function dispensationFor(l: Loaded, org: string, secret: string) {
  const mine = l.dispensations.filter((d) => d.pharmacy_org === org)
  if (mine.length === 0) throw prescriptionNotFound(l.p.id)
  const d = mine.find((x) => secretMatches(x.secret, secret))
  if (!d) throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: false })
  return d
}

function receiptView(l: Loaded, d: Loaded['dispensations'][number], now: Date) {
  const claims = JSON.parse(Buffer.from(d.receipt!.split('.')[1]!, 'base64url').toString('utf8')) as ReceiptClaims
  return { jws: d.receipt!, kid: d.receipt_kid!, claims, dispensed: d.lines.map(dispensedLineView), prescriptionStatus: effectiveStatus(l.p, now) }
}

const eprescriptionRoutes: RoutePlugin = async (app) => {
  const cfg = app.config as unknown as Record<string, unknown>
  const signingKey: SigningKey = await loadSigningKey(typeof cfg.RECEIPT_SIGNING_KEY === 'string' ? cfg.RECEIPT_SIGNING_KEY : undefined, app.config.NODE_ENV === 'production')
  if (signingKey.ephemeral) app.log.info({ kid: signingKey.kid }, 'e-prescription receipts signed with an ephemeral key (set RECEIPT_SIGNING_KEY in production)')

  const ownPrescription = async (request: FastifyRequest, rawId: string) => {
    const id = parseId(rawId, 'params.id', langOf(request))
    const l = await load(app.db, id)
    if (!l || l.p.prescriber_org !== principalOf(request).org) throw prescriptionNotFound(id)
    return l
  }
  /** Patient routes: ID + access code (throttled per prescription and per address). */
  const patientPrescription = async (request: FastifyRequest, reply: FastifyReply, rawId: string, rawCode: string) => {
    const lang = langOf(request)
    const id = parseId(rawId, 'params.id', lang)
    const code = parseAccessCode(rawCode, `headers.${ACCESS_CODE_HEADER}`, lang)
    await authenticateWithCode(app.db, reply, id, code, `ip:${request.ip}`, app.now())
    return id
  }

  // ---- prescriber -------------------------------------------------------------------------------------------
  app.post(
    '/eprescriptions',
    {
      config: { roles: ['prescriber'] },
      schema: {
        tags: TAGS,
        operationId: 'issueEprescription',
        summary: 'Issue a prescription (prescriber)',
        description:
          'Stores the prescription and answers its ID (typable, with a check character), its access code and the QR code content carrying both (`qrPayload`; images at `/qr.png` and `/qr.svg`). A line names a presentation by CIP13 (it must be in the referential) or a substance with strength and form; quantity or duration; renewals; “non substituable”. Validity: 3 months by default, longer for renewable prescriptions (12 months at most).',
        headers: IdempotencyKeyHeader,
        body: EprescriptionCreate,
        response: { 201: Eprescription, ...problems(400, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const lang = langOf(request)
      const now = app.now()
      const b = request.body
      const errors: Array<{ field: string; code: string; message: Text }> = []
      b.lines.forEach((x, i) => {
        const f = `body.lines.${i}`
        if (!x.cip13 === !x.substance) errors.push({ field: f, code: 'one-of', message: { fr: 'indiquez soit cip13, soit substance (une seule)', en: 'give either cip13 or substance (one of them)' } })
        if (x.cip13 && (x.strength || x.form)) errors.push({ field: `${f}.${x.strength ? 'strength' : 'form'}`, code: 'not-allowed', message: { fr: 'réservé à une prescription par substance', en: 'only for a prescription by substance' } })
        if (x.substance && !x.strength) errors.push({ field: `${f}.strength`, code: 'required', message: { fr: 'le dosage est obligatoire pour une prescription par substance', en: 'the strength is required for a prescription by substance' } })
        if (x.substance && !x.form) errors.push({ field: `${f}.form`, code: 'required', message: { fr: 'la forme est obligatoire pour une prescription par substance', en: 'the form is required for a prescription by substance' } })
        if (x.quantity === undefined && x.durationDays === undefined) errors.push({ field: `${f}.quantity`, code: 'required', message: { fr: 'indiquez une quantité ou une durée (durationDays)', en: 'give a quantity or a duration (durationDays)' } })
      })
      const today = now.toISOString().slice(0, 10)
      if (b.patient.birthDate > today || b.patient.birthDate < '1900-01-01') errors.push({ field: 'body.patient.birthDate', code: 'range', message: { fr: 'date de naissance invraisemblable', en: 'implausible birth date' } })
      const maxRenewals = Math.max(...b.lines.map((x) => x.renewals ?? 0))
      const limit = addMonths(now, maxRenewals > 0 ? 12 : 3)
      let validUntil: Date
      if (b.validUntil) {
        validUntil = new Date(b.validUntil)
        if (validUntil.getTime() <= now.getTime()) errors.push({ field: 'body.validUntil', code: 'range', message: { fr: 'doit être dans le futur', en: 'must be in the future' } })
        else if (validUntil.getTime() > limit.getTime())
          errors.push({
            field: 'body.validUntil',
            code: 'range',
            message: maxRenewals > 0 ? { fr: 'au plus 12 mois après l’émission', en: 'at most 12 months after issue' } : { fr: 'au plus 3 mois après l’émission pour une ordonnance non renouvelable', en: 'at most 3 months after issue for a non-renewable prescription' },
          })
      } else if (maxRenewals === 0) {
        validUntil = addMonths(now, 3)
      } else {
        const period = Math.max(...b.lines.filter((x) => (x.renewals ?? 0) > 0).map((x) => x.durationDays ?? 30))
        const needed = now.getTime() + (1 + maxRenewals) * period * DAY
        validUntil = new Date(Math.min(limit.getTime(), Math.max(addMonths(now, 3).getTime(), needed)))
      }
      if (errors.length) throw invalid(errors, lang)

      const cips = [...new Set(b.lines.flatMap((x) => (x.cip13 ? [x.cip13] : [])))]
      const products = cips.length
        ? await app.db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select(['p.cip13', 'p.label', 'm.name']).where('p.cip13', 'in', cips).execute()
        : []
      const byCip = new Map(products.map((r) => [r.cip13, r]))
      b.lines.forEach((x, i) => {
        if (x.cip13 && !byCip.has(x.cip13)) {
          const field = `body.lines.${i}.cip13`
          throw fieldError('EPRESCRIPTION_UNKNOWN_PRODUCT', { cip13: x.cip13 }, field, { fr: `CIP13 ${x.cip13} inconnu du référentiel`, en: `CIP13 ${x.cip13} not in the referential` }, lang)
        }
      })

      const id = await app.db.transaction().execute(async (tx) => {
        let id = ''
        for (let attempt = 0; ; attempt++) {
          id = newPrescriptionId()
          const inserted = await tx
            .insertInto('eprescriptions')
            .values({
              id,
              prescriber_org: principal.org,
              prescriber_user: principal.user,
              status: 'ready',
              access_code: newAccessCode(),
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
            })
            .onConflict((oc) => oc.column('id').doNothing())
            .returning('id')
            .executeTakeFirst()
          if (inserted) break
          if (attempt > 5) throw new Error('could not draw a free prescription ID')
        }
        await tx
          .insertInto('eprescription_lines')
          .values(
            b.lines.map((x, i) => {
              const product = x.cip13 ? byCip.get(x.cip13)! : null
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
                duration_days: x.durationDays ?? null,
                renewals: x.renewals ?? 0,
                non_substitutable: x.nonSubstitutable ?? false,
              }
            }),
          )
          .execute()
        // No patient data in the audit trail: it outlives the prescription (retention purges the prescription only).
        await audit(
          tx,
          actorOf(request.principal, request.id),
          {
            action: 'eprescription.issued',
            objectType: 'eprescription',
            objectId: id,
            changes: { status: [null, 'ready'], lines: b.lines.length, renewals: b.lines.map((x) => x.renewals ?? 0), validUntil: validUntil.toISOString() },
          },
          now,
        )
        await logAccess(tx, id, principal, 'issued', now)
        await enqueue(tx, RETENTION_QUEUE, { id }, { runAt: validUntil, singletonKey: id, maxAttempts: 5 })
        return id
      })
      const l = (await load(app.db, id))!
      return reply.code(201).header('location', `/v1/eprescriptions/${id}`).send(prescriptionView(l, { kind: 'prescriber' }, now))
    },
  )

  app.get(
    '/eprescriptions/:id',
    {
      config: { roles: ['prescriber'] },
      schema: {
        tags: TAGS,
        operationId: 'getEprescription',
        summary: 'Follow a prescription: status and dispensations (prescriber)',
        description: 'The prescriber’s own prescriptions only (another’s answers 404). The dispensed lines are hidden when the patient objected (`dispensedLinesHidden`).',
        params: IdParams,
        response: { 200: Eprescription, ...problems(404) },
      },
    },
    async (request) => {
      const l = await ownPrescription(request, request.params.id)
      await logAccess(app.db, l.p.id, principalOf(request), 'read', app.now())
      return prescriptionView(l, { kind: 'prescriber' }, app.now())
    },
  )

  for (const [ext, type] of [
    ['png', 'image/png'],
    ['svg', 'image/svg+xml'],
  ] as const) {
    app.get(
      `/eprescriptions/:id/qr.${ext}`,
      {
        config: { roles: ['prescriber'] },
        schema: {
          tags: TAGS,
          operationId: ext === 'png' ? 'getEprescriptionQrPng' : 'getEprescriptionQrSvg',
          summary: `The QR code to print, as ${ext.toUpperCase()} (prescriber)`,
          description: 'Carries `ORDO1:<ID>:<access code>`. Print the ID and the access code in clear beside it.',
          params: IdParams,
          response: { 200: binary(type, `QR code (${type})`), ...problems(404) },
        },
      },
      async (request, reply) => {
        const l = await ownPrescription(request, request.params.id)
        const content = qrPayload(l.p.id, l.p.access_code)
        const body = ext === 'png' ? await qrPng(content) : await qrSvg(content)
        return reply.type(type).header('cache-control', 'private, no-store').send(body)
      },
    )
  }

  app.post(
    '/eprescriptions/:id/cancel',
    {
      config: { roles: ['prescriber'] },
      schema: {
        tags: TAGS,
        operationId: 'cancelEprescription',
        summary: 'Cancel a prescription no pharmacy holds (prescriber)',
        description: 'Allowed while the prescription is ready (not taken, not expired, renewals left). Cancelling again answers the cancelled prescription.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) }, { additionalProperties: false }),
        response: { 200: Eprescription, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const id = parseId(request.params.id, 'params.id', langOf(request))
      const now = app.now()
      const l = await app.db.transaction().execute(async (tx) => {
        const l = await load(tx, id, { forUpdate: true })
        if (!l || l.p.prescriber_org !== principal.org) throw prescriptionNotFound(id)
        const status = effectiveStatus(l.p, now)
        if (status === 'cancelled') return l
        if (status !== 'ready') throw new AppError('EPRESCRIPTION_NOT_CANCELLABLE', { status })
        await tx.updateTable('eprescriptions').set({ status: 'cancelled', cancelled_at: now, cancel_reason: request.body.reason ?? null, updated_at: now }).where('id', '=', id).execute()
        await audit(tx, actorOf(principal, request.id), { action: 'eprescription.cancelled', objectType: 'eprescription', objectId: id, changes: { status: ['ready', 'cancelled'], reason: request.body.reason ?? null } }, now)
        await logAccess(tx, id, principal, 'cancelled', now)
        const runAt = new Date(now.getTime() + RETENTION.cancelledDays * DAY)
        const moved = await tx.updateTable('jobs').set({ run_at: runAt }).where('queue', '=', RETENTION_QUEUE).where('singleton_key', '=', id).where('state', '=', 'pending').executeTakeFirst()
        if (Number(moved.numUpdatedRows) === 0) await enqueue(tx, RETENTION_QUEUE, { id }, { runAt, singletonKey: id, maxAttempts: 5 })
        return (await load(tx, id))!
      })
      return prescriptionView(l, { kind: 'prescriber' }, now)
    },
  )

  app.get(
    '/eprescriptions/:id/fhir',
    {
      config: { roles: ['prescriber', 'pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionFhir',
        summary: 'The prescription as an HL7 FHIR R4 Bundle',
        description:
          'A Bundle (collection) with the Patient, the Practitioner (RPPS as IDNPS) and one MedicationRequest per line grouped by `groupIdentifier` (the prescription ID), after the French ePrescription guide. The prescriber reads its own; a pharmacy the one it holds (header x-eprescription-secret).',
        params: IdParams,
        headers: Type.Object({ [SECRET_HEADER]: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) }),
        response: { 200: { description: 'FHIR R4 Bundle', content: { 'application/fhir+json': { schema: { type: 'object', additionalProperties: true } } } }, ...problems(404) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const id = parseId(request.params.id, 'params.id', langOf(request))
      const l = await load(app.db, id)
      if (!l) throw prescriptionNotFound(id)
      if (principal.role === 'prescriber') {
        if (l.p.prescriber_org !== principal.org) throw prescriptionNotFound(id)
      } else {
        const d = dispensationFor(l, principal.org, request.headers[SECRET_HEADER] ?? '')
        if (d.status !== 'open') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: d.status === 'released' })
      }
      await logAccess(app.db, id, principal, 'fhir', app.now())
      const base = app.config.PUBLIC_URL ?? `${request.protocol}://${request.host}`
      // Sent as a string: FHIR keeps its own key order and the content type is not application/json.
      const body: unknown = JSON.stringify(fhirBundle(l, app.now(), base))
      return reply.type('application/fhir+json; charset=utf-8').send(body as Record<string, unknown>)
    },
  )

  // ---- pharmacy ---------------------------------------------------------------------------------------------
  app.post(
    '/eprescriptions/accept',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'takeEprescription',
        summary: 'Take a prescription with its QR code or ID + access code (pharmacy)',
        description:
          'Moves it to in_progress and answers its data and a `secret` that every later call needs (header x-eprescription-secret). The same pharmacy calling again gets the same secret (lost response, lost secret). Another pharmacy gets 409 EPRESCRIPTION_IN_PROGRESS; expired, cancelled or fully dispensed prescriptions are refused with the reason. A wrong access code answers 404 and counts: after 5 for one prescription or 20 from one pharmacy within 15 minutes, 429 with Retry-After. QR content that is not an e-prescription is refused (400) without being echoed.',
        headers: IdempotencyKeyHeader,
        body: EprescriptionTake,
        response: { 200: EprescriptionTaken, ...problems(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request)
      const lang = langOf(request)
      const now = app.now()
      const b = request.body
      let id: string
      let code: string
      if (b.qr !== undefined) {
        if (b.id !== undefined || b.accessCode !== undefined) {
          throw invalid([{ field: 'body.qr', code: 'one-of', message: { fr: 'donnez soit qr, soit id et accessCode', en: 'give either qr, or id and accessCode' } }], lang)
        }
        const parsed = parseQr(b.qr)
        if (!parsed) {
          await recordFailure(app.db, null, `org:${principal.org}`, now) // garbage counts towards the pharmacy's limit
          throw new AppError('EPRESCRIPTION_QR_INVALID', {}, { errors: [{ field: 'body.qr', code: 'qr', message: lang === 'fr' ? 'contenu de QR code non reconnu' : 'QR code content not recognised' }] })
        }
        ;({ id, accessCode: code } = parsed)
      } else {
        const missing = (['id', 'accessCode'] as const).filter((k) => b[k] === undefined)
        if (missing.length) throw invalid(missing.map((k) => ({ field: `body.${k}`, code: 'required', message: { fr: 'champ obligatoire (ou donnez qr)', en: 'required field (or give qr)' } })), lang)
        id = parseId(b.id!, 'body.id', lang)
        code = parseAccessCode(b.accessCode!, 'body.accessCode', lang)
      }
      await authenticateWithCode(app.db, reply, id, code, `org:${principal.org}`, now)

      const { l, d } = await app.db.transaction().execute(async (tx) => {
        const l = (await load(tx, id, { forUpdate: true }))!
        const status = effectiveStatus(l.p, now)
        if (status === 'cancelled') throw new AppError('EPRESCRIPTION_CANCELLED', { cancelledAt: l.p.cancelled_at?.toISOString() })
        if (status === 'expired') throw new AppError('EPRESCRIPTION_EXPIRED', { validUntil: l.p.valid_until.toISOString() }, { validUntil: l.p.valid_until.toISOString() })
        if (status === 'completed') throw new AppError('EPRESCRIPTION_COMPLETED')
        if (status === 'draft') throw new AppError('EPRESCRIPTION_NOT_FOUND')
        if (status === 'in_progress') {
          const open = l.dispensations.find((x) => x.status === 'open')!
          if (open.pharmacy_org !== principal.org) throw new AppError('EPRESCRIPTION_IN_PROGRESS')
          await logAccess(tx, id, principal, 'secret.reissued', now)
          return { l, d: open }
        }
        const dispensationId = randomUUID()
        await tx
          .insertInto('eprescription_dispensations')
          .values({
            id: dispensationId,
            prescription_id: id,
            seq: null,
            pharmacy_org: principal.org,
            pharmacy_user: principal.user,
            secret: randomBytes(32).toString('base64url'),
            status: 'open',
            accepted_at: now,
            released_at: null,
            closed_at: null,
            digest: null,
            receipt: null,
            receipt_kid: null,
          })
          .execute()
        await tx.updateTable('eprescriptions').set({ status: 'in_progress', holder_org: principal.org, updated_at: now }).where('id', '=', id).execute()
        await audit(tx, actorOf(principal, request.id), { action: 'eprescription.accepted', objectType: 'eprescription', objectId: id, changes: { status: ['ready', 'in_progress'], pharmacy: principal.org, dispensation: dispensationId } }, now)
        await logAccess(tx, id, principal, 'accepted', now)
        const reloaded = (await load(tx, id))!
        return { l: reloaded, d: reloaded.dispensations.find((x) => x.id === dispensationId)! }
      })
      return { secret: d.secret, prescription: prescriptionView(l, { kind: 'pharmacy', org: principal.org }, now), dispensation: openDispensationView(d) }
    },
  )

  app.get(
    '/eprescriptions/:id/dispensation',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionDispensation',
        summary: 'The prescription held and what was recorded so far (pharmacy)',
        params: IdParams,
        headers: Type.Object({ [SECRET_HEADER]: SecretHeaders.properties[SECRET_HEADER] }),
        response: { 200: EprescriptionTaken, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const now = app.now()
      const id = parseId(request.params.id, 'params.id', langOf(request))
      const l = await load(app.db, id)
      if (!l) throw prescriptionNotFound(id)
      const d = dispensationFor(l, principal.org, request.headers[SECRET_HEADER])
      if (d.status === 'released') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true })
      await logAccess(app.db, id, principal, 'read', now)
      return { secret: d.secret, prescription: prescriptionView(l, { kind: 'pharmacy', org: principal.org }, now), dispensation: openDispensationView(d) }
    },
  )

  app.put(
    '/eprescriptions/:id/dispensation/lines/:line',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'recordEprescriptionLine',
        summary: 'Record what was delivered for one line (pharmacy)',
        description:
          '`delivered`: the CIP13 delivered (from the referential), quantity, batch, substitution (deduced when another presentation than prescribed is delivered; refused on a “non substituable” line), a dosage change with its reason. `not_delivered`: the reason. Recording a line again replaces it until the dispensation is closed.',
        headers: SecretHeaders,
        params: Type.Object({ id: PrescriptionIdParam, line: Type.Integer({ minimum: 1, maximum: 30 }) }),
        body: DispensedLineInput,
        response: { 200: Dispensation, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const lang = langOf(request)
      const now = app.now()
      const id = parseId(request.params.id, 'params.id', lang)
      const lineNo = request.params.line
      const b = request.body
      const errors: Array<{ field: string; code: string; message: Text }> = []
      const notAllowed = (k: string) => errors.push({ field: `body.${k}`, code: 'not-allowed', message: { fr: `sans objet pour ce résultat (${b.outcome})`, en: `not applicable to this outcome (${b.outcome})` } })
      const required = (k: string) => errors.push({ field: `body.${k}`, code: 'required', message: { fr: 'champ obligatoire pour ce résultat', en: 'required for this outcome' } })
      if (b.outcome === 'delivered') {
        if (!b.cip13) required('cip13')
        if (!b.quantity) required('quantity')
        if (b.reason !== undefined) notAllowed('reason')
      } else {
        if (!b.reason) required('reason')
        for (const k of ['cip13', 'quantity', 'batch', 'substituted', 'dosageChange'] as const) if (b[k] !== undefined) notAllowed(k)
      }
      if (errors.length) throw invalid(errors, lang)

      const view = await app.db.transaction().execute(async (tx) => {
        const l = await load(tx, id, { forUpdate: true })
        if (!l) throw prescriptionNotFound(id)
        const d = dispensationFor(l, principal.org, request.headers[SECRET_HEADER])
        if (d.status === 'released') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true })
        if (d.status === 'closed') throw new AppError('EPRESCRIPTION_DISPENSATION_CLOSED')
        const line = l.lines.find((x) => x.line_no === lineNo)
        if (!line) throw notFound(`La ligne ${lineNo}`, `Line ${lineNo}`)
        let substituted = false
        if (b.outcome === 'delivered') {
          if ((deliveredCounts(l).get(lineNo) ?? 0) >= 1 + line.renewals) throw new AppError('EPRESCRIPTION_LINE_EXHAUSTED', { line: lineNo })
          const known = await tx.selectFrom('presentations').select('cip13').where('cip13', '=', b.cip13!).executeTakeFirst()
          if (!known) throw fieldError('EPRESCRIPTION_UNKNOWN_PRODUCT', { cip13: b.cip13 }, 'body.cip13', { fr: `CIP13 ${b.cip13} inconnu du référentiel`, en: `CIP13 ${b.cip13} not in the referential` }, lang)
          const other = line.cip13 !== null && line.cip13 !== b.cip13
          substituted = b.substituted ?? other
          if (line.non_substitutable && (substituted || other)) {
            throw fieldError('EPRESCRIPTION_SUBSTITUTION_NOT_ALLOWED', { line: lineNo }, 'body.cip13', { fr: 'ligne « non substituable »', en: 'line is "non substitutable"' }, lang)
          }
        }
        const row = {
          dispensation_id: d.id,
          line_no: lineNo,
          outcome: b.outcome,
          cip13: b.cip13 ?? null,
          quantity: b.quantity ?? null,
          batch: b.batch ?? null,
          substituted,
          dosage_changed_to: b.dosageChange?.dosage ?? null,
          dosage_change_reason: b.dosageChange?.reason ?? null,
          not_delivered_reason: b.reason ?? null,
          recorded_at: now,
        }
        const { dispensation_id: _d, line_no: _l, ...update } = row
        await tx.insertInto('eprescription_dispensed_lines').values(row).onConflict((oc) => oc.columns(['dispensation_id', 'line_no']).doUpdateSet(update)).execute()
        await audit(
          tx,
          actorOf(principal, request.id),
          {
            action: 'eprescription.line.recorded',
            objectType: 'eprescription',
            objectId: id,
            changes: { dispensation: d.id, line: lineNo, outcome: b.outcome, cip13: row.cip13, quantity: row.quantity, batch: row.batch, substituted, dosageChanged: row.dosage_changed_to !== null, reason: row.not_delivered_reason },
          },
          now,
        )
        const reloaded = (await load(tx, id))!
        return openDispensationView(reloaded.dispensations.find((x) => x.id === d.id)!)
      })
      return view
    },
  )

  app.post(
    '/eprescriptions/:id/release',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'releaseEprescription',
        summary: 'Give the prescription back without dispensing (pharmacy)',
        description: 'It returns to ready and the secret is voided; what was recorded is discarded. Releasing again answers the same.',
        headers: SecretHeaders,
        params: IdParams,
        response: { 200: Eprescription, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const now = app.now()
      const id = parseId(request.params.id, 'params.id', langOf(request))
      const l = await app.db.transaction().execute(async (tx) => {
        const l = await load(tx, id, { forUpdate: true })
        if (!l) throw prescriptionNotFound(id)
        const d = dispensationFor(l, principal.org, request.headers[SECRET_HEADER])
        if (d.status === 'released') return l
        if (d.status === 'closed') throw new AppError('EPRESCRIPTION_DISPENSATION_CLOSED')
        await tx.updateTable('eprescription_dispensations').set({ status: 'released', released_at: now }).where('id', '=', d.id).execute()
        await tx.updateTable('eprescriptions').set({ status: 'ready', holder_org: null, updated_at: now }).where('id', '=', id).execute()
        await audit(tx, actorOf(principal, request.id), { action: 'eprescription.released', objectType: 'eprescription', objectId: id, changes: { status: ['in_progress', 'ready'], dispensation: d.id } }, now)
        await logAccess(tx, id, principal, 'released', now)
        return (await load(tx, id))!
      })
      return prescriptionView(l, { kind: 'pharmacy', org: principal.org }, now)
    },
  )

  app.post(
    '/eprescriptions/:id/close',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'closeEprescriptionDispensation',
        summary: 'Close the dispensation and get the signed receipt (pharmacy)',
        description:
          'Records the dispensation and answers a receipt: a JWS (ES256) signed by the service carrying the prescription ID, the pharmacy, accept and close times and the digest of what was dispensed; verify it with the keys at GET /v1/eprescriptions/receipt-keys. Closing again (lost response) answers the same receipt. With renewals left the prescription returns to ready for the next dispensation; otherwise it is completed. The prescriber receives an event `eprescription.dispensation.closed` on its feed.',
        headers: SecretHeaders,
        params: IdParams,
        response: { 200: Receipt, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const now = app.now()
      const id = parseId(request.params.id, 'params.id', langOf(request))
      const result = await app.db.transaction().execute(async (tx: Transaction<DB>) => {
        const l = await load(tx, id, { forUpdate: true })
        if (!l) throw prescriptionNotFound(id)
        const d = dispensationFor(l, principal.org, request.headers[SECRET_HEADER])
        if (d.status === 'released') throw new AppError('EPRESCRIPTION_SECRET_INVALID', { voided: true })
        if (d.status === 'closed') return { l, dispensationId: d.id, signed: false }
        if (d.lines.length === 0) throw new AppError('EPRESCRIPTION_DISPENSATION_EMPTY')
        const seq = l.p.dispensations_closed + 1
        const dispensed = d.lines.map(dispensedLineView)
        const claims: ReceiptClaims = {
          iss: RECEIPT_ISSUER,
          iat: Math.floor(now.getTime() / 1000),
          prescriptionId: id,
          dispensation: seq,
          pharmacy: principal.org,
          acceptedAt: d.accepted_at.toISOString(),
          closedAt: now.toISOString(),
          digest: digestOf(dispensed),
        }
        const jws = await signReceipt(signingKey, claims)
        await persistPublicKey(tx, signingKey, now)
        await tx
          .updateTable('eprescription_dispensations')
          .set({ status: 'closed', seq, closed_at: now, digest: claims.digest, receipt: jws, receipt_kid: signingKey.kid })
          .where('id', '=', d.id)
          .execute()
        const counts = deliveredCounts({ ...l, dispensations: l.dispensations.map((x) => (x.id === d.id ? { ...x, status: 'closed' as const } : x)) })
        const done = l.lines.every((x) => (counts.get(x.line_no) ?? 0) >= 1 + x.renewals)
        const status = done ? 'completed' : 'ready'
        await tx
          .updateTable('eprescriptions')
          .set({ status, holder_org: null, dispensations_closed: seq, completed_at: done ? now : null, updated_at: now })
          .where('id', '=', id)
          .execute()
        await audit(tx, actorOf(principal, request.id), { action: 'eprescription.dispensation.closed', objectType: 'eprescription', objectId: id, changes: { status: ['in_progress', status], dispensation: seq, digest: claims.digest } }, now)
        await logAccess(tx, id, principal, 'dispensation.closed', now)
        // The prescriber learns that a dispensation closed; what was dispensed is read from GET (objection applies there).
        await publish(
          tx,
          {
            type: 'eprescription.dispensation.closed',
            payload: { prescriptionId: id, displayId: display(id), dispensation: seq, status, closedAt: now.toISOString() },
            audience: { orgs: [l.p.prescriber_org] },
            senderOrg: principal.org,
            subject: { type: 'eprescription', id },
          },
          now,
        )
        return { l: null, dispensationId: d.id, signed: true }
      })
      if (result.signed) markPersisted(signingKey) // its public key committed with the receipt
      const l = result.l ?? (await load(app.db, id))!
      return receiptView(l, l.dispensations.find((x) => x.id === result.dispensationId)!, now)
    },
  )

  app.get(
    '/eprescriptions/:id/dispensations/:seq/receipt',
    {
      config: { roles: ['pharmacy'] },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionReceipt',
        summary: 'Fetch a dispensation’s receipt again (pharmacy that closed it)',
        params: Type.Object({ id: PrescriptionIdParam, seq: Type.Integer({ minimum: 1, maximum: 100 }) }),
        response: { 200: Receipt, ...problems(404) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const id = parseId(request.params.id, 'params.id', langOf(request))
      const l = await load(app.db, id)
      const d = l?.dispensations.find((x) => x.status === 'closed' && x.seq === request.params.seq && x.pharmacy_org === principal.org)
      if (!l || !d) throw notFound(`Le reçu ${request.params.seq} de l’ordonnance ${display(id)}`, `Receipt ${request.params.seq} of prescription ${display(id)}`)
      return receiptView(l, d, app.now())
    },
  )

  app.get(
    '/eprescriptions/receipt-keys',
    {
      config: { roles: 'public' },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionReceiptKeys',
        summary: 'Public keys that verify receipts (JWKS)',
        description: 'Every key that ever signed a receipt; pick the one whose `kid` is in the receipt’s header. No token needed.',
        response: { 200: Jwks },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300')
      return (await publishedKeys(app.db, signingKey)) as { keys: Array<{ kty: string; crv: string; x: string; y: string; kid: string; alg: string; use: string }> }
    },
  )

  // ---- patient (no account: ID + access code) ---------------------------------------------------------------
  app.get(
    '/eprescriptions/:id/patient/pdf',
    {
      config: { roles: 'public' },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionPdf',
        summary: 'The prescription as a PDF, with its QR code and the dispensations (patient)',
        description: `No token: the ID in the path and the access code in the ${ACCESS_CODE_HEADER} header. Wrong codes are throttled per prescription and per address (429 with Retry-After).`,
        params: IdParams,
        headers: Type.Object({ [ACCESS_CODE_HEADER]: AccessCodeHeaders.properties[ACCESS_CODE_HEADER] }),
        response: { 200: binary('application/pdf', 'The prescription (PDF)'), ...problems(404) },
      },
    },
    async (request, reply) => {
      const id = await patientPrescription(request, reply, request.params.id, request.headers[ACCESS_CODE_HEADER])
      const now = app.now()
      const l = (await load(app.db, id))!
      await logAccess(app.db, id, { role: 'patient', org: null }, 'pdf', now)
      const pdf = await prescriptionPdf(l, now)
      return reply.type('application/pdf').header('content-disposition', `attachment; filename="ordonnance-${display(id)}.pdf"`).header('cache-control', 'private, no-store').send(pdf)
    },
  )

  app.put(
    '/eprescriptions/:id/patient/objection',
    {
      config: { roles: 'public' },
      schema: {
        tags: TAGS,
        operationId: 'setEprescriptionObjection',
        summary: 'Object to (or accept) the prescriber seeing the dispensations (patient)',
        params: IdParams,
        headers: AccessCodeHeaders,
        body: Type.Object({ objection: Type.Boolean({ description: 'true: the prescriber no longer sees what was dispensed.' }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ objection: Type.Boolean() }), ...problems(404, 409, 422) },
      },
    },
    async (request, reply) => {
      const id = await patientPrescription(request, reply, request.params.id, request.headers[ACCESS_CODE_HEADER])
      const now = app.now()
      const { objection } = request.body
      await app.db.transaction().execute(async (tx) => {
        const before = await tx.selectFrom('eprescriptions').select('patient_objection').where('id', '=', id).forUpdate().executeTakeFirstOrThrow()
        if (before.patient_objection === objection) return
        await tx.updateTable('eprescriptions').set({ patient_objection: objection, updated_at: now }).where('id', '=', id).execute()
        await audit(tx, PATIENT_ACTOR(request.id), { action: 'eprescription.objection.set', objectType: 'eprescription', objectId: id, changes: { patientObjection: [before.patient_objection, objection] } }, now)
        await logAccess(tx, id, { role: 'patient', org: null }, objection ? 'objection.on' : 'objection.off', now)
      })
      return { objection }
    },
  )

  app.get(
    '/eprescriptions/:id/patient/access-log',
    {
      config: { roles: 'public' },
      schema: {
        tags: TAGS,
        operationId: 'getEprescriptionAccessLog',
        summary: 'Who accessed the prescription, and when (patient)',
        params: IdParams,
        headers: Type.Object({ [ACCESS_CODE_HEADER]: AccessCodeHeaders.properties[ACCESS_CODE_HEADER] }),
        response: { 200: Type.Array(AccessLogEntry), ...problems(404) },
      },
    },
    async (request, reply) => {
      const id = await patientPrescription(request, reply, request.params.id, request.headers[ACCESS_CODE_HEADER])
      const now = app.now()
      await logAccess(app.db, id, { role: 'patient', org: null }, 'access-log', now)
      const rows = await app.db
        .selectFrom('eprescription_access_log as a')
        .leftJoin('organisations as o', 'o.id', 'a.actor_org')
        .select(['a.at', 'a.actor_role', 'a.actor_org', 'a.action', 'o.name'])
        .where('a.prescription_id', '=', id)
        .orderBy('a.id')
        .execute()
      return rows.map((r) => ({ at: r.at.toISOString(), role: r.actor_role, organisation: r.actor_org ? { id: r.actor_org, name: r.name } : null, action: r.action }))
    },
  )
}

export default eprescriptionRoutes

/**
 * Retention, per prescription: a job wakes at the end of validity (marks it expired), then when its state's
 * retention ends (cancelled: 7 days; expired undispensed: 30 days; dispensed: 10 years) and purges it — the
 * prescription, its lines, dispensations and access log — recording the purge in the audit trail.
 */
export function registerEprescriptionJobs(app: FastifyInstance) {
  app.jobs.register(RETENTION_QUEUE, async (payload: { id?: string }, ctx) => {
    const id = String(payload?.id ?? '')
    const now = ctx.now
    const next = await app.db.transaction().execute(async (tx) => {
      const p = await tx.selectFrom('eprescriptions').selectAll().where('id', '=', id).forUpdate().executeTakeFirst()
      if (!p) return null
      let status = effectiveStatus(p, now)
      if (status === 'expired' && p.status !== 'expired') {
        await tx.updateTable('eprescriptions').set({ status: 'expired', expired_at: p.valid_until, updated_at: now }).where('id', '=', id).execute()
        await audit(tx, SYSTEM, { action: 'eprescription.expired', objectType: 'eprescription', objectId: id, changes: { status: [p.status, 'expired'] } }, now)
        status = 'expired'
      }
      const at = purgeAt(p, status)
      if (at && at.getTime() <= now.getTime()) {
        await tx.deleteFrom('eprescriptions').where('id', '=', id).execute()
        await audit(tx, SYSTEM, { action: 'eprescription.purged', objectType: 'eprescription', objectId: id, changes: { status, reason: 'retention', dispensations: p.dispensations_closed } }, now)
        return null
      }
      // Live (ready, in progress): look again at the end of validity, or daily once past it.
      return at ?? new Date(Math.max(p.valid_until.getTime(), now.getTime() + DAY))
    })
    await purgeFailures(app.db, now)
    if (next) throw new RetryAt(next, 'retention: not yet')
  })
}

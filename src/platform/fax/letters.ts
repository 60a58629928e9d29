import type { Kysely, Transaction } from 'kysely'
import { type Actor, audit } from '../audit.ts'
import type { Principal } from '../auth.ts'
import type { DB } from '../db/schema.ts'
import { AppError, conflict, defineErrors, errorDef, notFound } from '../errors.ts'
import { eventTypeLabel } from '../events/event-types.ts'
import type { Lang } from '../i18n.ts'
import './db.ts'
import { postalAddress, renderLetterPdf } from './letter.ts'
import { inTransaction } from '../db/transaction.ts'

type Db = Kysely<DB> | Transaction<DB>

defineErrors({
  POSTAL_ADDRESS_MISSING: errorDef(409, 'Adresse postale manquante', 'Postal address missing', (p) => ({
    fr: `${p.name} (${p.id}) n’a pas d’adresse postale complète (adresse, code postal, ville) : l’opérateur doit la renseigner (PATCH /v1/organisations/${p.id}) avant que le courrier puisse être imprimé.`,
    en: `${p.name} (${p.id}) has no complete postal address (street, postal code, city): the operator must add it (PATCH /v1/organisations/${p.id}) before the letter can be printed.`,
  })),
})

const letterNotFound = () => notFound('Le courrier', 'The letter')
const iso = (d: Date | null) => (d ? d.toISOString() : null)

/** Letters as the caller may see them: a lab those it must send (its own messages), the operator every one. */
function visibleLetters(db: Db, principal: Principal) {
  let q = db
    .selectFrom('paper_letters as l')
    .innerJoin('events as e', 'e.id', 'l.event_id')
    .innerJoin('organisations as o', 'o.id', 'l.org_id')
    .leftJoin('organisations as s', 's.id', 'l.sender_org')
    .selectAll('l')
    .select([
      'e.type', 'e.created_at as event_created_at', 'e.payload', 'e.subject_type', 'e.subject_id',
      'o.name as recipient_name', 'o.role as recipient_role', 'o.address_line1', 'o.address_line2', 'o.postal_code', 'o.city',
      's.name as sender_name',
    ])
  if (principal.role !== 'ordre') q = q.where('l.sender_org', '=', principal.org)
  return q
}
type LetterRow = Awaited<ReturnType<ReturnType<typeof visibleLetters>['executeTakeFirstOrThrow']>>

async function oneLetter(db: Db, principal: Principal, id: string, lock = false) {
  let q = visibleLetters(db, principal).where('l.id', '=', id)
  if (lock) q = q.forUpdate('l') as typeof q
  const row = await q.executeTakeFirst()
  if (!row) throw letterNotFound()
  return row
}

export function letterView(r: LetterRow, lang: Lang) {
  const payload = r.payload as { reference?: unknown } | null
  return {
    id: r.id,
    status: r.status,
    event: { id: r.event_id, type: r.type, label: eventTypeLabel(r.type, lang), createdAt: r.event_created_at.toISOString() },
    reference: typeof payload?.reference === 'string' ? payload.reference : null,
    subject: r.subject_type && r.subject_id ? { type: r.subject_type, id: r.subject_id } : null,
    recipient: { id: r.org_id, name: r.recipient_name, role: r.recipient_role, address: postalAddress(r) },
    sender: r.sender_org ? { id: r.sender_org, name: r.sender_name ?? r.sender_org } : null,
    faxAttempts: r.fax_attempts,
    lastError: r.last_error,
    createdAt: r.created_at.toISOString(),
    sentAt: iso(r.sent_at),
    sentBy: r.sent_by_role || r.sent_by_org || r.sent_by_user ? { role: r.sent_by_role, org: r.sent_by_org, user: r.sent_by_user } : null,
    recordedAt: iso(r.recorded_at),
    trackingNumber: r.tracking_number,
    comment: r.comment,
    address: r.address,
    pdfUrl: `/v1/paper-letters/${r.id}/pdf`,
  }
}

export async function listLetters(db: Db, principal: Principal, opts: { status?: 'pending' | 'sent'; after: { at: string; id: string } | null; limit: number }) {
  let q = visibleLetters(db, principal).orderBy('l.created_at', 'desc').orderBy('l.id', 'desc').limit(opts.limit + 1)
  if (opts.status) q = q.where('l.status', '=', opts.status)
  if (opts.after) {
    const at = new Date(opts.after.at)
    q = q.where((eb) => eb.or([eb('l.created_at', '<', at), eb.and([eb('l.created_at', '=', at), eb('l.id', '<', opts.after!.id)])]))
  }
  const rows = await q.execute()
  return { rows: rows.slice(0, opts.limit), more: rows.length > opts.limit }
}

export const getLetter = oneLetter

/** The letter as a PDF, to the recipient's current postal address (409 while it has none). */
export async function letterPdf(db: Db, principal: Principal, id: string, now: Date, serviceUrl?: string) {
  const r = await oneLetter(db, principal, id)
  const address = postalAddress(r)
  if (!address) throw new AppError('POSTAL_ADDRESS_MISSING', { name: r.recipient_name, id: r.org_id })
  const sender = r.sender_org
    ? await db.selectFrom('organisations').select(['id', 'name', 'phone', 'fax', 'address_line1', 'address_line2', 'postal_code', 'city']).where('id', '=', r.sender_org).executeTakeFirst()
    : undefined
  const delivery = await db.selectFrom('event_deliveries').select(['fax_attempts']).where('event_id', '=', r.event_id).where('org_id', '=', r.org_id).executeTakeFirst()
  const pdf = await renderLetterPdf({
    event: { id: r.event_id, type: r.type, createdAt: r.event_created_at, payload: r.payload, subject: r.subject_type && r.subject_id ? { type: r.subject_type, id: r.subject_id } : null },
    recipient: { id: r.org_id, name: r.recipient_name, address },
    sender: sender ? { id: sender.id, name: sender.name, phone: sender.phone, fax: sender.fax, address: postalAddress(sender) } : null,
    attempts: delivery?.fax_attempts ?? r.fax_attempts,
    failedAt: r.created_at,
    now,
    serviceUrl,
  })
  return { pdf, letter: r }
}

/** The sender records that the letter went out: once; the address it went to is kept with it. */
export async function recordLetterSent(
  db: Kysely<DB>,
  principal: Principal,
  actor: Actor,
  id: string,
  input: { sentAt?: string; trackingNumber?: string; comment?: string },
  lang: Lang,
  now: Date,
) {
  return inTransaction(db, async (tx) => {
    const before = await oneLetter(tx, principal, id, true)
    if (before.status === 'sent') {
      throw conflict(`Ce courrier a déjà été enregistré comme envoyé le ${before.sent_at!.toISOString()}.`, `This letter was already recorded as sent on ${before.sent_at!.toISOString()}.`)
    }
    const sentAt = input.sentAt ? new Date(input.sentAt) : now
    // A little clock skew is allowed; a date in the future or before the letter was asked for is a mistake.
    if (sentAt.getTime() > now.getTime() + 5 * 60_000 || sentAt.getTime() < before.created_at.getTime()) {
      const message = lang === 'fr' ? 'la date d’envoi doit être passée et postérieure à la demande de courrier' : 'the date sent must be past and after the letter was asked for'
      throw new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field: 'body.sentAt', code: 'range', message }] })
    }
    const address = postalAddress(before)
    await tx
      .updateTable('paper_letters')
      .set({
        status: 'sent', sent_at: sentAt, recorded_at: now, sent_by_role: actor.role, sent_by_org: actor.org, sent_by_user: actor.user,
        tracking_number: input.trackingNumber ?? null, comment: input.comment ?? null, address: address ? JSON.stringify(address) : null,
      })
      .where('id', '=', id)
      .execute()
    await audit(tx, actor, { action: 'paper_letter.sent', objectType: 'paper_letter', objectId: id, changes: { eventId: before.event_id, orgId: before.org_id, sentAt: sentAt.toISOString(), trackingNumber: input.trackingNumber ?? null, address } }, now)
    return oneLetter(tx, principal, id)
  })
}

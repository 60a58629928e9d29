import PDFDocument from 'pdfkit'
import { eventTypeLabel } from '../events/event-types.ts'
import type { PostalAddress } from './db.ts'
import { addFooters, contentOf, drawAckForm, drawMessage, type FaxRenderInput, finish, MARGIN, type Sender, writer } from './render.ts'

/** An organisation's postal address, when it has a complete one (a street line, a postal code and a city). */
export function postalAddress(o: { address_line1: string | null; address_line2: string | null; postal_code: string | null; city: string | null }): PostalAddress | null {
  if (!o.address_line1?.trim() || !o.postal_code?.trim() || !o.city?.trim()) return null
  return { line1: o.address_line1, line2: o.address_line2?.trim() ? o.address_line2 : null, postalCode: o.postal_code, city: o.city }
}

export interface LetterInput {
  event: FaxRenderInput['event']
  recipient: { id: string; name: string; address: PostalAddress }
  sender: (Sender & { address: PostalAddress | null }) | null
  /** Fax attempts made before giving up, and when the last one failed. */
  attempts: number
  failedAt: Date
  now: Date
  serviceUrl?: string
}

const frenchDate = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', dateStyle: 'long' })

/**
 * The letter sent when a fax failed after every retry: an A4 letter in French whose recipient block sits where a
 * window envelope (DL/C5, window on the right) shows it, as French postal addressing asks (name, street, then
 * postal code and city in capitals on the last line); then the message as faxed, and the form to post back.
 */
export async function renderLetterPdf(input: LetterInput): Promise<Buffer> {
  const { event, recipient, sender, now } = input
  const content = contentOf(event)
  const label = eventTypeLabel(event.type)
  const doc = new PDFDocument({ size: 'A4', margins: MARGIN, bufferPages: true, lang: 'fr-FR', info: { Title: `Portail DP — courrier — ${label}`, Author: sender?.name ?? 'Portail DP', Subject: label, CreationDate: now } })
  const w = writer(doc)
  const { left, width, text } = w

  // Sender, top left.
  doc.font('Helvetica-Bold').fontSize(10).text(text(sender?.name ?? 'Portail DP — opérateur du service'), left, MARGIN.top, { width: 230 })
  doc.font('Helvetica').fontSize(9)
  for (const l of addressLines(sender?.address ?? null)) doc.text(text(l), { width: 230 })
  if (sender?.phone) doc.text(text(`Tél. ${sender.phone}`), { width: 230 })
  if (sender?.fax) doc.text(text(`Télécopie ${sender.fax}`), { width: 230 })

  // Recipient, in the envelope window: 110 mm from the left edge, 50 mm from the top.
  const mm = 72 / 25.4
  doc.font('Helvetica-Bold').fontSize(11).text(text(recipient.name), 110 * mm, 50 * mm, { width: 85 * mm })
  doc.font('Helvetica').fontSize(11)
  for (const l of addressLines(recipient.address)) doc.text(text(l), { width: 85 * mm })

  doc.x = left
  doc.y = Math.max(doc.y, 95 * mm)
  doc.font('Helvetica').fontSize(10).text(text(`${sender?.address?.city ?? 'Paris'}, le ${frenchDate.format(now)}`), left, doc.y, { width, align: 'right' })
  doc.moveDown(1)
  doc.font('Helvetica-Bold').fontSize(10).text(text(`Objet : ${label}${content.reference ? ` — ${content.reference}` : ''}`), left, doc.y, { width })
  doc.font('Helvetica').fontSize(9).text(text(`Identifiant du message : ${event.id}`), { width })
  doc.moveDown(1)
  doc.font('Helvetica').fontSize(10.5).text(text('Madame, Monsieur,'), left, doc.y, { width })
  doc.moveDown(0.6)
  doc.text(
    text(
      `Le message ci-dessous vous a été adressé le ${frenchDate.format(event.createdAt)} par le Portail DP. Votre établissement ne le recevant pas encore par voie électronique, il vous a été transmis par télécopie ; la transmission a échoué après ${input.attempts} tentative${input.attempts > 1 ? 's' : ''} (la dernière le ${frenchDate.format(input.failedAt)}). Nous vous l’adressons donc par courrier.`,
    ),
    { width, lineGap: 1.5 },
  )
  if (content.acknowledgement) {
    doc.moveDown(0.4)
    doc.text(text('Merci de compléter, signer et nous retourner la dernière page de ce courrier.'), { width })
  }
  w.rule()
  drawMessage(doc, content, false)
  doc.moveDown(1)
  doc.font('Helvetica').fontSize(10.5).text(text('Nous vous prions d’agréer, Madame, Monsieur, l’expression de nos salutations distinguées.'), left, doc.y, { width })
  doc.moveDown(0.6)
  doc.font('Helvetica-Bold').text(text(sender?.name ?? 'Portail DP'), { width })

  if (content.acknowledgement) {
    drawAckForm(doc, { kind: content.acknowledgement, eventId: event.id, reference: content.reference, recipient, sender, serviceUrl: input.serviceUrl })
  }
  addFooters(doc, 'courrier', event.id)
  return finish(doc)
}

/** The lines under the name: street lines, then "postal code CITY". */
export function addressLines(a: PostalAddress | null): string[] {
  if (!a) return []
  // La Poste's rule for the last line: capitals without accents.
  return [a.line1, ...(a.line2 ? [a.line2] : []), `${a.postalCode} ${a.city.normalize('NFD').replace(/\p{M}/gu, '').toUpperCase()}`]
}

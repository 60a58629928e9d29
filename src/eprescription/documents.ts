import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import PDFDocument from 'pdfkit'
import QRCode from 'qrcode'
import { display, qrPayload } from './ids.ts'
import type { Loaded } from './queries.ts'
import { deliveredCounts, effectiveStatus } from './views.ts'

// ---- QR code (qrcode library) --------------------------------------------------------------------------------
const QR_OPTIONS = { errorCorrectionLevel: 'M' as const, margin: 2 }
export const qrPng = (content: string, width = 300) => QRCode.toBuffer(content, { ...QR_OPTIONS, type: 'png', width })
export const qrSvg = (content: string) => QRCode.toString(content, { ...QR_OPTIONS, type: 'svg' })

// ---- patient PDF (pdfkit) -------------------------------------------------------------------------------------
// DejaVu Sans, embedded (subset) in every PDF: the built-in Helvetica only covers Latin-1, and a patient's name
// is printed as given ("Łukasz Œdipe WĄSOWSKI-NGUYỄN"). Shipped by the dejavu-fonts-ttf package.
const FONT_DIR = path.join(path.dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf')
let fonts: { regular: Buffer; bold: Buffer } | undefined
const loadFonts = () => (fonts ??= { regular: readFileSync(path.join(FONT_DIR, 'DejaVuSans.ttf')), bold: readFileSync(path.join(FONT_DIR, 'DejaVuSans-Bold.ttf')) })

const STATUS_FR: Record<string, string> = {
  draft: 'brouillon',
  ready: 'à délivrer',
  in_progress: 'en cours de délivrance',
  completed: 'entièrement délivrée',
  cancelled: 'annulée',
  expired: 'expirée',
}
const dateFr = (d: Date | string) =>
  new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', day: '2-digit', month: '2-digit', year: 'numeric' }).format(typeof d === 'string' ? new Date(d) : d)
const dateTimeFr = (d: Date) => new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', dateStyle: 'short', timeStyle: 'short' }).format(d)
/** As given, in its composed form: a name typed with combining accents prints the same. */
const asGiven = (s: string) => s.normalize('NFC')

/**
 * The patient's copy: prescription ID and access code in clear, its QR code, the lines and the dispensations
 * so far. A cancelled or expired prescription carries no QR code and is marked across the page, with the date
 * (and for a cancellation, the reason), so that no one mistakes it for a valid one.
 */
export async function prescriptionPdf(l: Loaded, now: Date, accessCode: string): Promise<Buffer> {
  const { p } = l
  const status = effectiveStatus(p, now)
  const voided = status === 'cancelled' ? { word: 'ANNULÉE', when: p.cancelled_at ?? now } : status === 'expired' ? { word: 'EXPIRÉE', when: p.valid_until } : null
  const qr = voided ? null : await qrPng(qrPayload(p.id, accessCode), 240)
  const { regular, bold } = loadFonts()
  const doc = new PDFDocument({ size: 'A4', margin: 50, info: { Title: `Ordonnance numérique ${display(p.id)}`, Author: 'Portail DP', CreationDate: now } })
  doc.registerFont('body', regular)
  doc.registerFont('bold', bold)
  const chunks: Buffer[] = []
  doc.on('data', (c: Buffer) => chunks.push(c))
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)))
    doc.on('error', reject)
  })

  if (voided) {
    // Across the page, behind nothing: the first thing drawn, in light red.
    doc.save()
    doc.rotate(-50, { origin: [doc.page.width / 2, doc.page.height / 2] })
    doc.font('bold').fontSize(110).fillColor('#c62828').fillOpacity(0.18)
    doc.text(voided.word, 0, doc.page.height / 2 - 60, { width: doc.page.width, align: 'center', lineBreak: false })
    doc.restore()
    doc.fillOpacity(1).fillColor('black')
  }

  doc.font('bold').fontSize(18).text('Ordonnance numérique', 50, 50)
  doc.font('body').fontSize(10).fillColor('#555').text('Copie du patient — document généré par le service e-prescription').fillColor('black')
  if (voided) {
    doc.moveDown(0.5)
    const reason = status === 'cancelled' ? ` — motif : ${p.cancel_reason ? asGiven(p.cancel_reason) : 'non précisé'}` : ''
    const what = status === 'cancelled' ? `ORDONNANCE ANNULÉE le ${dateTimeFr(voided.when)}${reason}` : `ORDONNANCE EXPIRÉE le ${dateFr(voided.when)}`
    doc.font('bold').fontSize(12).fillColor('#c62828').text(what).fillColor('black')
    doc.font('body').fontSize(10).text('Elle ne peut plus être délivrée.')
  }
  doc.moveDown()
  const top = doc.y
  if (qr) doc.image(qr, 395, top, { width: 150 })
  doc.font('bold').fontSize(12).text(`Identifiant : ${display(p.id)}`, 50, top)
  doc.font('body').fontSize(10)
  if (!voided) doc.text(`Code d’accès : ${display(accessCode)}`)
  doc.text(`État : ${STATUS_FR[status] ?? status}`)
  doc.text(`Prescrite le ${dateFr(p.issued_at)}, valable jusqu’au ${dateFr(p.valid_until)}`)
  doc.moveDown()
  doc.text(`Prescripteur : ${asGiven(l.prescriberName ?? '')} (RPPS ${p.prescriber_org})`)
  doc.text(`Patient : ${asGiven(p.patient_given_name)} ${asGiven(p.patient_family_name)}, né(e) le ${dateFr(p.patient_birth_date)}`)
  if (qr) doc.y = Math.max(doc.y, top + 160)
  doc.moveDown()

  const counts = deliveredCounts(l)
  doc.font('bold').fontSize(12).text('Prescription', 50)
  doc.font('body').fontSize(10)
  for (const x of l.lines) {
    doc.moveDown(0.4)
    doc.font('bold').text(`${x.line_no}. ${asGiven(x.label)}${x.cip13 ? ` (CIP ${x.cip13})` : ''}${x.non_substitutable ? ' — non substituable' : ''}`)
    doc.font('body').text(`Posologie : ${asGiven(x.dosage)}`, { indent: 12 })
    const amount = [x.quantity ? `${x.quantity} boîte(s)` : null, x.units ? `${x.units} unité(s)` : null, x.duration_days ? `${x.duration_days} jour(s)` : null].filter(Boolean).join(', ')
    if (amount) doc.text(`Quantité / durée : ${amount}`, { indent: 12 })
    doc.text(`Renouvellements : ${x.renewals} — délivrée ${counts.get(x.line_no) ?? 0} fois sur ${1 + x.renewals}`, { indent: 12 })
  }

  const closed = l.dispensations.filter((d) => d.status === 'closed').sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))
  doc.moveDown()
  doc.font('bold').fontSize(12).text('Délivrances')
  doc.font('body').fontSize(10)
  if (closed.length === 0) doc.text('Aucune délivrance pour le moment.')
  for (const d of closed) {
    doc.moveDown(0.4)
    doc.font('bold').text(`Délivrance n° ${d.seq} — ${asGiven(d.pharmacy_name ?? d.pharmacy_org)}, le ${dateTimeFr(d.closed_at!)}`)
    doc.font('body')
    for (const r of d.lines) {
      if (r.outcome === 'delivered') {
        const extra = [
          r.batch ? `lot ${r.batch}` : null,
          r.substituted ? 'substitution' : null,
          r.quantity_reason ? `quantité ajustée (${r.quantity_reason === 'pack-size' ? 'conditionnement' : 'conversion d’unités'})` : null,
          r.dosage_changed_to ? `posologie modifiée : ${asGiven(r.dosage_changed_to)} (${asGiven(r.dosage_change_reason ?? '')})` : null,
        ].filter(Boolean)
        doc.text(`Ligne ${r.line_no} : ${r.quantity} × CIP ${r.cip13}${extra.length ? ` — ${extra.join(', ')}` : ''}`, { indent: 12 })
      } else {
        doc.text(`Ligne ${r.line_no} : non délivrée (${asGiven(r.not_delivered_reason ?? '')})`, { indent: 12 })
      }
    }
  }
  if (p.patient_objection) {
    doc.moveDown()
    doc.fontSize(9).fillColor('#555').text('Vous vous êtes opposé(e) à ce que votre prescripteur consulte ces délivrances.')
  }
  doc.end()
  return done
}

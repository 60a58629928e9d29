import PDFDocument from 'pdfkit'
import { formatParis, toWinAnsi } from '../platform/fax/render.ts'
import type { ReportData } from './pipeline.ts'

const CATEGORY_FR: Record<string, string> = { pharmacy: 'Officines', wholesaler: 'Grossistes-répartiteurs', hospital: 'Pharmacies à usage intérieur' }
const EVENT_FR: Record<string, string> = {
  created: 'Création', edited: 'Modification', revision: 'Nouvelle version', submitted: 'Soumission à l’ANSM', approved: 'Validation ANSM',
  changes_requested: 'Modifications demandées par l’ANSM', rejected: 'Refus ANSM', scheduled: 'Diffusion programmée', broadcast: 'Diffusion',
  reminder: 'Relance', closed: 'Clôture',
}
const pct = (n: number, d: number) => (d === 0 ? '—' : `${Math.round((100 * n) / d)} %`)

/** The report (bilan) as a PDF, drawn with pdfkit like the fax notices (standard fonts, WinAnsi text). */
export function reportPdf(report: ReportData, now: Date): Promise<Buffer> {
  const what = report.kind === 'recall' ? 'rappel de lots' : 'alerte de santé publique'
  const doc = new PDFDocument({ size: 'A4', margin: 50, lang: 'fr-FR', info: { Title: `Bilan ${report.reference}`, Author: 'Portail DP', Subject: `Bilan de ${what}`, CreationDate: now } })
  const chunks: Buffer[] = []
  doc.on('data', (c: Buffer) => chunks.push(c))
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)))
    doc.on('error', reject)
  })
  const t = (s: string) => toWinAnsi(s)
  const line = (label: string, value: string) => {
    doc.font('Helvetica-Bold').fontSize(10).text(t(`${label} : `), { continued: true }).font('Helvetica').text(t(value))
  }
  const heading = (s: string) => {
    doc.moveDown(0.8)
    doc.font('Helvetica-Bold').fontSize(12).text(t(s))
    doc.moveDown(0.3)
  }

  doc.font('Helvetica-Bold').fontSize(16).text(t(`Bilan du ${what} ${report.reference}`))
  doc.font('Helvetica').fontSize(9).fillColor('#555555').text(t(`Établi le ${formatParis(now)} — transmis à l’ANSM par le Portail DP`)).fillColor('#000000')
  doc.moveDown()
  line('Laboratoire', `${report.lab.name} (${report.lab.id})`)
  line('Objet', report.title)
  line('Version finale', String(report.finalVersion))
  line('Diffusé le', report.broadcastAt ? formatParis(new Date(report.broadcastAt)) : '—')
  line('Clos le', formatParis(new Date(report.closedAt)))

  if (report.batches.length) {
    heading('Lots rappelés')
    for (const b of report.batches) doc.font('Helvetica').fontSize(10).text(t(`• CIP ${b.cip13} — lot ${b.batch}${b.expiry ? ` — péremption ${b.expiry}` : ''}`))
  }

  const c = report.coverage
  heading('Couverture de la diffusion')
  line('Destinataires', String(c.recipients))
  line('Atteints', `${c.reached} (${pct(c.reached, c.recipients)})`)
  line('Lu', `${c.read} (${pct(c.read, c.recipients)})`)
  line('Accusés de réception', `${c.acknowledged} (${pct(c.acknowledged, c.recipients)})`)
  if (report.kind === 'recall') line('Action réalisée', `${c.done} (${pct(c.done, c.recipients)})`)
  for (const cat of report.byCategory) {
    doc.font('Helvetica').fontSize(10).text(t(`• ${CATEGORY_FR[cat.category] ?? cat.category} : ${cat.recipients} destinataires, ${cat.reached} atteints, ${cat.read} lus, ${cat.done} action réalisée`))
  }

  if (report.kind === 'recall') {
    const q = report.quantities
    heading('Quantités déclarées')
    line('Boîtes en quarantaine', String(q.quarantined))
    line('Boîtes retournées', String(q.returned))
    line('Boîtes détruites', String(q.destroyed))
    line('Destinataires sans stock', String(q.noStock))
  }

  heading('Par département')
  for (const d of report.byDepartment) {
    doc.font('Helvetica').fontSize(9).text(t(`${d.department ?? '—'} : ${d.recipients} destinataires, ${d.reached} atteints, ${d.read} lus, ${d.done} action réalisée`))
  }

  heading(report.kind === 'recall' ? 'Destinataires sans action déclarée' : 'Destinataires n’ayant pas lu')
  if (report.notActing.length === 0) doc.font('Helvetica').fontSize(10).text(t('Aucun.'))
  for (const o of report.notActing) doc.font('Helvetica').fontSize(9).text(t(`• ${o.name} (${o.id}, ${o.role}, ${o.department ?? '—'})`))

  heading('Chronologie')
  for (const e of report.timeline) doc.font('Helvetica').fontSize(9).text(t(`${formatParis(new Date(e.at))} — ${EVENT_FR[e.event] ?? e.event} (version ${e.version})`))

  doc.end()
  return done
}

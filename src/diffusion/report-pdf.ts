import PDFDocument from 'pdfkit'
import { formatParis, toWinAnsi } from '../platform/fax/render.ts'
import type { Lang } from '../platform/i18n.ts'
import type { LocalisedReport } from './queries/report.ts'
import { plural } from './report-labels.ts'

const englishTime = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', dateStyle: 'full', timeStyle: 'medium' })
const formatDate = (d: Date | string, lang: Lang) => (lang === 'fr' ? formatParis(new Date(d)) : `${englishTime.format(new Date(d))} (Paris time)`)
const pct = (n: number, d: number) => (d === 0 ? '—' : `${Math.round((100 * n) / d)} %`)

/** Every word of the report, in both languages (the data's own labels come localised with the report). */
const T = {
  fr: {
    title: (kind: string, ref: string) => (kind === 'recall' ? `Bilan du rappel de lots ${ref}` : `Bilan de l’alerte de santé publique ${ref}`),
    made: (at: string) => `Établi le ${at} — transmis à l’ANSM par le Portail DP`,
    lab: 'Laboratoire', subject: 'Objet', finalVersion: 'Version finale', broadcast: 'Diffusé le', closed: 'Clos le', closedBy: 'Clos par', reason: 'Motif de la clôture', none: 'non précisé',
    batches: 'Lots rappelés', expiry: 'péremption', versions: 'versions', version: 'version', blocked: 'dispensation bloquée', notBlocked: 'sans blocage',
    coverage: 'Couverture de la diffusion', recipients: 'Destinataires', reached: 'Atteints', read: 'Lus', acknowledged: 'Accusés de réception', done: 'Action réalisée',
    recipient: { one: 'destinataire', other: 'destinataires' }, reachedN: { one: 'atteint', other: 'atteints' }, readN: { one: 'lu', other: 'lus' }, doneN: { one: 'action réalisée', other: 'actions réalisées' },
    quantities: 'Quantités déclarées', quarantined: 'Boîtes en quarantaine', returned: 'Boîtes retournées', destroyed: 'Boîtes détruites', noStock: 'Destinataires sans stock',
    byDepartment: 'Par département', acks: 'Actions déclarées par destinataire', quarantinedShort: 'quarantaine', returnedShort: 'retournées', destroyedShort: 'détruites', noStockShort: 'aucun stock',
    notActingRecall: 'Destinataires sans action déclarée', notActingAlert: 'Destinataires n’ayant pas lu', noneListed: 'Aucun.', more: (n: number) => `… et ${n} autre(s) (liste complète dans le bilan JSON)`,
    timeline: 'Chronologie', sep: ' : ',
  },
  en: {
    title: (kind: string, ref: string) => (kind === 'recall' ? `Batch recall report ${ref}` : `Public-health alert report ${ref}`),
    made: (at: string) => `Made on ${at} — sent to ANSM by Portail DP`,
    lab: 'Lab', subject: 'Subject', finalVersion: 'Final version', broadcast: 'Broadcast on', closed: 'Closed on', closedBy: 'Closed by', reason: 'Reason for closing', none: 'not given',
    batches: 'Recalled batches', expiry: 'expiry', versions: 'versions', version: 'version', blocked: 'dispensation blocked', notBlocked: 'not blocked',
    coverage: 'Broadcast coverage', recipients: 'Recipients', reached: 'Reached', read: 'Read', acknowledged: 'Acknowledged', done: 'Action done',
    recipient: { one: 'recipient', other: 'recipients' }, reachedN: { one: 'reached', other: 'reached' }, readN: { one: 'read', other: 'read' }, doneN: { one: 'action done', other: 'actions done' },
    quantities: 'Quantities reported', quarantined: 'Boxes quarantined', returned: 'Boxes returned', destroyed: 'Boxes destroyed', noStock: 'Recipients with no stock',
    byDepartment: 'By department', acks: 'Actions reported by recipient', quarantinedShort: 'quarantined', returnedShort: 'returned', destroyedShort: 'destroyed', noStockShort: 'no stock',
    notActingRecall: 'Recipients that reported no action', notActingAlert: 'Recipients that did not read', noneListed: 'None.', more: (n: number) => `… and ${n} more (full list in the JSON report)`,
    timeline: 'Timeline', sep: ': ',
  },
}

/** The report (bilan) as a PDF in the reader's language, drawn with pdfkit like the fax notices (standard fonts, WinAnsi text). */
export function reportPdf(report: LocalisedReport, now: Date): Promise<Buffer> {
  const lang = report.lang
  const w = T[lang]
  const doc = new PDFDocument({ size: 'A4', margin: 50, lang: lang === 'fr' ? 'fr-FR' : 'en-GB', info: { Title: w.title(report.kind, report.reference), Author: 'Portail DP', CreationDate: now } })
  const chunks: Buffer[] = []
  doc.on('data', (c: Buffer) => chunks.push(c))
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)))
    doc.on('error', reject)
  })
  const t = (s: string) => toWinAnsi(s)
  const n = (count: number, forms: { one: string; other: string }) => plural(count, forms, lang)
  const line = (label: string, value: string) => {
    doc.font('Helvetica-Bold').fontSize(10).text(t(`${label}${w.sep}`), { continued: true }).font('Helvetica').text(t(value))
  }
  const item = (s: string, size = 10) => doc.font('Helvetica').fontSize(size).text(t(s))
  const heading = (s: string) => {
    doc.moveDown(0.8)
    doc.font('Helvetica-Bold').fontSize(12).text(t(s))
    doc.moveDown(0.3)
  }

  doc.font('Helvetica-Bold').fontSize(16).text(t(w.title(report.kind, report.reference)))
  doc.font('Helvetica').fontSize(9).fillColor('#555555').text(t(w.made(formatDate(now, lang)))).fillColor('#000000')
  doc.moveDown()
  line(w.lab, `${report.lab.name} (${report.lab.id})`)
  line(w.subject, report.title)
  line(w.finalVersion, String(report.finalVersion))
  line(w.broadcast, report.broadcastAt ? formatDate(report.broadcastAt, lang) : '—')
  line(w.closed, formatDate(report.closure.at, lang))
  line(w.reason, report.closure.reason ?? w.none)
  if (report.closure.by) line(w.closedBy, [report.closure.by.user, report.closure.by.org].filter(Boolean).join(', '))

  if (report.batches.length) {
    heading(w.batches)
    for (const b of report.batches) {
      const versions = b.versions.length > 1 ? `${w.versions} ${b.versions.join(', ')}` : `${w.version} ${b.versions[0]}`
      item(`• ${b.name ? `${b.name} — ` : ''}CIP ${b.cip13} — lot ${b.batch}${b.expiry ? ` — ${w.expiry} ${b.expiry}` : ''} — ${versions} — ${b.statusLabel} — ${b.blocked ? w.blocked : w.notBlocked}`)
    }
  }

  const c = report.coverage
  heading(w.coverage)
  line(w.recipients, String(c.recipients))
  line(w.reached, `${c.reached} (${pct(c.reached, c.recipients)})`)
  line(w.read, `${c.read} (${pct(c.read, c.recipients)})`)
  line(w.acknowledged, `${c.acknowledged} (${pct(c.acknowledged, c.recipients)})`)
  if (report.kind === 'recall') line(w.done, `${c.done} (${pct(c.done, c.recipients)})`)
  const counts = (x: { recipients: number; reached: number; read: number; done: number }) =>
    [n(x.recipients, w.recipient), n(x.reached, w.reachedN), n(x.read, w.readN), ...(report.kind === 'recall' ? [n(x.done, w.doneN)] : [])].join(', ')
  for (const cat of report.byCategory) item(`• ${cat.label}${w.sep}${counts(cat)}`)

  if (report.kind === 'recall') {
    const q = report.quantities
    heading(w.quantities)
    line(w.quarantined, String(q.quarantined))
    line(w.returned, String(q.returned))
    line(w.destroyed, String(q.destroyed))
    line(w.noStock, String(q.noStock))
  }

  heading(w.byDepartment)
  for (const d of report.byDepartment) item(`${d.department ?? '—'}${d.regionName ? ` (${d.regionName})` : ''}${w.sep}${counts(d)}`, 9)

  if (report.kind === 'recall') {
    heading(w.acks)
    if (report.acknowledgements.length === 0) item(w.noneListed)
    for (const a of report.acknowledgements) {
      const what = a.noStock ? w.noStockShort : `${a.quarantined} ${w.quarantinedShort}, ${a.returned} ${w.returnedShort}, ${a.destroyed} ${w.destroyedShort}`
      item(`• ${a.org.name} (${a.org.id}, ${a.org.roleLabel}, ${a.org.department ?? '—'})${w.sep}${what} — ${w.version} ${a.version}`, 9)
    }
    if (report.acknowledgementsTotal > report.acknowledgements.length) item(w.more(report.acknowledgementsTotal - report.acknowledgements.length), 9)
  }

  heading(report.kind === 'recall' ? w.notActingRecall : w.notActingAlert)
  if (report.notActing.length === 0) item(w.noneListed)
  for (const o of report.notActing) item(`• ${o.name} (${o.id}, ${o.roleLabel}, ${o.department ?? '—'})`, 9)
  if (report.notActingTotal > report.notActing.length) item(w.more(report.notActingTotal - report.notActing.length), 9)

  heading(w.timeline)
  for (const e of report.timeline) item(`${formatDate(e.at, lang)} — ${e.label} (${w.version} ${e.version})`, 9)

  doc.end()
  return done
}

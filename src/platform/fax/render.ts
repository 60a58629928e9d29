import PDFDocument from 'pdfkit'
import { eventTypeLabel } from '../events/event-types.ts'

/**
 * The fax notice: a one- or two-page A4 PDF in French, drawn with pdfkit, followed by a page to fax back when the
 * message asks for an acknowledgement.
 *
 * What a service puts in an event's payload to be printed well: an optional
 * `notice: { title, body, reference?, fields?: [{ label, value }], acknowledgement?: 'quantities' | 'read' }`.
 * Without it, the notice shows the event type's label (never its code) and the payload's top-level fields.
 * `acknowledgement` adds the fax-back form: the quantities handled (a recall) or a read receipt (an alert).
 *
 * The standard Helvetica fonts (no font file to ship) only cover Windows-1252 (WinAnsi): all of French (é è à ç ô
 * œ « » ’ — …) is there; anything else is replaced by its closest WinAnsi spelling (see toWinAnsi) so that it never
 * prints as garbage.
 */

export type AckForm = 'quantities' | 'read'

export interface FaxNotice {
  title: string
  body: string
  reference?: string
  fields?: Array<{ label: string; value: string }>
  acknowledgement?: AckForm
}

export interface Sender {
  id: string
  name: string
  phone?: string | null
  /** Where the fax-back form is returned. */
  fax?: string | null
}

export interface FaxRenderInput {
  event: { id: string; type: string; createdAt: Date; payload: unknown; subject?: { type: string; id: string } | null }
  /** The recipient: its identifier is its FINESS. */
  recipient: { id: string; name: string; fax: string }
  /** The organisation whose action caused the event; null for the service itself. */
  sender: Sender | null
  /** When the fax is produced (printed as the transmission time); defaults to the current time. */
  now?: Date
  /** Public address of the service, printed in the acknowledgement request (PUBLIC_URL). */
  serviceUrl?: string
}

export const FAX_HEADER = 'Portail DP — transmission par télécopie'
/** A notice never runs beyond this many pages: longer content is cut, with a pointer to the full text online. */
export const FAX_MAX_PAGES = 2

export const MARGIN = { top: 50, bottom: 60, left: 50, right: 50 }
const LABEL_WIDTH = 130
const GAP = 6
const MAX_VALUE_CHARS = 600
const MAX_FIELDS = 60
const MAX_BODY_CHARS = 15_000

// ---- text ------------------------------------------------------------------------------------------------

/** Code points above 0xFF that WinAnsi (Windows-1252) has, i.e. that the standard PDF fonts can print. */
const WIN_ANSI_EXTRA = new Set([
  0x152, 0x153, 0x160, 0x161, 0x178, 0x17d, 0x17e, 0x192, 0x2c6, 0x2dc, 0x2013, 0x2014, 0x2018, 0x2019, 0x201a, 0x201c, 0x201d, 0x201e,
  0x2020, 0x2021, 0x2022, 0x2026, 0x2030, 0x2039, 0x203a, 0x20ac, 0x2122,
])
const SUBSTITUTES: Record<string, string> = {
  '\u202f': '\u00a0', // narrow no-break space (French typography, Intl output)
  '\u2007': ' ',
  '\u2009': ' ',
  '\u200a': ' ',
  '\u2002': ' ',
  '\u2003': ' ',
  '\u200b': '',
  '\u2060': '',
  '\ufeff': '',
  '\u2010': '-',
  '\u2011': '-',
  '\u2012': '–',
  '\u2015': '—',
  '\u2212': '-',
  '\u2032': '\u2019',
  '\u2033': '"',
  '\u03bc': 'µ', // Greek mu, as in µg
  '\u2126': 'ohm',
  '\u2192': '->',
  '\u2190': '<-',
  '\u21d2': '=>',
  '\u2264': '<=',
  '\u2265': '>=',
  '\u2260': '!=',
  '\u2248': '~',
  '\u2116': 'N°',
  '\u2122': '™',
  '\u2713': 'x',
  '\u2714': 'x',
  '\u2715': 'x',
  '\u2717': 'x',
  '\u25cf': '•',
  '\u25aa': '•',
  '\u2023': '•',
  '\u2043': '-',
  // letters that do not decompose into a base letter and an accent
  'Ł': 'L',
  'ł': 'l',
  'Đ': 'D',
  'đ': 'd',
  'Ħ': 'H',
  'ħ': 'h',
  'ı': 'i',
  'Ŀ': 'L',
  'ŀ': 'l',
}

/** Makes any text printable with the standard PDF fonts: French is kept as is, the rest approximated. */
export function toWinAnsi(text: string): string {
  let out = ''
  for (const ch of text.replace(/\r\n?/g, '\n').normalize('NFC')) {
    const c = ch.codePointAt(0)!
    if (c === 0x0a) out += '\n'
    else if (c === 0x09) out += '    '
    else if (c < 0x20 || (c >= 0x7f && c < 0xa0)) continue // control characters
    else if (c <= 0xff || WIN_ANSI_EXTRA.has(c)) out += ch
    else if (SUBSTITUTES[ch] !== undefined) out += SUBSTITUTES[ch]
    else {
      // A letter with an accent WinAnsi lacks (ő, ş, ă…) loses the accent; anything else becomes '?'.
      const base = ch.normalize('NFD').replace(/\p{M}/gu, '')
      out += base && [...base].every((b) => b.codePointAt(0)! <= 0xff) ? base : '?'
    }
  }
  return out
}

const parisTime = new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', dateStyle: 'full', timeStyle: 'medium' })
/** "dimanche 22 novembre 2026 à 10:14:03 (heure de Paris)" */
export const formatParis = (d: Date) => `${parisTime.format(d)} (heure de Paris)`

const clip = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, max - 1).trimEnd()}…`)

function printable(value: unknown): string {
  if (value === null || value === undefined) return '—'
  if (typeof value === 'string') return value === '' ? '—' : value
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return typeof value === 'boolean' ? (value ? 'oui' : 'non') : String(value)
  if (Array.isArray(value) && value.every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v))) return value.length ? value.map(printable).join(', ') : '—'
  try {
    return JSON.stringify(value) ?? '—'
  } catch {
    return String(value)
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The notice the service supplied, when it is well formed. */
export function noticeOf(payload: unknown): FaxNotice | null {
  if (!isRecord(payload) || !isRecord(payload.notice)) return null
  const n = payload.notice
  if (typeof n.title !== 'string' || typeof n.body !== 'string' || n.title.trim() === '') return null
  const fields = Array.isArray(n.fields)
    ? n.fields.filter(isRecord).filter((f) => typeof f.label === 'string').map((f) => ({ label: f.label as string, value: printable(f.value) }))
    : undefined
  const acknowledgement = n.acknowledgement === 'quantities' || n.acknowledgement === 'read' ? n.acknowledgement : undefined
  return { title: n.title, body: n.body, reference: typeof n.reference === 'string' && n.reference !== '' ? n.reference : undefined, fields, acknowledgement }
}

export interface Content {
  title: string
  body: string
  fields: Array<{ label: string; value: string }>
  reference: string | null
  acknowledgement: AckForm | null
}

/** What a document prints of an event: its notice, or else its type's label and its payload's fields. */
export function contentOf(event: FaxRenderInput['event']): Content {
  const notice = noticeOf(event.payload)
  const payloadRef = isRecord(event.payload) && typeof event.payload.reference === 'string' ? event.payload.reference : null
  const reference = notice?.reference ?? payloadRef ?? (event.subject ? `${event.subject.type} ${event.subject.id}` : null)
  if (notice) return { title: notice.title, body: notice.body, fields: notice.fields ?? [], reference, acknowledgement: notice.acknowledgement ?? null }
  const p = event.payload
  const fields = isRecord(p)
    ? Object.entries(p).map(([label, value]) => ({ label, value: printable(value) }))
    : p === null || p === undefined
      ? []
      : [{ label: 'Contenu', value: printable(p) }]
  return {
    title: eventTypeLabel(event.type),
    body: fields.length ? 'Contenu du message :' : 'Ce message ne contient pas de données complémentaires.',
    fields,
    reference,
    acknowledgement: null,
  }
}

/** Keeps the first `budget` characters of the content (title first, then body, then fields in order). */
function cut(content: Content, budget: number): Content {
  let left = budget
  const take = (s: string) => {
    if (left >= s.length) {
      left -= s.length
      return s
    }
    const kept = s.slice(0, Math.max(0, left))
    left = 0
    // cut at a word boundary when there is one not too far back
    const space = kept.lastIndexOf(' ')
    return `${space > kept.length - 40 && space > 0 ? kept.slice(0, space) : kept}…`
  }
  const title = take(content.title)
  const body = left > 0 ? take(content.body) : ''
  const fields: Content['fields'] = []
  for (const f of content.fields) {
    if (left <= 0) break
    const label = f.label
    left -= label.length
    fields.push({ label, value: left > 0 ? take(f.value) : '…' })
  }
  return { ...content, title, body, fields }
}

const size = (c: Content) => c.title.length + c.body.length + c.fields.reduce((n, f) => n + f.label.length + f.value.length, 0)

// ---- drawing ---------------------------------------------------------------------------------------------

/** A label / value table row and a horizontal rule, page breaks included: shared by the fax notice and the letter. */
export function writer(doc: PDFKit.PDFDocument) {
  const left = MARGIN.left
  const width = doc.page.width - MARGIN.left - MARGIN.right
  const text = (s: string) => toWinAnsi(s)
  return {
    left,
    width,
    text,
    row(label: string, value: string, opts: { bold?: boolean } = {}) {
      doc.fontSize(10)
      const l = text(label)
      const v = text(value)
      const h = Math.max(doc.font('Helvetica-Bold').heightOfString(l, { width: LABEL_WIDTH }), doc.font('Helvetica').heightOfString(v, { width: width - LABEL_WIDTH - 8 }))
      if (doc.y + h > doc.page.height - MARGIN.bottom) doc.addPage()
      const y = doc.y
      doc.font('Helvetica-Bold').text(l, left, y, { width: LABEL_WIDTH })
      const yLabel = doc.y
      doc.font(opts.bold ? 'Helvetica-Bold' : 'Helvetica').text(v, left + LABEL_WIDTH + 8, y, { width: width - LABEL_WIDTH - 8 })
      doc.x = left
      doc.y = Math.max(yLabel, doc.y) + 2
    },
    rule() {
      doc.moveDown(0.4)
      doc.moveTo(left, doc.y).lineTo(left + width, doc.y).lineWidth(0.8).strokeColor('#000000').stroke()
      doc.moveDown(0.6)
    },
  }
}

/** The message itself: title, text, fields, and a pointer to the full text when it was shortened. */
export function drawMessage(doc: PDFKit.PDFDocument, content: Content, truncated: boolean) {
  const w = writer(doc)
  doc.font('Helvetica-Bold').fontSize(13).text(w.text(content.title), w.left, doc.y, { width: w.width })
  doc.moveDown(0.5)
  if (content.body) {
    doc.font('Helvetica').fontSize(10.5).text(w.text(content.body), w.left, doc.y, { width: w.width, lineGap: 1.5 })
    doc.moveDown(0.6)
  }
  for (const f of content.fields) w.row(f.label, clip(f.value, MAX_VALUE_CHARS))
  if (truncated) {
    doc.moveDown(0.3)
    doc
      .font('Helvetica-Oblique')
      .fontSize(9.5)
      .text(w.text('[…] Message abrégé pour la télécopie : le texte intégral est consultable sur le Portail DP avec l’identifiant ci-dessous.'), w.left, doc.y, { width: w.width })
  }
}

export interface AckFormInput {
  kind: AckForm
  eventId: string
  reference: string | null
  recipient: { id: string; name: string }
  sender: Sender | null
  serviceUrl?: string
}

/**
 * The page to fax back (or post back): what the recipient did with the batches (quantities quarantined, returned,
 * destroyed, or none in stock) or that it read the message, with the signatory's name, the date, a signature and
 * stamp box. Prefilled with the reference and the recipient so that the sender can record it.
 */
export function drawAckForm(doc: PDFKit.PDFDocument, input: AckFormInput) {
  doc.addPage()
  const w = writer(doc)
  const returnTo = input.sender
    ? `à ${input.sender.name}${input.sender.fax ? `, par télécopie au ${input.sender.fax}` : input.sender.phone ? ` (tél. ${input.sender.phone}), par télécopie ou par courrier` : ', par télécopie ou par courrier'}`
    : 'à l’opérateur du Portail DP'
  doc.font('Helvetica-Bold').fontSize(15).text(w.text('Accusé de réception et de traitement'), w.left, MARGIN.top, { width: w.width })
  doc.moveDown(0.2)
  doc.font('Helvetica').fontSize(10).text(w.text(`À compléter, signer et retourner sans délai ${returnTo}.`), { width: w.width })
  w.rule()
  if (input.reference) w.row('Référence', input.reference, { bold: true })
  w.row('Établissement', input.recipient.name, { bold: true })
  w.row('FINESS', input.recipient.id)
  w.row('Identifiant du message', input.eventId)
  w.rule()

  const box = (label: string) => {
    const y = doc.y
    doc.rect(w.left + 4, y + 1, 10, 10).lineWidth(1).strokeColor('#000000').stroke()
    doc.font('Helvetica').fontSize(11).text(w.text(label), w.left + 22, y, { width: w.width - 22 })
    doc.moveDown(0.8)
  }
  const blank = (label: string, line = '________________') => {
    doc.font('Helvetica').fontSize(11).text(w.text(`${label} ${line}`), w.left + 4, doc.y, { width: w.width - 4 })
    doc.moveDown(0.8)
  }
  if (input.kind === 'quantities') {
    doc.font('Helvetica-Bold').fontSize(11).text(w.text('Nombre de boîtes des lots concernés :'), w.left, doc.y, { width: w.width })
    doc.moveDown(0.6)
    blank('mises en quarantaine :')
    blank('retournées :')
    blank('détruites :')
    box('Aucune boîte des lots concernés en stock')
  } else {
    box('Nous avons pris connaissance de ce message.')
  }
  doc.moveDown(0.4)
  blank('Nom et qualité du signataire :', '________________________________________')
  blank('Date :', '____ / ____ / ________')
  doc.font('Helvetica').fontSize(11).text(w.text('Signature et cachet de l’établissement :'), w.left + 4, doc.y, { width: w.width - 4 })
  doc.moveDown(0.4)
  const top = doc.y
  doc.rect(w.left + 4, top, 260, 90).lineWidth(1).strokeColor('#000000').stroke()
  doc.y = top + 100
  const online = input.serviceUrl ? ` (${input.serviceUrl})` : ''
  doc
    .font('Helvetica-Oblique')
    .fontSize(9)
    .text(w.text(`Si votre logiciel est relié au Portail DP${online}, vous pouvez aussi y déclarer directement ce que vous avez fait, avec l’identifiant du message ci-dessus.`), w.left, doc.y, { width: w.width })
}

/** "Portail DP — <what> — événement <id> — page x/y" at the bottom of every page. */
export function addFooters(doc: PDFKit.PDFDocument, what: string, eventId: string) {
  const w = writer(doc)
  const range = doc.bufferedPageRange()
  for (let i = range.start; i < range.start + range.count; i++) {
    doc.switchToPage(i)
    // Written inside the bottom margin, which must not trigger a new page.
    const bottom = doc.page.margins.bottom
    doc.page.margins.bottom = 0
    doc
      .font('Helvetica')
      .fontSize(8)
      .fillColor('#000000')
      .text(w.text(`Portail DP — ${what} — événement ${eventId} — page ${i - range.start + 1}/${range.count}`), w.left, doc.page.height - 40, { width: w.width, align: 'center', lineBreak: false })
    doc.page.margins.bottom = bottom
  }
  return range.count
}

function draw(input: FaxRenderInput, content: Content, truncated: boolean) {
  const { event, recipient, sender } = input
  const now = input.now ?? new Date()
  const label = eventTypeLabel(event.type)
  const doc = new PDFDocument({
    size: 'A4',
    margins: MARGIN,
    bufferPages: true,
    lang: 'fr-FR',
    info: {
      Title: `Portail DP — télécopie — événement ${event.id}`,
      Author: 'Portail DP',
      Subject: label,
      CreationDate: now,
    },
  })
  const w = writer(doc)
  const { left, width, text, row, rule } = w

  // Header
  doc.font('Helvetica-Bold').fontSize(16).fillColor('#000000').text(text(FAX_HEADER), left, MARGIN.top, { width })
  doc.moveDown(0.2)
  doc
    .font('Helvetica')
    .fontSize(9)
    .text(text('Message transmis par télécopie car votre établissement ne reçoit pas encore ce flux par le Portail DP. À remettre sans délai au pharmacien responsable.'), { width })
  rule()

  // Who, when, what
  row('Destinataire', recipient.name, { bold: true })
  row('FINESS', recipient.id)
  row('N° de télécopie', recipient.fax)
  row('Expéditeur', sender ? `${sender.name} (${sender.id})` : 'Portail DP (message du service)')
  row('Émis le', formatParis(event.createdAt))
  row('Transmis le', formatParis(now))
  row('Objet', label)
  if (content.reference) row('Référence', content.reference, { bold: true })
  rule()

  drawMessage(doc, content, truncated)

  // Identifier and acknowledgement request, kept together
  const contact = sender
    ? `en appelant l’expéditeur, ${sender.name}${sender.phone ? `, au ${sender.phone}` : ''}`
    : 'en contactant l’opérateur du Portail DP'
  const where = input.serviceUrl ? `sur le Portail DP (${input.serviceUrl})` : 'sur le Portail DP'
  const ackText = content.acknowledgement
    ? text(`Merci d’accuser réception de ce message en retournant la page suivante complétée et signée, ou ${where}, ou ${contact}, en rappelant l’identifiant de l’événement.`)
    : text(`Merci d’accuser réception de ce message ${where}, ou ${contact}, en rappelant l’identifiant de l’événement.`)
  const idText = text(`Identifiant de l’événement : ${event.id}`)
  doc.fontSize(10)
  const boxHeight = doc.font('Helvetica-Bold').heightOfString(idText, { width: width - 20 }) + doc.font('Helvetica').heightOfString(ackText, { width: width - 20 }) + 24
  doc.moveDown(1)
  if (doc.y + boxHeight > doc.page.height - MARGIN.bottom) doc.addPage()
  const top = doc.y
  doc.rect(left, top, width, boxHeight).lineWidth(1.2).strokeColor('#000000').stroke()
  doc.font('Helvetica-Bold').fontSize(10).text(idText, left + 10, top + 8, { width: width - 20 })
  doc.moveDown(0.3)
  doc.font('Helvetica').fontSize(10).text(ackText, left + 10, doc.y, { width: width - 20 })

  // The message's own pages are what the page limit counts; the form to fax back comes after them.
  const noticePages = doc.bufferedPageRange().count
  if (content.acknowledgement) {
    drawAckForm(doc, { kind: content.acknowledgement, eventId: event.id, reference: content.reference, recipient, sender, serviceUrl: input.serviceUrl })
  }
  addFooters(doc, 'télécopie', event.id)
  return { doc, pages: noticePages }
}

export function finish(doc: PDFKit.PDFDocument): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    doc.on('data', (c: Buffer) => chunks.push(c))
    doc.on('end', () => resolve(Buffer.concat(chunks)))
    doc.on('error', reject)
    doc.end()
  })
}

/** Renders the fax notice of an event for one recipient. */
export async function renderFaxPdf(input: FaxRenderInput): Promise<Buffer> {
  const full = contentOf(input.event)
  // Two pages hold far less than this: clipping first bounds the work of the search below.
  const content = { ...full, body: full.body.slice(0, MAX_BODY_CHARS), fields: full.fields.slice(0, MAX_FIELDS) }
  const clipped = content.body.length < full.body.length || content.fields.length < full.fields.length
  const first = draw(input, content, clipped)
  if (first.pages <= FAX_MAX_PAGES) return finish(first.doc)
  // Too long for a fax: keep the longest beginning that fits (binary search on the characters kept).
  let lo = 0
  let hi = size(content)
  let best = draw(input, cut(content, 0), true)
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    const attempt = draw(input, cut(content, mid), true)
    if (attempt.pages <= FAX_MAX_PAGES) {
      lo = mid
      best = attempt
    } else hi = mid - 1
  }
  return finish(best.doc)
}

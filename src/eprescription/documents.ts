import { createHash } from 'node:crypto'
import PDFDocument from 'pdfkit'
import QRCode from 'qrcode'
import { display, qrPayload } from './ids.ts'
import { deliveredCounts, effectiveStatus, type Loaded } from './service.ts'

// ---- QR code (qrcode library) --------------------------------------------------------------------------------
const QR_OPTIONS = { errorCorrectionLevel: 'M' as const, margin: 2 }
export const qrPng = (content: string, width = 300) => QRCode.toBuffer(content, { ...QR_OPTIONS, type: 'png', width })
export const qrSvg = (content: string) => QRCode.toString(content, { ...QR_OPTIONS, type: 'svg' })

// ---- patient PDF (pdfkit) -------------------------------------------------------------------------------------
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
const dateTimeFr = (d: Date) =>
  new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', dateStyle: 'short', timeStyle: 'short' }).format(d)

/** The patient's copy: prescription ID and access code in clear, its QR code, the lines and the dispensations so far. */
export async function prescriptionPdf(l: Loaded, now: Date): Promise<Buffer> {
  const { p } = l
  const qr = await qrPng(qrPayload(p.id, p.access_code), 240)
  const doc = new PDFDocument({ size: 'A4', margin: 50, info: { Title: `Ordonnance numérique ${display(p.id)}`, Author: 'Portail DP', CreationDate: now } })
  const chunks: Buffer[] = []
  doc.on('data', (c: Buffer) => chunks.push(c))
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)))
    doc.on('error', reject)
  })

  doc.font('Helvetica-Bold').fontSize(18).text('Ordonnance numérique', { continued: false })
  doc.font('Helvetica').fontSize(10).fillColor('#555').text('Copie du patient — document généré par le service e-prescription').fillColor('black')
  doc.moveDown()
  const top = doc.y
  doc.image(qr, 395, top, { width: 150 })
  doc.font('Helvetica-Bold').fontSize(12).text(`Identifiant : ${display(p.id)}`, 50, top)
  doc.font('Helvetica').fontSize(10).text(`Code d’accès : ${display(p.access_code)}`)
  doc.text(`État : ${STATUS_FR[effectiveStatus(p, now)] ?? p.status}`)
  doc.text(`Prescrite le ${dateFr(p.issued_at)}, valable jusqu’au ${dateFr(p.valid_until)}`)
  doc.moveDown()
  doc.text(`Prescripteur : ${l.prescriberName ?? ''} (RPPS ${p.prescriber_org})`)
  doc.text(`Patient : ${p.patient_given_name} ${p.patient_family_name}, né(e) le ${dateFr(p.patient_birth_date)}`)
  doc.y = Math.max(doc.y, top + 160)
  doc.moveDown()

  const counts = deliveredCounts(l)
  doc.font('Helvetica-Bold').fontSize(12).text('Prescription', 50)
  doc.font('Helvetica').fontSize(10)
  for (const x of l.lines) {
    doc.moveDown(0.4)
    doc.font('Helvetica-Bold').text(`${x.line_no}. ${x.label}${x.cip13 ? ` (CIP ${x.cip13})` : ''}${x.non_substitutable ? ' — non substituable' : ''}`)
    doc.font('Helvetica').text(`Posologie : ${x.dosage}`, { indent: 12 })
    const amount = [x.quantity ? `${x.quantity} boîte(s)` : null, x.duration_days ? `${x.duration_days} jour(s)` : null].filter(Boolean).join(', ')
    if (amount) doc.text(`Quantité / durée : ${amount}`, { indent: 12 })
    doc.text(`Renouvellements : ${x.renewals} — délivrée ${counts.get(x.line_no) ?? 0} fois sur ${1 + x.renewals}`, { indent: 12 })
  }

  const closed = l.dispensations.filter((d) => d.status === 'closed').sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))
  doc.moveDown()
  doc.font('Helvetica-Bold').fontSize(12).text('Délivrances')
  doc.font('Helvetica').fontSize(10)
  if (closed.length === 0) doc.text('Aucune délivrance pour le moment.')
  for (const d of closed) {
    doc.moveDown(0.4)
    doc.font('Helvetica-Bold').text(`Délivrance n° ${d.seq} — ${d.pharmacy_name ?? d.pharmacy_org}, le ${dateTimeFr(d.closed_at!)}`)
    doc.font('Helvetica')
    for (const r of d.lines) {
      if (r.outcome === 'delivered') {
        const extra = [r.batch ? `lot ${r.batch}` : null, r.substituted ? 'substitution' : null, r.dosage_changed_to ? `posologie modifiée : ${r.dosage_changed_to} (${r.dosage_change_reason})` : null].filter(Boolean)
        doc.text(`Ligne ${r.line_no} : ${r.quantity} × CIP ${r.cip13}${extra.length ? ` — ${extra.join(', ')}` : ''}`, { indent: 12 })
      } else {
        doc.text(`Ligne ${r.line_no} : non délivrée (${r.not_delivered_reason})`, { indent: 12 })
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

// ---- FHIR R4 --------------------------------------------------------------------------------------------------
/** Systems as in the French ePrescription implementation guide (ANS / Interop'Santé) and FR Core. */
export const FHIR_SYSTEMS = {
  prescriptionId: 'https://portail-dp.example/fhir/sid/eprescription-id',
  /** RPPS as an IDNPS ('8' + RPPS) — ANS identifier system for health professionals. */
  idnps: 'urn:oid:1.2.250.1.71.4.2.1',
  cip13: 'http://data.esante.gouv.fr/ansm/medicament/codeCIP13',
  ucum: 'http://unitsofmeasure.org',
}

const MR_STATUS: Record<string, string> = {
  draft: 'draft',
  ready: 'active',
  in_progress: 'active',
  completed: 'completed',
  cancelled: 'cancelled',
  expired: 'stopped',
}

/**
 * The prescription as an HL7 FHIR R4 Bundle (type collection): the Patient, the Practitioner (RPPS) and one
 * MedicationRequest per line, grouped by `groupIdentifier` = the prescription ID, as the French ePrescription
 * guide models a prescription (it has no resource of its own).
 */
export function fhirBundle(l: Loaded, now: Date, baseUrl: string) {
  const { p } = l
  const patientUrl = `urn:uuid:${uuidFrom(`${p.id}:patient`)}`
  const practitionerUrl = `urn:uuid:${uuidFrom(`${p.id}:practitioner`)}`
  const status = effectiveStatus(p, now)
  const [given, ...more] = p.patient_given_name.split(/\s+/)
  const patient = {
    resourceType: 'Patient',
    id: uuidFrom(`${p.id}:patient`),
    name: [{ use: 'official', family: p.patient_family_name, given: [given, ...more].filter(Boolean) }],
    birthDate: p.patient_birth_date,
  }
  const practitioner = {
    resourceType: 'Practitioner',
    id: uuidFrom(`${p.id}:practitioner`),
    identifier: [
      {
        use: 'official',
        type: { coding: [{ system: 'http://interopsante.org/fhir/CodeSystem/fr-v2-0203', code: 'IDNPS' }] },
        system: FHIR_SYSTEMS.idnps,
        value: `8${p.prescriber_org}`,
      },
    ],
    ...(l.prescriberName ? { name: [{ text: l.prescriberName }] } : {}),
  }
  const requests = l.lines.map((x) => {
    const medication = x.cip13
      ? { coding: [{ system: FHIR_SYSTEMS.cip13, code: x.cip13, display: x.label }], text: x.label }
      : { text: [x.substance, x.strength, x.form].filter(Boolean).join(' ') }
    const dispenseRequest: Record<string, unknown> = {
      validityPeriod: { start: p.issued_at.toISOString(), end: p.valid_until.toISOString() },
      numberOfRepeatsAllowed: x.renewals,
    }
    if (x.quantity) dispenseRequest.quantity = { value: x.quantity, unit: 'boîte' }
    if (x.duration_days) dispenseRequest.expectedSupplyDuration = { value: x.duration_days, unit: 'jour', system: FHIR_SYSTEMS.ucum, code: 'd' }
    return {
      fullUrl: `urn:uuid:${uuidFrom(`${p.id}:line:${x.line_no}`)}`,
      resource: {
        resourceType: 'MedicationRequest',
        id: uuidFrom(`${p.id}:line:${x.line_no}`),
        identifier: [{ system: FHIR_SYSTEMS.prescriptionId, value: `${p.id}-${x.line_no}` }],
        groupIdentifier: { system: FHIR_SYSTEMS.prescriptionId, value: p.id },
        status: MR_STATUS[status] ?? 'unknown',
        intent: 'order',
        medicationCodeableConcept: medication,
        subject: { reference: patientUrl },
        authoredOn: p.issued_at.toISOString(),
        requester: { reference: practitionerUrl },
        dosageInstruction: [{ text: x.dosage }],
        dispenseRequest,
        substitution: { allowedBoolean: !x.non_substitutable },
      },
    }
  })
  return {
    resourceType: 'Bundle',
    id: uuidFrom(`${p.id}:bundle`),
    meta: { lastUpdated: p.updated_at.toISOString() },
    identifier: { system: FHIR_SYSTEMS.prescriptionId, value: p.id },
    type: 'collection',
    timestamp: now.toISOString(),
    link: [{ relation: 'self', url: `${baseUrl}/v1/eprescriptions/${p.id}/fhir` }],
    entry: [{ fullUrl: patientUrl, resource: patient }, { fullUrl: practitionerUrl, resource: practitioner }, ...requests],
  }
}

/** A stable UUID (v5-shaped) for a resource of the bundle, so that the same prescription gives the same ids. */
function uuidFrom(name: string) {
  const h = createHash('sha1').update(name).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`
}

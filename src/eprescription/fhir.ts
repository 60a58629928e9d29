/**
 * The prescription as an HL7 FHIR R4 Bundle, aligned with the French guides where our data has the field: the
 * ANS / Interop'Santé ePrescription guide (MedicationRequest "fr-medicationrequest", Medication
 * "fr-medication-noncompound") and FR Core (Practitioner, Patient). The README lists what is not yet aligned.
 */
import { createHash } from 'node:crypto'
import type { Loaded } from './queries.ts'
import { effectiveStatus } from './views.ts'

export const FHIR_SYSTEMS = {
  prescriptionId: 'https://portail-dp.example/fhir/sid/eprescription-id',
  /** RPPS as an IDNPS ('8' + RPPS): the ANS identifier system for health professionals. */
  idnps: 'urn:oid:1.2.250.1.71.4.2.1',
  idnpsType: 'http://interopsante.org/fhir/CodeSystem/fr-v2-0203',
  /** ANSM code systems as the ePrescription guide names them: medicine (CIS), presentation (CIP13), substance. */
  cis: 'http://data.esante.gouv.fr/ansm/medicament/SpecialitePharmaceutique',
  cip13: 'http://data.esante.gouv.fr/ansm/medicament/Presentation',
  substance: 'http://data.esante.gouv.fr/ansm/medicament/substance',
  ucum: 'http://unitsofmeasure.org',
  /** HL7 v3 ActSubstanceAdminSubstitutionCode: E (equivalent) allowed, N (none) not allowed. */
  substitution: 'http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution',
}
export const FHIR_PROFILES = {
  medicationRequest: 'https://interop.esante.gouv.fr/ig/fhir/eprescription/StructureDefinition/fr-medicationrequest',
  medication: 'https://interop.esante.gouv.fr/ig/fhir/eprescription/StructureDefinition/fr-medication-noncompound',
  practitioner: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-practitioner',
}

const MR_STATUS: Record<string, string> = { draft: 'draft', ready: 'active', in_progress: 'active', completed: 'completed', cancelled: 'cancelled', expired: 'stopped' }
const UCUM: Record<string, string> = { mg: 'mg', g: 'g', µg: 'ug', ug: 'ug', microgramme: 'ug', microgrammes: 'ug', ml: 'mL', ui: '[iU]' }

/** "500 mg" → a UCUM quantity; null when the unit is not one UCUM names here. */
function strengthQuantity(text: string) {
  const m = /^\s*(\d+(?:[.,]\d+)?)\s*([a-zµ]+)\s*$/i.exec(text)
  if (!m) return null
  const code = UCUM[m[2]!.toLowerCase()]
  return code ? { value: Number(m[1]!.replace(',', '.')), unit: m[2]!, system: FHIR_SYSTEMS.ucum, code } : null
}

/** A stable UUID (v5-shaped) for a resource of the bundle, so that the same prescription gives the same ids. */
function uuidFrom(name: string) {
  const h = createHash('sha1').update(name).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`
}

/** `medicines`: the CIS and name of each presentation line's CIP13, from the referential. */
export function fhirBundle(l: Loaded, now: Date, baseUrl: string, medicines: Map<string, { cis: string; name: string }>) {
  const { p } = l
  const ref = (what: string) => `urn:uuid:${uuidFrom(`${p.id}:${what}`)}`
  const status = effectiveStatus(p, now)
  const patient = {
    resourceType: 'Patient',
    id: uuidFrom(`${p.id}:patient`),
    // FR Core: the official name has one given element holding every first name, in order.
    name: [{ use: 'official', family: p.patient_family_name, given: [p.patient_given_name] }],
    // FR Core requires a gender; a prescription does not carry it.
    gender: 'unknown',
    birthDate: p.patient_birth_date,
  }
  const practitioner = {
    resourceType: 'Practitioner',
    id: uuidFrom(`${p.id}:practitioner`),
    meta: { profile: [FHIR_PROFILES.practitioner] },
    identifier: [{ use: 'official', type: { coding: [{ system: FHIR_SYSTEMS.idnpsType, code: 'IDNPS' }] }, system: FHIR_SYSTEMS.idnps, value: `8${p.prescriber_org}` }],
    ...(l.prescriberName ? { name: [{ text: l.prescriberName }] } : {}),
  }
  const medications: Array<{ fullUrl: string; resource: Record<string, unknown> }> = []
  const requests = l.lines.map((x) => {
    let medication: Record<string, unknown>
    if (x.cip13) {
      const m = medicines.get(x.cip13)
      medication = {
        medicationCodeableConcept: {
          coding: [...(m ? [{ system: FHIR_SYSTEMS.cis, code: m.cis, display: m.name }] : []), { system: FHIR_SYSTEMS.cip13, code: x.cip13, display: x.label }],
          text: x.label,
        },
      }
    } else {
      // A prescription in DCI: a Medication giving the substance(s), strength(s) and form.
      const names = (x.substance ?? '').split(/\s*\+\s*/)
      const codes = (x.substance_code ?? '').split(',').filter(Boolean)
      const strengths = (x.strength ?? '').split('/')
      const text = [x.substance, x.strength, x.form].filter(Boolean).join(' ')
      const coded = codes.length === names.length
      const resource = {
        resourceType: 'Medication',
        id: uuidFrom(`${p.id}:medication:${x.line_no}`),
        ...(coded ? { meta: { profile: [FHIR_PROFILES.medication] } } : {}),
        code: { ...(coded ? { coding: codes.map((code, i) => ({ system: FHIR_SYSTEMS.substance, code, display: names[i] })) } : {}), text },
        ...(x.form ? { form: { text: x.form } } : {}),
        ingredient: names.map((name, i) => {
          const q = strengthQuantity(strengths[i] ?? strengths[0] ?? '')
          return {
            itemCodeableConcept: { ...(coded ? { coding: [{ system: FHIR_SYSTEMS.substance, code: codes[i], display: name }] } : {}), text: name },
            isActive: true,
            ...(q ? { strength: { numerator: q, denominator: { value: 1, unit: x.form ?? 'unité' } } } : {}),
          }
        }),
      }
      medications.push({ fullUrl: ref(`medication:${x.line_no}`), resource: resource })
      medication = { medicationReference: { reference: ref(`medication:${x.line_no}`), display: text } }
    }
    const dispenseRequest: Record<string, unknown> = { validityPeriod: { start: p.issued_at.toISOString(), end: p.valid_until.toISOString() }, numberOfRepeatsAllowed: x.renewals }
    if (x.quantity) dispenseRequest.quantity = { value: x.quantity, unit: 'boîte' }
    else if (x.units) dispenseRequest.quantity = { value: x.units, unit: 'unité' }
    if (x.duration_days) dispenseRequest.expectedSupplyDuration = { value: x.duration_days, unit: 'jour', system: FHIR_SYSTEMS.ucum, code: 'd' }
    return {
      fullUrl: ref(`line:${x.line_no}`),
      resource: {
        resourceType: 'MedicationRequest',
        id: uuidFrom(`${p.id}:line:${x.line_no}`),
        meta: { profile: [FHIR_PROFILES.medicationRequest] },
        identifier: [{ system: FHIR_SYSTEMS.prescriptionId, value: `${p.id}-${x.line_no}` }],
        groupIdentifier: { system: FHIR_SYSTEMS.prescriptionId, value: p.id },
        status: MR_STATUS[status] ?? 'unknown',
        intent: 'order',
        ...medication,
        subject: { reference: ref('patient') },
        authoredOn: p.issued_at.toISOString(),
        requester: { reference: ref('practitioner') },
        dosageInstruction: [{ text: x.dosage }],
        dispenseRequest,
        // The coded form: "non substituable" reads the same to every validator (allowedBoolean false trips some).
        substitution: {
          allowedCodeableConcept: x.non_substitutable
            ? { coding: [{ system: FHIR_SYSTEMS.substitution, code: 'N', display: 'none' }], text: 'non substituable' }
            : { coding: [{ system: FHIR_SYSTEMS.substitution, code: 'E', display: 'equivalent' }], text: 'substituable' },
        },
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
    entry: [{ fullUrl: ref('patient'), resource: patient }, { fullUrl: ref('practitioner'), resource: practitioner }, ...medications, ...requests],
  }
}

/** How the referential's rows read in answers: organisations, products, medicines and their details. */
import type { Static } from 'typebox'
import { REGIONS, toGtin14 } from '../platform/identifiers.ts'
import type { DeclaredAvailability } from '../shortages/use-cases/public.ts'
import type { OrgRow } from './queries/organisations.ts'
import type { DetailRows, MedicineRow, PresentationRow, ProductRow } from './queries/products.ts'
import { availabilityOf, combinedAvailability } from './rules/availability.ts'
import type { OrganisationSchema } from './schemas/organisations.ts'
import { type Details, GENERIC_TYPES, type Medicine, type Product } from './schemas/products.ts'

export function toOrganisation(r: OrgRow): Static<typeof OrganisationSchema> {
  return {
    id: r.id,
    role: r.role,
    name: r.name,
    department: r.department,
    region: r.region,
    regionName: r.region ? (REGIONS[r.region] ?? null) : null,
    city: r.city,
    email: r.email,
    phone: r.phone,
    fax: r.fax,
    address: r.address_line1 && r.postal_code ? { line1: r.address_line1, line2: r.address_line2, postalCode: r.postal_code } : null,
    active: r.active,
    subscription: r.role === 'lab' ? { subscribed: r.subscribed ?? false, since: (r.since ?? r.created_at).toISOString() } : null,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  }
}

const routesOf = (routes: string | null) => (routes ? routes.split(';').map((r) => r.trim()).filter(Boolean) : [])
const priceOf = (v: string | number | null) => (v === null ? null : Number(v))
export const labOf = (id: string | null, name: string | null) => (id ? { id, name: name ?? id } : null)

export const noDetails = (): Details => ({ genericGroups: [], composition: [], prescriptionConditions: [] })

/** The details of each medicine the rows name; none for any other. */
export function detailsByCis({ groups, components, conditions }: DetailRows): (cis: string) => Details {
  const by = new Map<string, Details>()
  const of = (c: string) => {
    let d = by.get(c)
    if (!d) by.set(c, (d = noDetails()))
    return d
  }
  for (const g of groups) of(g.cis).genericGroups.push({ id: g.id, label: g.label, type: GENERIC_TYPES[g.type], typeCode: g.type })
  for (const c of components) {
    of(c.cis).composition.push({
      element: c.element, link: c.link_no, nature: c.nature === 'SA' ? 'active-substance' : 'therapeutic-fraction', substanceCode: c.substance_code,
      substance: c.substance, dosage: c.dosage, dosageReference: c.dosage_reference,
    })
  }
  for (const c of conditions) of(c.cis).prescriptionConditions.push(c.condition)
  return (c: string) => by.get(c) ?? noDetails()
}

export function toProduct(r: ProductRow, declared: Map<string, DeclaredAvailability>, details: Details): Static<typeof Product> {
  const own = availabilityOf({ code: r.ap_code, label: r.ap_label, start: r.ap_start, end: r.ap_end, returned: r.ap_return, link: r.ap_link }, 'presentation')
  const medicineWide = availabilityOf({ code: r.am_code, label: r.am_label, start: r.am_start, end: r.am_end, returned: r.am_return, link: r.am_link }, 'medicine')
  return {
    cip13: r.cip13,
    gtin: toGtin14(r.cip13),
    cip7: r.cip7,
    cis: r.cis,
    name: r.name,
    label: r.label,
    form: r.form,
    routes: routesOf(r.routes),
    atc: r.atc,
    mitm: r.mitm,
    niche: r.niche,
    enhancedMonitoring: r.enhanced_monitoring,
    lab: labOf(r.lab_id, r.lab_name),
    holder: r.holder,
    marketing: {
      medicineState: r.medicine_state,
      authorisationStatus: r.authorisation_status,
      presentationState: r.presentation_state,
      administrativeStatus: r.administrative_status,
      declarationDate: r.declaration_date,
    },
    // A status published for this presentation takes precedence over one for the whole medicine; the lab's
    // declaration over both.
    availability: combinedAvailability(own ?? medicineWide, own ? r.ap_updated : r.am_updated, declared.get(r.cip13)),
    priceEur: priceOf(r.price_eur),
    reimbursementRate: r.reimbursement_rate,
    hospitalApproved: r.hospital_approved,
    ...details,
  }
}

export function toMedicine(m: MedicineRow, presentations: PresentationRow[], declared: Map<string, DeclaredAvailability>, details: Details): Static<typeof Medicine> {
  return {
    cis: m.cis,
    name: m.name,
    form: m.form,
    routes: routesOf(m.routes),
    atc: m.atc,
    mitm: m.mitm,
    niche: m.niche,
    enhancedMonitoring: m.enhanced_monitoring,
    lab: labOf(m.lab_id, m.lab_name),
    holder: m.holder,
    authorisationStatus: m.authorisation_status,
    procedure: m.procedure,
    marketingState: m.marketing_state,
    authorisationDate: m.authorisation_date,
    availability: availabilityOf({ code: m.am_code, label: m.am_label, start: m.am_start, end: m.am_end, returned: m.am_return, link: m.am_link }, 'medicine'),
    presentations: presentations.map((p) => ({
      cip13: p.cip13,
      gtin: toGtin14(p.cip13),
      cip7: p.cip7,
      label: p.label,
      administrativeStatus: p.administrative_status,
      marketingState: p.marketing_state,
      declarationDate: p.declaration_date,
      hospitalApproved: p.hospital_approved,
      reimbursementRate: p.reimbursement_rate,
      priceEur: priceOf(p.price_eur),
      availability: combinedAvailability(
        availabilityOf({ code: p.ap_code, label: p.ap_label, start: p.ap_start, end: p.ap_end, returned: p.ap_return, link: p.ap_link }, 'presentation'),
        p.ap_updated,
        declared.get(p.cip13),
      ),
    })),
    ...details,
    updatedAt: m.updated_at.toISOString(),
  }
}

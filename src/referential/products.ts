import type { Kysely, Transaction } from 'kysely'
import { type Static, type TSchema, Type } from 'typebox'
import { actorOf, audit, diff } from '../platform/audit.ts'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'
import { type DB, ROLES } from '../platform/db/schema.ts'
import { AppError, defineErrors, errorDef, notFound } from '../platform/errors.ts'
import { langOf, type Text } from '../platform/i18n.ts'
import { cip13Problem, toGtin14 } from '../platform/identifiers.ts'
import { IdempotencyKeyHeader, problems } from '../platform/openapi.ts'
import { component, Page, PageQuery, ProductCode } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import { normaliseHolder, searchName } from './bdpm.ts'
import './db.ts'
import { escapeLike } from './organisations.ts'
import { type DeclaredAvailability, declaredAvailability } from '../shortages/use-cases/public.ts'

defineErrors({
  PRODUCT_CODE_IS_CIS: errorDef(400, 'Code de médicament (CIS) au lieu d’un code de présentation', 'Medicine code (CIS) instead of a presentation code', (p) => ({
    fr: `${p.cis} est un CIS (8 chiffres) : il désigne un médicament et toutes ses présentations. Consultez /v1/medicines/${p.cis}, ou donnez un CIP13, un GTIN-14 ou un CIP7.`,
    en: `${p.cis} is a CIS (8 digits): it names a medicine and all its presentations. See /v1/medicines/${p.cis}, or give a CIP13, a GTIN-14 or a CIP7.`,
  })),
  UNKNOWN_LAB: errorDef(400, 'Laboratoire inconnu', 'Unknown lab', (p) => ({
    fr: `${p.field} : ${p.labId} n’est pas un laboratoire enregistré sur le service.`,
    en: `${p.field}: ${p.labId} is not a lab registered on the service.`,
  })),
})

const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
const DateOnly = Type.String({ format: 'date' })
const atcCode = (description?: string) =>
  Type.String({
    pattern: '^[A-Za-z](\\d{2}([A-Za-z]([A-Za-z](\\d{2})?)?)?)?$',
    'x-message': { fr: 'code ATC attendu (ex. J01 ou J01CA04)', en: 'an ATC code is expected (e.g. J01 or J01CA04)' },
    examples: ['J01CA04'],
    ...(description ? { description } : {}),
  })

const STATUS = ['shortage', 'supply-tension', 'discontinued', 'available-again'] as const

export const ProductAvailability = component(
  Type.Object(
    {
      status: Type.Enum([...STATUS], { description: 'BDPM status 1 shortage (rupture de stock), 2 supply tension, 3 discontinued (arrêt de commercialisation), 4 available again (remise à disposition).' }),
      statusCode: Type.Integer({ minimum: 1, maximum: 4 }),
      label: Type.String({ description: 'The BDPM label, in French.' }),
      startDate: nullable(DateOnly),
      plannedEndDate: nullable(DateOnly),
      returnDate: nullable(DateOnly),
      link: nullable(Type.String({ description: 'ANSM notice.' })),
      scope: Type.Enum(['presentation', 'medicine'], { description: 'Whether the status names this presentation or every presentation of the medicine.' }),
      source: Type.Enum(['declaration', 'bdpm'], { description: 'The lab’s declaration on DP-Ruptures, or the BDPM availability file.' }),
      declarationId: nullable(Type.String({ format: 'uuid', description: 'The declaration behind the status (see GET /v1/public/shortages?cip13=…), when it comes from one.' })),
    },
    {
      $id: 'ProductAvailability',
      description: [
        'Current availability of the presentation. The lab’s own word comes first: its open declaration on DP-Ruptures (declared or ongoing) gives the status; a declaration the lab closed after the BDPM last updated its line replaces that line (resolved: available again; discontinued; avoided: no status).',
        'Otherwise the BDPM availability file (CIS_CIP_Dispo_Spec.txt), for the presentation or its whole medicine; otherwise a declaration imported from that file.',
      ].join(' '),
      examples: [{ status: 'supply-tension', statusCode: 2, label: 'Tension d’approvisionnement', startDate: '2026-11-02', plannedEndDate: '2026-12-15', returnDate: null, link: null, scope: 'presentation', source: 'declaration', declarationId: '0f8e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e' }],
    },
  ),
)

const LabRef = Type.Object({ id: Type.String({ description: 'SIREN of the lab.' }), name: Type.String() }, { description: 'The exploiting lab, from the holder mapping.' })

const GENERIC_TYPES = { 0: 'princeps', 1: 'generic', 2: 'complementary-posology', 4: 'substitutable' } as const
const GenericType = Type.Enum(['princeps', 'generic', 'complementary-posology', 'substitutable'], { description: 'The medicine’s place in the group (BDPM type 0, 1, 2 or 4).' })

export const GenericGroupMembership = component(
  Type.Object(
    {
      id: Type.Integer({ description: 'Generic group (répertoire des génériques): see /v1/generic-groups/{id}.' }),
      label: Type.String(),
      type: GenericType,
      typeCode: Type.Integer({ description: 'As published: 0 princeps, 1 generic, 2 generic by complementarity of posology, 4 substitutable generic.' }),
    },
    { $id: 'GenericGroupMembership', examples: [{ id: 1312, label: 'ROSUVASTATINE … 5 mg - CRESTOR 5 mg, comprimé pelliculé', type: 'generic', typeCode: 1 }] },
  ),
)

export const MedicineComponent = component(
  Type.Object(
    {
      element: Type.String({ description: 'Pharmaceutical element, e.g. comprimé.' }),
      link: Type.Integer({ description: 'An active substance and its therapeutic fraction share this number.' }),
      nature: Type.Enum(['active-substance', 'therapeutic-fraction'], { description: 'SA or FT in the BDPM.' }),
      substanceCode: Type.String({ description: 'ANSM substance code.' }),
      substance: Type.String(),
      dosage: nullable(Type.String({ examples: ['500 mg'] })),
      dosageReference: nullable(Type.String({ examples: ['une gélule'] })),
    },
    { $id: 'MedicineComponent', description: 'One line of the composition (CIS_COMPO_bdpm.txt).' },
  ),
)

/** What the BDPM says a medicine is made of, which generic groups it belongs to and how it may be prescribed. */
const MedicineDetails = {
  genericGroups: Type.Array(GenericGroupMembership, { description: 'Generic groups the medicine belongs to (CIS_GENER_bdpm.txt).' }),
  composition: Type.Array(MedicineComponent, { description: 'Composition (CIS_COMPO_bdpm.txt).' }),
  prescriptionConditions: Type.Array(Type.String(), { description: 'Prescription and dispensing conditions (CIS_CPD_bdpm.txt), e.g. "liste I".', examples: [['liste I']] }),
}
type Details = { genericGroups: Static<typeof GenericGroupMembership>[]; composition: Static<typeof MedicineComponent>[]; prescriptionConditions: string[] }

const PRODUCT_EXAMPLE = {
  cip13: '3400949497294', gtin: '03400949497294', cip7: '4949729', cis: '60002283',
  name: 'ROSUVASTATINE BIOGARAN 10 mg, comprimé pelliculé', label: 'plaquette(s) thermoformée(s) PVC aluminium de 30 comprimé(s)',
  form: 'comprimé pelliculé', routes: ['orale'], atc: null, mitm: false, niche: false, enhancedMonitoring: false,
  lab: { id: '412345670', name: 'BIOGARAN' }, holder: 'BIOGARAN',
  marketing: { medicineState: 'Commercialisée', authorisationStatus: 'Autorisation active', presentationState: 'Déclaration de commercialisation', administrativeStatus: 'Présentation active', declarationDate: '2011-03-16' },
  availability: null, priceEur: 24.34, reimbursementRate: '100%', hospitalApproved: false,
  genericGroups: [], composition: [{ element: 'comprimé', link: 1, nature: 'therapeutic-fraction', substanceCode: '93041', substance: 'ROSUVASTATINE', dosage: '10 mg', dosageReference: 'un comprimé' }],
  prescriptionConditions: ['liste I'],
}

export const Product = component(
  Type.Object(
    {
      cip13: Type.String({ description: 'Canonical product code.' }),
      gtin: Type.String({ description: 'GTIN-14 as printed in the DataMatrix: 0 + CIP13.' }),
      cip7: nullable(Type.String()),
      cis: Type.String({ description: 'The medicine (all its presentations): see /v1/medicines/{cis}.' }),
      name: Type.String({ description: 'Name of the medicine.' }),
      label: Type.String({ description: 'Label of the presentation (the box).' }),
      form: nullable(Type.String()),
      routes: Type.Array(Type.String(), { description: 'Routes of administration.' }),
      atc: nullable(Type.String()),
      mitm: Type.Boolean({ description: 'Medicine of major therapeutic interest (MITM).' }),
      niche: Type.Boolean({ description: 'Niche product (set by the operator).' }),
      enhancedMonitoring: Type.Boolean({ description: 'Under enhanced monitoring (surveillance renforcée).' }),
      lab: nullable(LabRef),
      holder: nullable(Type.String({ description: 'Marketing-authorisation holder as published (normalised).' })),
      marketing: Type.Object({
        medicineState: nullable(Type.String({ description: 'e.g. Commercialisée, Non commercialisée.' })),
        authorisationStatus: nullable(Type.String()),
        presentationState: nullable(Type.String({ description: 'e.g. Déclaration de commercialisation, Déclaration d’arrêt de commercialisation.' })),
        administrativeStatus: nullable(Type.String()),
        declarationDate: nullable(DateOnly),
      }),
      availability: nullable(ProductAvailability),
      priceEur: nullable(Type.Number({ description: 'Public price excluding the dispensing fee, in euros.' })),
      reimbursementRate: nullable(Type.String({ examples: ['65%'] })),
      hospitalApproved: nullable(Type.Boolean({ description: 'Approved for hospital use (agréé aux collectivités).' })),
      ...MedicineDetails,
    },
    { $id: 'Product', description: 'One presentation (box) with its medicine, lab and current availability.', examples: [PRODUCT_EXAMPLE] },
  ),
)

export const MedicinePresentation = component(
  Type.Object(
    {
      cip13: Type.String(),
      gtin: Type.String(),
      cip7: nullable(Type.String()),
      label: Type.String(),
      administrativeStatus: nullable(Type.String()),
      marketingState: nullable(Type.String()),
      declarationDate: nullable(DateOnly),
      hospitalApproved: nullable(Type.Boolean()),
      reimbursementRate: nullable(Type.String()),
      priceEur: nullable(Type.Number()),
      availability: nullable(ProductAvailability),
    },
    {
      $id: 'MedicinePresentation',
      examples: [
        {
          cip13: '3400949497294', gtin: '03400949497294', cip7: '4949729', label: 'plaquette(s) thermoformée(s) PVC aluminium de 30 comprimé(s)',
          administrativeStatus: 'Présentation active', marketingState: 'Déclaration de commercialisation', declarationDate: '2011-03-16',
          hospitalApproved: false, reimbursementRate: '100%', priceEur: 24.34, availability: null,
        },
      ],
    },
  ),
)

export const Medicine = component(
  Type.Object(
    {
      cis: Type.String(),
      name: Type.String(),
      form: nullable(Type.String()),
      routes: Type.Array(Type.String()),
      atc: nullable(Type.String()),
      mitm: Type.Boolean(),
      niche: Type.Boolean(),
      enhancedMonitoring: Type.Boolean(),
      lab: nullable(LabRef),
      holder: nullable(Type.String()),
      authorisationStatus: nullable(Type.String()),
      procedure: nullable(Type.String()),
      marketingState: nullable(Type.String()),
      authorisationDate: nullable(DateOnly),
      availability: nullable(ProductAvailability),
      presentations: Type.Array(MedicinePresentation),
      ...MedicineDetails,
      updatedAt: Type.String({ format: 'date-time' }),
    },
    {
      $id: 'Medicine',
      description: 'A medicine (CIS) and its presentations. `availability` is a status published for the whole medicine; a presentation may have its own.',
      examples: [
        {
          cis: '60002283', name: 'ROSUVASTATINE BIOGARAN 10 mg, comprimé pelliculé', form: 'comprimé pelliculé', routes: ['orale'], atc: null, mitm: false,
          niche: false, enhancedMonitoring: false, lab: { id: '412345670', name: 'BIOGARAN' }, holder: 'BIOGARAN', authorisationStatus: 'Autorisation active',
          procedure: 'Procédure décentralisée', marketingState: 'Commercialisée', authorisationDate: '2011-03-16', availability: null,
          presentations: [], genericGroups: [], composition: [], prescriptionConditions: ['liste I'], updatedAt: '2026-11-22T08:00:00.000Z',
        },
      ],
    },
  ),
)

export const MedicinePatch = component(
  Type.Object(
    {
      labId: Type.Optional(nullable(Type.String({ minLength: 1, maxLength: 20, description: 'SIREN of a registered lab; null: no lab.' }))),
      niche: Type.Optional(Type.Boolean()),
      mitm: Type.Optional(Type.Boolean()),
      atc: Type.Optional(nullable(atcCode('Full ATC code (upper-cased).'))),
      reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'Why: kept in the history.' })),
    },
    {
      $id: 'MedicinePatch',
      additionalProperties: false,
      minProperties: 1,
      description: 'Operator corrections, kept by later BDPM imports, except: `labId` is taken again from the holder mapping when the holder changes or when it is null; `mitm` and `atc` are set again for the medicines CIS_MITM.txt lists.',
      examples: [{ labId: '412345670', niche: true, reason: 'Exploitant confirmé par le laboratoire' }],
    },
  ),
)

export const LabHolder = component(
  Type.Object(
    {
      holder: Type.String({ description: 'Holder as published in the BDPM, normalised (upper case, single spaces).' }),
      lab: nullable(LabRef),
      medicines: Type.Integer({ description: 'Medicines with this holder.' }),
      medicinesWithoutLab: Type.Integer({ description: 'Of those, how many have no lab.' }),
    },
    { $id: 'LabHolder', examples: [{ holder: 'BIOGARAN', lab: { id: '412345670', name: 'BIOGARAN' }, medicines: 4, medicinesWithoutLab: 0 }] },
  ),
)

export const LabHolderPut = component(
  Type.Object(
    {
      labId: nullable(Type.String({ minLength: 1, maxLength: 20, description: 'SIREN of a registered lab; null: this holder maps to no lab.' })),
      reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    },
    { $id: 'LabHolderInput', additionalProperties: false, examples: [{ labId: '301234563', reason: 'Exploitant indiqué par l’ANSM' }] },
  ),
)

export const GenericGroup = component(
  Type.Object(
    {
      id: Type.Integer(),
      label: Type.String(),
      members: Type.Array(
        Type.Object({
          cis: Type.String(),
          name: nullable(Type.String({ description: 'Null when the medicine is not (or no longer) in the referential.' })),
          type: GenericType,
          typeCode: Type.Integer(),
        }),
        { description: 'In the published order: the princeps first.' },
      ),
    },
    { $id: 'GenericGroup', description: 'A group of the répertoire des génériques: a pharmacist may substitute one member for another.' },
  ),
)

const ProductPage = Page(Product, 'ProductPage')
const LabHolderPage = Page(LabHolder, 'LabHolderPage')

// ---- data access -------------------------------------------------------------------------------------------

type Db = Kysely<DB> | Transaction<DB>

/** Presentation + medicine + lab + its own and its medicine-wide availability: one row per product. */
function productQuery(db: Db) {
  return db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .leftJoin('organisations as o', 'o.id', 'm.lab_id')
    .leftJoin('availability as ap', (j) => j.onRef('ap.cis', '=', 'p.cis').onRef('ap.cip13', '=', 'p.cip13'))
    .leftJoin('availability as am', (j) => j.onRef('am.cis', '=', 'p.cis').on('am.cip13', 'is', null))
    .select([
      'p.cip13', 'p.cip7', 'p.cis', 'p.label', 'p.administrative_status', 'p.marketing_state as presentation_state', 'p.declaration_date',
      'p.hospital_approved', 'p.reimbursement_rate', 'p.price_eur',
      'm.name', 'm.search_name', 'm.form', 'm.routes', 'm.atc', 'm.mitm', 'm.niche', 'm.enhanced_monitoring', 'm.holder',
      'm.authorisation_status', 'm.marketing_state as medicine_state', 'm.lab_id', 'o.name as lab_name',
      'ap.status_code as ap_code', 'ap.status_label as ap_label', 'ap.start_date as ap_start', 'ap.planned_end_date as ap_end', 'ap.return_date as ap_return', 'ap.link as ap_link', 'ap.updated_at as ap_updated',
      'am.status_code as am_code', 'am.status_label as am_label', 'am.start_date as am_start', 'am.planned_end_date as am_end', 'am.return_date as am_return', 'am.link as am_link', 'am.updated_at as am_updated',
    ])
}
type ProductRow = Awaited<ReturnType<ReturnType<typeof productQuery>['executeTakeFirstOrThrow']>>

interface AvailabilityCols {
  code: number | null
  label: string | null
  start: string | null
  end: string | null
  returned: string | null
  link: string | null
  updated?: Date | null
}
type Availability = Static<typeof ProductAvailability>
function availabilityOf(a: AvailabilityCols, scope: 'presentation' | 'medicine'): Availability | null {
  if (a.code === null) return null
  return {
    status: STATUS[a.code - 1] ?? 'shortage',
    statusCode: a.code,
    label: a.label ?? '',
    startDate: a.start,
    plannedEndDate: a.end,
    returnDate: a.returned,
    link: a.link,
    scope,
    source: 'bdpm',
    declarationId: null,
  }
}

/** BDPM wording of the four statuses, for a status that comes from a declaration. */
const BDPM_LABELS = ['Rupture de stock', 'Tension d’approvisionnement', 'Arrêt de commercialisation', 'Remise à disposition']
const KIND_CODE: Record<DeclaredAvailability['kind'], number> = { observed: 1, anticipated: 2, discontinuation: 3, availability_return: 4 }

/** An anticipated shortage that materialised (ongoing, or with an actual start) is a shortage. */
const openCode = (d: DeclaredAvailability) => (d.kind === 'anticipated' && (d.status === 'ongoing' || d.actualStart) ? 1 : KIND_CODE[d.kind])

function fromDeclaration(d: DeclaredAvailability, code: number, returnDate: string | null): Availability {
  return { status: STATUS[code - 1]!, statusCode: code, label: BDPM_LABELS[code - 1]!, startDate: d.startDate, plannedEndDate: d.plannedEndDate, returnDate, link: null, scope: 'presentation', source: 'declaration', declarationId: d.id }
}

/**
 * A presentation's availability: the lab's word first, then the BDPM file (see the ProductAvailability schema).
 * `bdpm` is the BDPM status for the presentation or, failing that, its medicine; `updated` when it was imported.
 */
function combinedAvailability(bdpm: Availability | null, bdpmUpdated: Date | null, d: DeclaredAvailability | undefined): Availability | null {
  if (d && d.byLab) {
    if (d.status === 'declared' || d.status === 'ongoing') return fromDeclaration(d, openCode(d), d.kind === 'availability_return' ? d.startDate : null)
    // Closed by the lab: newer than the BDPM line, or no line at all.
    if (d.closedAt && (!bdpm || !bdpmUpdated || d.closedAt > bdpmUpdated)) {
      if (d.status === 'discontinued') return fromDeclaration(d, 3, null)
      if (bdpm && d.status === 'resolved') return fromDeclaration(d, 4, d.endDate)
      if (bdpm) return null // resolved with no line left to contradict, or avoided: nothing to report
    }
  }
  if (bdpm) return bdpm
  // A declaration imported from the BDPM file whose line the referential does not hold.
  if (d && (d.status === 'declared' || d.status === 'ongoing')) return fromDeclaration(d, openCode(d), null)
  return null
}

const routesOf = (routes: string | null) => (routes ? routes.split(';').map((r) => r.trim()).filter(Boolean) : [])
const priceOf = (v: string | number | null) => (v === null ? null : Number(v))
const labOf = (id: string | null, name: string | null) => (id ? { id, name: name ?? id } : null)

/** Generic groups, composition and conditions of the given medicines, in three queries. */
async function detailsOf(db: Db, cisList: string[]): Promise<(cis: string) => Details> {
  const cis = [...new Set(cisList)]
  const empty = (): Details => ({ genericGroups: [], composition: [], prescriptionConditions: [] })
  if (cis.length === 0) return empty
  const [groups, components, conditions] = await Promise.all([
    db.selectFrom('generic_group_members as gm').innerJoin('generic_groups as g', 'g.id', 'gm.group_id').select(['gm.cis', 'g.id', 'g.label', 'gm.type']).where('gm.cis', 'in', cis).orderBy('g.id').execute(),
    db.selectFrom('medicine_components').selectAll().where('cis', 'in', cis).orderBy('element').orderBy('link_no').orderBy('nature', 'desc').orderBy('substance_code').execute(),
    db.selectFrom('prescription_conditions').select(['cis', 'condition']).where('cis', 'in', cis).orderBy('condition').execute(),
  ])
  const by = new Map<string, Details>()
  const of = (c: string) => {
    let d = by.get(c)
    if (!d) by.set(c, (d = empty()))
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
  return (c: string) => by.get(c) ?? empty()
}

function toProduct(r: ProductRow, declared: Map<string, DeclaredAvailability>, details: Details): Static<typeof Product> {
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

export async function getMedicine(db: Db, cis: string): Promise<Static<typeof Medicine> | null> {
  const m = await db
    .selectFrom('medicines as m')
    .leftJoin('organisations as o', 'o.id', 'm.lab_id')
    .leftJoin('availability as am', (j) => j.onRef('am.cis', '=', 'm.cis').on('am.cip13', 'is', null))
    .selectAll('m')
    .select(['o.name as lab_name', 'am.status_code as am_code', 'am.status_label as am_label', 'am.start_date as am_start', 'am.planned_end_date as am_end', 'am.return_date as am_return', 'am.link as am_link'])
    .where('m.cis', '=', cis)
    .executeTakeFirst()
  if (!m) return null
  const presentations = await db
    .selectFrom('presentations as p')
    .leftJoin('availability as ap', (j) => j.onRef('ap.cis', '=', 'p.cis').onRef('ap.cip13', '=', 'p.cip13'))
    .selectAll('p')
    .select(['ap.status_code as ap_code', 'ap.status_label as ap_label', 'ap.start_date as ap_start', 'ap.planned_end_date as ap_end', 'ap.return_date as ap_return', 'ap.link as ap_link', 'ap.updated_at as ap_updated'])
    .where('p.cis', '=', cis)
    .orderBy('p.cip13')
    .execute()
  const declared = await declaredAvailability(db, presentations.map((p) => p.cip13))
  const details = (await detailsOf(db, [cis]))(cis)
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

async function labHolder(db: Db, holder: string): Promise<Static<typeof LabHolder>> {
  const mapping = await db
    .selectFrom('lab_holders as h')
    .leftJoin('organisations as o', 'o.id', 'h.lab_id')
    .select(['h.lab_id', 'o.name'])
    .where('h.holder', '=', holder)
    .executeTakeFirst()
  const counts = await db
    .selectFrom('medicines')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.countAll<number>().filterWhere('lab_id', 'is', null).as('without')])
    .where('holder', '=', holder)
    .executeTakeFirstOrThrow()
  return { holder, lab: labOf(mapping?.lab_id ?? null, mapping?.name ?? null), medicines: Number(counts.n), medicinesWithoutLab: Number(counts.without) }
}

/** A lab that may be named in a correction; anything else is refused with the field that named it. */
async function assertLab(db: Db, labId: string, field: string, lang: 'fr' | 'en') {
  const org = await db.selectFrom('organisations').select('role').where('id', '=', labId).executeTakeFirst()
  if (org?.role === 'lab') return
  const message = lang === 'fr' ? `${labId} n’est pas un laboratoire enregistré` : `${labId} is not a registered lab`
  throw new AppError('UNKNOWN_LAB', { field, labId }, { errors: [{ field, code: 'unknown-lab', message }] })
}

function invalidCode(lang: 'fr' | 'en', problem: Text): never {
  throw new AppError('INVALID_IDENTIFIER', { field: 'params.code', ...problem }, { errors: [{ field: 'params.code', code: 'identifier', message: problem[lang] }] })
}

const CisParams = Type.Object({
  cis: Type.String({ pattern: '^\\d{8}$', 'x-message': { fr: 'un CIS compte 8 chiffres', en: 'a CIS has 8 digits' }, examples: ['60002283'] }),
})
const productNotFound = (code: string) => notFound(`Le produit ${code}`, `Product ${code}`)
const medicineNotFound = (cis: string) => notFound(`Le médicament ${cis}`, `Medicine ${cis}`)

// ---- routes ------------------------------------------------------------------------------------------------

const productRoutes: RoutePlugin = async (app) => {
  // The look-up is the hot path: its SQL is built once; each request only binds the code.
  const compiled = (where: 'p.cip13' | 'p.cip7') => {
    const q = productQuery(app.db).where(where, '=', '').orderBy('p.cip13').compile()
    if (q.parameters.length !== 1) throw new Error('product look-up: one parameter expected')
    const name = `product_by_${where.slice(2)}`
    return (code: string) => app.database.prepared<ProductRow>(name, q.sql, [code])
  }
  const byCip13 = compiled('p.cip13')
  const byCip7 = compiled('p.cip7')

  app.get(
    '/products/:code',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'getProduct',
        summary: 'One product by CIP13, GTIN-14 or CIP7',
        description:
          'The code read from a box: CIP13, the GTIN-14 of its DataMatrix (0 + CIP13) or the older CIP7. A wrong check digit answers 400 naming the expected one; a CIS (8 digits) answers 400 pointing to /v1/medicines/{cis}.',
        params: Type.Object({ code: ProductCode }),
        response: { 200: Product, ...problems(404) },
      },
    },
    async (request) => {
      const { code } = request.params
      if (code.length === 8) {
        const lang = langOf(request)
        const message = lang === 'fr' ? 'un CIS désigne un médicament : utilisez /v1/medicines/{cis}' : 'a CIS names a medicine: use /v1/medicines/{cis}'
        throw new AppError('PRODUCT_CODE_IS_CIS', { cis: code }, { errors: [{ field: 'params.code', code: 'cis', message }], medicine: `/v1/medicines/${code}` })
      }
      let query: Promise<ProductRow[]>
      if (code.length === 7) query = byCip7(code)
      else {
        if (code.length === 14 && !code.startsWith('0')) invalidCode(langOf(request), { fr: 'un GTIN-14 de médicament s’écrit 0 suivi du CIP13', en: 'a medicine GTIN-14 is 0 followed by the CIP13' })
        const cip13 = code.length === 14 ? code.slice(1) : code
        const problem = cip13Problem(cip13)
        if (problem) invalidCode(langOf(request), problem)
        query = byCip13(cip13)
      }
      const rows = await query
      if (!rows[0]) throw productNotFound(code)
      return toProduct(rows[0], await declaredAvailability(app.db, [rows[0].cip13]), (await detailsOf(app.db, [rows[0].cis]))(rows[0].cis))
    },
  )

  app.get(
    '/products',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'searchProducts',
        summary: 'Search products',
        description:
          '`q` is a name (case and accents ignored, every word must appear) or an exact CIP13, GTIN-14, CIP7 or CIS. Filters combine; with none, every product is listed, page by page, ordered by name then CIP13.',
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', examples: ['amoxicilline'] })),
            atc: Type.Optional(atcCode('ATC code or prefix (J01 matches J01CA04); case ignored.')),
            mitm: Type.Optional(Type.Boolean({ description: 'Only MITM (true) or only non-MITM (false) products.' })),
            labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'SIREN of the exploiting lab.' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: ProductPage },
      },
    },
    async (request) => {
      const { q: rawQ, atc: rawAtc, mitm, labId, limit = 50, cursor } = request.query
      const q = rawQ?.trim()
      const atc = rawAtc?.toUpperCase()
      const filter = { q, atc, mitm, labId }
      let after: { s: string; c: string } | null = null
      if (cursor) {
        after = decodeCursor<{ s: string; c: string }>(cursor, filter)
        if (typeof after.s !== 'string' || typeof after.c !== 'string') throw new AppError('INVALID_CURSOR')
      }
      let query = productQuery(app.db).orderBy('m.search_name').orderBy('p.cip13').limit(limit + 1)
      if (q) {
        if (/^\d{13}$/.test(q)) query = query.where('p.cip13', '=', q)
        else if (/^0\d{13}$/.test(q)) query = query.where('p.cip13', '=', q.slice(1))
        else if (/^\d{7}$/.test(q)) query = query.where('p.cip7', '=', q)
        else if (/^\d{8}$/.test(q)) query = query.where('p.cis', '=', q)
        else for (const word of searchName(q).split(/\s+/).filter(Boolean)) query = query.where('m.search_name', 'like', `%${escapeLike(word)}%`)
      }
      if (atc) query = query.where('m.atc', 'like', `${atc}%`)
      if (mitm !== undefined) query = query.where('m.mitm', '=', mitm)
      if (labId) query = query.where('m.lab_id', '=', labId)
      if (after) {
        const { s, c } = after
        query = query.where((eb) => eb(eb.refTuple('m.search_name', 'p.cip13'), '>', eb.tuple(s, c)))
      }
      const rows = await query.execute()
      const page = rows.slice(0, limit)
      const last = page[page.length - 1]
      const [declared, details] = await Promise.all([declaredAvailability(app.db, page.map((r) => r.cip13)), detailsOf(app.db, page.map((r) => r.cis))])
      return { items: page.map((r) => toProduct(r, declared, details(r.cis))), nextCursor: rows.length > limit && last ? encodeCursor({ s: last.search_name, c: last.cip13 }, filter) : null }
    },
  )

  app.get(
    '/medicines/:cis',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'getMedicine',
        summary: 'One medicine (CIS) with its presentations',
        params: CisParams,
        response: { 200: Medicine, ...problems(404) },
      },
    },
    async (request) => {
      const medicine = await getMedicine(app.db, request.params.cis)
      if (!medicine) throw medicineNotFound(request.params.cis)
      return medicine
    },
  )

  app.get(
    '/generic-groups/:id',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'getGenericGroup',
        summary: 'One generic group and its members',
        description: 'From CIS_GENER_bdpm.txt: the princeps and its generics, in the published order. Members withdrawn from the referential are listed with `name: null`.',
        params: Type.Object({ id: Type.Integer({ minimum: 1, maximum: 999_999_999 }) }),
        response: { 200: GenericGroup, ...problems(404) },
      },
    },
    async (request) => {
      const { id } = request.params
      const group = await app.db.selectFrom('generic_groups').select(['id', 'label']).where('id', '=', id).executeTakeFirst()
      if (!group) throw notFound(`Le groupe générique ${id}`, `Generic group ${id}`)
      const members = await app.db
        .selectFrom('generic_group_members as gm')
        .leftJoin('medicines as m', 'm.cis', 'gm.cis')
        .select(['gm.cis', 'gm.type', 'm.name'])
        .where('gm.group_id', '=', id)
        .orderBy('gm.sort_order')
        .orderBy('gm.cis')
        .execute()
      return { id: group.id, label: group.label, members: members.map((m) => ({ cis: m.cis, name: m.name, type: GENERIC_TYPES[m.type], typeCode: m.type })) }
    },
  )

  app.patch(
    '/medicines/:cis',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['referential'],
        operationId: 'updateMedicine',
        summary: 'Correct a medicine’s lab, niche, MITM flag or ATC code (operator)',
        description: 'Recorded in the audit trail (object type `medicine`) with the values before and after.',
        headers: IdempotencyKeyHeader,
        params: CisParams,
        body: MedicinePatch,
        response: { 200: Medicine, ...problems(404) },
      },
    },
    async (request) => {
      const { cis } = request.params
      const { reason, ...body } = request.body
      const patch = { ...body, ...(body.atc ? { atc: body.atc.toUpperCase() } : {}) }
      const medicine = await app.db.transaction().execute(async (tx) => {
        const before = await tx.selectFrom('medicines').select(['lab_id', 'niche', 'mitm', 'atc']).where('cis', '=', cis).forUpdate().executeTakeFirst()
        if (!before) throw medicineNotFound(cis)
        if (patch.labId) await assertLab(tx, patch.labId, 'body.labId', langOf(request))
        const changes = diff({ labId: before.lab_id, niche: before.niche, mitm: before.mitm, atc: before.atc }, patch)
        if (Object.keys(changes).length) {
          await tx
            .updateTable('medicines')
            .set({
              ...(patch.labId !== undefined ? { lab_id: patch.labId } : {}),
              ...(patch.niche !== undefined ? { niche: patch.niche } : {}),
              ...(patch.mitm !== undefined ? { mitm: patch.mitm } : {}),
              ...(patch.atc !== undefined ? { atc: patch.atc } : {}),
              updated_at: new Date(),
            })
            .where('cis', '=', cis)
            .execute()
          await audit(tx, actorOf(request.principal, request.id), { action: 'medicine.updated', objectType: 'medicine', objectId: cis, changes: { ...changes, ...(reason ? { reason } : {}) } })
        }
        return getMedicine(tx, cis)
      })
      return medicine!
    },
  )

  app.get(
    '/lab-holders',
    {
      config: { roles: ['ordre', 'ansm'] },
      schema: {
        tags: ['referential'],
        operationId: 'listLabHolders',
        summary: 'BDPM holders and the lab each maps to (operator, ANSM)',
        description: 'With `unmapped=true`, only holders that still have medicines without a lab: the ones to map with PUT /v1/lab-holders/{holder}.',
        querystring: Type.Object({ unmapped: Type.Optional(Type.Boolean()), ...PageQuery }, { additionalProperties: false }),
        response: { 200: LabHolderPage },
      },
    },
    async (request) => {
      const { unmapped, limit = 50, cursor } = request.query
      const filter = { unmapped }
      const after = cursor ? decodeCursor<{ h: string }>(cursor, filter) : null
      let query = app.db
        .selectFrom('medicines as m')
        .leftJoin('lab_holders as h', 'h.holder', 'm.holder')
        .leftJoin('organisations as o', 'o.id', 'h.lab_id')
        .select((eb) => ['m.holder', 'h.lab_id', 'o.name', eb.fn.countAll<number>().as('n'), eb.fn.countAll<number>().filterWhere('m.lab_id', 'is', null).as('without')])
        .where('m.holder', 'is not', null)
        .groupBy(['m.holder', 'h.lab_id', 'o.name'])
        .orderBy('m.holder')
        .limit(limit + 1)
      if (unmapped) query = query.having((eb) => eb.fn.countAll().filterWhere('m.lab_id', 'is', null), '>', 0)
      if (after) query = query.where('m.holder', '>', String(after.h))
      const rows = await query.execute()
      const page = rows.slice(0, limit)
      return {
        items: page.map((r) => ({ holder: r.holder ?? '', lab: labOf(r.lab_id, r.name), medicines: Number(r.n), medicinesWithoutLab: Number(r.without) })),
        nextCursor: rows.length > limit ? encodeCursor({ h: page[page.length - 1]!.holder }, filter) : null,
      }
    },
  )

  app.put(
    '/lab-holders/:holder',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['referential'],
        operationId: 'mapLabHolder',
        summary: 'Map a BDPM holder to a lab (operator)',
        description:
          'Every medicine with this holder is reassigned to the lab (or to none with `labId: null`), and later imports follow the mapping. The holder is compared in upper case with single spaces; one not yet in the BDPM may be mapped in advance. Recorded in the audit trail (object type `lab-holder`).',
        headers: IdempotencyKeyHeader,
        params: Type.Object({ holder: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S', examples: ['BIOGARAN'] }) }),
        body: LabHolderPut,
        response: { 200: LabHolder },
      },
    },
    async (request) => {
      const holder = normaliseHolder(request.params.holder)
      const { labId, reason } = request.body
      return app.db.transaction().execute(async (tx) => {
        if (labId) await assertLab(tx, labId, 'body.labId', langOf(request))
        const before = await tx.selectFrom('lab_holders').select('lab_id').where('holder', '=', holder).forUpdate().executeTakeFirst()
        await tx
          .insertInto('lab_holders')
          .values({ holder, lab_id: labId, updated_at: new Date() })
          .onConflict((oc) => oc.column('holder').doUpdateSet({ lab_id: labId, updated_at: new Date() }))
          .execute()
        const reassigned = await tx
          .updateTable('medicines')
          .set({ lab_id: labId, updated_at: new Date() })
          .where('holder', '=', holder)
          .where('lab_id', 'is distinct from', labId)
          .executeTakeFirst()
        const medicinesReassigned = Number(reassigned.numUpdatedRows)
        if (!before || before.lab_id !== labId || medicinesReassigned > 0) {
          await audit(tx, actorOf(request.principal, request.id), {
            action: 'lab-holder.mapped',
            objectType: 'lab-holder',
            objectId: holder,
            changes: { labId: [before?.lab_id ?? null, labId], medicinesReassigned, ...(reason ? { reason } : {}) },
          })
        }
        return labHolder(tx, holder)
      })
    },
  )
}

export default productRoutes

/** The products' TypeBox schemas (presentations, medicines, generic groups, lab holders) and their path parameter. */
import { type Static, type TSchema, Type } from 'typebox'
import { component, Page } from '../../platform/schemas.ts'

const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
const DateOnly = Type.String({ format: 'date' })
export const atcCode = (description?: string) =>
  Type.String({
    pattern: '^[A-Za-z](\\d{2}([A-Za-z]([A-Za-z](\\d{2})?)?)?)?$',
    'x-message': { fr: 'code ATC attendu (ex. J01 ou J01CA04)', en: 'an ATC code is expected (e.g. J01 or J01CA04)' },
    examples: ['J01CA04'],
    ...(description ? { description } : {}),
  })

export const STATUS = ['shortage', 'supply-tension', 'discontinued', 'available-again'] as const

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

export const GENERIC_TYPES = { 0: 'princeps', 1: 'generic', 2: 'complementary-posology', 4: 'substitutable' } as const
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
export type Details = { genericGroups: Static<typeof GenericGroupMembership>[]; composition: Static<typeof MedicineComponent>[]; prescriptionConditions: string[] }

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

export const ProductPage = Page(Product, 'ProductPage')
export const LabHolderPage = Page(LabHolder, 'LabHolderPage')

export const CisParams = Type.Object({
  cis: Type.String({ pattern: '^\\d{8}$', 'x-message': { fr: 'un CIS compte 8 chiffres', en: 'a CIS has 8 digits' }, examples: ['60002283'] }),
})

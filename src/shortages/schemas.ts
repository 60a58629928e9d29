import { type TSchema, Type } from 'typebox'
import { defineConstraintErrors, defineErrors, errorDef } from '../platform/errors.ts'
import { component, Page } from '../platform/schemas.ts'

defineErrors({
  SIGNAL_TOO_EARLY: errorDef(400, 'Signalement prématuré', 'Signal too early', (p) => ({
    fr: `Une rupture se signale après 72 heures sans pouvoir obtenir la présentation ; indisponible depuis ${p.sinceFr}, elle pourra être signalée à partir du ${p.eligibleFr} (heure de Paris).`,
    en: `A shortage is signalled after 72 hours without being able to obtain the presentation; unavailable since ${p.sinceEn}, it may be signalled from ${p.eligibleEn} (Paris time).`,
  })),
  DATES_OUT_OF_ORDER: errorDef(400, 'Dates incohérentes', 'Dates out of order', (p) => ({
    fr: `${p.field} : ${p.fr}`,
    en: `${p.field}: ${p.en}`,
  })),
  INVALID_TRANSITION: errorDef(409, 'Transition impossible', 'Transition not allowed', (p) => ({
    fr: `Une déclaration « ${p.from} » ne peut pas passer à « ${p.to} » ; transitions possibles : ${p.allowedText || 'aucune (déclaration close)'}.`,
    en: `A "${p.from}" declaration cannot move to "${p.to}"; allowed transitions: ${p.allowedText || 'none (declaration closed)'}.`,
  })),
  DECLARATION_CLOSED: errorDef(409, 'Déclaration close', 'Declaration closed', (p) => ({
    fr: `La déclaration est close (${p.status}) : elle ne peut plus être modifiée ; faites une nouvelle déclaration.`,
    en: `The declaration is closed (${p.status}): it can no longer be changed; make a new declaration.`,
  })),
  VERSION_MISMATCH: errorDef(409, 'Version obsolète', 'Stale version', (p) => ({
    fr: `La déclaration est à la version ${p.current} et non ${p.expected} : relisez-la avant de la modifier.`,
    en: `The declaration is at version ${p.current}, not ${p.expected}: read it again before changing it.`,
  })),
  PRESENTATION_ALREADY_DECLARED: errorDef(409, 'Présentation déjà déclarée', 'Presentation already declared', (p) => ({
    fr: `La présentation ${p.cip13} fait déjà l’objet d’une déclaration en cours${p.declarationId ? ` (${p.declarationId})` : ''} : mettez-la à jour plutôt que d’en créer une autre.`,
    en: `Presentation ${p.cip13} already has an open declaration${p.declarationId ? ` (${p.declarationId})` : ''}: update it rather than creating another.`,
  })),
  SIGNAL_NOT_OPEN: errorDef(409, 'Signalement clos', 'Signal not open', (p) => ({
    fr: `Ce signalement est déjà ${p.status === 'lapsed' ? 'expiré' : 'clos'} ; signalez de nouveau si la présentation manque encore.`,
    en: `This signal is already ${p.status === 'lapsed' ? 'lapsed' : 'closed'}; signal again if the presentation is still missing.`,
  })),
})
// Two declarations of one presentation racing: the database's unique index decides, the loser gets the domain's 409.
defineConstraintErrors({ shortage_declaration_items_active: 'PRESENTATION_ALREADY_DECLARED' })

export const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
export const DateOnly = (description?: string) => Type.String({ format: 'date', ...(description ? { description } : {}) })

/** CIP13 or GTIN-14 (0 + CIP13); the check digit is verified by the route, which names the field. */
export const PresentationCode = Type.String({
  pattern: '^0?\\d{13}$',
  description: 'CIP13 (13 digits) or GTIN-14 (0 + CIP13), as read on the box.',
  'x-message': { fr: 'attendu : un CIP13 (13 chiffres) ou un GTIN-14 (0 + CIP13)', en: 'expected: a CIP13 (13 digits) or a GTIN-14 (0 + CIP13)' },
  examples: ['3400936128149'],
})

export const KINDS = ['anticipated', 'observed', 'discontinuation', 'availability_return'] as const
export const KIND_LABELS: Record<(typeof KINDS)[number], { fr: string; en: string; bdpm: number }> = {
  anticipated: { fr: 'Risque de rupture', en: 'Anticipated shortage', bdpm: 2 },
  observed: { fr: 'Rupture constatée', en: 'Observed shortage', bdpm: 1 },
  discontinuation: { fr: 'Arrêt de commercialisation', en: 'Discontinuation', bdpm: 3 },
  availability_return: { fr: 'Remise à disposition', en: 'Return to availability', bdpm: 4 },
}
export const STATUSES = ['draft', 'declared', 'ongoing', 'resolved', 'avoided', 'discontinued'] as const
export const STATUS_LABELS: Record<(typeof STATUSES)[number], { fr: string; en: string }> = {
  draft: { fr: 'Brouillon', en: 'Draft' },
  declared: { fr: 'Déclarée', en: 'Declared' },
  ongoing: { fr: 'En cours', en: 'Ongoing' },
  resolved: { fr: 'Résolue', en: 'Resolved' },
  avoided: { fr: 'Évitée', en: 'Avoided' },
  discontinued: { fr: 'Arrêt de commercialisation', en: 'Discontinued' },
}
/** The lifecycle: draft → declared → ongoing → resolved, or avoided, or discontinued. */
export const TRANSITIONS: Record<(typeof STATUSES)[number], Array<(typeof STATUSES)[number]>> = {
  draft: ['declared'],
  declared: ['ongoing', 'resolved', 'avoided', 'discontinued'],
  ongoing: ['resolved', 'discontinued'],
  resolved: [],
  avoided: [],
  discontinued: [],
}
export const CLOSED_STATUSES = ['resolved', 'avoided', 'discontinued'] as const

export const CAUSES = {
  production: { fr: 'Problème de production', en: 'Production problem' },
  quality_defect: { fr: 'Défaut de qualité', en: 'Quality defect' },
  raw_material: { fr: 'Difficulté d’approvisionnement en matière première', en: 'Raw material shortage' },
  demand_increase: { fr: 'Augmentation de la demande', en: 'Increase in demand' },
  regulatory: { fr: 'Raison réglementaire', en: 'Regulatory reason' },
  distribution: { fr: 'Problème de distribution', en: 'Distribution problem' },
  other: { fr: 'Autre (préciser)', en: 'Other (specify)' },
} as const
export type CauseCode = keyof typeof CAUSES
export const CAUSE_CODES = Object.keys(CAUSES) as CauseCode[]

export const Cause = component(
  Type.Object(
    { code: Type.Enum(CAUSE_CODES), fr: Type.String(), en: Type.String() },
    { $id: 'ShortageCause', description: 'A cause from the controlled list, with its French and English labels.', examples: [{ code: 'raw_material', ...CAUSES.raw_material }] },
  ),
)

const AlternativeSchema = Type.Object(
  {
    cip13: Type.Optional(PresentationCode),
    description: Type.String({ minLength: 1, maxLength: 500, description: 'Another presentation, an import, a therapeutic alternative…' }),
  },
  { additionalProperties: false },
)
const Alternatives = Type.Array(AlternativeSchema, { maxItems: 20 })

const LabRef = Type.Object({ id: Type.String({ description: 'SIREN.' }), name: Type.String() })
const PresentationRef = Type.Object({ cip13: Type.String(), gtin: Type.String(), name: Type.String({ description: 'Medicine name.' }), label: Type.String({ description: 'The box.' }) })

export const AutomaticResponse = component(
  Type.Object(
    {
      scope: Type.Enum(['presentation', 'declaration'], { description: 'Set for a presentation, or for a declaration (which takes precedence).' }),
      cip13: nullable(Type.String()),
      declarationId: nullable(Type.String({ format: 'uuid' })),
      lab: LabRef,
      message: Type.String(),
      expectedReturn: nullable(DateOnly('Expected return to availability.')),
      alternatives: Alternatives,
      emergencyContact: nullable(Type.String({ description: 'How to reach the lab’s emergency service.' })),
      allocationRules: nullable(Type.String({ description: 'Allocation (contingentement) rules.' })),
      updatedAt: Type.String({ format: 'date-time' }),
    },
    {
      $id: 'ShortageAutomaticResponse',
      description: 'The answer every pharmacy gets when it signals the presentation.',
      examples: [
        {
          scope: 'presentation', cip13: '3400936128149', declarationId: null, lab: { id: '412345670', name: 'BIOGARAN' },
          message: 'Retour prévu mi-décembre ; les grossistes sont livrés au prorata des ventes.', expectedReturn: '2026-12-15',
          alternatives: [{ cip13: '3400936128200', description: 'Boîte de 16 gélules, disponible' }], emergencyContact: 'Service urgence : 01 00 00 00 00 (24 h/24)',
          allocationRules: 'Contingentement à 80 % des ventes de 2025', updatedAt: '2026-11-22T09:00:00.000Z',
        },
      ],
    },
  ),
)

export const AutomaticResponseInput = component(
  Type.Object(
    {
      message: Type.String({ minLength: 1, maxLength: 2000 }),
      expectedReturn: Type.Optional(nullable(DateOnly())),
      alternatives: Type.Optional(Alternatives),
      emergencyContact: Type.Optional(nullable(Type.String({ minLength: 1, maxLength: 500 }))),
      allocationRules: Type.Optional(nullable(Type.String({ minLength: 1, maxLength: 1000 }))),
    },
    {
      $id: 'ShortageAutomaticResponseInput',
      additionalProperties: false,
      examples: [{ message: 'Retour prévu mi-décembre.', expectedReturn: '2026-12-15', emergencyContact: 'Service urgence : 01 00 00 00 00' }],
    },
  ),
)

const DeclarationSummary = component(Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    kind: Type.Enum([...KINDS]),
    status: Type.Enum([...STATUSES]),
    version: Type.Integer(),
    estimatedEnd: nullable(DateOnly()),
    estimatedEndUnknown: Type.Boolean(),
    actualEnd: nullable(DateOnly()),
    allocationInPlace: Type.Boolean(),
    advice: nullable(Type.String()),
  },
  { $id: 'ShortageDeclarationSummary', description: 'The lab’s current declaration on the presentation, when there is one (never a draft).' },
))

const SIGNAL_EXAMPLE = {
  id: '5b0d6b2e-7f0a-4e0c-9d55-0c9a1b2c3d4e', cip13: '3400936128149', gtin: '03400936128149', productName: 'AMOXICILLINE BIOGARAN 500 mg, gélule',
  status: 'open', wholesaler: 'OCP Répartition', lastSupplyDate: '2026-11-12', unavailableSince: '2026-11-18T08:00:00.000Z',
  createdAt: '2026-11-22T09:00:00.000Z', renewedAt: '2026-11-22T09:00:00.000Z', lapsesAt: '2026-12-22T09:00:00.000Z', closedAt: null, closeReason: null,
  automaticResponse: null, declaration: null,
}
export const Signal = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      cip13: Type.String(),
      gtin: Type.String(),
      productName: Type.String(),
      status: Type.Enum(['open', 'closed', 'lapsed'], { description: 'open; closed by the pharmacy (supplied again); lapsed (not renewed in time).' }),
      wholesaler: Type.String(),
      lastSupplyDate: nullable(DateOnly()),
      unavailableSince: Type.String({ format: 'date-time' }),
      createdAt: Type.String({ format: 'date-time' }),
      renewedAt: Type.String({ format: 'date-time' }),
      lapsesAt: Type.String({ format: 'date-time', description: 'Lapses at this time unless renewed.' }),
      closedAt: nullable(Type.String({ format: 'date-time' })),
      closeReason: nullable(Type.String()),
      automaticResponse: nullable(AutomaticResponse),
      declaration: nullable(DeclarationSummary),
    },
    { $id: 'ShortageSignal', description: 'A pharmacy’s signal that it cannot obtain a presentation.', examples: [SIGNAL_EXAMPLE] },
  ),
)

export const SignalInput = component(
  Type.Object(
    {
      code: PresentationCode,
      wholesaler: Type.String({ minLength: 1, maxLength: 200, description: 'The wholesaler (name or identifier) that could not deliver.' }),
      lastSupplyDate: Type.Optional(DateOnly('Date of the last successful supply.')),
      unavailableSince: Type.Union([Type.String({ format: 'date-time' }), Type.String({ format: 'date' })], {
        description: 'Start of the unavailability: an instant, or a day (then 00:00 Paris time that day). The 72 hours are counted from it.',
      }),
    },
    {
      $id: 'ShortageSignalInput',
      additionalProperties: false,
      examples: [{ code: '3400936128149', wholesaler: 'OCP Répartition', lastSupplyDate: '2026-11-12', unavailableSince: '2026-11-18' }],
    },
  ),
)

const declarationFields = {
  causeText: Type.Optional(nullable(Type.String({ minLength: 1, maxLength: 1000, description: 'Free text; required with cause `other`.' }))),
  anticipatedStart: Type.Optional(nullable(DateOnly('Anticipated start (required for an anticipated shortage).'))),
  actualStart: Type.Optional(nullable(DateOnly('Actual start (required for an observed shortage).'))),
  estimatedEnd: Type.Optional(nullable(DateOnly('Estimated end; or set estimatedEndUnknown.'))),
  estimatedEndUnknown: Type.Optional(Type.Boolean()),
  actualEnd: Type.Optional(nullable(DateOnly())),
  stockCoverageDays: Type.Optional(nullable(Type.Integer({ minimum: 0, maximum: 3650, description: 'Remaining stock coverage, in days of normal sales.' }))),
  allocation: Type.Optional(
    Type.Object(
      { inPlace: Type.Boolean({ description: 'Contingentement: quantities rationed to wholesalers.' }), details: Type.Optional(nullable(Type.String({ maxLength: 1000 }))) },
      { additionalProperties: false },
    ),
  ),
  alternatives: Type.Optional(Alternatives),
  advice: Type.Optional(nullable(Type.String({ maxLength: 2000, description: 'Advice to pharmacists.' }))),
}

export const DeclarationInput = component(
  Type.Object(
    {
      kind: Type.Enum([...KINDS]),
      presentations: Type.Array(PresentationCode, { minItems: 1, maxItems: 100, uniqueItems: true, description: 'The lab’s own presentations concerned.' }),
      status: Type.Optional(Type.Enum(['draft', 'declared'], { default: 'declared', description: 'Start as a draft, or declare at once (default).' })),
      cause: Type.Enum(CAUSE_CODES, { description: 'From the controlled list (GET /v1/shortage-causes).' }),
      ...declarationFields,
      reason: Type.Optional(Type.String({ maxLength: 500, description: 'Kept with the version.' })),
    },
    {
      $id: 'ShortageDeclarationInput',
      additionalProperties: false,
      description: 'MITM is taken from the referential, never from the lab.',
      examples: [
        {
          kind: 'anticipated', presentations: ['3400936128149'], cause: 'raw_material', anticipatedStart: '2026-12-01', estimatedEnd: '2027-01-15',
          stockCoverageDays: 21, allocation: { inPlace: true, details: '80 % des ventes 2025' }, alternatives: [{ cip13: '3400936128200', description: 'Boîte de 16' }],
          advice: 'Privilégier les boîtes de 16 gélules.',
        },
      ],
    },
  ),
)

export const DeclarationPatch = component(
  Type.Object(
    {
      cause: Type.Optional(Type.Enum(CAUSE_CODES)),
      ...declarationFields,
      expectedVersion: Type.Optional(Type.Integer({ minimum: 1, description: 'Refused with 409 when the declaration is no longer at this version.' })),
      reason: Type.Optional(Type.String({ maxLength: 500 })),
    },
    { $id: 'ShortageDeclarationPatch', additionalProperties: false, minProperties: 1, examples: [{ estimatedEnd: '2027-02-01', stockCoverageDays: 7, expectedVersion: 2, reason: 'Lot retardé' }] },
  ),
)

export const TransitionInput = component(
  Type.Object(
    {
      to: Type.Enum([...STATUSES].filter((s) => s !== 'draft')),
      date: Type.Optional(DateOnly('Actual start (→ ongoing) or actual end (→ resolved, discontinued); today in Paris by default.')),
      expectedVersion: Type.Optional(Type.Integer({ minimum: 1 })),
      reason: Type.Optional(Type.String({ maxLength: 500 })),
    },
    { $id: 'ShortageTransitionInput', additionalProperties: false, examples: [{ to: 'resolved', date: '2027-01-10', reason: 'Approvisionnement rétabli' }] },
  ),
)

export const DeclarationSnapshot = Type.Object({
  id: Type.String({ format: 'uuid' }),
  lab: LabRef,
  kind: Type.Enum([...KINDS]),
  status: Type.Enum([...STATUSES]),
  version: Type.Integer(),
  source: Type.Enum(['lab', 'bdpm'], { description: 'Made by the lab through the API, or imported from the BDPM availability file (CIS_CIP_Dispo_Spec.txt); an imported declaration the lab changes stays `bdpm` but is no longer changed by the import.' }),
  mitm: Type.Boolean({ description: 'From the referential (any presentation of a MITM medicine).' }),
  atc: nullable(Type.String()),
  presentations: Type.Array(PresentationRef),
  cause: Cause,
  causeText: nullable(Type.String()),
  anticipatedStart: nullable(DateOnly()),
  actualStart: nullable(DateOnly()),
  estimatedEnd: nullable(DateOnly()),
  estimatedEndUnknown: Type.Boolean(),
  actualEnd: nullable(DateOnly()),
  stockCoverageDays: nullable(Type.Integer()),
  allocation: Type.Object({ inPlace: Type.Boolean(), details: nullable(Type.String()) }),
  alternatives: Alternatives,
  advice: nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  declaredAt: nullable(Type.String({ format: 'date-time' })),
  closedAt: nullable(Type.String({ format: 'date-time' })),
})

const DECLARATION_EXAMPLE = {
  id: '0f8e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e', lab: { id: '412345670', name: 'BIOGARAN' }, kind: 'anticipated', status: 'declared', version: 1, source: 'lab', mitm: true, atc: 'J01CA04',
  presentations: [{ cip13: '3400936128149', gtin: '03400936128149', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', label: 'plaquette(s) thermoformée(s) PVC aluminium de 12 gélule(s)' }],
  cause: { code: 'raw_material', ...CAUSES.raw_material }, causeText: null, anticipatedStart: '2026-12-01', actualStart: null, estimatedEnd: '2027-01-15',
  estimatedEndUnknown: false, actualEnd: null, stockCoverageDays: 21, allocation: { inPlace: true, details: '80 % des ventes 2025' }, alternatives: [], advice: null,
  createdAt: '2026-11-22T09:00:00.000Z', updatedAt: '2026-11-22T09:00:00.000Z', declaredAt: '2026-11-22T09:00:00.000Z', closedAt: null,
  automaticResponse: null, allowedTransitions: ['ongoing', 'resolved', 'avoided', 'discontinued'],
}
export const Declaration = component(
  Type.Object(
    {
      ...DeclarationSnapshot.properties,
      automaticResponse: nullable(AutomaticResponse),
      allowedTransitions: Type.Array(Type.Enum([...STATUSES]), { description: 'Where the lifecycle may go from here.' }),
    },
    { $id: 'ShortageDeclaration', description: 'A lab’s shortage declaration, current version.', examples: [DECLARATION_EXAMPLE] },
  ),
)

export const DeclarationVersion = component(
  Type.Object(
    {
      version: Type.Integer(),
      status: Type.Enum([...STATUSES]),
      action: Type.String({ examples: ['created', 'updated', 'transition:ongoing'] }),
      reason: nullable(Type.String()),
      at: Type.String({ format: 'date-time' }),
      actor: Type.Object({ role: nullable(Type.String()), org: nullable(Type.String()), user: nullable(Type.String()) }, { description: 'Who made this version.' }),
      changes: Type.Record(Type.String(), Type.Array(Type.Unknown()), { description: '{ field: [before, after] } against the previous version.' }),
      snapshot: DeclarationSnapshot,
    },
    { $id: 'ShortageDeclarationVersion' },
  ),
)

// ---- what is published to everyone (the public list) ---------------------------------------------------------

export const PUBLIC_STATUSES = STATUSES.filter((s) => s !== 'draft')
const Label = Type.Object({ fr: Type.String(), en: Type.String() })

export const CauseList = component(
  Type.Object(
    { items: Type.Array(Cause) },
    { $id: 'ShortageCauseList', description: 'The controlled list of shortage causes, French and English labels.', examples: [{ items: Object.entries(CAUSES).slice(0, 2).map(([code, l]) => ({ code, ...l })) }] },
  ),
)

const EXAMPLE = {
  id: '0f8e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e', version: 3, kind: 'observed', kindLabel: { fr: 'Rupture constatée', en: 'Observed shortage' }, status: 'ongoing', statusLabel: { fr: 'En cours', en: 'Ongoing' },
  lab: { id: '412345670', name: 'BIOGARAN' }, presentations: [{ cip13: '3400936128149', gtin: '03400936128149', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', label: 'plaquette(s) thermoformée(s) PVC aluminium de 12 gélule(s)' }],
  atc: 'J01CA04', mitm: true, cause: { code: 'raw_material', ...CAUSES.raw_material }, causeText: null, anticipatedStart: '2026-11-20', actualStart: '2026-12-01', estimatedEnd: '2027-01-15', estimatedEndUnknown: false, actualEnd: null,
  allocation: { inPlace: true, details: '80 % des ventes 2025' }, alternatives: [{ cip13: '3400936128200', description: 'Boîte de 16 gélules' }], advice: 'Privilégier les boîtes de 16 gélules.',
  source: 'lab', declaredAt: '2026-11-20T09:00:00.000Z', updatedAt: '2026-12-01T08:00:00.000Z', closedAt: null,
}
export const PublicShortage = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      version: Type.Integer(),
      kind: Type.Enum([...KINDS], { description: 'anticipated (risk of shortage), observed (shortage), discontinuation, availability_return.' }),
      kindLabel: Label,
      status: Type.Enum(PUBLIC_STATUSES),
      statusLabel: Label,
      lab: LabRef,
      presentations: Type.Array(Type.Object({ cip13: Type.String(), gtin: Type.String(), name: Type.String({ description: 'Medicine name.' }), label: Type.String({ description: 'The box.' }) })),
      atc: nullable(Type.String()),
      mitm: Type.Boolean({ description: 'Medicine of major therapeutic interest (from the referential).' }),
      cause: Cause,
      causeText: nullable(Type.String({ description: 'The lab’s words on the cause (the BDPM label for an imported declaration).' })),
      anticipatedStart: nullable(DateOnly()),
      actualStart: nullable(DateOnly()),
      estimatedEnd: nullable(DateOnly()),
      estimatedEndUnknown: Type.Boolean(),
      actualEnd: nullable(DateOnly()),
      allocation: Type.Object({ inPlace: Type.Boolean({ description: 'Quantities rationed to wholesalers (contingentement).' }), details: nullable(Type.String()) }),
      alternatives: Type.Array(Type.Object({ cip13: Type.Optional(Type.String()), description: Type.String() })),
      advice: nullable(Type.String({ description: 'Advice to pharmacists.' })),
      source: Type.Enum(['lab', 'bdpm'], { description: 'Declared by the lab, or imported from the BDPM availability file.' }),
      declaredAt: nullable(Type.String({ format: 'date-time' })),
      updatedAt: Type.String({ format: 'date-time' }),
      closedAt: nullable(Type.String({ format: 'date-time' })),
    },
    { $id: 'PublicShortage', description: 'A declared shortage, risk of shortage or discontinuation, as published to everyone.', examples: [EXAMPLE] },
  ),
)
export const PublicShortagePage = Page(PublicShortage, 'PublicShortagePage')

export { LabRef }

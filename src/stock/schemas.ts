import { Type, type TSchema } from 'typebox'
import { defineErrors, errorDef } from '../platform/errors.ts'
import { Cip13, component, Page, PageQuery } from '../platform/schemas.ts'

/**
 * The highest quantity a pharmacy may declare for one product in one week. A French pharmacy holds at most a
 * few thousand boxes of a product; 100,000 leaves room for a large one and still catches a typing slip (a CIP
 * or a price typed in the quantity field), which would otherwise distort a department's figure.
 */
export const MAX_QUANTITY = 100_000
export const DEFAULT_RETENTION_DAYS = 183 // six months, as in the seed
export const DEFAULT_MIN_PHARMACIES = 3
export const MAX_PRODUCTS = 200

defineErrors({
  STOCK_CAMPAIGN_NOT_OPEN: errorDef(409, 'Campagne fermée aux déclarations', 'Campaign not open for declarations', (p) => ({
    fr: `La campagne « ${p.name} » ${p.fr}.`,
    en: `Campaign "${p.name}" ${p.en}.`,
  })),
  STOCK_CAMPAIGN_CLOSED: errorDef(409, 'Campagne déjà close', 'Campaign already closed', (p) => ({
    fr: `La campagne « ${p.name} » a été close le ${p.closedAt}.`,
    en: `Campaign "${p.name}" was closed on ${p.closedAt}.`,
  })),
  STOCK_DECLARATION_INVALID: errorDef(400, 'Déclaration de stock refusée', 'Stock declaration refused', (p) => ({
    fr: `La déclaration contient ${p.count} erreur(s) : voir « errors » ; rien n’a été enregistré.`,
    en: `The declaration has ${p.count} error(s): see "errors"; nothing was recorded.`,
  })),
  STOCK_CAMPAIGN_INVALID: errorDef(400, 'Campagne invalide', 'Invalid campaign', (p) => ({
    fr: `La campagne contient ${p.count} erreur(s) : voir « errors ».`,
    en: `The campaign has ${p.count} error(s): see "errors".`,
  })),
})

export const nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])
const Day = (description: string) => Type.String({ format: 'date', description })
export const WeekLabel = Type.String({
  pattern: '^\\d{4}-W\\d{2}$',
  description: 'ISO week, Europe/Paris calendar: Monday 00:00 to the next Monday 00:00 Paris time. Years 2000 to 2100; a week that does not exist (2026-W54) or outside those years is a 400 naming the field.',
  'x-message': { fr: 'attendu : une semaine ISO AAAA-Www (ex. 2026-W47)', en: 'expected: an ISO week YYYY-Www (e.g. 2026-W47)' },
  examples: ['2026-W47'],
})
const Quantity = Type.Integer({ minimum: 0, maximum: MAX_QUANTITY, description: `Units in stock (boxes, tests, doses), 0 to ${MAX_QUANTITY}.`, examples: [120] })

export const WeekInfo = component(
  Type.Object(
    {
      week: WeekLabel,
      monday: Day('First day of the week.'),
      start: Type.String({ format: 'date-time', description: 'Monday 00:00 Paris time.' }),
      end: Type.String({ format: 'date-time', description: 'The next Monday 00:00 Paris time (excluded).' }),
    },
    { $id: 'StockWeek', examples: [{ week: '2026-W47', monday: '2026-11-16', start: '2026-11-15T23:00:00.000Z', end: '2026-11-22T23:00:00.000Z' }] },
  ),
)

export const CampaignInput = component(
  Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 200, examples: ['Tests antigéniques et vaccins grippe — hiver 2026'] }),
      products: Type.Array(Cip13, { minItems: 1, maxItems: MAX_PRODUCTS, uniqueItems: true, description: 'CIP13 codes of the products to declare; each must exist in the referential.' }),
      period: Type.Optional(Type.Literal('weekly', { default: 'weekly', description: 'Only weekly campaigns exist.' })),
      startDate: Day('First day declarations are accepted (Paris calendar).'),
      endDate: Day('Last day declarations are accepted (Paris calendar, included).'),
      retentionDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, default: DEFAULT_RETENTION_DAYS, description: 'Raw declarations are purged this many days after the end of their week (default 183, six months); aggregates stay.' })),
      minPharmacies: Type.Optional(Type.Integer({ minimum: 2, maximum: 100, default: DEFAULT_MIN_PHARMACIES, description: 'Smallest number of pharmacies behind any published figure (default 3).' })),
    },
    {
      $id: 'StockCampaignInput',
      additionalProperties: false,
      examples: [{ name: 'Tests antigéniques et vaccins grippe — hiver 2026', products: ['3400936128149', '3400949497294'], period: 'weekly', startDate: '2026-11-16', endDate: '2027-03-28', retentionDays: 183, minPharmacies: 3 }],
    },
  ),
)

export const CampaignProduct = Type.Object({ cip13: Type.String(), name: Type.String(), label: Type.String() })

export const Campaign = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      name: Type.String(),
      period: Type.Literal('weekly'),
      startDate: Day('First day declarations are accepted.'),
      endDate: Day('Last day declarations are accepted.'),
      retentionDays: Type.Integer(),
      minPharmacies: Type.Integer(),
      status: Type.Enum(['scheduled', 'open', 'ended', 'closed'], { description: 'scheduled: before startDate; open: accepting declarations; ended: after endDate; closed: closed by the operator.' }),
      currentWeek: nullable(WeekInfo),
      products: Type.Array(CampaignProduct),
      createdAt: Type.String({ format: 'date-time' }),
      closedAt: nullable(Type.String({ format: 'date-time' })),
    },
    {
      $id: 'StockCampaign',
      examples: [
        {
          id: '0b7c2f4e-3a51-4c1e-9a0e-2f6d8b1c5e77', name: 'Tests antigéniques et vaccins grippe — hiver 2026', period: 'weekly', startDate: '2026-11-16', endDate: '2027-03-28', retentionDays: 183, minPharmacies: 3, status: 'open',
          currentWeek: { week: '2026-W47', monday: '2026-11-16', start: '2026-11-15T23:00:00.000Z', end: '2026-11-22T23:00:00.000Z' },
          products: [{ cip13: '3400936128149', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', label: 'plaquette(s) PVC-aluminium de 12 gélule(s)' }],
          createdAt: '2026-11-10T09:00:00.000Z', closedAt: null,
        },
      ],
    },
  ),
)

export const DeclarationInput = component(
  Type.Object({ cip13: Cip13, quantity: Quantity }, { $id: 'StockDeclarationInput', additionalProperties: false, examples: [{ cip13: '3400936128149', quantity: 120 }] }),
)

export const BulkInput = component(
  Type.Object(
    { items: Type.Array(Type.Object({ cip13: Cip13, quantity: Quantity }, { additionalProperties: false }), { minItems: 1, maxItems: MAX_PRODUCTS }) },
    { $id: 'StockBulkDeclarationInput', additionalProperties: false, examples: [{ items: [{ cip13: '3400936128149', quantity: 120 }, { cip13: '3400949497294', quantity: 0 }] }] },
  ),
)

const declarationProps = {
      id: Type.String({ format: 'uuid' }),
      campaignId: Type.String({ format: 'uuid' }),
      pharmacyId: Type.String({ description: 'FINESS of the declaring pharmacy.' }),
      department: Type.String(),
      week: WeekLabel,
      monday: Day('First day of the week.'),
      cip13: Type.String(),
      quantity: Type.Integer(),
      version: Type.Integer({ description: '1 for the first declaration of the week, +1 at each replacement.' }),
      firstDeclaredAt: Type.String({ format: 'date-time' }),
      declaredAt: Type.String({ format: 'date-time' }),
}
const DECLARATION_EXAMPLE = { id: '7a1d0c52-96a4-4b0f-8a3e-1c2b3d4e5f60', campaignId: '0b7c2f4e-3a51-4c1e-9a0e-2f6d8b1c5e77', pharmacyId: '750100010', department: '75', week: '2026-W47', monday: '2026-11-16', cip13: '3400936128149', quantity: 120, version: 2, firstDeclaredAt: '2026-11-16T08:00:00.000Z', declaredAt: '2026-11-18T17:30:00.000Z' }
const WEEK_EXAMPLE = { week: '2026-W47', monday: '2026-11-16', start: '2026-11-15T23:00:00.000Z', end: '2026-11-22T23:00:00.000Z' }
export const Declaration = component(
  Type.Object(
    declarationProps,
    {
      $id: 'StockDeclaration',
      examples: [{ id: '7a1d0c52-96a4-4b0f-8a3e-1c2b3d4e5f60', campaignId: '0b7c2f4e-3a51-4c1e-9a0e-2f6d8b1c5e77', pharmacyId: '750100010', department: '75', week: '2026-W47', monday: '2026-11-16', cip13: '3400936128149', quantity: 120, version: 2, firstDeclaredAt: '2026-11-16T08:00:00.000Z', declaredAt: '2026-11-18T17:30:00.000Z' }],
    },
  ),
)

export const DeclarationResult = component(
  Type.Object(
    { week: WeekInfo, items: Type.Array(Type.Object({ ...declarationProps, replaced: Type.Boolean({ description: 'true when this replaced an earlier declaration of the same week.' }) })) },
    { $id: 'StockDeclarationResult', examples: [{ week: WEEK_EXAMPLE, items: [{ ...DECLARATION_EXAMPLE, replaced: true }] }] },
  ),
)

export const DeclarationList = component(
  Type.Object({ week: WeekInfo, items: Type.Array(Declaration) }, { $id: 'StockDeclarationList', description: 'The pharmacy’s current values for one week.', examples: [{ week: WEEK_EXAMPLE, items: [DECLARATION_EXAMPLE] }] }),
)

export const DeclarationHistory = component(
  Type.Object(
    {
      declaration: Declaration,
      versions: Type.Array(
        Type.Object({
          version: Type.Integer(),
          quantity: Type.Integer(),
          declaredAt: Type.String({ format: 'date-time' }),
          declaredBy: nullable(Type.String()),
          replacedAt: nullable(Type.String({ format: 'date-time', description: 'null for the current value.' })),
        }),
        { description: 'Every value declared for this product and week, oldest first; the last is the current one.' },
      ),
    },
    {
      $id: 'StockDeclarationHistory',
      examples: [
        {
          declaration: DECLARATION_EXAMPLE,
          versions: [
            { version: 1, quantity: 140, declaredAt: '2026-11-16T08:00:00.000Z', declaredBy: 'lgo-user', replacedAt: '2026-11-18T17:30:00.000Z' },
            { version: 2, quantity: 120, declaredAt: '2026-11-18T17:30:00.000Z', declaredBy: 'lgo-user', replacedAt: null },
          ],
        },
      ],
    },
  ),
)

const AggregateCell = Type.Object({
  department: Type.String({ description: 'Department code from the FINESS: 01–95, 2A/2B (Corsica), 971–976 (overseas).' }),
  region: nullable(Type.String()),
  totalQuantity: nullable(Type.Integer({ description: 'null when suppressed.' })),
  pharmacies: nullable(Type.Integer({ description: 'Declaring pharmacies; null when suppressed.' })),
  suppressed: Type.Boolean(),
  reason: nullable(Type.Enum(['below_threshold', 'complementary'], { description: 'below_threshold: fewer pharmacies than the threshold; complementary: hidden so that the others cannot be recovered by subtraction.' })),
})

export const Aggregates = component(
  Type.Object(
    {
      campaignId: Type.String({ format: 'uuid' }),
      name: Type.String(),
      minPharmacies: Type.Integer(),
      weeks: Type.Array(
        Type.Object({
          week: WeekLabel,
          monday: Day('First day of the week.'),
          products: Type.Array(
            Type.Object({
              cip13: Type.String(),
              name: Type.String(),
              national: Type.Object({ totalQuantity: nullable(Type.Integer()), pharmacies: nullable(Type.Integer()), suppressed: Type.Boolean() }),
              departments: Type.Array(AggregateCell),
            }),
          ),
        }),
      ),
    },
    {
      $id: 'StockAggregates',
      description: 'Weekly totals by department and product; only complete weeks (a week is published once it has ended or the campaign is over).',
      examples: [
        {
          campaignId: '0b7c2f4e-3a51-4c1e-9a0e-2f6d8b1c5e77', name: 'Tests antigéniques et vaccins grippe — hiver 2026', minPharmacies: 3,
          weeks: [
            {
              week: '2026-W47', monday: '2026-11-16',
              products: [
                {
                  cip13: '3400936128149', name: 'AMOXICILLINE BIOGARAN 500 mg, gélule', national: { totalQuantity: 1840, pharmacies: 14, suppressed: false },
                  departments: [
                    { department: '13', region: '93', totalQuantity: null, pharmacies: null, suppressed: true, reason: 'complementary' },
                    { department: '2A', region: '94', totalQuantity: null, pharmacies: null, suppressed: true, reason: 'below_threshold' },
                    { department: '75', region: '11', totalQuantity: 1210, pharmacies: 9, suppressed: false, reason: null },
                  ],
                },
              ],
            },
          ],
        },
      ],
    },
  ),
)

// ---- route parameters and pages --------------------------------------------------------------------------

export { IdParams } from '../platform/schemas.ts'
export const CampaignPage = Page(Campaign, 'StockCampaignPage')
export const DeclarationPage = Page(Declaration, 'StockDeclarationPage')
export const CampaignListQuery = Type.Object({ status: Type.Optional(Type.Enum(['scheduled', 'open', 'ended', 'closed'])), ...PageQuery }, { additionalProperties: false })
export const WeekQuery = Type.Object({ week: Type.Optional(WeekLabel) }, { additionalProperties: false })
export const DeclarationListQuery = Type.Object(
  { week: Type.Optional(WeekLabel), cip13: Type.Optional(Cip13), department: Type.Optional(Type.String({ pattern: '^(\\d{2}|2A|2B|97\\d)$' })), ...PageQuery },
  { additionalProperties: false },
)

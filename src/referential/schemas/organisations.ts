/** The organisation's TypeBox schemas: the named components of the contract and the path parameter. */
import { Type } from 'typebox'
import { ROLES } from '../../platform/db/schema.ts'
import { component, Page } from '../../platform/schemas.ts'

export const RoleSchema = Type.Enum([...ROLES], { description: 'Role of the organisation.' })

const AddressSchema = Type.Object(
  {
    line1: Type.String({ minLength: 1, maxLength: 120, description: 'Number and street (or PO box).', examples: ['12 rue de Bretagne'] }),
    line2: Type.Optional(Type.Union([Type.String({ maxLength: 120 }), Type.Null()], { description: 'Building, department, place called…' })),
    postalCode: Type.String({ pattern: '^[0-9]{5}$', 'x-message': { fr: 'code postal à 5 chiffres attendu', en: 'a 5-digit postal code is expected' }, examples: ['75003'] }),
  },
  { additionalProperties: false, description: 'French postal address; the city is the organisation’s `city`.' },
)

export const OrganisationSchema = component(
  Type.Object(
    {
      id: Type.String({ description: 'FINESS (pharmacy, hospital, wholesaler), SIREN (lab), RPPS (prescriber) or fixed code (ANSM, ORDRE, MINISTERE).' }),
      role: RoleSchema,
      name: Type.String(),
      department: Type.Union([Type.String(), Type.Null()]),
      region: Type.Union([Type.String(), Type.Null()], { description: 'INSEE region code.' }),
      regionName: Type.Union([Type.String(), Type.Null()]),
      city: Type.Union([Type.String(), Type.Null()]),
      email: Type.Union([Type.String(), Type.Null()]),
      phone: Type.Union([Type.String(), Type.Null()]),
      fax: Type.Union([Type.String(), Type.Null()]),
      address: Type.Union([AddressSchema, Type.Null()], { description: 'Postal address (with `city`): where a paper letter goes when a fax fails. Null when not known.' }),
      active: Type.Boolean(),
      subscription: Type.Union([Type.Object({ subscribed: Type.Boolean(), since: Type.String({ format: 'date-time' }) }), Type.Null()], {
        description: 'Labs only: whether the lab signed the access agreement (needed for DP-Ruptures), and since when.',
      }),
      createdAt: Type.String({ format: 'date-time' }),
      updatedAt: Type.String({ format: 'date-time' }),
    },
    {
      $id: 'Organisation',
      examples: [
        {
          id: '750100010', role: 'pharmacy', name: 'Pharmacie du Marais', department: '75', region: '11', regionName: 'Île-de-France', city: 'Paris',
          email: 'marais@pharmacie.example', phone: null, fax: null, address: { line1: '12 rue de Bretagne', line2: null, postalCode: '75003' }, active: true, subscription: null,
          createdAt: '2026-11-22T08:00:00.000Z', updatedAt: '2026-11-22T08:00:00.000Z',
        },
      ],
    },
  ),
)

const Contact = {
  city: Type.Optional(Type.Union([Type.String({ maxLength: 120 }), Type.Null()])),
  email: Type.Optional(Type.Union([Type.String({ format: 'email', maxLength: 200 }), Type.Null()])),
  phone: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Null()])),
  fax: Type.Optional(Type.Union([Type.String({ maxLength: 40 }), Type.Null()])),
  address: Type.Optional(Type.Union([AddressSchema, Type.Null()])),
}

export const OrganisationCreate = component(
  Type.Object(
    {
      id: Type.String({ minLength: 2, maxLength: 20, description: 'FINESS, SIREN or RPPS, checked against the role.' }),
      role: RoleSchema,
      name: Type.String({ minLength: 1, maxLength: 200 }),
      department: Type.Optional(Type.String({ pattern: '^(\\d{2}|2A|2B|97\\d)$', description: 'Deduced from the FINESS; required for labs and prescribers only if known.' })),
      ...Contact,
    },
    { $id: 'OrganisationInput', additionalProperties: false, examples: [{ id: '330100090', role: 'pharmacy', name: 'Pharmacie des Chartrons', city: 'Bordeaux' }] },
  ),
)

export const OrganisationPatch = component(
  Type.Object(
    { name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), active: Type.Optional(Type.Boolean()), ...Contact },
    { $id: 'OrganisationPatch', additionalProperties: false, minProperties: 1, examples: [{ active: false }] },
  ),
)

export const SubscriptionPut = component(
  Type.Object(
    {
      subscribed: Type.Boolean(),
      since: Type.Optional(Type.String({ format: 'date-time', description: 'Defaults to now.' })),
    },
    { $id: 'LabSubscriptionInput', additionalProperties: false, examples: [{ subscribed: true, since: '2026-01-01T00:00:00Z' }] },
  ),
)

export const OrganisationPage = Page(OrganisationSchema, 'OrganisationPage')

export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 20 }) })

import { type Static, type TSchema, Type } from 'typebox'

/**
 * Named schemas: registered once on the app (app.addSchema) so that the OpenAPI document lists them under
 * components/schemas and generated clients get good type names. A route uses the returned reference; its
 * static type is the schema's.
 */
const registry = new Map<string, TSchema>()

export function component<T extends TSchema>(schema: T) {
  const id = (schema as { $id?: string }).$id
  if (!id) throw new Error('component() needs a schema with $id')
  if (registry.has(id) && registry.get(id) !== schema) throw new Error(`schema ${id} defined twice`)
  registry.set(id, schema)
  return Type.Unsafe<Static<T>>(Type.Ref(id))
}

export function registeredSchemas(): TSchema[] {
  return [...registry.values()]
}

export const Cip13 = Type.String({
  format: 'cip13',
  description: 'CIP13: 13 digits starting with 3400, last digit the GS1 check digit.',
  examples: ['3400949497294'],
})
export const ProductCode = Type.String({
  pattern: '^(\\d{7}|\\d{8}|\\d{13}|\\d{14})$',
  description: 'CIP13 (13 digits), GTIN-14 (0 + CIP13), CIP7 (7 digits) or CIS (8 digits).',
  'x-message': {
    fr: 'attendu : un CIP13 (13 chiffres), un GTIN-14 (14 chiffres), un CIP7 (7 chiffres) ou un CIS (8 chiffres)',
    en: 'expected: a CIP13 (13 digits), a GTIN-14 (14 digits), a CIP7 (7 digits) or a CIS (8 digits)',
  },
  examples: ['3400949497294'],
})

/** The path parameter of a resource named by its UUID. */
export const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Page size.' })),
  cursor: Type.Optional(Type.String({ maxLength: 500, description: 'Opaque cursor from the previous page’s nextCursor.' })),
}

export const Page = <T extends TSchema>(item: T, id: string) =>
  component(
    Type.Object(
      {
        items: Type.Array(item),
        nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` to get the next page; null on the last page.' }),
      },
      { $id: id },
    ),
  )

/** One state change of an object, from the audit trail (GET …/history of organisations and audit routes). */
export const HistoryEntry = component(
  Type.Object(
    {
      seq: Type.Integer(),
      at: Type.String({ format: 'date-time' }),
      actor: Type.Object({ role: Type.Union([Type.String(), Type.Null()]), org: Type.Union([Type.String(), Type.Null()]), user: Type.Union([Type.String(), Type.Null()]) }),
      action: Type.String(),
      changes: Type.Unknown(),
      requestId: Type.Union([Type.String(), Type.Null()]),
    },
    { $id: 'HistoryEntry', description: 'One state change from the audit trail.' },
  ),
)

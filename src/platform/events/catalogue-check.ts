import { registeredSchemas } from '../schemas.ts'
import { isCip13 } from '../identifiers.ts'
import { EVENT_TYPES } from './event-types.ts'
import { payloadSchemaId } from './catalogue.ts'

/**
 * In tests, every published event is checked against the catalogue: its type is registered and its payload
 * (as it is stored: JSON) matches the type's schema. A service that publishes something the contract does not
 * describe fails its tests. Off in production (NODE_ENV=production, or EVENT_CATALOGUE_CHECK=off).
 */
export const checkEvents = () =>
  process.env.EVENT_CATALOGUE_CHECK === 'on' || (process.env.EVENT_CATALOGUE_CHECK !== 'off' && (process.env.NODE_ENV === 'test' || process.env.TAP === '1'))

type Validate = ((data: unknown) => boolean) & { errors?: unknown[] | null }
let validators: Promise<(type: string) => Validate> | null = null

async function build() {
  // Loaded only when checking: production never imports it from here.
  const { Ajv } = await import('ajv')
  const addFormats = (await import('ajv-formats')).default.default // the CommonJS module is its own default export
  const ajv = new Ajv({ strict: false, allErrors: true })
  addFormats(ajv)
  ajv.addFormat('cip13', { type: 'string', validate: (v: string) => isCip13(v) })
  for (const s of registeredSchemas()) ajv.addSchema(JSON.parse(JSON.stringify(s)))
  const cache = new Map<string, Validate>()
  return (type: string) => {
    let v = cache.get(type)
    if (!v) cache.set(type, (v = ajv.getSchema(payloadSchemaId(type)) as Validate))
    return v
  }
}

export async function assertInCatalogue(type: string, payload: unknown) {
  // `test.*` is the namespace the platform's own tests publish in to exercise the plumbing; no service uses it
  // (test/event-types.test.ts looks for it in the sources).
  if (type.startsWith('test.')) return
  if (!Object.hasOwn(EVENT_TYPES, type)) throw new Error(`event type ${type} is published but not in the catalogue (platform/events/event-types.ts)`)
  const validatorOf = await (validators ??= build())
  const validate = validatorOf(type)
  if (!validate) throw new Error(`event type ${type} has no payload schema (platform/events/catalogue.ts)`)
  const stored = JSON.parse(JSON.stringify(payload ?? null))
  if (!validate(stored)) throw new Error(`payload of ${type} does not match its schema ${payloadSchemaId(type)}: ${JSON.stringify(validate.errors)} — ${JSON.stringify(stored).slice(0, 500)}`)
}

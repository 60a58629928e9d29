import { EVENT_TYPE_NAMES, EVENT_TYPES } from './event-types.ts'
import { EVENT_PAYLOADS, eventSchemaId, payloadSchemaId } from './catalogue.ts'

/** The event catalogue as a guide (openapi/guides/09-event-catalogue.md), written from the registry by `npm run openapi`. */
export function eventCatalogueGuide(): string {
  const lines = [
    '# Event catalogue',
    '',
    '<!-- Written by `npm run openapi` from src/platform/events (event-types.ts, catalogue.ts): do not edit by hand. -->',
    '',
    'Every event the service publishes. The same event reaches you on your feed (`GET /v1/feed`), on the stream',
    '(`GET /v1/feed/stream`, the `data` of each message) and, if you registered one, on your webhook endpoint. In the',
    'contract, `FeedEvent` is a union of one schema per type, told apart by `type` (`oneOf` + `discriminator`), and the',
    '`webhooks` section lists them: a generated client gets a typed `payload` for each.',
    '',
    'Envelope: `{ id, type, pos, createdAt, sender, subject, payload }`, plus `readAt` and `ack` on the feed and the',
    'stream. `pos` is your position (null in a test delivery); `sender` the organisation whose action caused it.',
    '',
    '| type | label | who receives it | payload schema |',
    '| --- | --- | --- | --- |',
  ]
  for (const type of EVENT_TYPE_NAMES) {
    const info = EVENT_TYPES[type]
    lines.push(`| \`${type}\` | ${info.label.en} — ${info.label.fr} | ${info.description.replace(/\|/g, '\\|')} | \`${payloadSchemaId(type)}\` |`)
  }
  lines.push('', '## Payloads', '')
  for (const type of EVENT_TYPE_NAMES) {
    const schema = EVENT_PAYLOADS[type] as { properties?: Record<string, { description?: string }>; required?: string[]; description?: string; allOf?: unknown[] }
    lines.push(`### ${type}`, '', `${schema.description ?? ''} Event schema \`${eventSchemaId(type)}\`, payload \`${payloadSchemaId(type)}\`.`, '')
    const props = schema.properties ?? {}
    const names = Object.keys(props)
    if (names.length) {
      lines.push(`Fields: ${names.map((n) => `\`${n}\`${schema.required?.includes(n) ? '' : ' (optional)'}`).join(', ')}.`, '')
    } else if (schema.allOf) {
      lines.push('Fields: those of `RecallReport`, with `reportUrl` and `reportPdfUrl`.', '')
    }
  }
  lines.push(
    '## Adding an event type',
    '',
    'A service that publishes a new type registers it in `src/platform/events/event-types.ts` (label, who receives it)',
    'and its payload schema in `src/platform/events/catalogue.ts`. In tests every published payload is checked against',
    'its schema, so an event the catalogue does not describe fails the suite; `npm run openapi` then updates the',
    'contract and this page.',
  )
  return lines.join('\n') + '\n'
}

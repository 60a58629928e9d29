// The event-type registry is the one list of what the service publishes: webhook subscriptions are checked
// against it and printed documents take their labels from it. This looks through the sources for a type that is
// published but missing from it (a new event added by a service without registering it).
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { EVENT_TYPE_NAMES, EVENT_TYPES, eventTypeLabel, isEventType } from '../src/platform/events/event-types.ts'

const SRC = fileURLToPath(new URL('../src', import.meta.url))

async function sources(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...(await sources(p)))
    else if (e.name.endsWith('.ts')) out.push(p)
  }
  return out
}

t.test('every event type published in the sources is registered', async (t) => {
  const literal = /\btype: '([a-z][a-z_]*(?:\.[a-z_]+)+)'/g
  const perKind = /\btype: `\$\{kind\}\.([a-z_]+)`/g
  const notify = /notify: \{ type: '([a-z_]+)'/g
  const prefixed = /\btype: `([a-z][a-z_.]*)\$\{/g
  const found = new Set<string>()
  const prefixes = new Set<string>()
  for (const file of await sources(SRC)) {
    const text = await readFile(file, 'utf8')
    if (!/\bpublish\(/.test(text) || file.endsWith(path.join('events', 'publish.ts'))) continue
    for (const m of text.matchAll(literal)) found.add(m[1]!)
    for (const re of [perKind, notify]) for (const m of text.matchAll(re)) for (const kind of ['recall', 'alert']) found.add(`${kind}.${m[1]}`)
    for (const m of text.matchAll(prefixed)) if (m[1] !== '') prefixes.add(m[1]!)
  }
  t.ok(found.size >= 25, `${found.size} published types found`)
  for (const type of found) t.ok(isEventType(type), `${type} is registered`)
  for (const prefix of prefixes) t.ok(EVENT_TYPE_NAMES.some((x) => x.startsWith(prefix)), `types starting with ${prefix} are registered`)
})

t.test('every registered type has a label in both languages and a description', async (t) => {
  for (const [type, info] of Object.entries(EVENT_TYPES)) {
    t.ok(info.label.fr && info.label.en && info.description, type)
    t.notMatch(info.label.fr, /[a-z]+\.[a-z]+/, `${type}: no code in the French label`)
  }
  t.equal(eventTypeLabel('recall.broadcast'), 'Rappel de lots')
  t.equal(eventTypeLabel('something.else'), 'Message du Portail DP', 'an unknown type never prints its code')
})

// What changed between two contents of a recall or alert, field by field (ANSM's review compares rounds with it).
import { canonicalJson } from '../../platform/canonical-json.ts'
import type { FieldChange, RecallContent } from '../db.ts'

// Canonical: contents read back from jsonb have their keys reordered.
const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null)

// ---- field-level diff --------------------------------------------------------------------------------------

/**
 * What changed between two contents, field by field, in the order a reader goes through a recall. Written here
 * rather than with a generic deep-diff library: those compare lists index by index, so removing the first batch
 * would read as "every batch changed"; here lists are compared by what identifies an item (a batch by product
 * and number, a region by its code), which is what ANSM needs to see.
 */
export function contentChanges(before: RecallContent, after: RecallContent): FieldChange[] {
  const out: FieldChange[] = []
  const scalar = (field: string, b: unknown, a: unknown) => {
    if (same(b, a)) return
    out.push({ field, change: b === null || b === undefined ? 'added' : a === null || a === undefined ? 'removed' : 'changed', before: b ?? null, after: a ?? null })
  }
  const set = (field: string, b: readonly unknown[], a: readonly unknown[]) => {
    const keyOf = (x: unknown) => canonicalJson(x)
    const bk = new Set(b.map(keyOf))
    const ak = new Set(a.map(keyOf))
    for (const x of b) if (!ak.has(keyOf(x))) out.push({ field, change: 'removed', before: x, after: null })
    for (const x of a) if (!bk.has(keyOf(x))) out.push({ field, change: 'added', before: null, after: x })
  }
  scalar('title', before.title, after.title)
  scalar('reason', before.reason, after.reason)
  scalar('message', before.message, after.message)
  scalar('messageEn', before.messageEn, after.messageEn)
  scalar('action', before.action, after.action)
  set('recipients.categories', before.recipients.categories, after.recipients.categories)
  set('recipients.regions', before.recipients.regions, after.recipients.regions)
  set('recipients.departments', before.recipients.departments ?? [], after.recipients.departments ?? [])
  const batchKey = (b: { cip13: string; batch: string }) => `${b.cip13}/${b.batch}`
  const afterBatches = new Map(after.batches.map((b) => [batchKey(b), b]))
  const beforeBatches = new Map(before.batches.map((b) => [batchKey(b), b]))
  for (const [key, b] of beforeBatches) {
    const a = afterBatches.get(key)
    if (!a) out.push({ field: 'batches', change: 'removed', key, before: b, after: null })
    else if (!same(b.expiry, a.expiry)) out.push({ field: 'batches.expiry', change: 'changed', key, before: b.expiry, after: a.expiry })
  }
  for (const [key, a] of afterBatches) if (!beforeBatches.has(key)) out.push({ field: 'batches', change: 'added', key, before: null, after: a })
  scalar('blockDispensation', before.blockDispensation, after.blockDispensation)
  set('contacts', before.contacts, after.contacts)
  scalar('scheduledAt', before.scheduledAt, after.scheduledAt)
  scalar('reminderDelaysHours', before.reminderDelaysHours, after.reminderDelaysHours)
  return out
}

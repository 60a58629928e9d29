/** The content of a version: built from a request, and what its schema cannot say about it. */
import { AppError } from '../../platform/errors.ts'
import type { Lang } from '../../platform/i18n.ts'
import { cip13Problem, DEPARTMENTS, REGIONS } from '../../platform/identifiers.ts'
import type { Category, PipelineKind, RecallContent } from '../db.ts'

export const DEFAULT_REMINDER_HOURS = [24, 72]

export function fieldProblem(field: string, code: string, text: { fr: string; en: string }, lang: Lang) {
  return new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field, code, message: text[lang] }] })
}

/**
 * A draft's fields as a request gives them, recall's and alert's together (the kind's schema has already refused what
 * the kind does not take); all optional, since a patch names only what it changes.
 */
export interface ContentInput {
  title?: string
  reason?: string
  message?: string
  messageEn?: string | null
  action?: RecallContent['action']
  recipients?: { categories: Category[]; regions?: string[]; departments?: string[] }
  contacts?: Array<{ name: string; phone?: string | null; email?: string | null }>
  batches?: Array<{ cip13: string; batch: string; expiry?: string | null }>
  blockDispensation?: boolean
  scheduledAt?: string | null
  reminderDelaysHours?: number[]
}

/** The content of a version from the request (a whole draft, or a patch over a base). */
export function buildContent(kind: PipelineKind, body: ContentInput, base: RecallContent | null): RecallContent {
  const pick = <K extends keyof ContentInput & keyof RecallContent>(k: K, d: RecallContent[K]): RecallContent[K] => (body[k] !== undefined ? (body[k] as RecallContent[K]) : base ? base[k] : d)
  const rec = body.recipients
  return {
    title: pick('title', ''),
    reason: pick('reason', ''),
    message: pick('message', ''),
    messageEn: pick('messageEn', null) ?? null,
    action: kind === 'recall' ? pick('action', null) : null,
    recipients: rec
      ? { categories: [...rec.categories], regions: [...(rec.regions ?? [])], departments: kind === 'recall' ? [...(rec.departments ?? [])] : [] }
      : (base?.recipients ?? { categories: [], regions: [], departments: [] }),
    contacts: (body.contacts ?? base?.contacts ?? []).map((c) => ({ name: c.name, phone: c.phone ?? null, email: c.email ?? null })),
    batches:
      kind === 'recall'
        ? (body.batches ?? base?.batches ?? []).map((b) => ({ cip13: b.cip13, batch: String(b.batch).trim().toUpperCase(), expiry: b.expiry ?? null }))
        : [],
    blockDispensation: kind === 'recall' ? pick('blockDispensation', false) : false,
    scheduledAt: body.scheduledAt !== undefined ? (body.scheduledAt === null ? null : new Date(body.scheduledAt).toISOString()) : (base?.scheduledAt ?? null),
    reminderDelaysHours: pick('reminderDelaysHours', DEFAULT_REMINDER_HOURS),
  }
}

/**
 * What the schema cannot say, short of the products: places exist, delays in order, a scheduled time ahead, and for
 * a recall valid products and no batch twice. The products are the lab's own: checkProducts, once they are read.
 */
export function checkFields(kind: PipelineKind, c: RecallContent, lang: Lang, now: Date, touched: ContentInput) {
  for (const [i, r] of c.recipients.regions.entries()) {
    if (!REGIONS[r]) throw fieldProblem(`body.recipients.regions.${i}`, 'unknown', { fr: `région ${r} inconnue (codes INSEE)`, en: `unknown region ${r} (INSEE codes)` }, lang)
  }
  for (const [i, d] of c.recipients.departments.entries()) {
    if (!DEPARTMENTS[d]) throw fieldProblem(`body.recipients.departments.${i}`, 'unknown', { fr: `département ${d} inconnu`, en: `unknown department ${d}` }, lang)
  }
  const delays = c.reminderDelaysHours
  for (let i = 1; i < delays.length; i++) {
    if (delays[i]! <= delays[i - 1]!) throw fieldProblem(`body.reminderDelaysHours.${i}`, 'order', { fr: 'les délais de relance doivent être croissants', en: 'reminder delays must increase' }, lang)
  }
  if (touched.scheduledAt && c.scheduledAt && new Date(c.scheduledAt).getTime() <= now.getTime()) {
    throw fieldProblem('body.scheduledAt', 'past', { fr: 'l’heure de diffusion programmée doit être dans le futur', en: 'the scheduled broadcast time must be in the future' }, lang)
  }
  if (kind !== 'recall') return
  const seen = new Set<string>()
  for (const [i, b] of c.batches.entries()) {
    const problem = cip13Problem(b.cip13)
    if (problem) throw new AppError('INVALID_IDENTIFIER', { field: `body.batches.${i}.cip13`, fr: problem.fr, en: problem.en }, { errors: [{ field: `body.batches.${i}.cip13`, code: 'cip13', message: problem[lang] }] })
    const key = `${b.cip13}/${b.batch}`
    if (seen.has(key)) throw fieldProblem(`body.batches.${i}.batch`, 'duplicate', { fr: `le lot ${b.batch} du ${b.cip13} figure deux fois`, en: `batch ${b.batch} of ${b.cip13} is listed twice` }, lang)
    seen.add(key)
  }
}

/** Every batch of a recall is of a product the lab holds (`products`: the lab of each product named, as read). */
export function checkProducts(c: RecallContent, products: ReadonlyArray<{ cip13: string; lab_id: string | null }>, labId: string, lang: Lang) {
  for (const [i, b] of c.batches.entries()) {
    const p = products.find((x) => x.cip13 === b.cip13)
    // Another lab's product is refused like an unknown one: a lab recalls only what it holds.
    if (!p || p.lab_id !== labId) {
      throw new AppError('NOT_FOUND', { what: `Le produit ${b.cip13}`, whatEn: `Product ${b.cip13}` }, {
        errors: [{ field: `body.batches.${i}.cip13`, code: 'unknown', message: lang === 'fr' ? `produit ${b.cip13} introuvable parmi les vôtres` : `product ${b.cip13} not found among yours` }],
      })
    }
  }
}

/** The departments a version targets: regions expanded, united with the departments; [] = all of France. */
export function targetDepartments(c: RecallContent): string[] {
  if (c.recipients.regions.length === 0 && c.recipients.departments.length === 0) return []
  const out = new Set(c.recipients.departments)
  for (const [dep, region] of Object.entries(DEPARTMENTS)) if (c.recipients.regions.includes(region)) out.add(dep)
  return [...out].sort()
}

import type { Lang, Text } from '../platform/i18n.ts'
import { REGIONS } from '../platform/identifiers.ts'

/** Recipient categories (organisation roles) as a reader names them. */
export const CATEGORY_LABELS: Record<string, Text> = {
  pharmacy: { fr: 'Officines', en: 'Community pharmacies' },
  wholesaler: { fr: 'Grossistes-répartiteurs', en: 'Wholesale distributors' },
  hospital: { fr: 'Pharmacies à usage intérieur', en: 'Hospital pharmacies' },
}
/** One organisation of a category. */
export const ROLE_LABELS: Record<string, Text> = {
  pharmacy: { fr: 'officine', en: 'community pharmacy' },
  wholesaler: { fr: 'grossiste-répartiteur', en: 'wholesale distributor' },
  hospital: { fr: 'pharmacie à usage intérieur', en: 'hospital pharmacy' },
}
export const EVENT_LABELS: Record<string, Text> = {
  created: { fr: 'Création', en: 'Created' },
  edited: { fr: 'Modification', en: 'Edited' },
  revision: { fr: 'Nouvelle version', en: 'New version drafted' },
  submitted: { fr: 'Soumission à l’ANSM', en: 'Submitted to ANSM' },
  approved: { fr: 'Validation ANSM', en: 'Approved by ANSM' },
  changes_requested: { fr: 'Modifications demandées par l’ANSM', en: 'Changes requested by ANSM' },
  rejected: { fr: 'Refus ANSM', en: 'Rejected by ANSM' },
  scheduled: { fr: 'Diffusion programmée', en: 'Broadcast scheduled' },
  schedule_cancelled: { fr: 'Programmation annulée', en: 'Schedule cancelled' },
  broadcast: { fr: 'Diffusion', en: 'Broadcast' },
  reminder: { fr: 'Relance', en: 'Reminder' },
  discarded: { fr: 'Abandon', en: 'Discarded' },
  closed: { fr: 'Clôture', en: 'Closed' },
}
const KIND_LABELS: Record<string, Text> = {
  recall: { fr: 'rappel de lots', en: 'batch recall' },
  alert: { fr: 'alerte de santé publique', en: 'public-health alert' },
}

const label = (table: Record<string, Text>, code: string, lang: Lang) => table[code]?.[lang] ?? (lang === 'fr' ? 'autre' : 'other')

const rules: Record<Lang, Intl.PluralRules> = { fr: new Intl.PluralRules('fr-FR'), en: new Intl.PluralRules('en-GB') }
/**
 * "1 destinataire", "2 destinataires" (and in French "0 destinataire": CLDR puts 0 with the singular), from the
 * platform's plural rules rather than an `n > 1` test.
 */
export function plural(n: number, forms: { one: string; other: string }, lang: Lang) {
  return `${n} ${rules[lang].select(n) === 'one' ? forms.one : forms.other}`
}

/** What of a stored report gets a label (queries/report.ts builds it); the rest is kept as it is. */
interface LabelledParts {
  kind: string
  byCategory: Array<{ category: string }>
  byDepartment: Array<{ region: string | null }>
  batches: Array<{ status: string; removedInVersion: number | null }>
  notActing: Array<{ role: string }>
  acknowledgements: Array<{ org: { role: string } }>
  timeline: Array<{ event: string }>
}

/** The report as stored (codes) with the labels of the reader's language; the stored one has no labels. */
export function localiseReport<R extends LabelledParts>(report: R, lang: Lang) {
  const removed = (v: number | null) => (lang === 'fr' ? `retiré en version ${v}` : `removed in version ${v}`)
  return {
    ...report,
    lang,
    kindLabel: KIND_LABELS[report.kind]![lang],
    byCategory: report.byCategory.map((c) => ({ ...c, label: label(CATEGORY_LABELS, c.category, lang) })),
    byDepartment: report.byDepartment.map((d) => ({ ...d, regionName: d.region ? (REGIONS[d.region] ?? null) : null })),
    batches: report.batches.map((b) => ({ ...b, statusLabel: b.status === 'removed' ? removed(b.removedInVersion) : lang === 'fr' ? 'rappelé jusqu’à la clôture' : 'recalled until closure' })),
    notActing: report.notActing.map((o) => ({ ...o, roleLabel: label(ROLE_LABELS, o.role, lang) })),
    acknowledgements: report.acknowledgements.map((a) => ({ ...a, org: { ...a.org, roleLabel: label(ROLE_LABELS, a.org.role, lang) } })),
    timeline: report.timeline.map((e) => ({ ...e, label: label(EVENT_LABELS, e.event, lang) })),
  }
}

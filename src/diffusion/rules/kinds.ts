/**
 * The diffusion pipeline shared by DP-Rappels (recalls) and DP-Alertes Labo (alerts): a lab drafts, ANSM reviews
 * (rounds, corrections of a message in force), the message is broadcast to its recipients (feed, webhooks, fax),
 * acknowledgements are tracked and a report closes it. What only recalls add (batches, blocking of dispensation)
 * lives in src/recalls; the kind of each message says which rules apply. Here: what tells the two kinds apart, and
 * who receives them.
 */
import type { Role } from '../../platform/db/schema.ts'
import { notFound } from '../../platform/errors.ts'
import type { PipelineKind } from '../db.ts'

export const RECIPIENT_ROLES: Role[] = ['pharmacy', 'wholesaler', 'hospital']

export const LABEL: Record<PipelineKind, { fr: string; en: string; object: string; path: string }> = {
  recall: { fr: 'Le rappel', en: 'Recall', object: 'recall', path: 'recalls' },
  alert: { fr: 'L’alerte', en: 'Alert', object: 'alert', path: 'alerts' },
}

export function notFoundFor(kind: PipelineKind, id: string) {
  return kind === 'recall' ? notFound(`Le rappel ${id}`, `Recall ${id}`) : notFound(`L’alerte ${id}`, `Alert ${id}`)
}

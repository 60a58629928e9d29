/** A recipient's acknowledgement: what it may say, and which recipients still lag. */
import type { Lang } from '../../platform/i18n.ts'
import type { AckContent, PipelineKind } from '../db.ts'
import { fieldProblem } from './content.ts'

export interface AckInput {
  status: 'read' | 'done'
  quarantined?: number
  returned?: number
  destroyed?: number
  noStock?: boolean
  comment?: string | null
}

/** A paper acknowledgement (the form of a fax notice or a letter) the lab records for a recipient. */
export interface OnBehalf {
  org: string
  source: 'fax' | 'letter'
  signedBy: string
  signedOn: string
}

/** The acknowledgement as recorded, or 400: an alert is read, not done; a "done" says what was done. */
export function ackContent(kind: PipelineKind, body: AckInput, lang: Lang): AckContent {
  if (kind === 'alert' && body.status === 'done') {
    throw fieldProblem('body.status', 'enum', { fr: 'une alerte s’acquitte par « read » (lecture)', en: 'an alert is acknowledged with "read"' }, lang)
  }
  const ack: AckContent = { quarantined: body.quarantined ?? 0, returned: body.returned ?? 0, destroyed: body.destroyed ?? 0, noStock: body.noStock ?? false, comment: body.comment ?? null }
  const anyQuantity = ack.quarantined + ack.returned + ack.destroyed > 0
  if (body.status === 'read' && (anyQuantity || ack.noStock)) {
    throw fieldProblem('body.status', 'inconsistent', { fr: 'des quantités ou « aucun stock » se déclarent avec le statut « done »', en: 'quantities or "no stock" are reported with status "done"' }, lang)
  }
  if (body.status === 'done' && ack.noStock && anyQuantity) {
    throw fieldProblem('body.noStock', 'inconsistent', { fr: '« aucun stock » exclut des quantités', en: '"no stock" excludes quantities' }, lang)
  }
  // A "done" is what the lab and ANSM count boxes with: it must say what was done, or that there was nothing to do.
  // Without this, a bare "done" sent after "12 boxes quarantined" replaced them with zeros.
  if (body.status === 'done' && !ack.noStock) {
    if (body.quarantined === undefined && body.returned === undefined && body.destroyed === undefined) {
      throw fieldProblem('body.quarantined', 'required', {
        fr: '« done » se déclare avec les quantités traitées (quarantined, returned, destroyed), ou noStock: true si vous n’aviez aucune boîte des lots concernés',
        en: '"done" is reported with the quantities handled (quarantined, returned, destroyed), or noStock: true when you had none of the batches',
      }, lang)
    }
    if (!anyQuantity) {
      throw fieldProblem('body.noStock', 'required', {
        fr: 'aucune boîte déclarée : indiquez noStock: true si vous n’aviez aucune boîte des lots concernés',
        en: 'no box reported: send noStock: true when you had none of the batches',
      }, lang)
    }
  }
  return ack
}

export type RecipientFilter = 'unreached' | 'unread' | 'not_acting'

/** Whether a recipient still lags: for a recall "acting" is reporting the action done, for an alert reading it. */
export function lagging(kind: PipelineKind, row: { ack_status: string | null; first_read_at: Date | null }) {
  return kind === 'recall' ? row.ack_status !== 'done' : row.first_read_at === null && row.ack_status === null
}

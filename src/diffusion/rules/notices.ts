/**
 * What a message says outside the service: the event of a broadcast, a reminder or a closure (and their fax
 * notices, in French), and what a blocking recall shows at the counter.
 */
import type { RecallBlocks } from '../../recalls/use-cases/blocking.ts'
import type { PipelineKind, RecallContent, RecallRow } from '../db.ts'
import { ACTION_LABELS } from '../schemas.ts'
import { LABEL } from './kinds.ts'

/** What the pharmacist sees at the counter when a box of a blocked batch is scanned. */
export function counterMessage(reference: string, c: RecallContent) {
  const action = c.action ? ACTION_LABELS[c.action] : null
  return {
    fr: `Lot rappelé (${reference}) — ne pas délivrer. ${c.title}.${action ? ` ${action.fr}.` : ''}`,
    en: `Recalled batch (${reference}) — do not dispense. ${c.title}.${action ? ` ${action.en}.` : ''}`,
  }
}

/** The batches a recall blocks from this version on: none unless it blocks dispensation, none once closed (no content). */
export function blocksTarget(r: Pick<RecallRow, 'id' | 'reference' | 'lab_id' | 'kind'>, version: number, c: RecallContent | null): RecallBlocks {
  const batches = c && c.blockDispensation ? c.batches.map((b) => ({ cip13: b.cip13, batch: b.batch, expiry: b.expiry })) : []
  const msg = c ? counterMessage(r.reference, c) : { fr: `Rappel ${r.reference} clos`, en: `Recall ${r.reference} closed` }
  return { recallId: r.id, reference: r.reference, version, labId: r.lab_id, messageFr: msg.fr, messageEn: msg.en, batches }
}

/** The event of a broadcast (the first, or a correction) and of a reminder, with its fax notice (French). */
export function eventPayload(kind: PipelineKind, r: RecallRow, version: number, c: RecallContent, first: boolean) {
  const action = c.action ? ACTION_LABELS[c.action] : null
  const fields: Array<{ label: string; value: string }> = [
    { label: 'Laboratoire', value: `${r.lab_name} (${r.lab_id})` },
    { label: 'Version', value: String(version) },
    { label: 'Motif', value: c.reason },
  ]
  if (kind === 'recall') {
    fields.push({ label: 'Action demandée', value: action?.fr ?? '—' })
    for (const b of c.batches) fields.push({ label: 'Lot', value: `CIP ${b.cip13} — lot ${b.batch}${b.expiry ? ` — péremption ${b.expiry}` : ''}` })
    fields.push({ label: 'Blocage dispensation', value: c.blockDispensation ? 'oui' : 'non' })
  }
  for (const ct of c.contacts) fields.push({ label: 'Contact', value: [ct.name, ct.phone, ct.email].filter(Boolean).join(' — ') })
  const what = kind === 'recall' ? 'Rappel de lots' : 'Alerte de santé publique'
  return {
    kind,
    id: r.id,
    reference: r.reference,
    version,
    correction: !first,
    lab: { id: r.lab_id, name: r.lab_name },
    title: c.title,
    reason: c.reason,
    message: c.message,
    messageEn: c.messageEn,
    ...(kind === 'recall' ? { action: c.action, batches: c.batches, blockDispensation: c.blockDispensation } : {}),
    contacts: c.contacts,
    acknowledgeUrl: `/v1/${LABEL[kind].path}/${r.id}/acknowledgement`,
    notice: {
      title: `${what}${first ? '' : ' — version corrigée'} ${r.reference} : ${c.title}`,
      body: c.message,
      reference: `${r.reference} v${version}`,
      fields,
      // The fax notice ends with a form to fax back: what was done with the batches (recall), or that it was read.
      acknowledgement: kind === 'recall' ? 'quantities' : 'read',
    },
  }
}

/** The fax notice (French) of a closed recall or alert: the closure and its reason, what is no longer blocked. */
export function closedNotice(kind: PipelineKind, r: RecallRow, c: RecallContent, reason: string | null) {
  const fields: Array<{ label: string; value: string }> = [
    { label: 'Laboratoire', value: `${r.lab_name} (${r.lab_id})` },
    { label: 'Motif de la clôture', value: reason ?? 'non précisé' },
  ]
  if (kind === 'recall') {
    for (const b of c.batches) fields.push({ label: 'Lot', value: `CIP ${b.cip13} — lot ${b.batch}${b.expiry ? ` — péremption ${b.expiry}` : ''}` })
    fields.push({ label: 'Blocage dispensation', value: r.blocking ? 'levé' : 'non concerné' })
  }
  for (const ct of c.contacts) fields.push({ label: 'Contact', value: [ct.name, ct.phone, ct.email].filter(Boolean).join(' — ') })
  return {
    title: `${kind === 'recall' ? 'Clôture du rappel de lots' : 'Clôture de l’alerte'} ${r.reference} : ${c.title}`,
    body:
      kind === 'recall'
        ? 'Le laboratoire a clôturé ce rappel : aucune action supplémentaire n’est demandée.' + (r.blocking ? ' Le blocage à la dispensation des lots ci-dessous est levé.' : '')
        : 'Le laboratoire a clôturé cette alerte.',
    reference: r.reference,
    fields,
  }
}

/** A message as the API shows it to its caller: the version it may see, its batches named, its own acknowledgement. */
import type { PipelineKind, RecallRow } from '../db.ts'
import { allowedActions } from '../rules/actions.ts'
import { ACTION_LABELS } from '../schemas.ts'
import { type Db, versionOf } from './messages.ts'
import { ackView } from './recipients.ts'

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null)

export interface ViewOptions {
  /** For a recipient: the version in force and its own acknowledgement. */
  recipientOrg?: string
  /** ANSM does not see a correction the lab has not submitted yet: it sees the version in force. */
  ansm?: boolean
}

export async function toView(db: Db, kind: PipelineKind, r: RecallRow, opts: ViewOptions = {}) {
  const latest = await versionOf(db, r.id, r.version)
  // A discarded correction is shown to nobody as the current text: the version in force is.
  const hideLatest = opts.recipientOrg !== undefined || (opts.ansm === true && latest.submitted_at === null) || latest.status === 'discarded'
  const shown = hideLatest && r.live_version !== null && r.live_version !== latest.version ? await versionOf(db, r.id, r.live_version) : latest
  const c = shown.content
  const names = new Map<string, string>()
  if (kind === 'recall' && c.batches.length) {
    const rows = await db
      .selectFrom('presentations as p')
      .innerJoin('medicines as m', 'm.cis', 'p.cis')
      .select(['p.cip13', 'm.name', 'p.label'])
      .where('p.cip13', 'in', [...new Set(c.batches.map((b) => b.cip13))])
      .execute()
    for (const p of rows) names.set(p.cip13, p.name)
  }
  const view: Record<string, unknown> = {
    id: r.id,
    reference: r.reference,
    lab: { id: r.lab_id, name: r.lab_name },
    status: r.status,
    version: shown.version,
    versionStatus: shown.status,
    liveVersion: r.live_version,
    allowedActions: opts.recipientOrg ? [] : allowedActions(r, shown.status),
    title: c.title,
    reason: c.reason,
    message: c.message,
    messageEn: c.messageEn,
    recipients: kind === 'recall' ? c.recipients : { categories: c.recipients.categories, regions: c.recipients.regions },
    contacts: c.contacts,
    scheduledAt: c.scheduledAt,
    reminderDelaysHours: c.reminderDelaysHours,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    broadcastAt: iso(r.broadcast_at),
    closedAt: iso(r.closed_at),
  }
  if (kind === 'recall') {
    view.action = { code: c.action!, ...ACTION_LABELS[c.action!] }
    view.batches = c.batches.map((b) => ({ ...b, name: names.get(b.cip13) ?? null }))
    view.blockDispensation = c.blockDispensation
  }
  if (opts.recipientOrg) {
    const rec = await db.selectFrom('recall_recipients').selectAll().where('recall_id', '=', r.id).where('org_id', '=', opts.recipientOrg).executeTakeFirst()
    view.acknowledgement = rec ? await ackView(db, r.id, rec) : null
  }
  return view
}

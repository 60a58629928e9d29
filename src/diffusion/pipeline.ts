// The diffusion pipeline shared by DP-Rappels (recalls) and DP-Alertes Labo (alerts): a lab drafts, ANSM reviews
// (rounds, corrections of a message in force), the message is broadcast to its recipients (feed, webhooks, fax),
// acknowledgements are tracked and a report closes it. What only recalls add (batches, blocking of dispensation)
// lives in src/recalls; the kind of each message says which rules apply.
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { type Kysely, type Selectable, sql, type Transaction } from 'kysely'
import { type Actor, audit, SYSTEM } from '../platform/audit.ts'
import type { Principal } from '../platform/auth.ts'
import type { DB, Role } from '../platform/db/schema.ts'
import { AppError, conflict, notFound } from '../platform/errors.ts'
import { acknowledge as acknowledgeEvent, publish } from '../platform/events/publish.ts'
import type { Lang } from '../platform/i18n.ts'
import { cip13Problem, DEPARTMENTS, REGIONS } from '../platform/identifiers.ts'
import { enqueue } from '../platform/jobs.ts'
import { applyBlocks, type RecallBlocks } from '../recalls/use-cases/blocking.ts'
import type { AckContent, Category, FieldChange, PipelineKind, RecallContent, RecallStatus, RecallsTable, VersionStatus } from './db.ts'
import { localiseReport } from './report-labels.ts'
import { closeRound } from './rounds.ts'
import { ACTION_LABELS, PIPELINE_ACTIONS } from './schemas.ts'
import { inTransaction } from '../platform/db/transaction.ts'

export type Db = Kysely<DB> | Transaction<DB>
export type RecallRow = Selectable<RecallsTable> & { lab_name: string }
export type PipelineAction = (typeof PIPELINE_ACTIONS)[number]

export const QUEUE_BROADCAST = 'recalls.broadcast'
export const QUEUE_REMIND = 'recalls.remind'
export const DEFAULT_REMINDER_HOURS = [24, 72]
export const RECIPIENT_ROLES: Role[] = ['pharmacy', 'wholesaler', 'hospital']

export const LABEL: Record<PipelineKind, { fr: string; en: string; object: string; path: string }> = {
  recall: { fr: 'Le rappel', en: 'Recall', object: 'recall', path: 'recalls' },
  alert: { fr: 'L’alerte', en: 'Alert', object: 'alert', path: 'alerts' },
}

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : null)

// ---- reading ---------------------------------------------------------------------------------------------

function recallQuery(db: Db) {
  return db.selectFrom('recalls as r').innerJoin('organisations as o', 'o.id', 'r.lab_id').selectAll('r').select('o.name as lab_name')
}

export function notFoundFor(kind: PipelineKind, id: string) {
  return kind === 'recall' ? notFound(`Le rappel ${id}`, `Recall ${id}`) : notFound(`L’alerte ${id}`, `Alert ${id}`)
}

/**
 * The recall as the caller may see it, or 404: the lab its own, ANSM once submitted, a recipient once it was
 * addressed to it. Another tenant cannot tell it from one that does not exist.
 */
export async function visibleRecall(db: Db, kind: PipelineKind, id: string, principal: Principal, opts: { forUpdate?: boolean } = {}): Promise<RecallRow> {
  let q = recallQuery(db).where('r.id', '=', id).where('r.kind', '=', kind)
  if (principal.role === 'lab') q = q.where('r.lab_id', '=', principal.org)
  else if (principal.role === 'ansm') q = q.where('r.first_submitted_at', 'is not', null)
  else if (RECIPIENT_ROLES.includes(principal.role)) {
    q = q.where('r.live_version', 'is not', null).where((eb) =>
      eb.exists(eb.selectFrom('recall_recipients as rr').select('rr.org_id').whereRef('rr.recall_id', '=', 'r.id').where('rr.org_id', '=', principal.org)),
    )
  } else throw notFoundFor(kind, id)
  if (opts.forUpdate) q = q.forUpdate('r') as typeof q
  const row = await q.executeTakeFirst()
  if (!row) throw notFoundFor(kind, id)
  return row as RecallRow
}

export async function versionOf(db: Db, recallId: string, version: number) {
  const v = await db.selectFrom('recall_versions').selectAll().where('recall_id', '=', recallId).where('version', '=', version).executeTakeFirstOrThrow()
  return v
}

/**
 * What may be done next, whoever may do it (the route's roles say who). `discard` (lab): a version never
 * broadcast, while the lab may still edit it or ANSM has not decided yet. `cancel-schedule` (lab or ANSM): a first
 * version approved and waiting for its scheduled time. Closed, rejected and discarded messages allow nothing.
 */
export function allowedActions(r: Pick<RecallRow, 'status' | 'live_version'>, latest: VersionStatus): PipelineAction[] {
  if (r.status === 'closed' || r.status === 'rejected' || r.status === 'discarded') return []
  const live = r.live_version !== null
  const out: PipelineAction[] = []
  if (latest === 'draft' || latest === 'changes_requested') out.push('edit', 'submit', 'discard')
  else if (latest === 'submitted') out.push('approve', 'request-changes', 'reject', 'discard')
  else if (latest === 'approved' && !live) out.push('cancel-schedule')
  else if (live && (latest === 'broadcast' || latest === 'rejected' || latest === 'cancelled' || latest === 'discarded')) out.push('edit')
  if (live) out.push('close')
  return out
}

export function assertAction(kind: PipelineKind, r: RecallRow, latest: VersionStatus, action: PipelineAction) {
  const allowed = allowedActions(r, latest)
  if (!allowed.includes(action)) {
    throw new AppError(
      'RECALL_INVALID_TRANSITION',
      { label: LABEL[kind].fr, labelEn: LABEL[kind].en, reference: r.reference, status: r.status, version: r.version, versionStatus: latest, action, allowedText: allowed.join(', ') },
      { allowedActions: allowed, currentStatus: r.status, versionStatus: latest },
    )
  }
}

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

/** The recipient's acknowledgement as the API shows it; `changes` is its number of entries in the history (counted unless given). */
export async function ackView(db: Db, recallId: string, rec: { org_id: string; ack_status: string | null; ack: AckContent | null; acked_at: Date | null }, changes?: number) {
  if (!rec.ack_status || !rec.ack || !rec.acked_at) return null
  const n =
    changes ??
    (await db
      .selectFrom('recall_ack_history')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('recall_id', '=', recallId)
      .where('org_id', '=', rec.org_id)
      .executeTakeFirstOrThrow()).n
  return { status: rec.ack_status as 'read' | 'done', ...rec.ack, acknowledgedAt: iso(rec.acked_at)!, changes: Number(n) }
}

// ---- content ---------------------------------------------------------------------------------------------

export function fieldProblem(field: string, code: string, text: { fr: string; en: string }, lang: Lang) {
  return new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field, code, message: text[lang] }] })
}

type Input = Record<string, any>

/** The content of a version from the request (a whole draft, or a patch over a base). */
export function buildContent(kind: PipelineKind, body: Input, base: RecallContent | null): RecallContent {
  const pick = <K extends keyof RecallContent>(k: K, d: RecallContent[K]): RecallContent[K] => (body[k] !== undefined ? body[k] : base ? base[k] : d)
  const rec = body.recipients
  return {
    title: pick('title', ''),
    reason: pick('reason', ''),
    message: pick('message', ''),
    messageEn: pick('messageEn', null) ?? null,
    action: kind === 'recall' ? pick('action', null) : null,
    recipients: rec
      ? { categories: [...rec.categories] as Category[], regions: [...(rec.regions ?? [])], departments: kind === 'recall' ? [...(rec.departments ?? [])] : [] }
      : (base?.recipients ?? { categories: [], regions: [], departments: [] }),
    contacts: (body.contacts ?? base?.contacts ?? []).map((c: Input) => ({ name: c.name, phone: c.phone ?? null, email: c.email ?? null })),
    batches:
      kind === 'recall'
        ? (body.batches ?? base?.batches ?? []).map((b: Input) => ({ cip13: b.cip13, batch: String(b.batch).trim().toUpperCase(), expiry: b.expiry ?? null }))
        : [],
    blockDispensation: kind === 'recall' ? pick('blockDispensation', false) : false,
    scheduledAt: body.scheduledAt !== undefined ? (body.scheduledAt === null ? null : new Date(body.scheduledAt).toISOString()) : (base?.scheduledAt ?? null),
    reminderDelaysHours: pick('reminderDelaysHours', DEFAULT_REMINDER_HOURS),
  }
}

/** What the schema cannot say: products are the lab's own, no batch twice, places exist, delays in order. */
export async function checkContent(db: Db, kind: PipelineKind, c: RecallContent, labId: string, lang: Lang, now: Date, touched: Input) {
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
  const cip13s = [...new Set(c.batches.map((b) => b.cip13))]
  const products = cip13s.length
    ? await db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select(['p.cip13', 'm.lab_id']).where('p.cip13', 'in', cip13s).execute()
    : []
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

// ---- references and history ------------------------------------------------------------------------------

const parisDate = (d: Date) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit' }).format(d)
const parisYear = (d: Date) => Number(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', year: 'numeric' }).format(d))

/** R-2026-0001 / A-2026-0001: gapless per kind and year (the counter row is taken in the creating transaction). */
export async function nextReference(tx: Transaction<DB>, kind: PipelineKind, now: Date) {
  const year = parisYear(now)
  const row = await tx
    .insertInto('recall_reference_counters')
    .values({ kind, year, last: 1 })
    .onConflict((oc) => oc.columns(['kind', 'year']).doUpdateSet({ last: sql`recall_reference_counters.last + 1` }))
    .returning('last')
    .executeTakeFirstOrThrow()
  return `${kind === 'recall' ? 'R' : 'A'}-${year}-${String(row.last).padStart(4, '0')}`
}

/** An entry of the history; an edit or a new version says what it changed (`changes`). */
export async function addMessage(tx: Transaction<DB>, recallId: string, version: number, kind: string, text: string | null, actor: Actor | null, now: Date, changes?: FieldChange[]) {
  await tx
    .insertInto('recall_messages')
    .values({
      id: randomUUID(), recall_id: recallId, version, kind, text, author_role: actor?.role ?? null, author_org: actor?.org ?? null, author_user: actor?.user ?? null, at: now,
      changes: changes ? JSON.stringify(changes) : null,
    })
    .execute()
}

// ---- broadcast -------------------------------------------------------------------------------------------

/** What the pharmacist sees at the counter when a box of a blocked batch is scanned. */
export function counterMessage(reference: string, c: RecallContent) {
  const action = c.action ? ACTION_LABELS[c.action] : null
  return {
    fr: `Lot rappelé (${reference}) — ne pas délivrer. ${c.title}.${action ? ` ${action.fr}.` : ''}`,
    en: `Recalled batch (${reference}) — do not dispense. ${c.title}.${action ? ` ${action.en}.` : ''}`,
  }
}

export function blocksTarget(r: Pick<RecallRow, 'id' | 'reference' | 'lab_id' | 'kind'>, version: number, c: RecallContent | null): RecallBlocks {
  const batches = c && c.blockDispensation ? c.batches.map((b) => ({ cip13: b.cip13, batch: b.batch, expiry: b.expiry })) : []
  const msg = c ? counterMessage(r.reference, c) : { fr: `Rappel ${r.reference} clos`, en: `Recall ${r.reference} closed` }
  return { recallId: r.id, reference: r.reference, version, labId: r.lab_id, messageFr: msg.fr, messageEn: msg.en, batches }
}

/**
 * Runs a use case in one transaction: through applyBlocks when the blocked batches change (the broadcast of a
 * blocking recall, of a new version, the close), else a plain transaction.
 */
export function withBlocksIfAny<T>(app: FastifyInstance, target: RecallBlocks | null, actor: Actor, fn: (tx: Transaction<DB>) => Promise<T>): Promise<T> {
  return target ? applyBlocks(app, target, fn) : inTransaction(app.db, fn)
}

function eventPayload(kind: PipelineKind, r: RecallRow, version: number, c: RecallContent, first: boolean) {
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
function closedNotice(kind: PipelineKind, r: RecallRow, c: RecallContent, reason: string | null) {
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

/**
 * Broadcasts an approved version, inside the caller's transaction (the applyBlocks one for a blocking
 * recall): publishes to the targeted organisations (fax for those without an integration), records them as
 * recipients (what earlier recipients did is kept), supersedes the previous version, schedules reminders
 * after the first broadcast.
 */
export async function broadcastVersion(tx: Transaction<DB>, kind: PipelineKind, r: RecallRow, version: number, actor: Actor, now: Date) {
  const v = await versionOf(tx, r.id, version)
  const c = v.content
  const first = r.live_version === null
  const departments = targetDepartments(c)
  const ev = await publish(
    tx,
    {
      type: `${kind}.${first ? 'broadcast' : 'updated'}`,
      payload: eventPayload(kind, r, version, c, first),
      audience: { roles: c.recipients.categories, ...(departments.length ? { departments } : {}) },
      senderOrg: r.lab_id,
      subject: { type: LABEL[kind].object, id: r.id },
      fax: true,
    },
    now,
  )
  await sql`
    insert into recall_recipients (recall_id, org_id, role, department, region, first_version, last_event_id, added_at)
    select ${r.id}::uuid, d.org_id, d.role, d.department, d.region, ${version}::int, d.event_id, ${now}::timestamptz
    from event_deliveries d where d.event_id = ${ev.id}::uuid
    on conflict (recall_id, org_id) do update set last_event_id = excluded.last_event_id`.execute(tx)
  if (r.live_version !== null) {
    await tx.updateTable('recall_versions').set({ status: 'superseded', updated_at: now }).where('recall_id', '=', r.id).where('version', '=', r.live_version).execute()
  }
  await tx.updateTable('recall_versions').set({ status: 'broadcast', event_id: ev.id, broadcast_at: now, updated_at: now }).where('recall_id', '=', r.id).where('version', '=', version).execute()
  await tx
    .updateTable('recalls')
    .set({ status: 'broadcast', live_version: version, updated_at: now, ...(first ? { broadcast_at: now } : {}), ...(c.blockDispensation ? { blocking: true } : {}) })
    .where('id', '=', r.id)
    .execute()
  await addMessage(tx, r.id, version, 'broadcast', `${ev.recipients}`, actor, now)
  await audit(tx, actor, { action: `${kind}.broadcast`, objectType: LABEL[kind].object, objectId: r.id, changes: { version, eventId: ev.id, recipients: ev.recipients, blocked: c.blockDispensation ? c.batches : [] } }, now)
  if (first) {
    for (const [step, hours] of c.reminderDelaysHours.entries()) {
      await enqueue(tx, QUEUE_REMIND, { recallId: r.id, kind, step }, { runAt: new Date(now.getTime() + hours * 3_600_000), singletonKey: `${r.id}:${step}`, maxAttempts: 5 })
    }
  }
  return ev
}

/**
 * Approves and broadcasts now (or at the scheduled time): the use case behind ANSM's approval and behind the
 * scheduled job. The recall is locked and its state checked again inside the transaction.
 */
export async function approveOrBroadcast(
  app: FastifyInstance,
  kind: PipelineKind,
  id: string,
  actor: Actor,
  mode: { approve: { comment: string | null; principal: Principal } } | { scheduled: { version: number; scheduledAt?: string } },
) {
  const now = app.now()
  // Read first to know whether the blocked set changes; everything is checked again under lock below.
  const pre = await recallQuery(app.db).where('r.id', '=', id).where('r.kind', '=', kind).executeTakeFirst()
  if (!pre) throw notFoundFor(kind, id)
  const pv = await versionOf(app.db, id, pre.version)
  const scheduledFor = pv.content.scheduledAt ? new Date(pv.content.scheduledAt) : null
  const immediate = 'scheduled' in mode || !scheduledFor || scheduledFor.getTime() <= now.getTime() || pre.live_version !== null
  const needsBlocks = kind === 'recall' && immediate && (pv.content.blockDispensation || pre.blocking)
  const target = needsBlocks ? blocksTarget(pre as RecallRow, pre.version, pv.content) : null
  const run = withBlocksIfAny(app, target, actor, async (tx) => {
    const r = (await recallQuery(tx).where('r.id', '=', id).where('r.kind', '=', kind).forUpdate('r').executeTakeFirst()) as RecallRow | undefined
    if (!r) throw notFoundFor(kind, id)
    const latest = await versionOf(tx, id, r.version)
    if ('approve' in mode) {
      if (mode.approve.principal.role !== 'ansm') throw notFoundFor(kind, id)
      assertAction(kind, r, latest.status, 'approve')
      if (r.version !== pre.version) throw new AppError('RECALL_INVALID_TRANSITION', { label: LABEL[kind].fr, labelEn: LABEL[kind].en, reference: r.reference, status: r.status, version: r.version, versionStatus: latest.status, action: 'approve', allowedText: '' })
      await tx.updateTable('recall_versions').set({ status: 'approved', decided_at: now, updated_at: now }).where('recall_id', '=', id).where('version', '=', r.version).execute()
      await closeRound(tx, id, r.version, 'approved', mode.approve.comment, actor, now)
      await addMessage(tx, id, r.version, 'approved', mode.approve.comment, actor, now)
      await audit(tx, actor, { action: `${kind}.approved`, objectType: LABEL[kind].object, objectId: id, changes: { version: r.version, comment: mode.approve.comment } }, now)
      await publish(tx, { type: `${kind}.reviewed`, payload: { kind, id, reference: r.reference, version: r.version, title: latest.content.title, decision: 'approved', comment: mode.approve.comment }, audience: { orgs: [r.lab_id] }, senderOrg: actor.org, subject: { type: LABEL[kind].object, id } }, now)
      if (!immediate) {
        await tx.updateTable('recalls').set({ status: 'approved', updated_at: now }).where('id', '=', id).execute()
        // The time is part of the job: after a cancelled schedule, a new approval for another time queues its own job,
        // and the stale one finds a different time (or no longer an approved version) and broadcasts nothing.
        const at = scheduledFor!.toISOString()
        await enqueue(tx, QUEUE_BROADCAST, { recallId: id, kind, version: r.version, scheduledAt: at }, { runAt: scheduledFor!, singletonKey: `${id}:${r.version}:${at}`, maxAttempts: 10 })
        await addMessage(tx, id, r.version, 'scheduled', scheduledFor!.toISOString(), actor, now)
        return { broadcast: false }
      }
    } else {
      // The scheduled job: only if this version is still the approved one waiting, for this job's time (a schedule
      // cancelled puts the version back to draft; approved again, it may wait for another time).
      // Thrown, not returned: the transaction (and the blocks applyBlocks would set) must roll back.
      const stale = mode.scheduled.scheduledAt !== undefined && (latest.content.scheduledAt === null || new Date(latest.content.scheduledAt).getTime() !== new Date(mode.scheduled.scheduledAt).getTime())
      if (r.version !== mode.scheduled.version || latest.status !== 'approved' || r.status !== 'approved' || r.version !== pre.version || stale) throw new NothingToBroadcast()
    }
    await broadcastVersion(tx, kind, r, r.version, actor, now)
    return { broadcast: true }
  })
  return run.catch((err) => {
    if (err instanceof NothingToBroadcast) return { broadcast: false }
    throw err
  })
}
class NothingToBroadcast extends Error {}

// ---- acknowledgements ------------------------------------------------------------------------------------

export interface AckInput {
  status: 'read' | 'done'
  quarantined?: number
  returned?: number
  destroyed?: number
  noStock?: boolean
  comment?: string | null
}

/**
 * Records a recipient's acknowledgement. The same acknowledgement twice is one record; a different one
 * replaces it and the previous stays in the history. 'read' after 'done' changes nothing.
 */
/** A paper acknowledgement (the form of a fax notice or a letter) the lab records for a recipient. */
export interface OnBehalf {
  org: string
  source: 'fax' | 'letter'
  signedBy: string
  signedOn: string
}

export async function recordAck(app: FastifyInstance, kind: PipelineKind, id: string, principal: Principal, actor: Actor, body: AckInput, lang: Lang, onBehalf?: OnBehalf) {
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
  const now = app.now()
  let recipient = principal.org
  if (onBehalf) {
    // The owning lab, for a recipient the message was addressed to (checked below); anyone else: 404.
    if (principal.role !== 'lab') throw notFoundFor(kind, id)
    await visibleRecall(app.db, kind, id, principal)
    recipient = onBehalf.org
    if (onBehalf.signedOn > parisDate(now)) {
      throw fieldProblem('body.signedOn', 'future', { fr: 'la date de signature ne peut pas être dans le futur', en: 'the date signed cannot be in the future' }, lang)
    }
  } else if (!RECIPIENT_ROLES.includes(principal.role)) {
    // The write every recipient makes when a recall goes out, thousands within minutes: few round trips.
    // Only recipients acknowledge; anyone else is told the recall does not exist, without a query.
    throw notFoundFor(kind, id)
  }
  return inTransaction(app.db, async (tx) => {
    // The recall as this recipient sees it (visibleRecall's rule for recipients: in force once, addressed to it)
    // and its recipient row, locked so that its acknowledgements are numbered one after the other.
    const rec = await tx
      .selectFrom('recall_recipients as rr')
      .innerJoin('recalls as r', 'r.id', 'rr.recall_id')
      .select(['r.status', 'r.reference', 'r.live_version', 'rr.org_id', 'rr.ack_status', 'rr.ack', 'rr.acked_at', 'rr.last_event_id'])
      .where('rr.recall_id', '=', id)
      .where('rr.org_id', '=', recipient)
      .where('r.kind', '=', kind)
      .where('r.live_version', 'is not', null)
      .forUpdate('rr')
      .executeTakeFirst()
    if (!rec) throw notFoundFor(kind, id)
    if (rec.status !== 'broadcast') throw new AppError('RECALL_NOT_IN_FORCE', { reference: rec.reference, status: rec.status })
    const prev = rec.ack
    const same =
      rec.ack_status === body.status && prev !== null &&
      prev.quarantined === ack.quarantined && prev.returned === ack.returned && prev.destroyed === ack.destroyed && prev.noStock === ack.noStock && (prev.comment ?? null) === ack.comment
    const downgrade = rec.ack_status === 'done' && body.status === 'read'
    if (same || downgrade) return { view: await ackView(tx, id, rec), changed: false }
    // One statement: the history entry, numbered after the recipient's previous ones, and the recipient's state.
    const updated = await tx
      .with('h', (db) =>
        db
          .insertInto('recall_ack_history')
          .columns(['recall_id', 'org_id', 'seq', 'status', 'ack', 'version', 'user_id', 'at', 'source', 'recorded_by_org', 'signed_by', 'signed_on'])
          .expression(
            db
              .selectFrom('recall_ack_history')
              .select((eb) => [
                eb.val(id).as('recall_id'),
                eb.val(recipient).as('org_id'),
                sql<number>`count(*)::int + 1`.as('seq'),
                eb.val(body.status).as('status'),
                sql<string>`${JSON.stringify(ack)}::jsonb`.as('ack'),
                eb.val(rec.live_version!).as('version'),
                eb.val(principal.user).as('user_id'),
                sql<Date>`${now}::timestamptz`.as('at'),
                eb.val(onBehalf?.source ?? 'recipient').as('source'),
                eb.val(onBehalf ? principal.org : null).as('recorded_by_org'),
                eb.val(onBehalf?.signedBy ?? null).as('signed_by'),
                sql<string | null>`${onBehalf?.signedOn ?? null}::date`.as('signed_on'),
              ])
              .where('recall_id', '=', id)
              .where('org_id', '=', recipient),
          )
          .returning('seq'),
      )
      .updateTable('recall_recipients')
      .from('h')
      .set({
        ack_status: body.status,
        ack: JSON.stringify(ack),
        acked_at: now,
        read_at: sql`coalesce(read_at, ${now}::timestamptz)`,
        done_at: body.status === 'done' ? sql`coalesce(done_at, ${now}::timestamptz)` : sql`done_at`,
      })
      .where('recall_recipients.recall_id', '=', id)
      .where('recall_recipients.org_id', '=', recipient)
      .returning(['recall_recipients.org_id', 'recall_recipients.ack_status', 'recall_recipients.ack', 'recall_recipients.acked_at', 'h.seq'])
      .executeTakeFirstOrThrow()
    await acknowledgeEvent(tx, recipient, rec.last_event_id, { status: body.status, ...ack }, now)
    // The history now holds `seq` entries: the count the view gives, without asking again.
    const view = await ackView(tx, id, updated, updated.seq)
    // Last: the audit chain's lock is held from here to the commit, and other writes on that chain wait for it.
    await audit(tx, actor, { action: `${kind}.acknowledged`, objectType: LABEL[kind].object, objectId: id, changes: { org: recipient, ...(onBehalf ? { source: onBehalf.source, signedBy: onBehalf.signedBy, signedOn: onBehalf.signedOn } : {}), before: rec.ack_status ? { status: rec.ack_status, ...rec.ack } : null, after: { status: body.status, ...ack } } }, now)
    return { view, changed: true }
  })
}

/**
 * A recipient's current acknowledgement and every one it gave, oldest first: read by the recipient itself, and by
 * the lab and ANSM for any recipient of the message (404 for an organisation it was not addressed to).
 */
export async function acknowledgementHistory(db: Db, kind: PipelineKind, r: RecallRow, orgId: string) {
  const rec = await db.selectFrom('recall_recipients').selectAll().where('recall_id', '=', r.id).where('org_id', '=', orgId).executeTakeFirst()
  if (!rec) throw notFoundFor(kind, r.id)
  const rows = await db.selectFrom('recall_ack_history').selectAll().where('recall_id', '=', r.id).where('org_id', '=', orgId).orderBy('seq').execute()
  return {
    id: r.id,
    reference: r.reference,
    current: await ackView(db, r.id, rec, rows.length),
    history: rows.map((h) => ({
      seq: h.seq, status: h.status as 'read' | 'done', ...h.ack, version: h.version, acknowledgedAt: h.at.toISOString(),
      by: { org: h.recorded_by_org ?? h.org_id, user: h.user_id },
      source: h.source,
      signedBy: h.signed_by,
      signedOn: h.signed_on,
    })),
  }
}

// ---- coverage --------------------------------------------------------------------------------------------

interface RecipientState {
  org_id: string
  role: string
  department: string | null
  region: string | null
  reached: boolean
  read: boolean
  acknowledged: boolean
  done: boolean
}

/** Per recipient: reached (any channel), read (feed read or acknowledgement), acknowledged, done. */
function recipientStates(db: Db, recallId: string) {
  return db
    .selectFrom('recall_recipients as rr')
    .innerJoin('organisations as o', 'o.id', 'rr.org_id')
    // The latest paper letter asked for this recipient (a fax of one of the message's events given up).
    .leftJoinLateral(
      (eb) =>
        eb
          .selectFrom('paper_letters as l')
          .innerJoin('events as e', 'e.id', 'l.event_id')
          .select(['l.id as letter_id', 'l.status as letter_status', 'l.sent_at as letter_sent_at'])
          .whereRef('l.org_id', '=', 'rr.org_id')
          .where('e.subject_type', 'in', ['recall', 'alert'])
          .where(sql<boolean>`e.subject_id = rr.recall_id::text`)
          .orderBy('l.created_at', 'desc')
          .limit(1)
          .as('lt'),
      (join) => join.onTrue(),
    )
    .select(['lt.letter_id', 'lt.letter_status', 'lt.letter_sent_at'])
    .select([
      'rr.org_id', 'rr.role', 'rr.department', 'rr.region', 'rr.read_at', 'rr.ack_status', 'rr.ack', 'rr.acked_at', 'rr.reminders', 'o.name',
      sql<boolean>`rr.acked_at is not null or exists (select 1 from event_deliveries d join recall_versions v on v.event_id = d.event_id where v.recall_id = rr.recall_id and d.org_id = rr.org_id and (d.delivered_at is not null or d.read_at is not null))`.as('reached'),
      sql<Date | null>`coalesce(rr.read_at, (select min(d.read_at) from event_deliveries d join recall_versions v on v.event_id = d.event_id where v.recall_id = rr.recall_id and d.org_id = rr.org_id))`.as('first_read_at'),
      sql<string | null>`(select d.fax_status from event_deliveries d where d.event_id = rr.last_event_id and d.org_id = rr.org_id)`.as('fax_status'),
    ])
    .where('rr.recall_id', '=', recallId)
}

type Quantities = { quarantined: number; returned: number; destroyed: number; noStock: number }
const noQuantities = (): Quantities => ({ quarantined: 0, returned: 0, destroyed: 0, noStock: 0 })
function addQuantities(q: Quantities, ack: AckContent) {
  q.quarantined += ack.quarantined
  q.returned += ack.returned
  q.destroyed += ack.destroyed
  if (ack.noStock) q.noStock++
}

type Counts = { recipients: number; reached: number; read: number; acknowledged: number; done: number }
const zero = (): Counts => ({ recipients: 0, reached: 0, read: 0, acknowledged: 0, done: 0 })
function add(c: Counts, s: RecipientState) {
  c.recipients++
  if (s.reached) c.reached++
  if (s.read) c.read++
  if (s.acknowledged) c.acknowledged++
  if (s.done) c.done++
}

export async function coverageOf(db: Db, r: RecallRow) {
  const rows = await recipientStates(db, r.id).execute()
  const total = zero()
  const byCategory = new Map<string, Counts>()
  const byDepartment = new Map<string, Counts & { department: string | null; region: string | null }>()
  const quantities = noQuantities()
  const categoryQuantities = new Map<string, Quantities>()
  const faxes = { queued: 0, sent: 0, failed: 0, paperLetter: 0 }
  for (const row of rows) {
    const s: RecipientState = {
      org_id: row.org_id, role: row.role, department: row.department, region: row.region,
      reached: Boolean(row.reached), read: row.first_read_at !== null, acknowledged: row.ack_status !== null, done: row.ack_status === 'done',
    }
    add(total, s)
    if (!byCategory.has(s.role)) byCategory.set(s.role, zero())
    add(byCategory.get(s.role)!, s)
    const key = s.department ?? ''
    if (!byDepartment.has(key)) byDepartment.set(key, { department: s.department, region: s.region, ...zero() })
    add(byDepartment.get(key)!, s)
    if (!categoryQuantities.has(s.role)) categoryQuantities.set(s.role, noQuantities())
    if (row.ack_status === 'done' && row.ack) {
      addQuantities(quantities, row.ack)
      addQuantities(categoryQuantities.get(s.role)!, row.ack)
    }
    if (row.fax_status === 'queued') faxes.queued++
    else if (row.fax_status === 'sent') faxes.sent++
    else if (row.fax_status === 'failed') faxes.failed++
    else if (row.fax_status === 'paper_letter') faxes.paperLetter++
  }
  const letterRows = await db
    .selectFrom('paper_letters as l')
    .innerJoin('events as e', 'e.id', 'l.event_id')
    .select(['l.status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('e.subject_type', '=', LABEL[r.kind].object)
    .where('e.subject_id', '=', r.id)
    .groupBy('l.status')
    .execute()
  const letters = { pending: 0, sent: 0 }
  for (const l of letterRows) letters[l.status] = Number(l.n)
  return {
    id: r.id,
    reference: r.reference,
    status: r.status,
    ...total,
    quantities,
    byCategory: [...byCategory.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([category, c]) => ({ category, ...c, quantities: categoryQuantities.get(category)! })),
    byDepartment: [...byDepartment.values()].sort((a, b) => (a.department ?? '').localeCompare(b.department ?? '')),
    faxes,
    letters,
  }
}

export type RecipientFilter = 'unreached' | 'unread' | 'not_acting'

/** Whether a recipient still lags: for a recall "acting" is reporting the action done, for an alert reading it. */
export function lagging(kind: PipelineKind, row: { ack_status: string | null; first_read_at: Date | null }) {
  return kind === 'recall' ? row.ack_status !== 'done' : row.first_read_at === null && row.ack_status === null
}

export async function recipientsOf(db: Db, kind: PipelineKind, r: RecallRow, filter: RecipientFilter | undefined, after: string | null, limit: number) {
  let q = recipientStates(db, r.id).orderBy('rr.org_id').limit(limit + 1)
  if (after) q = q.where('rr.org_id', '>', after)
  const reachedSql = sql<boolean>`(rr.acked_at is not null or exists (select 1 from event_deliveries d join recall_versions v on v.event_id = d.event_id where v.recall_id = rr.recall_id and d.org_id = rr.org_id and (d.delivered_at is not null or d.read_at is not null)))`
  const readSql = sql<boolean>`(rr.read_at is not null or exists (select 1 from event_deliveries d join recall_versions v on v.event_id = d.event_id where v.recall_id = rr.recall_id and d.org_id = rr.org_id and d.read_at is not null))`
  if (filter === 'unreached') q = q.where(sql<boolean>`not ${reachedSql}`)
  else if (filter === 'unread') q = q.where(sql<boolean>`not ${readSql}`)
  else if (filter === 'not_acting') q = kind === 'recall' ? q.where((eb) => eb.or([eb('rr.ack_status', 'is', null), eb('rr.ack_status', '<>', 'done')])) : q.where(sql<boolean>`not ${readSql}`)
  const rows = await q.execute()
  const page = rows.slice(0, limit)
  const items = []
  for (const row of page) {
    items.push({
      org: { id: row.org_id, name: row.name, role: row.role, department: row.department, region: row.region },
      reached: Boolean(row.reached),
      readAt: iso(row.first_read_at),
      acknowledgement: await ackView(db, r.id, row),
      fax: row.fax_status,
      letter: row.letter_id ? { id: row.letter_id, status: row.letter_status!, sentAt: iso(row.letter_sent_at) } : null,
      reminders: row.reminders,
    })
  }
  return { items, last: rows.length > limit ? page[page.length - 1]!.org_id : null }
}

// ---- reminders -------------------------------------------------------------------------------------------

/** The reminder job: once per configured delay, to the recipients still lagging, while the message is in force. */
export async function remind(app: FastifyInstance, payload: { recallId: string; kind: PipelineKind; step: number }, now: Date) {
  await inTransaction(app.db, async (tx) => {
    const r = (await recallQuery(tx).where('r.id', '=', payload.recallId).forUpdate('r').executeTakeFirst()) as RecallRow | undefined
    if (!r || r.status !== 'broadcast' || r.live_version === null) return
    const kind = r.kind
    const rows = await recipientStates(tx, r.id).execute()
    const laggards = rows.filter((row) => lagging(kind, row)).map((row) => row.org_id)
    if (laggards.length === 0) return
    const live = await versionOf(tx, r.id, r.live_version)
    const payloadOut = eventPayload(kind, r, r.live_version, live.content, false)
    payloadOut.notice.title = `Relance — ${kind === 'recall' ? 'Rappel de lots' : 'Alerte'} ${r.reference} : ${live.content.title}`
    const ev = await publish(
      tx,
      { type: `${kind}.reminder`, payload: { ...payloadOut, reminder: payload.step + 1 }, audience: { orgs: laggards }, senderOrg: r.lab_id, subject: { type: LABEL[kind].object, id: r.id }, fax: true },
      now,
    )
    await tx
      .updateTable('recall_recipients')
      .set({ reminders: sql`reminders + 1`, last_reminded_at: now })
      .where('recall_id', '=', r.id)
      .where('org_id', 'in', laggards)
      .execute()
    await addMessage(tx, r.id, r.live_version, 'reminder', String(laggards.length), SYSTEM, now)
    await audit(tx, SYSTEM, { action: `${kind}.reminded`, objectType: LABEL[kind].object, objectId: r.id, changes: { step: payload.step + 1, recipients: laggards.length, eventId: ev.id } }, now)
  })
}

// ---- report ----------------------------------------------------------------------------------------------

/** At most this many recipients are listed by name in a report (not acting, acknowledgements); the counts cover all. */
export const REPORT_LIST_MAX = 1000

export interface Closure {
  at: Date
  reason: string | null
  actor: Actor | null
}

/**
 * Every batch recalled by any version that was in force, with what happened to it: recalled until closure, or
 * removed by a correction (in which version, when). `blocked`: dispensation was blocked while it was recalled.
 */
async function batchOutcomes(db: Db, r: RecallRow) {
  const versions = await db
    .selectFrom('recall_versions')
    .select(['version', 'content', 'broadcast_at'])
    .where('recall_id', '=', r.id)
    .where('broadcast_at', 'is not', null)
    .orderBy('version')
    .execute()
  const out = new Map<string, { cip13: string; batch: string; expiry: string | null; versions: number[]; blocked: boolean }>()
  for (const v of versions) {
    for (const b of v.content.batches) {
      const key = `${b.cip13}/${b.batch}`
      const o = out.get(key) ?? { cip13: b.cip13, batch: b.batch, expiry: b.expiry, versions: [], blocked: false }
      o.expiry = b.expiry
      o.versions.push(v.version)
      o.blocked ||= v.content.blockDispensation
      out.set(key, o)
    }
  }
  const final = versions.at(-1)?.version
  const names = new Map<string, string>()
  const cip13s = [...new Set([...out.values()].map((b) => b.cip13))]
  if (cip13s.length) {
    const rows = await db.selectFrom('presentations as p').innerJoin('medicines as m', 'm.cis', 'p.cis').select(['p.cip13', 'm.name']).where('p.cip13', 'in', cip13s).execute()
    for (const p of rows) names.set(p.cip13, p.name)
  }
  return [...out.values()].map((b) => {
    const last = b.versions.at(-1)!
    const removedBy = last === final ? undefined : versions.find((v) => v.version > last)
    return {
      cip13: b.cip13,
      batch: b.batch,
      expiry: b.expiry,
      name: names.get(b.cip13) ?? null,
      versions: b.versions,
      status: (removedBy ? 'removed' : 'recalled') as 'removed' | 'recalled',
      removedInVersion: removedBy?.version ?? null,
      removedAt: removedBy ? iso(removedBy.broadcast_at) : null,
      blocked: b.blocked,
    }
  })
}

export async function buildReport(db: Db, kind: PipelineKind, r: RecallRow, closure: Closure) {
  const coverage = await coverageOf(db, r)
  const live = await versionOf(db, r.id, r.live_version!)
  const rows = await recipientStates(db, r.id)
    .select([
      sql<number | null>`(select h.version from recall_ack_history h where h.recall_id = rr.recall_id and h.org_id = rr.org_id order by h.seq desc limit 1)`.as('ack_version'),
      sql<number>`(select count(*)::int from recall_ack_history h where h.recall_id = rr.recall_id and h.org_id = rr.org_id)`.as('ack_changes'),
    ])
    .orderBy('rr.org_id')
    .execute()
  const lag = rows.filter((row) => lagging(kind, row))
  const notActing = lag.slice(0, REPORT_LIST_MAX).map((row) => ({ id: row.org_id, name: row.name, role: row.role, department: row.department }))
  const done = rows.filter((row) => row.ack_status === 'done' && row.ack && row.acked_at)
  const acknowledgements = done.slice(0, REPORT_LIST_MAX).map((row) => ({
    org: { id: row.org_id, name: row.name, role: row.role, department: row.department },
    quarantined: row.ack!.quarantined,
    returned: row.ack!.returned,
    destroyed: row.ack!.destroyed,
    noStock: row.ack!.noStock,
    comment: row.ack!.comment ?? null,
    acknowledgedAt: iso(row.acked_at)!,
    version: Number(row.ack_version ?? r.live_version),
    changes: Number(row.ack_changes),
  }))
  const messages = await db.selectFrom('recall_messages').select(['at', 'version', 'kind']).where('recall_id', '=', r.id).where('kind', '<>', 'comment').orderBy('seq').execute()
  const timeline = messages.map((m) => ({ at: iso(m.at)!, version: m.version, event: m.kind }))
  const { recipients, reached, read, acknowledged, done: doneCount } = coverage
  return {
    id: r.id,
    kind,
    reference: r.reference,
    lab: { id: r.lab_id, name: r.lab_name },
    title: live.content.title,
    finalVersion: r.live_version!,
    closure: {
      at: closure.at.toISOString(),
      reason: closure.reason,
      by: closure.actor && (closure.actor.role || closure.actor.org || closure.actor.user) ? { role: closure.actor.role, org: closure.actor.org, user: closure.actor.user } : null,
    },
    batches: kind === 'recall' ? await batchOutcomes(db, r) : [],
    coverage: { recipients, reached, read, acknowledged, done: doneCount },
    quantities: coverage.quantities,
    byCategory: coverage.byCategory,
    byDepartment: coverage.byDepartment,
    notActing,
    notActingTotal: lag.length,
    acknowledgements,
    acknowledgementsTotal: done.length,
    timeline,
    createdAt: iso(r.created_at)!,
    broadcastAt: iso(r.broadcast_at),
    closedAt: closure.at.toISOString(),
  }
}
export type ReportData = Awaited<ReturnType<typeof buildReport>>
export type LocalisedReport = ReturnType<typeof localiseReport<ReportData>>

/**
 * The report made at closure, as stored. A report made before it held the closure, every batch and the
 * acknowledgements is completed from the records (they no longer change once closed).
 */
export async function storedReport(db: Db, kind: PipelineKind, r: RecallRow) {
  const row = await db.selectFrom('recall_reports').select(['report', 'created_at']).where('recall_id', '=', r.id).executeTakeFirst()
  if (!row) throw notFoundFor(kind, `${r.reference} (bilan)`)
  const stored = row.report as ReportData
  if (stored.closure && Array.isArray(stored.acknowledgements)) return { report: stored, createdAt: row.created_at }
  const closed = await db.selectFrom('recall_messages').selectAll().where('recall_id', '=', r.id).where('kind', '=', 'closed').orderBy('seq', 'desc').executeTakeFirst()
  const at = closed?.at ?? r.closed_at ?? row.created_at
  const rebuilt = await buildReport(db, kind, r, { at, reason: closed?.text ?? null, actor: closed ? { role: closed.author_role, org: closed.author_org, user: closed.author_user } : null })
  const { closure, batches, byCategory, notActingTotal, acknowledgements, acknowledgementsTotal } = rebuilt
  return { report: { ...rebuilt, ...stored, closure, batches, byCategory, notActingTotal, acknowledgements, acknowledgementsTotal }, createdAt: row.created_at }
}

/** Closes a message in force: cancels a pending revision, unblocks, makes the report and sends it to ANSM. */
export async function closeRecall(app: FastifyInstance, kind: PipelineKind, id: string, principal: Principal, actor: Actor, reason: string | null) {
  const now = app.now()
  const pre = await visibleRecall(app.db, kind, id, principal)
  if (principal.role !== 'lab') throw notFoundFor(kind, id)
  const target = kind === 'recall' && pre.blocking ? blocksTarget(pre, pre.live_version ?? pre.version, null) : null
  return withBlocksIfAny(app, target, actor, async (tx) => {
    const r = await visibleRecall(tx, kind, id, principal, { forUpdate: true })
    const latest = await versionOf(tx, id, r.version)
    assertAction(kind, r, latest.status, 'close')
    if (['draft', 'submitted', 'changes_requested'].includes(latest.status)) {
      await tx.updateTable('recall_versions').set({ status: 'cancelled', updated_at: now }).where('recall_id', '=', id).where('version', '=', r.version).execute()
      if (latest.status === 'submitted') await closeRound(tx, id, r.version, 'cancelled', reason, actor, now)
    }
    // A blocking version was broadcast between the first read and the lock: its batches must be unblocked too.
    if (kind === 'recall' && !target && r.blocking) throw conflict('Le rappel vient de changer ; recommencez la clôture.', 'The recall just changed; close it again.')
    await tx.updateTable('recalls').set({ status: 'closed', closed_at: now, updated_at: now }).where('id', '=', id).execute()
    await addMessage(tx, id, r.live_version!, 'closed', reason, actor, now)
    const closed = { ...r, status: 'closed' as RecallStatus, closed_at: now }
    const report = await buildReport(tx, kind, closed, { at: now, reason, actor })
    const live = await versionOf(tx, id, r.live_version!)
    const departments = targetDepartments(live.content)
    await publish(
      tx,
      {
        type: `${kind}.closed`,
        payload: {
          kind, id, reference: r.reference, version: r.live_version, title: live.content.title, closedAt: now.toISOString(), closureReason: reason,
          ...(kind === 'recall' ? { batches: live.content.batches, unblocked: r.blocking } : {}),
          notice: closedNotice(kind, r, live.content, reason),
        },
        audience: { roles: live.content.recipients.categories, ...(departments.length ? { departments } : {}) },
        senderOrg: r.lab_id,
        subject: { type: LABEL[kind].object, id },
        fax: true,
      },
      now,
    )
    const ev = await publish(
      tx,
      { type: `${kind}.report`, payload: { ...localiseReport(report, 'fr'), reportUrl: `/v1/${LABEL[kind].path}/${id}/report`, reportPdfUrl: `/v1/${LABEL[kind].path}/${id}/report/pdf` }, audience: { roles: ['ansm'] }, senderOrg: r.lab_id, subject: { type: LABEL[kind].object, id } },
      now,
    )
    await tx.insertInto('recall_reports').values({ recall_id: id, report: JSON.stringify(report), event_id: ev.id, created_at: now }).execute()
    await audit(tx, actor, { action: `${kind}.closed`, objectType: LABEL[kind].object, objectId: id, changes: { reason, coverage: report.coverage, quantities: report.quantities, reportEventId: ev.id } }, now)
    return closed
  })
}

import { randomUUID } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { Transaction } from 'kysely'
import { Type } from 'typebox'
import { actorOf, audit, diff } from '../platform/audit.ts'
import { principalOf } from '../platform/auth.ts'
import { decodeCursor, encodeCursor } from '../platform/cursor.ts'
import { AppError } from '../platform/errors.ts'
import { publish } from '../platform/events/publish.ts'
import { langOf } from '../platform/i18n.ts'
import { IdempotencyKeyHeader, problems } from '../platform/openapi.ts'
import { PageQuery } from '../platform/schemas.ts'
import type { RoutePlugin } from '../platform/types.ts'
import type { DB } from '../platform/db/schema.ts'
import type { PipelineKind, RecallContent, VersionStatus } from './db.ts'
import {
  acknowledgementHistory,
  addMessage,
  approveOrBroadcast,
  assertAction,
  buildContent,
  checkContent,
  closeRecall,
  coverageOf,
  LABEL,
  nextReference,
  notFoundFor,
  type PipelineAction,
  type RecallRow,
  recipientsOf,
  recordAck,
  RECIPIENT_ROLES,
  storedReport,
  toView,
  versionOf,
  visibleRecall,
} from './pipeline.ts'
import { localiseReport } from './report-labels.ts'
import { reportPdf } from './report-pdf.ts'
import { closeRound, contentChanges, historyOf, openRound } from './rounds.ts'
import { AcknowledgementHistory, AcknowledgementInput, Acknowledgement, PaperAcknowledgementInput, CancelScheduleInput, CommentInput, DiscardInput, Coverage, DecisionInput, History, RECALL_STATUSES, RecipientPage, Report, schemasFor, ThreadEntry } from './schemas.ts'

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
const binary = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: 'string', format: 'binary' } } } })
const OptionalComment = Type.Optional(Type.Object({ comment: Type.Optional(Type.String({ minLength: 1, maxLength: 5000 })) }, { additionalProperties: false }))
const READERS = ['lab', 'ansm', 'pharmacy', 'wholesaler', 'hospital'] as const

/**
 * The routes of one kind of message (batch recall or public-health alert): the same life, the same
 * tracking; alerts have no batches, no requested action, no blocking, and are targeted by category and region.
 */
export function pipelineRoutes(kind: PipelineKind): RoutePlugin {
  const S = schemasFor(kind)
  const N = kind === 'recall' ? 'Recall' : 'Alert'
  const base = `/${LABEL[kind].path}`
  const tags = [kind === 'recall' ? 'recalls' : 'alerts']
  const what = kind === 'recall' ? 'recall' : 'alert'
  const object = LABEL[kind].object

  return async (app) => {
    // An action without a body (`curl -X POST …/submit`) is an empty one (this plugin's routes only).
    app.addHook('preValidation', async (request) => {
      if (request.body === undefined && (request.method === 'POST' || request.method === 'PUT')) request.body = {}
    })
    const view = async (db: Parameters<typeof toView>[0], r: RecallRow, role: string, org: string) =>
      toView(db, kind, r, RECIPIENT_ROLES.includes(role as never) ? { recipientOrg: org } : { ansm: role === 'ansm' })

    /**
     * One state change of the latest version: lock, check the action is allowed (409 naming the allowed ones),
     * apply, then the history message, the audit entry and the event for the other side, in one transaction.
     */
    const transition = (
      request: FastifyRequest,
      action: PipelineAction,
      apply: (tx: Transaction<DB>, r: RecallRow, latest: { status: VersionStatus; submitted_at: Date | null; content: RecallContent }, now: Date) => Promise<{ message: string; text: string | null; changes: Record<string, unknown>; notify?: { type: string; to: { orgs: string[] } | { roles: ['ansm'] }; payload: Record<string, unknown> } }>,
    ) => {
      const principal = principalOf(request)
      const actor = actorOf(principal, request.id)
      const now = app.now()
      return app.db.transaction().execute(async (tx) => {
        const r = await visibleRecall(tx, kind, (request.params as { id: string }).id, principal, { forUpdate: true })
        const latest = await versionOf(tx, r.id, r.version)
        assertAction(kind, r, latest.status, action)
        const out = await apply(tx, r, latest, now)
        await addMessage(tx, r.id, r.version, out.message, out.text, actor, now)
        if (out.notify) {
          const payload = { kind, id: r.id, reference: r.reference, version: r.version, title: latest.content.title, ...out.notify.payload }
          await publish(tx, { type: `${kind}.${out.notify.type}`, payload, audience: out.notify.to, senderOrg: principal.org, subject: { type: object, id: r.id } }, now)
        }
        const answer = await view(tx, await visibleRecall(tx, kind, r.id, principal), principal.role, principal.org)
        // Last: the audit chain's lock is held until the commit.
        await audit(tx, actor, { action: `${kind}.${out.message}`, objectType: object, objectId: r.id, changes: { version: r.version, ...out.changes } }, now)
        return answer
      })
    }

    app.post(
      base,
      {
        config: { roles: ['lab'] },
        schema: {
          tags,
          operationId: `create${N}`,
          summary: kind === 'recall' ? 'Draft a batch recall of the lab’s own presentations' : 'Draft a public-health alert',
          description: [
            `Creates version 1 as a draft with a reference (${kind === 'recall' ? 'R' : 'A'}-<year>-<number>). Nothing is sent to anyone until ANSM approves it.`,
            kind === 'recall'
              ? 'Every batch must be of a presentation the lab holds: another lab’s product, or an unknown one, answers 404 naming the field (`body.batches.<i>.cip13`). Recipients: categories, and regions and/or departments (their union); none = all of France, overseas included.'
              : 'Recipients: categories and regions; no region = all of France, overseas included.',
          ].join('\n\n'),
          headers: IdempotencyKeyHeader,
          body: S.Input,
          response: { 201: S.View, ...problems(404) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request)
        const lang = langOf(request)
        const body = request.body as Record<string, unknown>
        const now = app.now()
        const content = buildContent(kind, body, null)
        await checkContent(app.db, kind, content, principal.org, lang, now, body)
        const id = randomUUID()
        const actor = actorOf(principal, request.id)
        const out = await app.db.transaction().execute(async (tx) => {
          const reference = await nextReference(tx, kind, now)
          await tx.insertInto('recalls').values({ id, kind, reference, lab_id: principal.org, status: 'draft', version: 1, live_version: null, created_at: now, updated_at: now }).execute()
          await tx.insertInto('recall_versions').values({ recall_id: id, version: 1, status: 'draft', content: JSON.stringify(content), created_at: now, updated_at: now }).execute()
          await addMessage(tx, id, 1, 'created', null, actor, now)
          await audit(tx, actor, { action: `${kind}.created`, objectType: object, objectId: id, changes: { reference, content } }, now)
          return view(tx, await visibleRecall(tx, kind, id, principal), principal.role, principal.org)
        })
        return reply.code(201).send(out as never)
      },
    )

    app.get(
      base,
      {
        config: { roles: [...READERS] },
        schema: {
          tags,
          operationId: `list${N}s`,
          summary: kind === 'recall' ? 'Recalls the caller may see, newest first' : 'Alerts the caller may see, newest first',
          description: 'A lab sees its own; ANSM every one submitted at least once; a pharmacy, wholesaler or hospital pharmacy those addressed to it (the version in force, with its own acknowledgement). Discarded drafts are left out unless asked for with `status=discarded`.',
          querystring: Type.Object({ status: Type.Optional(Type.Enum([...RECALL_STATUSES])), ...PageQuery }, { additionalProperties: false }),
          response: { 200: S.Page },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const { status, limit = 50, cursor } = request.query
        const filter = { kind, status, org: principal.org }
        let q = app.db.selectFrom('recalls as r').innerJoin('organisations as o', 'o.id', 'r.lab_id').selectAll('r').select('o.name as lab_name').where('r.kind', '=', kind)
        if (principal.role === 'lab') q = q.where('r.lab_id', '=', principal.org)
        else if (principal.role === 'ansm') q = q.where('r.first_submitted_at', 'is not', null)
        else {
          q = q.where('r.live_version', 'is not', null).where((eb) =>
            eb.exists(eb.selectFrom('recall_recipients as rr').select('rr.org_id').whereRef('rr.recall_id', '=', 'r.id').where('rr.org_id', '=', principal.org)),
          )
        }
        if (status) q = q.where('r.status', '=', status)
        else q = q.where('r.status', '<>', 'discarded')
        if (cursor) {
          const p = decodeCursor<{ c: string; id: string }>(cursor, filter)
          q = q.where((eb) => eb.or([eb('r.created_at', '<', new Date(p.c)), eb.and([eb('r.created_at', '=', new Date(p.c)), eb('r.id', '<', p.id)])]))
        }
        const rows = (await q.orderBy('r.created_at', 'desc').orderBy('r.id', 'desc').limit(limit + 1).execute()) as RecallRow[]
        const page = rows.slice(0, limit)
        const items = []
        for (const r of page) items.push(await view(app.db, r, principal.role, principal.org))
        const last = page[page.length - 1]
        return { items, nextCursor: rows.length > limit && last ? encodeCursor({ c: last.created_at.toISOString(), id: last.id }, filter) : null } as never
      },
    )

    app.get(
      `${base}/:id`,
      {
        config: { roles: [...READERS] },
        schema: {
          tags,
          operationId: `get${N}`,
          summary: kind === 'recall' ? 'One recall' : 'One alert',
          description: 'The lab and ANSM see the latest version (with `allowedActions`); a recipient sees the version in force and its own acknowledgement. Anyone else: 404.',
          params: IdParams,
          response: { 200: S.View, ...problems(404) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const r = await visibleRecall(app.db, kind, request.params.id, principal)
        return (await view(app.db, r, principal.role, principal.org)) as never
      },
    )

    app.patch(
      `${base}/:id`,
      {
        config: { roles: ['lab'] },
        schema: {
          tags,
          operationId: `update${N}`,
          summary: kind === 'recall' ? 'Edit the draft, or correct a recall in force (new version)' : 'Edit the draft, or correct an alert in force (new version)',
          description: [
            'On a draft, or after ANSM asked for changes: edits that version.',
            'Once broadcast: drafts a new version from the one in force; it must be submitted and approved again, and the version in force stays in force until then. What recipients already did carries over. While a version is with ANSM: 409 `RECALL_INVALID_TRANSITION` with `allowedActions`.',
          ].join('\n\n'),
          headers: IdempotencyKeyHeader,
          params: IdParams,
          body: S.Patch,
          response: { 200: S.View, ...problems(404, 409) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const lang = langOf(request)
        const body = request.body as Record<string, unknown>
        const now = app.now()
        const actor = actorOf(principal, request.id)
        return (await app.db.transaction().execute(async (tx) => {
          const r = await visibleRecall(tx, kind, request.params.id, principal, { forUpdate: true })
          const latest = await versionOf(tx, r.id, r.version)
          assertAction(kind, r, latest.status, 'edit')
          let content: RecallContent
          if (latest.status === 'draft' || latest.status === 'changes_requested') {
            content = buildContent(kind, body, latest.content)
            await checkContent(tx, kind, content, principal.org, lang, now, body)
            await tx.updateTable('recall_versions').set({ content: JSON.stringify(content), updated_at: now }).where('recall_id', '=', r.id).where('version', '=', r.version).execute()
            await tx.updateTable('recalls').set({ updated_at: now }).where('id', '=', r.id).execute()
            await addMessage(tx, r.id, r.version, 'edited', null, actor, now, contentChanges(latest.content, content))
            await audit(tx, actor, { action: `${kind}.edited`, objectType: object, objectId: r.id, changes: { version: r.version, ...diff(latest.content as never, content as never) } }, now)
          } else {
            const live = await versionOf(tx, r.id, r.live_version!)
            content = buildContent(kind, body, live.content)
            await checkContent(tx, kind, content, principal.org, lang, now, body)
            const version = r.version + 1
            await tx.insertInto('recall_versions').values({ recall_id: r.id, version, status: 'draft', content: JSON.stringify(content), created_at: now, updated_at: now }).execute()
            await tx.updateTable('recalls').set({ version, updated_at: now }).where('id', '=', r.id).execute()
            await addMessage(tx, r.id, version, 'revision', null, actor, now, contentChanges(live.content, content))
            await audit(tx, actor, { action: `${kind}.revision`, objectType: object, objectId: r.id, changes: { version, from: r.live_version, ...diff(live.content as never, content as never) } }, now)
          }
          return view(tx, await visibleRecall(tx, kind, r.id, principal), principal.role, principal.org)
        })) as never
      },
    )

    app.post(
      `${base}/:id/submit`,
      {
        config: { roles: ['lab'] },
        schema: {
          tags,
          operationId: `submit${N}`,
          summary: 'Submit the latest version to ANSM',
          description: 'From draft or after changes were asked. ANSM gets it in its review queue and on its feed (`' + kind + '.submitted`). Otherwise 409 `RECALL_INVALID_TRANSITION` naming the allowed actions.',
          headers: IdempotencyKeyHeader,
          params: IdParams,
          body: OptionalComment,
          response: { 200: S.View, ...problems(404, 409) },
        },
      },
      async (request) => {
        const comment = request.body?.comment ?? null
        const actor = actorOf(principalOf(request), request.id)
        return (await transition(request, 'submit', async (tx, r, latest, now) => {
          // A new round: the decision of an earlier round is not this one's.
          await tx.updateTable('recall_versions').set({ status: 'submitted', submitted_at: now, decided_at: null, updated_at: now }).where('recall_id', '=', r.id).where('version', '=', r.version).execute()
          await openRound(tx, r.id, r.version, latest.content, actor, now)
          await tx
            .updateTable('recalls')
            .set({ updated_at: now, first_submitted_at: r.first_submitted_at ?? now, ...(r.live_version === null ? { status: 'submitted' as const } : {}) })
            .where('id', '=', r.id)
            .execute()
          return {
            message: 'submitted',
            text: comment,
            changes: { comment },
            notify: { type: 'submitted', to: { roles: ['ansm'] }, payload: { lab: { id: r.lab_id, name: r.lab_name }, revision: r.live_version !== null } },
          }
        })) as never
      },
    )

    app.post(
      `${base}/:id/approve`,
      {
        config: { roles: ['ansm'] },
        schema: {
          tags,
          operationId: `approve${N}`,
          summary: 'ANSM approves the submitted version: broadcast now or at the scheduled time',
          description: [
            'Broadcasts at once (or schedules the broadcast when `scheduledAt` is still ahead; a correction of a message in force is broadcast at once) to every targeted organisation: feed and stream for integrated recipients, fax (PDF notice) for wholesalers and hospital pharmacies without an integration.',
            kind === 'recall' ? 'When `blockDispensation` is set, the batches are blocked at the counter in the same transaction as the broadcast; a correction that removes a batch unblocks it.' : '',
          ].filter(Boolean).join('\n\n'),
          headers: IdempotencyKeyHeader,
          params: IdParams,
          body: OptionalComment,
          response: { 200: S.View, ...problems(404, 409) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const actor = actorOf(principal, request.id)
        await approveOrBroadcast(app, kind, request.params.id, actor, { approve: { comment: request.body?.comment ?? null, principal } })
        const r = await visibleRecall(app.db, kind, request.params.id, principal)
        return (await view(app.db, r, principal.role, principal.org)) as never
      },
    )

    for (const decision of ['request-changes', 'reject'] as const) {
      app.post(
        `${base}/:id/${decision}`,
        {
          config: { roles: ['ansm'] },
          schema: {
            tags,
            operationId: `${decision === 'reject' ? 'reject' : 'requestChanges'}${N}`,
            summary: decision === 'reject' ? 'ANSM rejects the submitted version' : 'ANSM asks the lab for changes',
            description:
              decision === 'reject'
                ? 'A comment is required. A first version rejected ends the ' + what + '; a rejected correction leaves the version in force as it is.'
                : 'A comment is required; the lab edits the version and submits it again. The comment is kept in the history.',
            headers: IdempotencyKeyHeader,
            params: IdParams,
            body: DecisionInput,
            response: { 200: S.View, ...problems(404, 409) },
          },
        },
        async (request) => {
          const principal = principalOf(request)
          const lang = langOf(request)
          const comment = request.body.comment
          if (!comment?.trim()) {
            throw new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field: 'body.comment', code: 'required', message: lang === 'fr' ? 'un commentaire est requis' : 'a comment is required' }] })
          }
          const status = decision === 'reject' ? ('rejected' as const) : ('changes_requested' as const)
          const actor = actorOf(principal, request.id)
          return (await transition(request, decision, async (tx, r, _latest, now) => {
            await tx.updateTable('recall_versions').set({ status, decided_at: now, updated_at: now }).where('recall_id', '=', r.id).where('version', '=', r.version).execute()
            await closeRound(tx, r.id, r.version, status, comment ?? null, actor, now)
            await tx.updateTable('recalls').set({ updated_at: now, ...(r.live_version === null ? { status } : {}) }).where('id', '=', r.id).execute()
            return { message: status, text: comment, changes: { comment }, notify: { type: 'reviewed', to: { orgs: [r.lab_id] }, payload: { decision: status, comment } } }
          })) as never
        },
      )
    }

    app.post(
      `${base}/:id/comments`,
      {
        config: { roles: ['lab', 'ansm'] },
        schema: {
          tags,
          operationId: `comment${N}`,
          summary: 'Add a comment to the exchange with ANSM (either side)',
          description: 'Kept in the history with its author. The other side gets it on its feed (`' + kind + '.comment`); ANSM only once the ' + what + ' was submitted.',
          headers: IdempotencyKeyHeader,
          params: IdParams,
          body: CommentInput,
          response: { 201: ThreadEntry, ...problems(404) },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request)
        const now = app.now()
        const actor = actorOf(principal, request.id)
        const entry = await app.db.transaction().execute(async (tx) => {
          const r = await visibleRecall(tx, kind, request.params.id, principal, { forUpdate: true })
          await addMessage(tx, r.id, r.version, 'comment', request.body.text, actor, now)
          await audit(tx, actor, { action: `${kind}.comment`, objectType: object, objectId: r.id, changes: { version: r.version, text: request.body.text } }, now)
          const to = principal.role === 'ansm' ? { orgs: [r.lab_id] } : r.first_submitted_at ? { roles: ['ansm' as const] } : null
          if (to) await publish(tx, { type: `${kind}.comment`, payload: { id: r.id, reference: r.reference, version: r.version, text: request.body.text, from: principal.role }, audience: to, senderOrg: principal.org, subject: { type: object, id: r.id } }, now)
          return { at: now.toISOString(), version: r.version, kind: 'comment', text: request.body.text, author: { role: principal.role, org: principal.org, user: principal.user }, changes: null }
        })
        return reply.code(201).send(entry)
      },
    )

    app.get(
      `${base}/:id/history`,
      {
        config: { roles: ['lab', 'ansm'] },
        schema: {
          tags,
          operationId: `get${N}History`,
          summary: 'Versions and the exchange history with ANSM',
          params: IdParams,
          response: { 200: History, ...problems(404) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const r = await visibleRecall(app.db, kind, request.params.id, principal)
        let vq = app.db.selectFrom('recall_versions').selectAll().where('recall_id', '=', r.id)
        // ANSM sees the versions that were submitted to it, not the lab's drafts.
        if (principal.role === 'ansm') vq = vq.where('submitted_at', 'is not', null)
        const versions = await vq.orderBy('version').execute()
        return { id: r.id, reference: r.reference, ...(await historyOf(app.db, r.id, versions)) } as never
      },
    )

    app.get(
      `${base}/:id/coverage`,
      {
        config: { roles: ['lab', 'ansm'] },
        schema: {
          tags,
          operationId: `get${N}Coverage`,
          summary: 'Live diffusion coverage by category and department',
          description: 'Recipients reached (any channel), read, acknowledged and ' + (kind === 'recall' ? 'having done the action asked, with the quantities reported' : 'read') + '; fax outcomes.',
          params: IdParams,
          response: { 200: Coverage, ...problems(404) },
        },
      },
      async (request) => coverageOf(app.db, await visibleRecall(app.db, kind, request.params.id, principalOf(request))) as never,
    )

    app.get(
      `${base}/:id/recipients`,
      {
        config: { roles: ['lab', 'ansm'] },
        schema: {
          tags,
          operationId: `list${N}Recipients`,
          summary: 'Recipients and what each did; filter those not reached or not acting',
          description: '`status=unreached`: not delivered on any channel; `unread`: not read; `not_acting`: ' + (kind === 'recall' ? 'has not reported the action done' : 'has not read') + '. Ordered by organisation identifier.',
          params: IdParams,
          querystring: Type.Object({ status: Type.Optional(Type.Enum(['unreached', 'unread', 'not_acting'])), ...PageQuery }, { additionalProperties: false }),
          response: { 200: RecipientPage, ...problems(404) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const r = await visibleRecall(app.db, kind, request.params.id, principal)
        const { status, limit = 50, cursor } = request.query
        const filter = { id: r.id, status }
        const after = cursor ? decodeCursor<{ org: string }>(cursor, filter).org : null
        const { items, last } = await recipientsOf(app.db, kind, r, status, after, limit)
        return { items, nextCursor: last ? encodeCursor({ org: last }, filter) : null } as never
      },
    )

    app.put(
      `${base}/:id/acknowledgement`,
      {
        config: { roles: ['pharmacy', 'wholesaler', 'hospital'] },
        schema: {
          tags,
          operationId: `acknowledge${N}`,
          summary: kind === 'recall' ? 'Acknowledge a recall: read, or the action done with quantities' : 'Acknowledge an alert (read)',
          description: [
            kind === 'recall'
              ? '`status: read` when seen; `status: done` with the boxes quarantined / returned / destroyed, or `noStock: true`.'
              : '`status: read`.',
            'Idempotent: the same acknowledgement again changes nothing (`changes` stays the same); a different one replaces it and the previous is kept in the history. `read` after `done` changes nothing. Only for a ' + what + ' addressed to the caller (else 404), while in force (else 409).',
          ].join('\n\n'),
          params: IdParams,
          headers: IdempotencyKeyHeader,
          body: AcknowledgementInput,
          response: { 200: Acknowledgement, ...problems(404, 409) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const { view: ack } = await recordAck(app, kind, request.params.id, principal, actorOf(principal, request.id), request.body, langOf(request))
        return ack as never
      },
    )

    app.post(
      `${base}/:id/discard`,
      {
        config: { roles: ['lab'] },
        schema: {
          tags,
          operationId: `discard${N}`,
          summary: kind === 'recall' ? 'Discard a recall never broadcast, or a correction not yet approved' : 'Discard an alert never broadcast, or a correction not yet approved',
          description: [
            'The owning lab drops a version that was never broadcast: a draft, a version ANSM sent back for changes, or a version still waiting in ANSM’s review queue (the lab withdraws it; ANSM gets `' + kind + '.discarded` on its feed, as it does whenever it had seen the version).',
            'A first version: the ' + what + ' becomes `discarded`, a terminal status. Its row stays (references are gapless and never reused); it leaves ANSM’s review queue and the lists (unless `status=discarded` is asked), stays readable by its lab (and by ANSM if it was ever submitted) with its history, and every further action answers 409 `RECALL_INVALID_TRANSITION` with `allowedActions: []`.',
            'A correction of a ' + what + ' in force: only that version is discarded (version status `discarded`, kept in the history); the version in force stays in force, untouched' + (kind === 'recall' ? ' (blocked batches included)' : '') + ', and the lab may draft another correction.',
            'Approved and waiting for its scheduled time: cancel the schedule first (`cancel-schedule`). Once broadcast: 409 (closing is the way).',
          ].join('\n\n'),
          headers: IdempotencyKeyHeader,
          params: IdParams,
          body: Type.Optional(DiscardInput),
          response: { 200: S.View, ...problems(404, 409) },
        },
      },
      async (request) => {
        const reason = request.body?.reason ?? null
        return (await transition(request, 'discard', async (tx, r, latest, now) => {
          const whole = r.live_version === null
          await tx.updateTable('recall_versions').set({ status: 'discarded', updated_at: now }).where('recall_id', '=', r.id).where('version', '=', r.version).execute()
          await tx.updateTable('recalls').set({ updated_at: now, ...(whole ? { status: 'discarded' as const } : {}) }).where('id', '=', r.id).execute()
          const withdrawn = latest.status === 'submitted'
          if (withdrawn) await closeRound(tx, r.id, r.version, 'withdrawn', reason, actorOf(principalOf(request), request.id), now)
          return {
            message: 'discarded',
            text: reason,
            changes: { reason, from: latest.status, whole },
            // ANSM hears of it only if it ever saw this version.
            ...(latest.submitted_at ? { notify: { type: 'discarded', to: { roles: ['ansm'] as ['ansm'] }, payload: { reason, withdrawn, revision: !whole } } } : {}),
          }
        })) as never
      },
    )

    app.post(
      `${base}/:id/cancel-schedule`,
      {
        config: { roles: ['lab', 'ansm'] },
        schema: {
          tags,
          operationId: `cancelScheduled${N}Broadcast`,
          summary: 'Cancel a scheduled broadcast before it goes out (owning lab or ANSM)',
          description: [
            'Only while the first version is approved and waiting for its `scheduledAt`. The approval is withdrawn: the version goes back to `draft` (status `draft`), so the lab can edit it (another `scheduledAt` included) and submit it again for a new approval; nothing is discarded, so the lab can also discard it afterwards. A cancelled state was not chosen because a recall put on hold usually goes out later, corrected, under the same reference.',
            'The reason is required and kept in the history with who cancelled (`schedule_cancelled`); the other side is told on its feed (`' + kind + '.schedule_cancelled`). The queued broadcast then broadcasts nothing when its time comes. Once broadcast: 409 `RECALL_INVALID_TRANSITION` (closing is the way).',
          ].join('\n\n'),
          headers: IdempotencyKeyHeader,
          params: IdParams,
          body: CancelScheduleInput,
          response: { 200: S.View, ...problems(404, 409) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const reason = request.body.reason
        return (await transition(request, 'cancel-schedule', async (tx, r, latest, now) => {
          await tx.updateTable('recall_versions').set({ status: 'draft', decided_at: null, updated_at: now }).where('recall_id', '=', r.id).where('version', '=', r.version).execute()
          await tx.updateTable('recalls').set({ status: 'draft', updated_at: now }).where('id', '=', r.id).execute()
          const to = principal.role === 'ansm' ? { orgs: [r.lab_id] } : { roles: ['ansm'] as ['ansm'] }
          return { message: 'schedule_cancelled', text: reason, changes: { reason, from: latest.status }, notify: { type: 'schedule_cancelled', to, payload: { reason, by: principal.role } } }
        })) as never
      },
    )

    app.get(
      `${base}/:id/acknowledgement`,
      {
        config: { roles: [...READERS] },
        schema: {
          tags,
          operationId: `get${N}Acknowledgement`,
          summary: 'The caller’s own acknowledgement and its history',
          description: [
            'For a pharmacy, wholesaler or hospital pharmacy the ' + what + ' was addressed to: its current acknowledgement (as `PUT` answers it) and every distinct one it gave, oldest first, with the version in force then, when and who. Readable after closing too.',
            'A recipient that never acknowledged: 200 with `current: null` and an empty history (the ' + what + ' is addressed to it, as its `GET` shows with `acknowledgement: null`). Anyone else — another pharmacy, the lab, ANSM — 404: the lab and ANSM follow acknowledgements through `/coverage` and `/recipients`.',
          ].join('\n\n'),
          params: IdParams,
          response: { 200: AcknowledgementHistory, ...problems(404) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        if (!RECIPIENT_ROLES.includes(principal.role)) throw notFoundFor(kind, request.params.id)
        const r = await visibleRecall(app.db, kind, request.params.id, principal)
        return (await acknowledgementHistory(app.db, kind, r, principal.org)) as never
      },
    )

    app.put(
      `${base}/:id/recipients/:orgId/acknowledgement`,
      {
        config: { roles: ['lab'] },
        schema: {
          tags,
          operationId: `record${N}PaperAcknowledgement`,
          summary: 'Lab: record the acknowledgement a recipient sent back on paper',
          description: [
            'A wholesaler or hospital pharmacy reached by fax (or by letter) returns the signed form at the end of the notice: ' + (kind === 'recall' ? 'the boxes quarantined, returned, destroyed, or none in stock' : 'that it read the message') + '. The owning lab records it here for that recipient, with how it came back (`source`), who signed and when.',
            'The same rules as the recipient’s own acknowledgement apply (a `done` says what was done; `read` after `done` changes nothing; the same one again records nothing); it counts in coverage and the report, and the history shows it as recorded by the lab from the paper form. Another lab’s ' + what + ', or an organisation it was not addressed to: 404; closed: 409.',
          ].join('\n\n'),
          params: Type.Object({ id: Type.String({ format: 'uuid' }), orgId: Type.String({ minLength: 1, maxLength: 20, description: 'The recipient (FINESS).' }) }),
          headers: IdempotencyKeyHeader,
          body: PaperAcknowledgementInput,
          response: { 200: Acknowledgement, ...problems(404, 409) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        const { source, signedBy, signedOn, ...body } = request.body
        const onBehalf = { org: request.params.orgId, source, signedBy, signedOn }
        const { view: ack } = await recordAck(app, kind, request.params.id, principal, actorOf(principal, request.id), body, langOf(request), onBehalf)
        return ack as never
      },
    )

    app.get(
      `${base}/:id/recipients/:orgId/acknowledgement`,
      {
        config: { roles: ['lab', 'ansm'] },
        schema: {
          tags,
          operationId: `getRecipient${N}Acknowledgement`,
          summary: 'Lab and ANSM: one recipient’s acknowledgement and its history',
          description: 'The owning lab and ANSM read what a recipient of the ' + what + ' acknowledged, and every earlier acknowledgement it gave, oldest first (with the version in force then, when and who). Another lab’s ' + what + ', or an organisation it was not addressed to: 404.',
          params: Type.Object({ id: Type.String({ format: 'uuid' }), orgId: Type.String({ minLength: 1, maxLength: 20, description: 'The recipient (FINESS).' }) }),
          response: { 200: AcknowledgementHistory, ...problems(404) },
        },
      },
      async (request) => {
        const r = await visibleRecall(app.db, kind, request.params.id, principalOf(request))
        return (await acknowledgementHistory(app.db, kind, r, request.params.orgId)) as never
      },
    )

    app.post(
      `${base}/:id/close`,
      {
        config: { roles: ['lab'] },
        schema: {
          tags,
          operationId: `close${N}`,
          summary: kind === 'recall' ? 'Close the recall: unblock, make the report, send it to ANSM' : 'Close the alert: make the report, send it to ANSM',
          description: 'Only a ' + what + ' in force. A correction still in review is cancelled. ' + (kind === 'recall' ? 'Blocked batches are released in the same transaction. ' : '') + 'The report (coverage, quantities, timeline) is stored, published to ANSM (`' + kind + '.report`) and readable as JSON and PDF.',
          headers: IdempotencyKeyHeader,
          params: IdParams,
          body: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false })),
          response: { 200: S.View, ...problems(404, 409) },
        },
      },
      async (request) => {
        const principal = principalOf(request)
        await closeRecall(app, kind, request.params.id, principal, actorOf(principal, request.id), request.body?.reason ?? null)
        return (await view(app.db, await visibleRecall(app.db, kind, request.params.id, principal), principal.role, principal.org)) as never
      },
    )

    const loadReport = async (request: FastifyRequest) => {
      const r = await visibleRecall(app.db, kind, (request.params as { id: string }).id, principalOf(request))
      const { report, createdAt } = await storedReport(app.db, kind, r)
      return { report: localiseReport(report, langOf(request)), createdAt }
    }

    app.get(
      `${base}/:id/report`,
      {
        config: { roles: ['lab', 'ansm'] },
        schema: {
          tags,
          operationId: `get${N}Report`,
          summary: 'The report (bilan), once closed',
          description: '404 until the ' + what + ' is closed.',
          params: IdParams,
          response: { 200: Report, ...problems(404) },
        },
      },
      async (request) => (await loadReport(request)).report as never,
    )

    app.get(
      `${base}/:id/report/pdf`,
      {
        config: { roles: ['lab', 'ansm'] },
        schema: {
          tags,
          operationId: `get${N}ReportPdf`,
          summary: 'The report (bilan) as a PDF',
          params: IdParams,
          response: { 200: binary('application/pdf', 'The report (PDF)'), ...problems(404) },
        },
      },
      async (request, reply) => {
        const { report, createdAt } = await loadReport(request)
        const pdf = await reportPdf(report, createdAt)
        return reply.type('application/pdf').header('content-disposition', `attachment; filename="bilan-${report.reference}.pdf"`).header('cache-control', 'private, no-store').send(pdf)
      },
    )
  }
}

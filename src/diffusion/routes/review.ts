/** The exchange with ANSM: the lab submits, ANSM decides, either side cancels a schedule or comments; the history. */
import { principalOf } from '../../platform/auth.ts'
import { AppError } from '../../platform/errors.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { CancelScheduleInput, CommentInput, DecisionInput, History, ThreadEntry } from '../schemas.ts'
import { addComment, approveMessage, cancelScheduledBroadcast, decideMessage, historyFor, submitMessage } from '../use-cases/review.ts'
import { type AddRoutes, IdParams, OptionalComment, whoOf } from './common.ts'

export const submit: AddRoutes = (app, { kind, S, N, base, tags, deps }) => {
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
    async (request) => (await submitMessage(deps, kind, whoOf(request), request.params.id, request.body?.comment ?? null)) as never,
  )
}

export const approve: AddRoutes = (app, { kind, S, N, base, tags, deps }) => {
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
    async (request) => (await approveMessage(deps, kind, whoOf(request), request.params.id, request.body?.comment ?? null)) as never,
  )
}

/** request-changes and reject: the same route but for the decision. */
export const decide: AddRoutes = (app, { kind, S, N, base, tags, what, deps }) => {
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
        const who = whoOf(request)
        const comment = request.body.comment
        if (!comment?.trim()) {
          throw new AppError('VALIDATION_FAILED', { count: 1 }, { errors: [{ field: 'body.comment', code: 'required', message: who.lang === 'fr' ? 'un commentaire est requis' : 'a comment is required' }] })
        }
        return (await decideMessage(deps, kind, who, request.params.id, decision, comment)) as never
      },
    )
  }
}

export const cancelSchedule: AddRoutes = (app, { kind, S, N, base, tags, deps }) => {
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
    async (request) => (await cancelScheduledBroadcast(deps, kind, whoOf(request), request.params.id, request.body.reason)) as never,
  )
}

export const comment: AddRoutes = (app, { kind, N, base, tags, what, deps }) => {
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
    async (request, reply) => reply.code(201).send(await addComment(deps, kind, whoOf(request), request.params.id, request.body.text)),
  )
}

export const history: AddRoutes = (app, { kind, N, base, tags, deps }) => {
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
    async (request) => (await historyFor(deps, kind, principalOf(request), request.params.id)) as never,
  )
}

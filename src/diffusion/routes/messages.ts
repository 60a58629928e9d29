/** The message itself: the lab drafts, edits and discards it; every reader lists and reads what it may see. */
import { Type } from 'typebox'
import { principalOf } from '../../platform/auth.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { PageQuery } from '../../platform/schemas.ts'
import { DiscardInput, RECALL_STATUSES } from '../schemas.ts'
import { createMessage, discardMessage, editMessage, getMessage, listMessages } from '../use-cases/messages.ts'
import type { ContentInput } from '../rules/content.ts'
import { type AddRoutes, IdParams, READERS, whoOf } from './common.ts'

export const create: AddRoutes = (app, { kind, S, N, base, tags, deps }) => {
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
      // The kind's schema (recall or alert) has validated the body; ContentInput is both kinds' fields.
      const out = await createMessage(deps, kind, whoOf(request), request.body as ContentInput)
      return reply.code(201).send(out as never)
    },
  )
}

export const list: AddRoutes = (app, { kind, S, N, base, tags, deps }) => {
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
      const { status, limit = 50, cursor } = request.query
      return (await listMessages(deps, kind, principalOf(request), { status, limit, cursor })) as never
    },
  )
}

export const get: AddRoutes = (app, { kind, S, N, base, tags, deps }) => {
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
    async (request) => (await getMessage(deps, kind, principalOf(request), request.params.id)) as never,
  )
}

export const edit: AddRoutes = (app, { kind, S, N, base, tags, deps }) => {
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
    async (request) => (await editMessage(deps, kind, whoOf(request), request.params.id, request.body as ContentInput)) as never,
  )
}

export const discard: AddRoutes = (app, { kind, S, N, base, tags, what, deps }) => {
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
    async (request) => (await discardMessage(deps, kind, whoOf(request), request.params.id, request.body?.reason ?? null)) as never,
  )
}

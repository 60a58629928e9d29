/** Following a message in force: coverage and recipients (lab, ANSM), and acknowledgements (recipients, or the lab on paper). */
import { Type } from 'typebox'
import { principalOf } from '../../platform/auth.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { PageQuery } from '../../platform/schemas.ts'
import { Acknowledgement, AcknowledgementHistory, AcknowledgementInput, Coverage, PaperAcknowledgementInput, RecipientPage } from '../schemas.ts'
import { acknowledge, getCoverage, getOwnAcknowledgement, getRecipientAcknowledgement, listRecipients } from '../use-cases/tracking.ts'
import { type AddRoutes, IdParams, READERS, RecipientParams, whoOf } from './common.ts'

export const coverage: AddRoutes = (app, { kind, N, base, tags, deps }) => {
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
    async (request) => (await getCoverage(deps, kind, principalOf(request), request.params.id)) as never,
  )
}

export const recipients: AddRoutes = (app, { kind, N, base, tags, deps }) => {
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
      const { status, limit = 50, cursor } = request.query
      return (await listRecipients(deps, kind, principalOf(request), request.params.id, { status, limit, cursor })) as never
    },
  )
}

export const acknowledgement: AddRoutes = (app, { kind, N, base, tags, what, deps }) => {
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
    async (request) => (await acknowledge(deps, kind, whoOf(request), request.params.id, request.body)) as never,
  )
}

export const ownAcknowledgement: AddRoutes = (app, { kind, N, base, tags, what, deps }) => {
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
    async (request) => (await getOwnAcknowledgement(deps, kind, principalOf(request), request.params.id)) as never,
  )
}

export const paperAcknowledgement: AddRoutes = (app, { kind, N, base, tags, what, deps }) => {
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
        params: RecipientParams,
        headers: IdempotencyKeyHeader,
        body: PaperAcknowledgementInput,
        response: { 200: Acknowledgement, ...problems(404, 409) },
      },
    },
    async (request) => {
      const { source, signedBy, signedOn, ...body } = request.body
      const onBehalf = { org: request.params.orgId, source, signedBy, signedOn }
      return (await acknowledge(deps, kind, whoOf(request), request.params.id, body, onBehalf)) as never
    },
  )
}

export const recipientAcknowledgement: AddRoutes = (app, { kind, N, base, tags, what, deps }) => {
  app.get(
    `${base}/:id/recipients/:orgId/acknowledgement`,
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags,
        operationId: `getRecipient${N}Acknowledgement`,
        summary: 'Lab and ANSM: one recipient’s acknowledgement and its history',
        description: 'The owning lab and ANSM read what a recipient of the ' + what + ' acknowledged, and every earlier acknowledgement it gave, oldest first (with the version in force then, when and who). Another lab’s ' + what + ', or an organisation it was not addressed to: 404.',
        params: RecipientParams,
        response: { 200: AcknowledgementHistory, ...problems(404) },
      },
    },
    async (request) => (await getRecipientAcknowledgement(deps, kind, principalOf(request), request.params.id, request.params.orgId)) as never,
  )
}

import { Type } from 'typebox'
import { actorOf } from '../audit.ts'
import { principalOf } from '../auth.ts'
import { decodeCursor, encodeCursor } from '../cursor.ts'
import { langOf } from '../i18n.ts'
import { IdempotencyKeyHeader, problems } from '../openapi.ts'
import { component, PageQuery } from '../schemas.ts'
import type { RoutePlugin } from '../types.ts'
import { getLetter, letterPdf, letterView, listLetters, recordLetterSent } from './letters.ts'

const nullable = <T extends Parameters<typeof Type.Union>[0][number]>(s: T) => Type.Union([s, Type.Null()])
const Address = Type.Object(
  { line1: Type.String(), line2: nullable(Type.String()), postalCode: Type.String(), city: Type.String() },
  { description: 'A French postal address: street line(s), postal code, city.' },
)
const Who = nullable(Type.Object({ role: nullable(Type.String()), org: nullable(Type.String()), user: nullable(Type.String()) }))

const example = {
  id: '6f1d2c3b-4a5e-4f60-8172-839405a6b7c8', status: 'pending',
  event: { id: '0b7e2a55-3c1d-4c55-9d7e-8f3a2b1c4d5e', type: 'recall.broadcast', label: 'Rappel de lots', createdAt: '2026-11-22T09:14:03.000Z' },
  reference: 'R-2026-0001', subject: { type: 'recall', id: '7c1e2f4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b' },
  recipient: { id: '920100070', name: 'Répartition Île-de-France', role: 'wholesaler', address: { line1: '12 rue des Entrepôts', line2: null, postalCode: '92000', city: 'Nanterre' } },
  sender: { id: '412345670', name: 'BIOGARAN' }, faxAttempts: 7, lastError: 'ligne occupée', createdAt: '2026-11-22T17:02:00.000Z',
  sentAt: null, sentBy: null, recordedAt: null, trackingNumber: null, comment: null, address: null, pdfUrl: '/v1/paper-letters/6f1d2c3b-4a5e-4f60-8172-839405a6b7c8/pdf',
}

export const PaperLetter = component(
  Type.Object(
    {
      id: Type.String({ format: 'uuid' }),
      status: Type.Enum(['pending', 'sent'], { description: 'pending: to print and post; sent: recorded as sent by the sender.' }),
      event: Type.Object({ id: Type.String({ format: 'uuid' }), type: Type.String(), label: Type.String(), createdAt: Type.String({ format: 'date-time' }) }, { description: 'The message that could not be faxed.' }),
      reference: nullable(Type.String({ description: 'The message’s reference (R-2026-0001…).' })),
      subject: nullable(Type.Object({ type: Type.String(), id: Type.String() })),
      recipient: Type.Object({ id: Type.String(), name: Type.String(), role: Type.String(), address: nullable(Address) }, { description: 'Its current postal address; null while incomplete (the PDF then answers 409).' }),
      sender: nullable(Type.Object({ id: Type.String(), name: Type.String() }, { description: 'Who sends it; null for the service’s own messages (the operator sends them).' })),
      faxAttempts: Type.Integer(),
      lastError: nullable(Type.String({ description: 'Why the last fax attempt failed.' })),
      createdAt: Type.String({ format: 'date-time', description: 'When the fax was given up.' }),
      sentAt: nullable(Type.String({ format: 'date-time' })),
      sentBy: Who,
      recordedAt: nullable(Type.String({ format: 'date-time' })),
      trackingNumber: nullable(Type.String()),
      comment: nullable(Type.String()),
      address: nullable(Address),
      pdfUrl: Type.String(),
    },
    { $id: 'PaperLetter', description: 'A letter to post because a fax failed after every retry. `address`: where it was sent, as recorded.', examples: [example] },
  ),
)
const PaperLetterPage = component(Type.Object({ items: Type.Array(PaperLetter), nextCursor: nullable(Type.String()) }, { $id: 'PaperLetterPage' }))
export const PaperLetterSent = component(
  Type.Object(
    {
      sentAt: Type.Optional(Type.String({ format: 'date-time', description: 'When it was posted; default now. Not in the future, not before the letter was asked for.' })),
      trackingNumber: Type.Optional(Type.String({ minLength: 1, maxLength: 60, description: 'A registered-mail or tracking number.' })),
      comment: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })),
    },
    { $id: 'PaperLetterSentInput', additionalProperties: false, examples: [{ trackingNumber: '1A 234 567 8901 2' }] },
  ),
)

import { IdParams } from '../schemas.ts'
const binary = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: 'string', format: 'binary' } } } })
const ROLES = ['lab', 'ordre'] as const
const TAGS = ['events']

/**
 * Paper letters: a fax that failed after every retry becomes a letter the sender prints (PDF to the recipient's
 * postal address), posts, and records as sent. The lab sees the letters of its own messages; the operator all.
 */
const letterRoutes: RoutePlugin = async (app) => {
  app.get(
    '/paper-letters',
    {
      config: { roles: [...ROLES] },
      schema: {
        tags: TAGS,
        operationId: 'listPaperLetters',
        summary: 'Letters to post because a fax failed, newest first',
        description: 'A lab sees the letters for its own messages (each also announced on its feed as `fax.letter_required`); the operator sees every letter. Filter with `status=pending` for those still to post.',
        querystring: Type.Object({ status: Type.Optional(Type.Enum(['pending', 'sent'])), ...PageQuery }, { additionalProperties: false }),
        response: { 200: PaperLetterPage },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const { status, limit = 50, cursor } = request.query
      const filter = { status, org: principal.org }
      const after = cursor ? decodeCursor<{ at: string; id: string }>(cursor, filter) : null
      const { rows, more } = await listLetters(app.db, principal, { status, after, limit })
      const last = rows.at(-1)
      return { items: rows.map((r) => letterView(r, langOf(request))), nextCursor: more && last ? encodeCursor({ at: last.created_at.toISOString(), id: last.id }, filter) : null } as never
    },
  )

  app.get(
    '/paper-letters/:id',
    {
      config: { roles: [...ROLES] },
      schema: { tags: TAGS, operationId: 'getPaperLetter', summary: 'One letter to post', description: 'Another lab’s letter answers 404.', params: IdParams, response: { 200: PaperLetter, ...problems(404) } },
    },
    async (request) => letterView(await getLetter(app.db, principalOf(request), request.params.id), langOf(request)) as never,
  )

  app.get(
    '/paper-letters/:id/pdf',
    {
      config: { roles: [...ROLES] },
      schema: {
        tags: TAGS,
        operationId: 'getPaperLetterPdf',
        summary: 'The letter to print, as a PDF',
        description: 'A French letter addressed for a window envelope (the recipient’s name and postal address), the message as it was faxed, and the acknowledgement form to post back. 409 `POSTAL_ADDRESS_MISSING` while the recipient has no complete postal address (the operator adds it with `PATCH /v1/organisations/{id}`).',
        params: IdParams,
        response: { 200: binary('application/pdf', 'The letter (PDF)'), ...problems(404, 409) },
      },
    },
    async (request, reply) => {
      const { pdf, letter } = await letterPdf(app.db, principalOf(request), request.params.id, app.now(), app.config.PUBLIC_URL)
      return reply
        .type('application/pdf')
        .header('content-disposition', `attachment; filename="courrier-${letter.org_id}-${letter.event_id.slice(0, 8)}.pdf"`)
        .header('cache-control', 'private, no-store')
        .send(pdf)
    },
  )

  app.post(
    '/paper-letters/:id/sent',
    {
      config: { roles: [...ROLES] },
      schema: {
        tags: TAGS,
        operationId: 'recordPaperLetterSent',
        summary: 'Record that the letter was posted',
        description: 'Once: a letter already recorded answers 409. The recipient’s postal address at that moment is kept with it; the recall’s coverage counts it (`letters.sent`) and shows it on the recipient (`letter`).',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: Type.Optional(PaperLetterSent),
        response: { 200: PaperLetter, ...problems(404, 409, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const row = await recordLetterSent(app.db, principal, actorOf(principal, request.id), request.params.id, request.body ?? {}, langOf(request), app.now())
      return letterView(row, langOf(request)) as never
    },
  )
}
export default letterRoutes

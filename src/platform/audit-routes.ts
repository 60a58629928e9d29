import type { RoutePlugin } from './types.ts'
import { Type } from 'typebox'
import { AUDIT_CHAINS, auditHistory, verifyAudit } from './audit.ts'
import { component, HistoryEntry } from './schemas.ts'

const Reason = Type.Enum(['modified', 'missing', 'relinked'], { description: 'modified: the row’s content changed; missing: a row was deleted; relinked: its link to the previous row was altered.' })

const AuditVerification = component(
  Type.Object(
    {
      ok: Type.Boolean(),
      checked: Type.Integer({ description: 'Entries whose hash and link were checked, all chains together.' }),
      chains: Type.Array(
        Type.Object({
          chain: Type.Integer({ minimum: 0 }),
          checked: Type.Integer(),
          lastPosition: Type.Integer({ description: 'Position of the last entry of the intact part of this chain (0: empty).' }),
          lastHash: Type.String({ description: 'Its hash: keep it; a later run must show it again at the same position.' }),
          broken: Type.Optional(Type.Object({ position: Type.Integer(), reason: Reason })),
        }),
        { description: `The trail is ${AUDIT_CHAINS} hash chains (entries are spread by the acting organisation), each verified on its own.` },
      ),
      broken: Type.Optional(Type.Object({ chain: Type.Integer(), position: Type.Integer(), reason: Reason }, { description: 'The first break found.' })),
    },
    {
      $id: 'AuditVerification',
      examples: [
        {
          ok: false,
          checked: 41,
          chains: [
            { chain: 0, checked: 30, lastPosition: 30, lastHash: '9c0e…' },
            { chain: 1, checked: 11, lastPosition: 11, lastHash: 'a3f1…', broken: { position: 12, reason: 'modified' } },
          ],
          broken: { chain: 1, position: 12, reason: 'modified' },
        },
      ],
    },
  ),
)

const auditRoutes: RoutePlugin = async (app) => {
  app.get(
    '/audit/verify',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['audit'],
        operationId: 'verifyAuditTrail',
        summary: 'Verify the audit trail’s hash chain (operator)',
        description: 'Recomputes every entry’s hash and link, chain by chain. Also available offline: `npm run audit:verify`. Keep each chain’s `lastPosition` and `lastHash`: a later run must show the same hash at that position (this also catches the newest entries being deleted).',
        response: { 200: AuditVerification },
      },
    },
    async () => verifyAudit(app.db),
  )

  app.get(
    '/audit/entries',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['audit'],
        operationId: 'getAuditEntries',
        summary: 'History of any object (operator)',
        querystring: Type.Object(
          { objectType: Type.String({ minLength: 1, maxLength: 60, examples: ['organisation'] }), objectId: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Array(HistoryEntry) },
      },
    },
    async (request) => auditHistory(app.db, request.query.objectType, request.query.objectId),
  )
}

export default auditRoutes

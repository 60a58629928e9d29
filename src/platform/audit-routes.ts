import type { RoutePlugin } from './types.ts'
import { Type } from 'typebox'
import { auditHistory, verifyAudit } from './audit.ts'
import { component } from './schemas.ts'
import { HistoryEntry } from '../referential/organisations.ts'

const AuditVerification = component(
  Type.Object(
    {
      ok: Type.Boolean(),
      checked: Type.Integer({ description: 'Entries whose hash and link were checked.' }),
      lastSeq: Type.Integer({ description: 'Last entry of the intact chain.' }),
      lastHash: Type.String({ description: 'Its hash: keep it; a later run must show it again at the same seq.' }),
      broken: Type.Optional(
        Type.Object({
          seq: Type.Integer(),
          reason: Type.Enum(['modified', 'missing', 'relinked'], { description: 'modified: the row’s content changed; missing: a row was deleted; relinked: its link to the previous row was altered.' }),
        }),
      ),
    },
    { $id: 'AuditVerification', examples: [{ ok: false, checked: 41, lastSeq: 41, lastHash: 'a3f1…', broken: { seq: 42, reason: 'modified' } }] },
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
        description: 'Recomputes every entry’s hash and link. Also available offline: `npm run audit:verify`.',
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

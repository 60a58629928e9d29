import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { ERRORS, Problem } from './errors.ts'
import { registeredSchemas } from './schemas.ts'

const problemContent = { 'application/problem+json': { schema: Problem } }

const STATUS_TEXT: Record<number, string> = {
  400: 'Requête invalide (champ, raison) — invalid request',
  401: 'Jeton absent, invalide ou expiré — missing, invalid or expired token',
  403: 'Rôle non autorisé ou organisation inconnue — role not allowed or organisation not registered',
  404: 'Introuvable (ou appartenant à une autre organisation) — not found (or another organisation’s)',
  409: 'Conflit avec l’état courant — conflict with the current state',
  413: 'Requête trop volumineuse — payload too large',
  422: 'Clé d’idempotence réutilisée avec une autre requête — idempotency key reused',
  429: 'Trop de requêtes — too many requests',
  500: 'Erreur interne (sans détail interne) — internal error',
  503: 'Surcharge ou base de données indisponible — overloaded or database unavailable',
}

/** Error responses of a route, documented as problem+json. */
export function problems(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, { description: STATUS_TEXT[s] ?? 'Erreur', content: problemContent }])) as Record<number, any>
}

export const IdempotencyKeyHeader = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      description:
        'Makes a retry safe: the same key with the same body replays the first response (header Idempotent-Replayed: true); with another body → 422; while the first is running → 409. Keys are kept 24 h per organisation.',
      examples: ['4d6f8c1e-2b7a-4f2e-9a51-0e7c3b1f9d22'],
    }),
  ),
})

/**
 * Adds to every route what the contract must show and the code would otherwise repeat: security and the
 * roles allowed (x-roles, and in the description), the generic error responses.
 */
function documentRoute(route: RouteOptions) {
  const schema = (route.schema ??= {}) as Record<string, any>
  const roles = route.config && 'roles' in route.config ? (route.config as { roles?: unknown }).roles : undefined
  schema.response ??= {}
  const add = (...statuses: number[]) => {
    for (const s of statuses) schema.response[s] ??= problems(s)[s]
  }
  if (Array.isArray(roles)) {
    schema.security = [{ bearerAuth: [] }]
    schema['x-roles'] = roles
    const line = `**Rôles autorisés :** ${roles.map((r) => `\`${r}\``).join(', ')}`
    // HEAD routes share the GET route's schema object: add the line once.
    if (!String(schema.description ?? '').includes(line)) schema.description = schema.description ? `${schema.description}\n\n${line}` : line
    add(401, 403)
  } else if (roles === 'public') {
    schema.security = []
  }
  if (schema.body || schema.querystring || schema.params || schema.headers) add(400)
  if (route.url.startsWith('/v1')) add(429, 500, 503)
}

export default fp(
  async function openapi(app: FastifyInstance, opts: { version: string }) {
    for (const s of registeredSchemas()) app.addSchema(s)
    app.addHook('onRoute', documentRoute)

    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Portail DP — API nationale',
          version: opts.version,
          description: [
            'API of the national pharmacy services: shortages (DP-Ruptures), recalls and alerts (DP-Rappels, DP-Alertes Labo), serialization verification and e-prescription.',
            '',
            'Authentication: `Authorization: Bearer <JWT>` whose claims carry `role`, `org` (FINESS, SIREN, RPPS or the fixed code of ANSM / ORDRE / MINISTERE) and `sub` (the user). Each operation lists the roles allowed (`x-roles`).',
            '',
            'Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`; French by default, English with `Accept-Language: en`. The catalogue of codes is at `GET /problems`.',
            '',
            'Writes that a client may retry accept an `Idempotency-Key` header.',
          ].join('\n'),
        },
        servers: [{ url: '/', description: 'this server' }],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'JWT with claims role, org, sub, exp.' },
          },
        },
        tags: [
          { name: 'referential', description: 'Products (BDPM) and organisations' },
          { name: 'shortages', description: 'DP-Ruptures: shortage signals, declarations, automatic responses, ANSM reporting, statistics' },
          { name: 'events', description: 'Your feed of events (pull, long-poll, Server-Sent Events), read receipts, coverage of what you sent' },
          { name: 'webhooks', description: 'Your webhook endpoints (Standard Webhooks), deliveries, replay, secret rotation' },
          { name: 'serialization', description: 'Pack verification and decommissioning (falsified-medicines rules), lab uploads, return codes' },
          { name: 'recalls', description: 'DP-Rappels: batch recalls, ANSM validation, broadcast, diffusion tracking, report' },
          { name: 'alerts', description: 'DP-Alertes Labo: public-health alerts, ANSM validation, broadcast, read tracking' },
          { name: 'dispensation', description: 'Blocking of dispensation: is any box of this dispensation in a recalled batch?' },
          { name: 'emergency-requests', description: 'Emergency requests (dépannage d\'urgence) from pharmacies to labs' },
          { name: 'stock-campaigns', description: 'Weekly stock declarations by pharmacies and their aggregates' },
          { name: 'eprescription', description: 'E-prescription: issue, take with the QR code, dispense, signed receipts, patient access' },
          { name: 'audit', description: 'Tamper-evident audit trail' },
          { name: 'operations', description: 'Health, contract, error catalogue' },
        ],
      },
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
    })
    await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true }, staticCSP: true })

    app.get(
      '/openapi.json',
      { config: { roles: 'public' }, schema: { hide: true } },
      async () => app.swagger(),
    )
    app.get(
      '/problems',
      {
        config: { roles: 'public' },
        schema: {
          tags: ['operations'],
          summary: 'Catalogue of error codes',
          description: 'Every `code` a problem+json answer may carry, with its HTTP status and titles.',
          response: {
            200: Type.Array(Type.Object({ code: Type.String(), type: Type.String(), status: Type.Integer(), title: Type.String(), titleEn: Type.String() })),
          },
        },
      },
      async () =>
        Object.entries(ERRORS)
          .map(([code, def]) => ({ code, type: `/problems/${code.toLowerCase()}`, status: def.status, title: def.title.fr, titleEn: def.title.en }))
          .sort((a, b) => a.code.localeCompare(b.code)),
    )
  },
  { name: 'openapi' },
)

import swagger from '@fastify/swagger'
import type { FastifyInstance, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { ERRORS, notFound, Problem, problemDescription } from './errors.ts'
import { langOf } from './i18n.ts'
import { boundIntegers } from './input.ts'
import { component, registeredSchemas } from './schemas.ts'
import { completeDocument } from './openapi-document.ts'
import { docsPage } from './docs.ts'
import './events/catalogue.ts'

const problemContent = { 'application/problem+json': { schema: Problem } }

const STATUS_TEXT: Record<number, string> = {
  400: 'Requête invalide (champ, raison) — invalid request',
  401: 'Jeton absent, invalide ou expiré — missing, invalid or expired token',
  403: 'Rôle non autorisé ou organisation inconnue — role not allowed or organisation not registered',
  404: 'Introuvable (ou appartenant à une autre organisation) — not found (or another organisation’s)',
  409: 'Conflit avec l’état courant, ou perdu face à une requête concurrente — conflict with the current state, or lost a race with a concurrent request',
  413: 'Requête trop volumineuse — payload too large',
  414: 'Paramètre d’adresse trop long (plus de 100 caractères) — path parameter too long',
  415: 'Type de contenu non pris en charge — unsupported media type',
  422: 'Clé d’idempotence réutilisée avec une autre requête — idempotency key reused',
  431: 'En-têtes trop volumineux (jeton compris) — request header fields too large',
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

/** A route's retirement: since when it is deprecated, after when it may stop working, what to use instead. */
export interface Deprecation {
  since: string
  sunset: string
  use?: string
}

export function deprecationHeaders(d: Deprecation): Record<string, string> {
  return {
    deprecation: `@${Math.floor(new Date(d.since).getTime() / 1000)}`,
    sunset: new Date(d.sunset).toUTCString(),
    link: '</docs#description/changelog-and-versioning>; rel="deprecation"; type="text/html"',
  }
}

/**
 * Adds to every route what the contract must show and the code would otherwise repeat: security and the
 * roles allowed (x-roles, and in the description), the generic error responses.
 */
function documentRoute(route: RouteOptions, namedSchema: (id: string) => unknown) {
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
  // A route being retired (config.deprecation): marked deprecated in the contract, and every answer says so with
  // the Deprecation (RFC 9745) and Sunset (RFC 8594) headers and a link to the changelog.
  const deprecation = (route.config as { deprecation?: Deprecation } | undefined)?.deprecation
  if (deprecation) {
    schema.deprecated = true
    const line = `**Deprecated** since ${deprecation.since}; may stop working after ${deprecation.sunset}.${deprecation.use ? ` Use ${deprecation.use}.` : ''}`
    if (!String(schema.description ?? '').includes(line)) schema.description = schema.description ? `${schema.description}\n\n${line}` : line
    const headers = deprecationHeaders(deprecation)
    route.onSend = [route.onSend ?? []].flat().concat(async (_request, reply, payload) => {
      for (const [k, v] of Object.entries(headers)) reply.header(k, v)
      return payload
    }) as RouteOptions['onSend']
  }
  // The rate-limited routes (config.rateLimit, or a preHandler from @fastify/rate-limit) say so: their answers carry
  // the rate headers.
  const limited = (route.config as { rateLimit?: unknown } | undefined)?.rateLimit
  if ((limited && typeof limited === 'object') || [route.preHandler].flat().some((h) => typeof h === 'function' && /rateLimitRan/.test(String(h)))) schema['x-rate-limited'] = true
  // Every integer and date a client sends is bounded, in the contract as in the validation (platform/input.ts).
  for (const part of ['body', 'querystring', 'params', 'headers']) boundIntegers(schema[part], namedSchema)
  const methods = [route.method].flat()
  const write = methods.some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH' || m === 'DELETE')
  if (schema.body || schema.querystring || schema.params || schema.headers || write) add(400)
  // Any write may carry a body (too large, or not JSON) and may lose a race with another request.
  if (write) add(413, 415)
  if (write && route.url.startsWith('/v1')) add(409)
  if (schema.headers?.properties?.['idempotency-key']) add(409, 422)
  if (route.url.includes(':')) add(414)
  add(431)
  if (route.url.startsWith('/v1')) add(429, 500, 503)
}

const ProblemType = component(
  Type.Object(
    {
      code: Type.String({ description: 'The stable code carried by problems of this type.' }),
      type: Type.String({ description: 'This address: the `type` of those problems.' }),
      status: Type.Integer({ minimum: 400, maximum: 599 }),
      title: Type.String(),
      description: Type.String({ description: 'What the problem means, in the request’s language (French unless `Accept-Language: en`).' }),
      action: Type.String({ description: 'What the caller can do about it.' }),
    },
    {
      $id: 'ProblemType',
      examples: [
        {
          code: 'NOT_FOUND',
          type: '/problems/not_found',
          status: 404,
          title: 'Introuvable',
          description: '… est introuvable.',
          action: 'Vérifiez l’identifiant : un objet d’une autre organisation répond aussi 404.',
        },
      ],
    },
  ),
)

export default fp(
  async function openapi(app: FastifyInstance, opts: { version: string }) {
    for (const s of registeredSchemas()) app.addSchema(s)
    // Named schemas are copied by addSchema: the bounds go on the copies that validation and the contract use,
    // before the first route that refers to them is compiled.
    app.addHook('onRoute', (route) => documentRoute(route, (id) => app.getSchema(id)))

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
      // Always the OpenAPI 3 branch (`openapi` is set above), completed in one place.
      transformObject: (documentObject) => ('openapiObject' in documentObject ? completeDocument(documentObject.openapiObject) : documentObject.swaggerObject),
    })
    await app.register(docsPage, { document: () => app.swagger() })

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
    // The `type` of every problem answer points here (RFC 9457: a type URI should resolve to documentation).
    app.get(
      '/problems/:code',
      {
        config: { roles: 'public' },
        schema: {
          tags: ['operations'],
          summary: 'One problem type, described',
          description:
            'What a problem `type` (e.g. `/problems/not_found`) means and what to do about it, in French by default or in English with `Accept-Language: en`. JSON, or an HTML page when the client prefers `text/html` (a browser).',
          params: Type.Object({ code: Type.String({ minLength: 1, maxLength: 100, description: 'The code, in lower or upper case.', examples: ['not_found'] }) }),
          response: {
            200: { description: 'The problem type.', content: { 'application/json': { schema: ProblemType }, 'text/html': { schema: Type.String() } } },
            404: problems(404)[404],
          },
        },
      },
      async (request, reply) => {
        const code = (request.params as { code: string }).code.toUpperCase()
        const def = ERRORS[code]
        if (!def) throw notFound('Ce type de problème', 'This problem type')
        const lang = langOf(request)
        const body = { code, type: `/problems/${code.toLowerCase()}`, status: def.status, title: def.title[lang], ...problemDescription(code, lang) }
        reply.header('content-language', lang).header('vary', 'accept, accept-language')
        const accept = String(request.headers.accept ?? '')
        if (/text\/html/.test(accept) && !/json/.test(accept)) {
          const esc = (x: unknown) => String(x).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
          return reply
            .type('text/html; charset=utf-8')
            .send(`<!doctype html><html lang="${lang}"><meta charset="utf-8"><title>${esc(body.title)}</title><h1>${esc(body.title)}</h1><p><code>${esc(code)}</code> — HTTP ${body.status}</p><p>${esc(body.description)}</p><p>${esc(body.action)}</p><p><a href="/problems">${lang === 'fr' ? 'Tous les codes' : 'All codes'}</a></p></html>`)
        }
        return reply.type('application/json; charset=utf-8').send(body)
      },
    )
  },
  { name: 'openapi' },
)

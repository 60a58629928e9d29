import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { component } from './schemas.ts'
import { type Lang, langOf, type Text } from './i18n.ts'

type Params = Record<string, unknown>
interface ErrorDef {
  status: number
  title: Text
  detail: (p: Params) => Text
}

const d = (status: number, fr: string, en: string, detail?: (p: Params) => Text): ErrorDef => ({
  status,
  title: { fr, en },
  detail: detail ?? (() => ({ fr, en })),
})

/**
 * The stable error codes of the API. Services add theirs with defineErrors(); a code never changes meaning.
 * GET /problems lists them (each problem's `type` points there).
 */
export const ERRORS: Record<string, ErrorDef> = {
  VALIDATION_FAILED: d(400, 'Requête invalide', 'Invalid request', (p) => ({
    fr: `La requête contient ${p.count} erreur(s) : voir « errors ».`,
    en: `The request has ${p.count} error(s): see "errors".`,
  })),
  MALFORMED_BODY: d(400, 'Corps de requête illisible', 'Malformed request body', () => ({
    fr: 'Le corps de la requête n’est pas un JSON valide.',
    en: 'The request body is not valid JSON.',
  })),
  INVALID_IDENTIFIER: d(400, 'Identifiant invalide', 'Invalid identifier', (p) => ({
    fr: `${p.field} : ${p.fr}`,
    en: `${p.field}: ${p.en}`,
  })),
  INVALID_CURSOR: d(400, 'Curseur invalide', 'Invalid cursor', () => ({
    fr: 'Le curseur de pagination est invalide ou ne correspond pas à cette recherche ; recommencez sans curseur.',
    en: 'The pagination cursor is invalid or does not belong to this search; start again without a cursor.',
  })),
  UNAUTHENTICATED: d(401, 'Authentification requise', 'Authentication required', () => ({
    fr: 'Fournissez un jeton dans l’en-tête « Authorization: Bearer <jeton> ».',
    en: 'Provide a token in the "Authorization: Bearer <token>" header.',
  })),
  TOKEN_INVALID: d(401, 'Jeton invalide', 'Invalid token', (p) => ({
    fr: `Le jeton est refusé : ${p.fr ?? 'signature, émetteur, audience ou algorithme incorrect'}.`,
    en: `The token is refused: ${p.en ?? 'wrong signature, issuer, audience or algorithm'}.`,
  })),
  TOKEN_EXPIRED: d(401, 'Jeton expiré', 'Token expired', () => ({
    fr: 'Le jeton a expiré ; obtenez-en un nouveau.',
    en: 'The token has expired; get a new one.',
  })),
  ORGANISATION_NOT_REGISTERED: d(403, 'Organisation inconnue', 'Organisation not registered', (p) => ({
    fr: `L’organisation ${p.org} (${p.role}) n’est pas enregistrée ou est désactivée sur le service ; contactez l’opérateur.`,
    en: `Organisation ${p.org} (${p.role}) is not registered or is deactivated; contact the operator.`,
  })),
  FORBIDDEN_ROLE: d(403, 'Rôle non autorisé', 'Role not allowed', (p) => ({
    fr: `Le rôle « ${p.role} » ne peut pas appeler cette opération (rôles autorisés : ${p.allowed}).`,
    en: `Role "${p.role}" may not call this operation (allowed roles: ${p.allowed}).`,
  })),
  LAB_NOT_SUBSCRIBED: d(403, 'Laboratoire non abonné', 'Lab not subscribed', () => ({
    fr: 'Ce service est réservé aux laboratoires ayant signé la convention avec l’opérateur.',
    en: 'This service is reserved to labs that signed the agreement with the operator.',
  })),
  NOT_FOUND: d(404, 'Introuvable', 'Not found', (p) => ({
    fr: `${p.what ?? 'La ressource'} est introuvable.`,
    en: `${p.whatEn ?? 'The resource'} was not found.`,
  })),
  ROUTE_NOT_FOUND: d(404, 'Route inconnue', 'Unknown route', (p) => ({
    fr: `Aucune opération ${p.method} ${p.url} ; consultez /docs.`,
    en: `No operation ${p.method} ${p.url}; see /docs.`,
  })),
  CONFLICT: d(409, 'Conflit', 'Conflict', (p) => ({ fr: String(p.fr), en: String(p.en) })),
  IDEMPOTENCY_KEY_INVALID: d(400, 'Clé d’idempotence invalide', 'Invalid idempotency key', () => ({
    fr: 'L’en-tête Idempotency-Key doit contenir de 8 à 255 caractères imprimables (un UUID convient).',
    en: 'The Idempotency-Key header must hold 8 to 255 printable characters (a UUID will do).',
  })),
  IDEMPOTENCY_KEY_REUSED: d(422, 'Clé d’idempotence réutilisée', 'Idempotency key reused', () => ({
    fr: 'Cette clé d’idempotence a déjà servi pour une requête différente ; utilisez une nouvelle clé.',
    en: 'This idempotency key was already used for a different request; use a new key.',
  })),
  IDEMPOTENCY_IN_PROGRESS: d(409, 'Requête en cours', 'Request in progress', () => ({
    fr: 'Une requête avec cette clé d’idempotence est encore en cours ; réessayez dans un instant.',
    en: 'A request with this idempotency key is still in progress; retry in a moment.',
  })),
  PAYLOAD_TOO_LARGE: d(413, 'Requête trop volumineuse', 'Payload too large', () => ({
    fr: 'Le corps de la requête dépasse la taille admise.',
    en: 'The request body exceeds the allowed size.',
  })),
  UNSUPPORTED_MEDIA_TYPE: d(415, 'Type de contenu non pris en charge', 'Unsupported media type', () => ({
    fr: 'Envoyez le corps en application/json.',
    en: 'Send the body as application/json.',
  })),
  RATE_LIMITED: d(429, 'Trop de requêtes', 'Too many requests', () => ({
    fr: 'Trop de requêtes ; réessayez après le délai indiqué par Retry-After.',
    en: 'Too many requests; retry after the Retry-After delay.',
  })),
  INTERNAL: d(500, 'Erreur interne', 'Internal error', (p) => ({
    fr: `Une erreur interne est survenue ; rien n’a été modifié si l’opération a échoué. Référence : ${p.requestId}.`,
    en: `An internal error occurred; nothing was changed if the operation failed. Reference: ${p.requestId}.`,
  })),
  SERVICE_UNAVAILABLE: d(503, 'Service indisponible', 'Service unavailable', () => ({
    fr: 'Le service est momentanément surchargé ou indisponible ; réessayez après le délai indiqué.',
    en: 'The service is temporarily overloaded or unavailable; retry after the indicated delay.',
  })),
}

export function defineErrors(defs: Record<string, ErrorDef>) {
  for (const [code, def] of Object.entries(defs)) {
    if (ERRORS[code] && ERRORS[code] !== def) throw new Error(`error code ${code} defined twice`)
    ERRORS[code] = def
  }
}
export { d as errorDef }

export interface FieldError {
  field: string
  code: string
  message: string
}

/** An expected refusal: rendered as problem+json with the catalogue's status and text. */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly params: Params = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(code)
    if (!ERRORS[code]) throw new Error(`unknown error code ${code}`)
  }
  get status() {
    return ERRORS[this.code]!.status
  }
}

export const notFound = (what: string, whatEn: string) => new AppError('NOT_FOUND', { what, whatEn })
export const conflict = (fr: string, en: string, extra: Record<string, unknown> = {}) => new AppError('CONFLICT', { fr, en }, extra)

export const Problem = component(
  Type.Object(
    {
      type: Type.String({ description: 'URI identifying the problem type (see GET /problems).' }),
      title: Type.String(),
      status: Type.Integer(),
      detail: Type.String(),
      code: Type.String({ description: 'Stable machine-readable code.' }),
      instance: Type.Optional(Type.String()),
      requestId: Type.Optional(Type.String()),
      errors: Type.Optional(
        Type.Array(
          Type.Object({
            field: Type.String({ description: 'Where: body.x.y, querystring.x, params.x or headers.x' }),
            code: Type.String(),
            message: Type.String(),
          }),
        ),
      ),
    },
    {
      $id: 'Problem',
      additionalProperties: true,
      description: 'RFC 9457 problem details. French by default, English with Accept-Language: en.',
      examples: [
        {
          type: '/problems/validation_failed',
          title: 'Requête invalide',
          status: 400,
          detail: 'La requête contient 1 erreur(s) : voir « errors ».',
          code: 'VALIDATION_FAILED',
          requestId: 'req-1',
          errors: [{ field: 'querystring.limit', code: 'maximum', message: 'doit être inférieur ou égal à 100' }],
        },
      ],
    },
  ),
)

export function problemBody(code: string, params: Params, lang: Lang, request: FastifyRequest, extra: Record<string, unknown> = {}) {
  const def = ERRORS[code] ?? ERRORS.INTERNAL!
  return {
    type: `/problems/${code.toLowerCase()}`,
    title: def.title[lang],
    status: def.status,
    detail: def.detail(params)[lang],
    code,
    instance: request.url.split('?')[0],
    requestId: request.id,
    ...extra,
  }
}

export function sendProblem(reply: FastifyReply, code: string, params: Params = {}, extra: Record<string, unknown> = {}) {
  const body = problemBody(code, params, langOf(reply.request), reply.request, extra)
  return reply.code(body.status).type('application/problem+json; charset=utf-8').send(body)
}

// ---- validation messages (ajv errors), French and English -------------------------------------------
const typeNames: Record<string, Text> = {
  string: { fr: 'une chaîne', en: 'a string' },
  integer: { fr: 'un entier', en: 'an integer' },
  number: { fr: 'un nombre', en: 'a number' },
  boolean: { fr: 'un booléen', en: 'a boolean' },
  object: { fr: 'un objet', en: 'an object' },
  array: { fr: 'un tableau', en: 'an array' },
  null: { fr: 'null', en: 'null' },
}
const formatNames: Record<string, Text> = {
  cip13: { fr: 'un CIP13 (13 chiffres commençant par 3400, clé de contrôle correcte)', en: 'a CIP13 (13 digits starting with 3400, valid check digit)' },
  'date-time': { fr: 'une date-heure ISO 8601 (ex. 2026-11-22T10:00:00Z)', en: 'an ISO 8601 date-time (e.g. 2026-11-22T10:00:00Z)' },
  date: { fr: 'une date AAAA-MM-JJ', en: 'a YYYY-MM-DD date' },
  email: { fr: 'une adresse électronique', en: 'an e-mail address' },
  uuid: { fr: 'un UUID', en: 'a UUID' },
  uri: { fr: 'une URI', en: 'a URI' },
}

interface AjvError {
  keyword: string
  instancePath: string
  params: Record<string, any>
  message?: string
  parentSchema?: Record<string, any>
}

function message(e: AjvError, lang: Lang): string {
  const custom = e.parentSchema?.['x-message'] as Text | undefined
  if (custom && ['pattern', 'format', 'minLength', 'maxLength'].includes(e.keyword)) return custom[lang]
  const p = e.params
  const t = (fr: string, en: string) => (lang === 'fr' ? fr : en)
  switch (e.keyword) {
    case 'required':
      return t('champ obligatoire', 'required field')
    case 'additionalProperties':
      return t('champ inconnu', 'unknown field')
    case 'type':
      return t(`doit être ${typeNames[p.type]?.fr ?? p.type}`, `must be ${typeNames[p.type]?.en ?? p.type}`)
    case 'minLength':
      return t(`doit contenir au moins ${p.limit} caractère(s)`, `must have at least ${p.limit} character(s)`)
    case 'maxLength':
      return t(`ne doit pas dépasser ${p.limit} caractères`, `must not exceed ${p.limit} characters`)
    case 'minItems':
      return t(`doit contenir au moins ${p.limit} élément(s)`, `must have at least ${p.limit} item(s)`)
    case 'maxItems':
      return t(`ne doit pas dépasser ${p.limit} éléments`, `must not exceed ${p.limit} items`)
    case 'minimum':
      return t(`doit être supérieur ou égal à ${p.limit}`, `must be >= ${p.limit}`)
    case 'maximum':
      return t(`doit être inférieur ou égal à ${p.limit}`, `must be <= ${p.limit}`)
    case 'exclusiveMinimum':
      return t(`doit être strictement supérieur à ${p.limit}`, `must be > ${p.limit}`)
    case 'exclusiveMaximum':
      return t(`doit être strictement inférieur à ${p.limit}`, `must be < ${p.limit}`)
    case 'enum':
      return t(`valeurs admises : ${(p.allowedValues ?? []).join(', ')}`, `allowed values: ${(p.allowedValues ?? []).join(', ')}`)
    case 'const':
      return t(`doit valoir ${JSON.stringify(p.allowedValue)}`, `must be ${JSON.stringify(p.allowedValue)}`)
    case 'format':
      return t(`doit être ${formatNames[p.format]?.fr ?? `au format ${p.format}`}`, `must be ${formatNames[p.format]?.en ?? `in ${p.format} format`}`)
    case 'pattern':
      return t(`format invalide (motif attendu : ${p.pattern})`, `invalid format (expected pattern: ${p.pattern})`)
    case 'uniqueItems':
      return t('les éléments doivent être uniques', 'items must be unique')
    case 'anyOf':
    case 'oneOf':
      return t('ne correspond à aucune des formes admises', 'matches none of the allowed shapes')
    default:
      return e.message ?? t('valeur invalide', 'invalid value')
  }
}

export function validationErrors(errors: AjvError[], context: string, lang: Lang): FieldError[] {
  // A nullable field (anyOf [T, null]) fails with one error per branch plus the anyOf summary: keep the errors
  // of the branches that were not a mere type mismatch ("not null"), or the summary when all were.
  const unions = new Set(errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.instancePath))
  const branchErrors = (path: string) => errors.filter((e) => e.instancePath === path && e.keyword !== 'anyOf' && e.keyword !== 'oneOf' && e.keyword !== 'type')
  const kept = errors.filter((e) => {
    if (e.keyword === 'anyOf' || e.keyword === 'oneOf') return branchErrors(e.instancePath).length === 0
    if (unions.has(e.instancePath)) return e.keyword !== 'type'
    return true
  })
  const seen = new Set<string>()
  const out: FieldError[] = []
  for (const e of kept) {
    const path = e.instancePath.split('/').filter(Boolean).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    if (e.keyword === 'required') path.push(e.params.missingProperty)
    if (e.keyword === 'additionalProperties') path.push(e.params.additionalProperty)
    const field = [context, ...path].join('.')
    const key = `${field}:${e.keyword}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ field, code: e.keyword, message: message(e, lang) })
  }
  return out
}

/** Every error leaves as problem+json; 5xx never carry internals. */
export function installErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError & { validationContext?: string }, request, reply) => {
    const lang = langOf(request)
    if (error instanceof AppError) {
      return sendProblem(reply, error.code, error.params, error.extra)
    }
    if (error.validation) {
      const errors = validationErrors(error.validation as unknown as AjvError[], error.validationContext ?? 'body', lang)
      return sendProblem(reply, 'VALIDATION_FAILED', { count: errors.length }, { errors })
    }
    const status = error.statusCode ?? 500
    if (status < 500) {
      const byFastifyCode: Record<string, string> = {
        FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_BODY',
        FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_BODY',
        FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
        FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
        FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_BODY',
      }
      const code =
        byFastifyCode[error.code] ??
        (status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : status === 429 ? 'RATE_LIMITED' : status === 404 ? 'NOT_FOUND' : 'MALFORMED_BODY')
      if (error instanceof SyntaxError || code === 'MALFORMED_BODY') request.log.info({ err: error }, 'malformed request')
      return sendProblem(reply, code)
    }
    if (status === 503) return sendProblem(reply, 'SERVICE_UNAVAILABLE')
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable')
      return sendProblem(reply.header('retry-after', '5'), 'SERVICE_UNAVAILABLE')
    }
    request.log.error({ err: error }, 'unhandled error')
    return sendProblem(reply, 'INTERNAL', { requestId: request.id })
  })

  app.setNotFoundHandler((request, reply) => sendProblem(reply, 'ROUTE_NOT_FOUND', { method: request.method, url: request.url.split('?')[0] }))
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND'])
// SQLSTATE: 57P01 admin shutdown (restart, failover), 57P02 crash shutdown, 57P03 cannot connect now (starting
// or stopping), 53300 too many connections; class 08: connection exceptions.
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300'])
// node-postgres and its pool say these without a code.
const MESSAGES = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection terminated unexpectedly)/

/**
 * The database is away (restart, failover, connections refused, pool exhausted): the client should retry, so
 * the answer is a 503 with Retry-After, not a 500. Looks through `cause` and AggregateError's `errors`.
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 3) return false
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown }
  const code = typeof e.code === 'string' ? e.code : ''
  if (UNREACHABLE.has(code) || SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true
  if (typeof e.message === 'string' && MESSAGES.test(e.message)) return true
  if (Array.isArray(e.errors) && e.errors.some((x) => isDatabaseUnavailable(x, depth + 1))) return true
  return isDatabaseUnavailable(e.cause, depth + 1)
}

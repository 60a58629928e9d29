import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify'
import { NoResultError } from 'kysely'
import { Type } from 'typebox'
import { isHttp2 } from './connection.ts'
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
  INVALID_VALUE: d(400, 'Valeur refusée', 'Value refused', () => ({
    fr: 'Une valeur de la requête est hors des limites admises (nombre trop grand, date hors plage, texte trop long ou caractère interdit).',
    en: 'A value of the request is outside the accepted limits (number too large, date out of range, text too long or forbidden character).',
  })),
  MALFORMED_URL: d(400, 'Adresse invalide', 'Malformed URL', () => ({
    fr: 'L’adresse demandée contient un encodage invalide (%…).',
    en: 'The requested address holds an invalid encoding (%…).',
  })),
  CONCURRENT_CHANGE: d(409, 'Modification concurrente', 'Concurrent change', () => ({
    fr: 'Une autre requête a créé ou modifié la même ressource au même moment ; relisez-la puis réessayez si nécessaire.',
    en: 'Another request created or changed the same resource at the same moment; read it again, then retry if needed.',
  })),
  PAYLOAD_TOO_LARGE: d(413, 'Requête trop volumineuse', 'Payload too large', () => ({
    fr: 'Le corps de la requête dépasse la taille admise.',
    en: 'The request body exceeds the allowed size.',
  })),
  URI_TOO_LONG: d(414, 'Adresse trop longue', 'URI too long', () => ({
    fr: 'Un paramètre de l’adresse dépasse la longueur admise (100 caractères).',
    en: 'A parameter of the address exceeds the allowed length (100 characters).',
  })),
  UNSUPPORTED_MEDIA_TYPE: d(415, 'Type de contenu non pris en charge', 'Unsupported media type', () => ({
    fr: 'Envoyez le corps en application/json.',
    en: 'Send the body as application/json.',
  })),
  REQUEST_TIMEOUT: d(408, 'Délai dépassé', 'Request timeout', () => ({
    fr: 'La requête n’a pas été reçue entière à temps.',
    en: 'The request was not received in full in time.',
  })),
  MALFORMED_REQUEST: d(400, 'Requête HTTP illisible', 'Malformed HTTP request', () => ({
    fr: 'La requête HTTP est mal formée.',
    en: 'The HTTP request is malformed.',
  })),
  HEADERS_TOO_LARGE: d(431, 'En-têtes trop volumineux', 'Request header fields too large', () => ({
    fr: 'Les en-têtes de la requête (jeton compris) dépassent la taille admise.',
    en: 'The request headers (token included) exceed the allowed size.',
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

export function problemBody(code: string, params: Params, lang: Lang, request: Pick<FastifyRequest, 'url' | 'id'>, extra: Record<string, unknown> = {}) {
  const def = ERRORS[code] ?? ERRORS.INTERNAL!
  return {
    type: `/problems/${code.toLowerCase()}`,
    title: def.title[lang],
    status: def.status,
    detail: def.detail(params)[lang],
    code,
    ...(request.url ? { instance: request.url.split('?')[0] } : {}),
    ...(request.id ? { requestId: request.id } : {}),
    ...extra,
  }
}

/**
 * A problem answered before any route, when Node's HTTP/1.1 parser (app.ts, clientErrorHandler) or the HTTP/2
 * server (http2.ts) refuses a request: no request id yet, so French and no instance.
 */
export function preRouteProblem(code: 'HEADERS_TOO_LARGE' | 'REQUEST_TIMEOUT' | 'MALFORMED_REQUEST') {
  return {
    status: ERRORS[code]!.status,
    headers: { 'content-type': 'application/problem+json; charset=utf-8', 'content-language': 'fr' },
    body: JSON.stringify(problemBody(code, {}, 'fr', { url: '', id: '' })),
  }
}

/** What to do, by status: the same advice for every problem of that status. */
const ACTIONS: Record<number, Text> = {
  400: { fr: 'Corrigez la requête : « errors » nomme chaque champ refusé et la raison.', en: 'Correct the request: "errors" names each refused field and why.' },
  401: { fr: 'Envoyez un jeton valide dans l’en-tête Authorization (Bearer).', en: 'Send a valid token in the Authorization header (Bearer).' },
  403: { fr: 'Cette opération n’est pas ouverte à votre rôle ou à votre organisation ; contactez l’opérateur si c’est une erreur.', en: 'This operation is not open to your role or organisation; contact the operator if this is a mistake.' },
  404: { fr: 'Vérifiez l’identifiant : un objet d’une autre organisation répond aussi 404.', en: 'Check the identifier: an object of another organisation also answers 404.' },
  408: { fr: 'Renvoyez la requête.', en: 'Send the request again.' },
  409: { fr: 'Relisez l’état courant de la ressource, puis décidez s’il faut réessayer.', en: 'Read the resource’s current state again, then decide whether to retry.' },
  413: { fr: 'Réduisez la taille du corps (ou découpez l’envoi).', en: 'Send a smaller body (or split the upload).' },
  414: { fr: 'Raccourcissez le paramètre de l’adresse.', en: 'Shorten the path parameter.' },
  415: { fr: 'Envoyez le type de contenu documenté pour l’opération (en général application/json).', en: 'Send the content type documented for the operation (usually application/json).' },
  422: { fr: 'Utilisez une nouvelle clé d’idempotence pour une requête différente.', en: 'Use a new idempotency key for a different request.' },
  429: { fr: 'Attendez le délai indiqué par Retry-After avant de réessayer.', en: 'Wait for the Retry-After delay before retrying.' },
  431: { fr: 'Réduisez la taille des en-têtes (un jeton plus court, moins de cookies).', en: 'Send smaller headers (a shorter token, fewer cookies).' },
  500: { fr: 'Réessayez plus tard ; communiquez la référence (requestId) au support si cela persiste.', en: 'Retry later; give the reference (requestId) to support if it persists.' },
  503: { fr: 'Réessayez après le délai indiqué par Retry-After.', en: 'Retry after the Retry-After delay.' },
}

/** What a problem type means, for GET /problems/{code}: its detail with "…" for what varies, and the advice. */
export function problemDescription(code: string, lang: Lang): { description: string; action: string } {
  const def = ERRORS[code]!
  let description: string
  try {
    const placeholders = new Proxy({}, { get: (_t, key) => (key === Symbol.toPrimitive ? undefined : '…') }) as Params
    description = def.detail(placeholders)[lang]
  } catch {
    description = def.title[lang]
  }
  const action = ACTIONS[def.status] ?? { fr: 'Voir la documentation de l’opération.', en: 'See the operation’s documentation.' }
  return { description, action: action[lang] }
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

/** Fastify's validation error (its params depend on the keyword), with the schema Ajv attaches when verbose. */
interface AjvError extends Omit<FastifySchemaValidationError, 'params' | 'schemaPath'> {
  params: Record<string, any>
  schemaPath?: string
  parentSchema?: Record<string, any>
}

/**
 * What a pattern expects, in words, for the patterns shared by several schemas: a pharmacist never reads a
 * regular expression. A schema may say it itself with `x-message`; any other pattern falls back to its example.
 */
const PATTERN_WORDS: Record<string, Text> = {
  '^(\\d{2}|2A|2B|97\\d)$': { fr: 'attendu : un code de département (2 chiffres, 2A, 2B ou 971 à 976)', en: 'expected: a department code (2 digits, 2A, 2B or 971 to 976)' },
  '^\\d{2}$': { fr: 'attendu : un code de région INSEE à 2 chiffres (ex. 11)', en: 'expected: a 2-digit INSEE region code (e.g. 11)' },
  '^\\d{13}$': { fr: 'attendu : un CIP13 (13 chiffres)', en: 'expected: a CIP13 (13 digits)' },
  '^0?\\d{13}$': { fr: 'attendu : un CIP13 (13 chiffres) ou un GTIN-14 (0 suivi du CIP13)', en: 'expected: a CIP13 (13 digits) or a GTIN-14 (0 followed by the CIP13)' },
  '^\\d{1,18}$': { fr: 'attendu : un nombre entier positif (18 chiffres au plus)', en: 'expected: a positive whole number (at most 18 digits)' },
  '\\S': { fr: 'ne doit pas être vide ni ne contenir que des espaces', en: 'must not be empty or only spaces' },
  '^[A-Za-z](\\d{2}([A-Za-z]([A-Za-z](\\d{2})?)?)?)?$': { fr: 'attendu : un code ATC ou son début (ex. J01 ou J01CA04)', en: 'expected: an ATC code or its beginning (e.g. J01 or J01CA04)' },
  '^[A-Za-z0-9][A-Za-z0-9./-]{0,19}$': { fr: 'attendu : un numéro de lot de 1 à 20 caractères (lettres, chiffres, point, barre oblique, tiret), tel qu’imprimé sur la boîte', en: 'expected: a batch number of 1 to 20 characters (letters, digits, dot, slash, hyphen), as printed on the box' },
}

function patternWords(e: AjvError): Text {
  const known = PATTERN_WORDS[String(e.params.pattern)]
  if (known) return known
  const example = e.parentSchema?.examples?.[0]
  return example === undefined
    ? { fr: 'format invalide : voir la description du champ dans la documentation', en: 'invalid format: see the field’s description in the documentation' }
    : { fr: `format invalide (exemple de valeur admise : ${example})`, en: `invalid format (example of an accepted value: ${example})` }
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
    case 'unicode':
      return p.reason === 'nul'
        ? t('ne doit pas contenir le caractère nul (\\u0000)', 'must not contain the NUL character (\\u0000)')
        : t('contient un caractère Unicode invalide (demi-paire de substitution isolée)', 'holds an invalid Unicode character (lone surrogate)')
    case 'finite':
      return t('doit être un nombre fini (ni infini ni trop grand)', 'must be a finite number (neither infinite nor too large)')
    case 'decimal':
      return p.type === 'integer'
        ? t('doit être un entier écrit en chiffres décimaux (ex. 50), sans espace, signe + ni notation 0x ou 1e2', 'must be an integer written in decimal digits (e.g. 50), with no space, + sign, 0x or 1e2 notation')
        : t('doit être un nombre écrit en chiffres décimaux (ex. 2.5), sans espace, signe + ni notation 0x ou 1e2', 'must be a number written in decimal digits (e.g. 2.5), with no space, + sign, 0x or 1e2 notation')
    case 'minLength':
      return t(`doit contenir au moins ${p.limit} caractère(s)`, `must have at least ${p.limit} character(s)`)
    case 'maxLength':
      return t(`ne doit pas dépasser ${p.limit} caractères`, `must not exceed ${p.limit} characters`)
    case 'minItems':
      return t(`doit contenir au moins ${p.limit} élément(s)`, `must have at least ${p.limit} item(s)`)
    case 'maxItems':
      return t(`ne doit pas dépasser ${p.limit} éléments`, `must not exceed ${p.limit} items`)
    case 'minProperties':
      return p.limit === 1 ? t('indiquez au moins un champ à modifier', 'give at least one field to change') : t(`doit contenir au moins ${p.limit} champs`, `must have at least ${p.limit} fields`)
    case 'maxProperties':
      return t(`ne doit pas contenir plus de ${p.limit} champs`, `must not have more than ${p.limit} fields`)
    case 'minimum':
      return t(`doit être supérieur ou égal à ${p.limit}`, `must be >= ${p.limit}`)
    case 'maximum':
      return t(`doit être inférieur ou égal à ${p.limit}`, `must be <= ${p.limit}`)
    case 'exclusiveMinimum':
      return t(`doit être strictement supérieur à ${p.limit}`, `must be > ${p.limit}`)
    case 'exclusiveMaximum':
      return t(`doit être strictement inférieur à ${p.limit}`, `must be < ${p.limit}`)
    case 'multipleOf':
      return t(`doit être un multiple de ${p.multipleOf}`, `must be a multiple of ${p.multipleOf}`)
    case 'enum':
      return t(`valeurs admises : ${(p.allowedValues ?? []).join(', ')}`, `allowed values: ${(p.allowedValues ?? []).join(', ')}`)
    case 'const':
      return t(`doit valoir ${JSON.stringify(p.allowedValue)}`, `must be ${JSON.stringify(p.allowedValue)}`)
    case 'format':
      return t(`doit être ${formatNames[p.format]?.fr ?? `au format ${p.format}`}`, `must be ${formatNames[p.format]?.en ?? `in ${p.format} format`}`)
    case 'formatMinimum':
    case 'formatExclusiveMinimum':
      return t(`doit être postérieur ou égal à ${p.limit}`, `must be on or after ${p.limit}`)
    case 'formatMaximum':
    case 'formatExclusiveMaximum':
      return t(`doit être antérieur ou égal à ${p.limit}`, `must be on or before ${p.limit}`)
    case 'pattern':
      return patternWords(e)[lang]
    case 'uniqueItems':
      return t('les éléments doivent être uniques', 'items must be unique')
    case 'anyOf':
    case 'oneOf':
      return t('ne correspond à aucune des formes admises', 'matches none of the allowed shapes')
    case 'dependentRequired':
    case 'dependencies':
      return t(`doit être accompagné de ${p.missingProperty}`, `must come with ${p.missingProperty}`)
    case 'propertyNames':
      return t(`nom de champ invalide : ${p.propertyName}`, `invalid field name: ${p.propertyName}`)
    default:
      // Never the validator's own (English) sentence inside a French answer.
      return t('valeur invalide', 'invalid value')
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
    if (e.keyword === 'required') path.push(String(e.params.missingProperty))
    if (e.keyword === 'additionalProperties') path.push(String(e.params.additionalProperty))
    const field = [context, ...path].join('.')
    const key = `${field}:${e.keyword}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ field, code: e.keyword, message: message(e, lang) })
  }
  return out
}

// ---- PostgreSQL errors that are the client's or a race's, not the server's ------------------------------

/** Unique constraints whose violation is a business conflict, by name: the domain's 409 code. */
const CONSTRAINT_ERRORS = new Map<string, string>()
export function defineConstraintErrors(map: Record<string, string>) {
  for (const [constraint, code] of Object.entries(map)) {
    if (!ERRORS[code]) throw new Error(`unknown error code ${code}`)
    CONSTRAINT_ERRORS.set(constraint, code)
  }
}

interface DatabaseError {
  code: string
  constraint?: string
  detail?: string
}
const isDatabaseError = (e: unknown): e is DatabaseError => typeof (e as DatabaseError)?.code === 'string' && /^[0-9A-Z]{5}$/.test((e as DatabaseError).code)
/** Unique violation, serialization failure, deadlock: the loser of a race; the whole transaction rolled back. */
const RACE_CODES = new Set(['23505', '40001', '40P01'])
/** Values no validation should have let through (NUL, out of range, index row too large): the client's. */
const VALUE_CODES = new Set(['22021', '22P05', '22003', '22008', '54000'])

/** A race lost (or a row gone under our feet): worth running an idempotent operation again. */
export function isRaceLost(err: unknown): boolean {
  return err instanceof NoResultError || (isDatabaseError(err) && RACE_CODES.has(err.code))
}

/** The problem a database error stands for, when it is not the server's fault; null otherwise. */
export function fromDatabaseError(err: unknown, method: string): AppError | null {
  if (err instanceof NoResultError) return new AppError(method === 'GET' ? 'NOT_FOUND' : 'CONCURRENT_CHANGE')
  if (!isDatabaseError(err)) return null
  if (err.code === '23505') {
    // "Key (cip13)=(3400936128149) already exists.": the key's columns become the problem's parameters.
    const m = /^Key \((.+)\)=\((.*)\) already exists/.exec(err.detail ?? '')
    const cols = m?.[1]?.split(', ') ?? []
    const vals = m?.[2]?.split(', ') ?? []
    const params = Object.fromEntries(cols.map((c, i) => [c.replace(/_([a-z])/g, (_x, l: string) => l.toUpperCase()), vals[i]]))
    return new AppError(CONSTRAINT_ERRORS.get(err.constraint ?? '') ?? 'CONCURRENT_CHANGE', params)
  }
  if (RACE_CODES.has(err.code)) return new AppError('CONCURRENT_CHANGE')
  if (VALUE_CODES.has(err.code)) return new AppError('INVALID_VALUE')
  return null
}

/** Every error leaves as problem+json; 5xx never carry internals. */
export function installErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError & { validationContext?: string }, request, reply) => {
    const lang = langOf(request)
    if (error instanceof AppError) {
      return sendProblem(reply, error.code, error.params, error.extra)
    }
    const fromDb = fromDatabaseError(error, request.method)
    if (fromDb) {
      request.log.warn({ err: error }, 'database refused the request')
      return sendProblem(reply, fromDb.code, fromDb.params)
    }
    if (error.validation) {
      const errors = validationErrors(error.validation, error.validationContext ?? 'body', lang)
      return sendProblem(reply, 'VALIDATION_FAILED', { count: errors.length }, { errors })
    }
    const status = error.statusCode ?? 500
    // Fastify asks to close the connection after a body it could not read; HTTP/2 has no such header (the stream
    // ends on its own), and Node would warn and drop it.
    if (isHttp2(request)) reply.removeHeader('connection')
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

/** Declaration routes: the vocabulary, a lab's declarations (ANSM reads them), their history and lifecycle. */
import { Type } from 'typebox'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { component, Page, PageQuery } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import {
  CAUSES,
  Cause,
  Declaration,
  DeclarationInput,
  DeclarationPatch,
  DeclarationVersion,
  KIND_LABELS,
  KINDS,
  PresentationCode,
  STATUS_LABELS,
  STATUSES,
  TRANSITIONS,
  TransitionInput,
} from '../schemas.ts'
import type { Deps } from '../use-cases/context.ts'
import { createDeclaration, declarationHistory, listDeclarations, readDeclaration, transitionDeclaration, updateDeclaration } from '../use-cases/declarations.ts'
import { IdParams, whoOf } from './common.ts'

const DeclarationPage = Page(Declaration, 'ShortageDeclarationPage')
const DeclarationHistory = component(
  Type.Object(
    { declarationId: Type.String({ format: 'uuid' }), versions: Type.Array(DeclarationVersion) },
    { $id: 'ShortageDeclarationHistory', description: 'Every version of the declaration, oldest first, with who made it and what changed.' },
  ),
)
const Vocabulary = component(
  Type.Object(
    {
      causes: Type.Array(Cause),
      kinds: Type.Array(Type.Object({ code: Type.Enum([...KINDS]), fr: Type.String(), en: Type.String(), bdpmStatus: Type.Integer({ description: 'BDPM availability status code.' }) })),
      statuses: Type.Array(Type.Object({ code: Type.Enum([...STATUSES]), fr: Type.String(), en: Type.String(), next: Type.Array(Type.Enum([...STATUSES])) })),
    },
    { $id: 'ShortageVocabulary', description: 'Controlled lists of DP-Ruptures with French and English labels.' },
  ),
)

export const declarationRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  app.get(
    '/shortage-vocabulary',
    {
      config: { roles: 'public' },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageVocabulary',
        summary: 'Causes, kinds and statuses of shortage declarations (French and English labels)',
        description: 'Public and cacheable. `statuses[].next` is the lifecycle: the statuses each one may move to.',
        response: { 200: Vocabulary },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=3600')
      return {
        causes: Object.entries(CAUSES).map(([code, l]) => ({ code: code as keyof typeof CAUSES, ...l })),
        kinds: KINDS.map((code) => ({ code, fr: KIND_LABELS[code].fr, en: KIND_LABELS[code].en, bdpmStatus: KIND_LABELS[code].bdpm })),
        statuses: STATUSES.map((code) => ({ code, ...STATUS_LABELS[code], next: TRANSITIONS[code] })),
      }
    },
  )

  app.post(
    '/shortage-declarations',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'createShortageDeclaration',
        summary: 'Declare a shortage on the lab’s own presentations',
        description: [
          'Subscribed labs only (403 `LAB_NOT_SUBSCRIBED`). Every presentation must be the lab’s own (another lab’s or an unknown one answers 404 naming the field).',
          'A presentation has at most one open declaration (409 `PRESENTATION_ALREADY_DECLARED`). `mitm` comes from the referential. Starts as `declared` (default) or `draft`.',
          'Pharmacies with an open signal on one of the presentations get `shortage.declaration_updated` on their feed (not for a draft).',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        body: DeclarationInput,
        response: { 201: Declaration, ...problems(404, 409) },
      },
    },
    async (request, reply) => reply.code(201).send(await createDeclaration(deps, whoOf(request), request.body)),
  )

  app.get(
    '/shortage-declarations',
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'listShortageDeclarations',
        summary: 'Declarations, most recently changed first (a lab’s own; every lab’s for ANSM)',
        description:
          'A lab lists its own declarations, drafts included (`labId`, if given, must be its own: another lab answers 404). ANSM lists and searches every declaration of every lab, MITM or not, never a draft. Filters: `status`, `kind`, `cip13` (or GTIN-14), `labId`, `atc` (code or prefix), `mitm`, `q` (words of the medicine’s name, accents and case ignored). MITM declarations changed since a cursor are pulled incrementally with GET /v1/ansm/mitm-shortages.',
        querystring: Type.Object(
          {
            status: Type.Optional(Type.Enum([...STATUSES])),
            kind: Type.Optional(Type.Enum([...KINDS])),
            cip13: Type.Optional(PresentationCode),
            labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'SIREN of the lab.' })),
            atc: Type.Optional(Type.String({ pattern: '^[A-Za-z](\\d{2}([A-Za-z]([A-Za-z](\\d{2})?)?)?)?$', description: 'ATC code or prefix (J01 matches J01CA04).' })),
            mitm: Type.Optional(Type.Boolean()),
            q: Type.Optional(Type.String({ minLength: 2, maxLength: 100, description: 'Words of the medicine’s name.' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: DeclarationPage, ...problems(404) },
      },
    },
    async (request) => listDeclarations(deps, whoOf(request), request.query),
  )

  app.get(
    '/shortage-declarations/:id',
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageDeclaration',
        summary: 'One declaration, current version (the lab’s own; ANSM any)',
        params: IdParams,
        response: { 200: Declaration, ...problems(404) },
      },
    },
    async (request) => readDeclaration(deps, whoOf(request), request.params.id),
  )

  app.get(
    '/shortage-declarations/:id/history',
    {
      config: { roles: ['lab', 'ansm'] },
      schema: {
        tags: ['shortages'],
        operationId: 'getShortageDeclarationHistory',
        summary: 'Every version of a declaration and who made it (the lab’s own; ANSM any)',
        params: IdParams,
        response: { 200: DeclarationHistory, ...problems(404) },
      },
    },
    async (request) => declarationHistory(deps, whoOf(request), request.params.id),
  )

  app.patch(
    '/shortage-declarations/:id',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'updateShortageDeclaration',
        summary: 'Update a declaration: a new version',
        description:
          'Any field but the kind and the presentations. Each update is a new version in the history. A closed declaration answers 409 `DECLARATION_CLOSED`; with `expectedVersion`, a stale version answers 409 `VERSION_MISMATCH`. Pharmacies with an open signal on its presentations get the update on their feed.',
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: DeclarationPatch,
        response: { 200: Declaration, ...problems(404, 409) },
      },
    },
    async (request) => updateDeclaration(deps, whoOf(request), request.params.id, request.body),
  )

  app.post(
    '/shortage-declarations/:id/transitions',
    {
      config: { roles: ['lab'] },
      schema: {
        tags: ['shortages'],
        operationId: 'transitionShortageDeclaration',
        summary: 'Move a declaration along its lifecycle',
        description: [
          'draft → declared → ongoing → resolved, or avoided, or discontinued (declared may also go straight to resolved or discontinued). An illegal move answers 409 `INVALID_TRANSITION` with `allowedTransitions`.',
          '→ ongoing sets the actual start (`date`, or today in Paris); → resolved or discontinued sets the actual end. Closing frees the presentations for a new declaration.',
          'Every pharmacy with an open signal on its presentations gets `shortage.declaration_updated` (or `shortage.declaration_closed`) on its feed.',
        ].join('\n\n'),
        headers: IdempotencyKeyHeader,
        params: IdParams,
        body: TransitionInput,
        response: { 200: Declaration, ...problems(404, 409) },
      },
    },
    async (request) => transitionDeclaration(deps, whoOf(request), request.params.id, request.body),
  )
}

/** Product routes: one product by the code read from a box, search, a medicine and its correction, a generic group. */
import { Type } from 'typebox'
import { decodeCursor, encodeCursor } from '../../platform/cursor.ts'
import { ROLES } from '../../platform/db/schema.ts'
import { AppError } from '../../platform/errors.ts'
import { type Lang, langOf, type Text } from '../../platform/i18n.ts'
import { cip13Problem } from '../../platform/identifiers.ts'
import { IdempotencyKeyHeader, problems } from '../../platform/openapi.ts'
import { PageQuery, ProductCode } from '../../platform/schemas.ts'
import type { RoutePlugin } from '../../platform/types.ts'
import { atcCode, CisParams, GenericGroup, Medicine, MedicinePatch, Product, ProductPage } from '../schemas/products.ts'
import type { Deps } from '../use-cases/context.ts'
import { correctMedicine, type ProductKey, productFinder, readGenericGroup, readMedicine, searchProducts } from '../use-cases/products.ts'
import { whoOf } from './common.ts'

function invalidCode(lang: Lang, problem: Text): never {
  throw new AppError('INVALID_IDENTIFIER', { field: 'params.code', ...problem }, { errors: [{ field: 'params.code', code: 'identifier', message: problem[lang] }] })
}

/** The code read from a box: a CIS is refused with the medicine's address, a CIP13 or GTIN-14 with a wrong check digit with the expected one. */
function parseProductCode(code: string, lang: Lang): ProductKey {
  if (code.length === 8) {
    const message = lang === 'fr' ? 'un CIS désigne un médicament : utilisez /v1/medicines/{cis}' : 'a CIS names a medicine: use /v1/medicines/{cis}'
    throw new AppError('PRODUCT_CODE_IS_CIS', { cis: code }, { errors: [{ field: 'params.code', code: 'cis', message }], medicine: `/v1/medicines/${code}` })
  }
  if (code.length === 7) return { cip7: code }
  if (code.length === 14 && !code.startsWith('0')) invalidCode(lang, { fr: 'un GTIN-14 de médicament s’écrit 0 suivi du CIP13', en: 'a medicine GTIN-14 is 0 followed by the CIP13' })
  const cip13 = code.length === 14 ? code.slice(1) : code
  const problem = cip13Problem(cip13)
  if (problem) invalidCode(lang, problem)
  return { cip13 }
}

const productRoutes: RoutePlugin<{ deps: Deps }> = async (app, { deps }) => {
  const findProduct = productFinder(deps)

  app.get(
    '/products/:code',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'getProduct',
        summary: 'One product by CIP13, GTIN-14 or CIP7',
        description:
          'The code read from a box: CIP13, the GTIN-14 of its DataMatrix (0 + CIP13) or the older CIP7. A wrong check digit answers 400 naming the expected one; a CIS (8 digits) answers 400 pointing to /v1/medicines/{cis}.',
        params: Type.Object({ code: ProductCode }),
        response: { 200: Product, ...problems(404) },
      },
    },
    async (request) => {
      const { code } = request.params
      return findProduct(parseProductCode(code, langOf(request)), code)
    },
  )

  app.get(
    '/products',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'searchProducts',
        summary: 'Search products',
        description:
          '`q` is a name (case and accents ignored, every word must appear) or an exact CIP13, GTIN-14, CIP7 or CIS. Filters combine; with none, every product is listed, page by page, ordered by name then CIP13.',
        querystring: Type.Object(
          {
            q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, pattern: '\\S', examples: ['amoxicilline'] })),
            atc: Type.Optional(atcCode('ATC code or prefix (J01 matches J01CA04); case ignored.')),
            mitm: Type.Optional(Type.Boolean({ description: 'Only MITM (true) or only non-MITM (false) products.' })),
            labId: Type.Optional(Type.String({ minLength: 1, maxLength: 20, description: 'SIREN of the exploiting lab.' })),
            ...PageQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: ProductPage },
      },
    },
    async (request) => {
      const { q: rawQ, atc: rawAtc, mitm, labId, limit = 50, cursor } = request.query
      const q = rawQ?.trim()
      const atc = rawAtc?.toUpperCase()
      const filter = { q, atc, mitm, labId }
      let after: { s: string; c: string } | null = null
      if (cursor) {
        after = decodeCursor<{ s: string; c: string }>(cursor, filter)
        if (typeof after.s !== 'string' || typeof after.c !== 'string') throw new AppError('INVALID_CURSOR')
      }
      const page = await searchProducts(deps, filter, after, limit)
      return { items: page.items, nextCursor: page.next ? encodeCursor(page.next, filter) : null }
    },
  )

  app.get(
    '/medicines/:cis',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'getMedicine',
        summary: 'One medicine (CIS) with its presentations',
        params: CisParams,
        response: { 200: Medicine, ...problems(404) },
      },
    },
    async (request) => readMedicine(deps, request.params.cis),
  )

  app.get(
    '/generic-groups/:id',
    {
      config: { roles: ROLES },
      schema: {
        tags: ['referential'],
        operationId: 'getGenericGroup',
        summary: 'One generic group and its members',
        description: 'From CIS_GENER_bdpm.txt: the princeps and its generics, in the published order. Members withdrawn from the referential are listed with `name: null`.',
        params: Type.Object({ id: Type.Integer({ minimum: 1, maximum: 999_999_999 }) }),
        response: { 200: GenericGroup, ...problems(404) },
      },
    },
    async (request) => readGenericGroup(deps, request.params.id),
  )

  app.patch(
    '/medicines/:cis',
    {
      config: { roles: ['ordre'] },
      schema: {
        tags: ['referential'],
        operationId: 'updateMedicine',
        summary: 'Correct a medicine’s lab, niche, MITM flag or ATC code (operator)',
        description: 'Recorded in the audit trail (object type `medicine`) with the values before and after.',
        headers: IdempotencyKeyHeader,
        params: CisParams,
        body: MedicinePatch,
        response: { 200: Medicine, ...problems(404) },
      },
    },
    async (request) => correctMedicine(deps, whoOf(request), request.params.cis, request.body),
  )
}

export default productRoutes

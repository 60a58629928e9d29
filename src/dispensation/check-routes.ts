import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type Static, Type } from 'typebox'
import type { DatabaseHandle } from '../platform/db/index.ts'
import type { Role } from '../platform/db/schema.ts'
import { type Lang, langOf } from '../platform/i18n.ts'
import { problems } from '../platform/openapi.ts'
import { component } from '../platform/schemas.ts'
import { parseDataMatrix, parseProductAndBatch } from '../serialization/gs1.ts'
import { BlockRegistry, type BlockEntry } from './blocking.ts'

/** Who dispenses or delivers boxes. */
const CHECKERS: readonly Role[] = ['pharmacy', 'hospital', 'wholesaler']
export const MAX_BOXES = 100

// `type: [string, null]` rather than anyOf: the response serializer handles it without trying each branch.
const stringOrNull = (options: Record<string, unknown> = {}) => Type.Unsafe<string | null>({ type: ['string', 'null'], ...options })

const DM_EXAMPLE = ']d201034009494972942110000000001\u001d10LOT2026A\u001d17271231'

const DispensationBox = Type.Object(
  {
    dataMatrix: Type.Optional(Type.String({ maxLength: 400, description: 'The DataMatrix as scanned (GS1 element string; ASCII 29 separators, AIM prefix ]d2, ]Q3 or ]C1 accepted; fields in any order). Only the product (01) and batch (10) are needed.' })),
    product: Type.Optional(Type.String({ maxLength: 40, description: 'Instead of dataMatrix: the CIP13 or GTIN-14.' })),
    batch: Type.Optional(Type.String({ maxLength: 40, description: 'With product: the batch number as printed (compared without regard to case).' })),
  },
  { additionalProperties: false, description: 'One box: its scanned DataMatrix, or its product and batch.' },
)

export const DispensationCheckRequest = component(
  Type.Object(
    { boxes: Type.Array(DispensationBox, { minItems: 1, maxItems: MAX_BOXES, description: `The boxes of the dispensation, at most ${MAX_BOXES}.` }) },
    {
      $id: 'DispensationCheckRequest',
      additionalProperties: false,
      examples: [{ boxes: [{ dataMatrix: DM_EXAMPLE }, { product: '3400936128149', batch: 'B2026-17' }] }],
    },
  ),
)

const BlockingRecall = Type.Object({
  reference: Type.String({ description: 'The recall reference to quote to the lab or ANSM.', examples: ['R-2026-0042'] }),
  version: Type.Integer({ minimum: 1 }),
  lab: Type.String({ description: 'Identifier (SIREN) of the lab that recalls the batch.' }),
  message: Type.String({ description: 'What to tell the pharmacist: the lab’s message (English when asked for and written by the lab).' }),
  expiry: stringOrNull({ format: 'date', description: 'Expiry of the recalled batch, as declared in the recall.' }),
  since: Type.String({ format: 'date-time', description: 'When the blocking took effect.' }),
})

const BoxAnswer = Type.Object({
  index: Type.Integer({ minimum: 0, description: 'Position of the box in the request.' }),
  status: Type.Enum(['blocked', 'clear', 'unreadable'], {
    description: 'blocked: do not dispense, quarantine the box (see recalls). clear: no recall blocks this batch now. unreadable: the box could not be read (see errors): scan it again or type product and batch; it is NOT cleared.',
  }),
  cip13: stringOrNull({ description: 'The presentation read (null when unreadable, or for a product that is not a French medicine).' }),
  batch: stringOrNull({ description: 'The batch as given (null when unreadable).' }),
  recalls: Type.Optional(Type.Array(BlockingRecall, { description: 'Only when blocked: the recalls that block the batch.' })),
  errors: Type.Optional(Type.Array(
    Type.Object({
      field: Type.String({ examples: ['dataMatrix'] }),
      code: Type.String({ examples: ['SEPARATOR_MISSING'] }),
      position: Type.Optional(Type.Integer({ description: '1-based character position in the scanned string.' })),
      message: Type.String(),
    }),
    { description: 'Only when unreadable: what is wrong.' },
  )),
})

export const DispensationCheck = component(
  Type.Object(
    {
      blocked: Type.Boolean({ description: 'At least one box is blocked.' }),
      allClear: Type.Boolean({ description: 'Every box was read and none is blocked: the dispensation may go on.' }),
      generation: Type.Integer({ description: 'Version of the set of blocked batches this answer was read from (for your logs).' }),
      checkedAt: Type.String({ format: 'date-time' }),
      boxes: Type.Array(BoxAnswer, { description: 'One answer per box, in the order given.' }),
    },
    {
      $id: 'DispensationCheck',
      examples: [
        {
          blocked: true,
          allClear: false,
          generation: 12,
          checkedAt: '2026-11-22T09:15:00.000Z',
          boxes: [
            { index: 0, status: 'clear', cip13: '3400949497294', batch: 'LOT2026A' },
            {
              index: 1,
              status: 'blocked',
              cip13: '3400936128149',
              batch: 'B2026-17',
              recalls: [{ reference: 'R-2026-0042', version: 1, lab: '301234563', message: 'Lot rappelé : ne pas délivrer, mettre en quarantaine et retourner au laboratoire.', expiry: '2027-06-30', since: '2026-11-21T16:02:11.000Z' }],
            },
          ],
        },
      ],
    },
  ),
)

type Box = Static<typeof DispensationBox>
type Answer = Static<typeof BoxAnswer>
type Read = { ok: true; cip13: string | null; batch: string } | { ok: false; answer: Answer }

function unreadable(index: number, errors: Answer['errors']): Read {
  return { ok: false, answer: { index, status: 'unreadable', cip13: null, batch: null, errors } }
}

// Module-level functions, no closure per request: this is the busiest route of the service.
function readBox(box: Box, index: number, lang: Lang, now: Date): Read {
  const hasFields = box.product !== undefined || box.batch !== undefined
  if (box.dataMatrix !== undefined) {
    if (hasFields) return unreadable(index, [{ field: 'dataMatrix', code: 'AMBIGUOUS_INPUT', message: lang === 'fr' ? 'donnez soit « dataMatrix », soit « product » et « batch », pas les deux' : 'give either "dataMatrix" or "product" and "batch", not both' }])
    const r = parseDataMatrix(box.dataMatrix, { require: ['01', '10'], now })
    if (!r.ok) return unreadable(index, r.errors.map((e) => ({ field: 'dataMatrix', code: e.code, position: e.position, message: e[lang] })))
    return { ok: true, cip13: r.value.cip13, batch: r.value.batch! }
  }
  if (!hasFields) return unreadable(index, [{ field: 'dataMatrix', code: 'FIELD_EMPTY', message: lang === 'fr' ? 'donnez « dataMatrix », ou « product » et « batch »' : 'give "dataMatrix", or "product" and "batch"' }])
  const r = parseProductAndBatch(box)
  if (!r.ok) return unreadable(index, r.errors.map((e) => ({ field: e.field, code: e.code, message: e[lang] })))
  return { ok: true, cip13: r.value.cip13, batch: r.value.batch }
}

function answer(reads: Read[], found: BlockEntry[][], lang: Lang, generation: number, now: Date) {
  let k = 0
  let blocked = false
  let allClear = true
  const boxes: Answer[] = new Array(reads.length)
  for (let index = 0; index < reads.length; index++) {
    const r = reads[index]!
    if (!r.ok) {
      allClear = false
      boxes[index] = r.answer
      continue
    }
    const entries = r.cip13 ? found[k++]! : []
    if (entries.length > 0) {
      blocked = true
      allClear = false
      const recalls = new Array(entries.length)
      for (let j = 0; j < entries.length; j++) recalls[j] = entries[j]!.shown[lang]
      boxes[index] = { index, status: 'blocked', cip13: r.cip13, batch: r.batch, recalls }
    } else boxes[index] = { index, status: 'clear', cip13: r.cip13, batch: r.batch }
  }
  return { blocked, allClear, generation, checkedAt: now.toISOString(), boxes }
}

export interface DispensationBlockingOptions {
  database: DatabaseHandle
  /** Keep this instance's set in memory (background work on); otherwise every check asks the database. */
  live: boolean
}

/** The blocking registry of this instance and the dispensation check route. */
export default fp(
  async function dispensationBlocking(app: FastifyInstance, opts: DispensationBlockingOptions) {
    const registry = opts.live ? new BlockRegistry(opts.database, app.log) : null
    app.decorate('blockRegistry', registry)
    if (registry) {
      app.addHook('onReady', () => registry.start())
      app.addHook('onClose', () => registry.stop())
    }
    const fallback = registry ?? new BlockRegistry(opts.database, app.log)

    app.withTypeProvider<TypeBoxTypeProvider>().post(
      '/v1/dispensation-checks',
      {
        config: { roles: CHECKERS, idempotency: false },
        schema: {
          tags: ['dispensation'],
          operationId: 'checkDispensation',
          summary: 'Is any box of this dispensation in a recalled batch?',
          description: [
            `Call it before dispensing, with every box of the dispensation (1 to ${MAX_BOXES}), each as its scanned DataMatrix or as product and batch. Each box is answered on its own: an unreadable box does not fail the others.`,
            '',
            'A batch is blocked from the moment ANSM’s approval of a recall that blocks dispensation is committed (the answer is never taken from a stale copy) until the recall is closed or a new version removes the batch. Read-only: safe to repeat. An `Idempotency-Key` is ignored: every call answers from the blocks in force at that moment, never a stored answer.',
          ].join('\n'),
          body: DispensationCheckRequest,
          response: { 200: DispensationCheck, ...problems(400, 401, 403) },
        },
      },
      async (request) => {
        const lang = langOf(request)
        const now = app.now()
        const input = request.body.boxes
        const reads: Read[] = new Array(input.length)
        const wanted: Array<{ cip13: string; batch: string }> = []
        for (let i = 0; i < input.length; i++) {
          const r = readBox(input[i]!, i, lang, now)
          reads[i] = r
          // A foreign GTIN is no French presentation: no French recall can name it.
          if (r.ok && r.cip13) wanted.push({ cip13: r.cip13, batch: r.batch })
        }
        const generation = fallback.generation
        const lookup = fallback.lookup(wanted)
        const found = Array.isArray(lookup) ? lookup : await lookup
        return answer(reads, found, lang, Math.max(generation, 0), now)
      },
    )
  },
  { name: 'dispensation-blocking', dependencies: ['auth'] },
)

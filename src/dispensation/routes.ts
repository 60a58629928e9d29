import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { type Static, Type } from 'typebox'
import type { DatabaseHandle } from '../platform/db/index.ts'
import type { Role } from '../platform/db/schema.ts'
import { type Lang, langOf } from '../platform/i18n.ts'
import { problems } from '../platform/openapi.ts'
import { component } from '../platform/schemas.ts'
import { parisDay } from '../platform/paris-time.ts'
import { RETURN_CODES } from '../serialization/rules/codes.ts'
import { type BatchReading, batchReadings, PACK_AIS, type PackCode, parseDataMatrix, parseDataMatrixDetailed, parseProductAndBatch } from '../serialization/rules/gs1.ts'
import { checkAnswerJson } from './answer-json.ts'
import { BlockRegistry, type BoxFacts } from './registry.ts'
import { BLOCKED_CODE, type Blocking, blockingOf } from './rule.ts'

/** Who dispenses or delivers boxes. */
const CHECKERS: readonly Role[] = ['pharmacy', 'hospital', 'wholesaler']
export const MAX_BOXES = 100

// `type: [string, null]` rather than anyOf: the response serializer handles it without trying each branch.
const stringOrNull = (options: Record<string, unknown> = {}) => Type.Unsafe<string | null>({ type: ['string', 'null'], ...options })

const DM_EXAMPLE = ']d201034009494972942110000000001\u001d10LOT2026A\u001d17271231'

const DispensationBox = Type.Object(
  {
    dataMatrix: Type.Optional(Type.String({ maxLength: 400, description: 'The DataMatrix as scanned (GS1 element string; ASCII 29 separators, AIM prefix ]d2, ]Q3 or ]C1 accepted; fields in any order). The product (01) and batch (10) are needed; for a product under serialization (its lab uploads its packs), the expiry (17) and serial (21) too: a scan without them was misread.' })),
    product: Type.Optional(Type.String({ maxLength: 40, description: 'Instead of dataMatrix: the CIP13 or GTIN-14.' })),
    batch: Type.Optional(Type.String({ maxLength: 40, description: 'With product: the batch number as printed (compared without regard to case).' })),
  },
  { additionalProperties: false, description: 'One box: its scanned DataMatrix, or its product and batch.' },
)

export const DispensationCheckRequest = component(
  Type.Object(
    { boxes: Type.Array(DispensationBox, { minItems: 1, maxItems: MAX_BOXES, description: `The boxes of the dispensation, at most ${MAX_BOXES}.` }) },
    {
      $id: 'DispensationCheckInput',
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

const LabStatusSchema = Type.Object({
  scope: Type.Enum(['batch', 'product'], { description: 'The lab set the status of this batch, or of every batch of the product.' }),
  status: Type.Enum(['recalled', 'withdrawn', 'expired']),
  reason: stringOrNull({ description: 'The reason the lab gave.' }),
  since: Type.String({ format: 'date-time' }),
})

const BoxAnswer = Type.Object({
  index: Type.Integer({ minimum: 0, description: 'Position of the box in the request.' }),
  status: Type.Enum(['blocked', 'clear', 'unreadable'], {
    description:
      'blocked: do not dispense (see `code`, `message` and what blocks it). clear: nothing blocks this batch now. unreadable: the box could not be read (see errors): scan it again or type product and batch; it is NOT cleared. The same rule decides pack verification and every state change: a box blocked here answers the same `code` there.',
  }),
  cip13: stringOrNull({ description: 'The presentation read (null when unreadable, or for a product that is not a French medicine).' }),
  batch: stringOrNull({ description: 'The batch as given (null when unreadable).' }),
  code: Type.Optional(Type.Enum(['BATCH_RECALLED', 'WITHDRAWN', 'EXPIRED'], {
    description: 'Only when blocked, by precedence: BATCH_RECALLED (a DP-Rappels recall blocks the batch, or the lab recalled the batch or the product), WITHDRAWN (the lab withdrew the batch or the product), EXPIRED (the lab declared it expired, or the expiry printed in the DataMatrix has passed, Paris time). The code pack verification answers for the same box.',
  })),
  message: Type.Optional(Type.String({ description: 'Only when blocked: what to do, for the pharmacist (French, or English when asked).' })),
  recalls: Type.Optional(Type.Array(BlockingRecall, { description: 'Only when blocked by DP-Rappels: the recalls that block the batch.' })),
  labStatuses: Type.Optional(Type.Array(LabStatusSchema, { description: 'Only when blocked and the lab set a status: the product’s, then the batch’s.' })),
  expiry: Type.Optional(Type.String({ format: 'date', description: 'Only when blocked: the expiry read from the DataMatrix.' })),
  errors: Type.Optional(Type.Array(
    Type.Object({
      field: Type.String({ examples: ['dataMatrix'] }),
      code: Type.String({ examples: ['MISSING_SEPARATOR'] }),
      position: Type.Optional(Type.Integer({ description: '1-based character position in the scanned string.' })),
      message: Type.String(),
    }),
    { description: 'Only when unreadable: what is wrong. MISSING_AI: a product under serialization scanned without its serial or expiry. MISSING_SEPARATOR: the batch may have swallowed the next field (a lost GS separator) and the two readings do not give the same answer.' },
  )),
})

export const DispensationCheck = component(
  Type.Object(
    {
      blocked: Type.Boolean({ description: 'At least one box is blocked.' }),
      allClear: Type.Boolean({ description: 'Every box was read and none is blocked: the dispensation may go on.' }),
      generation: Type.Integer({ description: 'Version of the set of blocking facts this answer was read from (for your logs).' }),
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
              code: 'BATCH_RECALLED',
              message: 'Lot rappelé : ne délivrez pas ; retirez la boîte du stock et suivez les consignes du rappel (DP-Rappels).',
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
interface Reading {
  ok: true
  cip13: string | null
  batch: string
  expiry: string | null
  /** The DataMatrix as scanned and as read, when the box was given that way. */
  scan?: { input: string; value: PackCode }
  /** Other readings of the batch (a separator may have been lost after it). */
  others: BatchReading[]
}
type Read = Reading | { ok: false; answer: Answer }

function unreadable(index: number, errors: Answer['errors']): { ok: false; answer: Answer } {
  return { ok: false, answer: { index, status: 'unreadable', cip13: null, batch: null, errors } }
}
const NO_READINGS: BatchReading[] = []

// Module-level functions, no closure per request: this is the busiest route of the service.
function readBox(box: Box, index: number, lang: Lang, now: Date): Read {
  const hasFields = box.product !== undefined || box.batch !== undefined
  if (box.dataMatrix !== undefined) {
    if (hasFields) return unreadable(index, [{ field: 'dataMatrix', code: 'AMBIGUOUS_INPUT', message: lang === 'fr' ? 'donnez soit « dataMatrix », soit « product » et « batch », pas les deux' : 'give either "dataMatrix" or "product" and "batch", not both' }])
    // 01 and 10 at least; a product under serialization needs its 17 and 21 too (checked once its facts are known).
    const r = parseDataMatrix(box.dataMatrix, { require: COUNTER_AIS, now })
    if (!r.ok) return unreadable(index, r.errors.map((e) => ({ field: 'dataMatrix', code: e.code, position: e.position, message: e[lang] })))
    const v = r.value
    return { ok: true, cip13: v.cip13, batch: v.batch!, expiry: v.expiry, scan: { input: box.dataMatrix, value: v }, others: batchReadings(v, now) }
  }
  if (!hasFields) return unreadable(index, [{ field: 'dataMatrix', code: 'FIELD_EMPTY', message: lang === 'fr' ? 'donnez « dataMatrix », ou « product » et « batch »' : 'give "dataMatrix", or "product" and "batch"' }])
  const r = parseProductAndBatch(box)
  if (!r.ok) return unreadable(index, r.errors.map((e) => ({ field: e.field, code: e.code, message: e[lang] })))
  return { ok: true, cip13: r.value.cip13, batch: r.value.batch, expiry: null, others: NO_READINGS }
}
const COUNTER_AIS = ['01', '10']

const decide = (facts: BoxFacts, expiry: string | null, today: string) =>
  blockingOf({ recalls: facts.recalls.length, batchStatus: facts.batch?.status, productStatus: facts.product?.status, expiry }, today)

function answer(reads: Read[], found: BoxFacts[], lang: Lang, generation: number, now: Date) {
  const today = parisDay(now)
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
    // A foreign GTIN is no French presentation: no French recall nor lab status can name it; its date still counts.
    const facts = r.cip13 ? found[k++]! : NO_FACTS
    const blocking = decide(facts, r.expiry, today)
    let a: Answer | null = null
    if (r.scan && facts.serialized && (r.scan.value.serial === null || r.scan.value.expiry === null)) {
      // A product under serialization: its DataMatrix carries 17 and 21; without them it was misread.
      const strict = parseDataMatrixDetailed(r.scan.input, { require: PACK_AIS as string[], now })
      a = unreadable(index, strict.ok ? [] : strict.errors.map((e) => ({ field: 'dataMatrix', code: e.code, position: e.position, message: e[lang] }))).answer
    }
    for (const other of r.others) {
      const otherFacts = r.cip13 ? found[k++]! : NO_FACTS
      if (a === null && decide(otherFacts, other.expiry, today) !== blocking) a = unreadable(index, [ambiguous(other, lang)]).answer
    }
    if (a) {
      allClear = false
      boxes[index] = a
    } else if (blocking) {
      blocked = true
      allClear = false
      boxes[index] = blockedAnswer(index, r, facts, blocking, lang)
    } else boxes[index] = { index, status: 'clear', cip13: r.cip13, batch: r.batch }
  }
  return { blocked, allClear, generation, checkedAt: now.toISOString(), boxes }
}
const NO_FACTS: BoxFacts = { recalls: [], batch: null, product: null, serialized: false }

function blockedAnswer(index: number, r: Reading, facts: BoxFacts, blocking: Blocking, lang: Lang): Answer {
  const code = BLOCKED_CODE[blocking]
  const out: Answer = { index, status: 'blocked', cip13: r.cip13, batch: r.batch, code, message: RETURN_CODES[code][lang] }
  if (facts.recalls.length > 0) {
    const recalls = new Array(facts.recalls.length)
    for (let j = 0; j < facts.recalls.length; j++) recalls[j] = facts.recalls[j]!.shown[lang]
    out.recalls = recalls
  }
  if (facts.batch || facts.product) out.labStatuses = [facts.product, facts.batch].filter((s) => s !== null)
  if (r.expiry) out.expiry = r.expiry
  return out
}

function ambiguous(other: BatchReading, lang: Lang): NonNullable<Answer['errors']>[number] {
  const name = other.ai === '21' ? { fr: 'numéro de série', en: 'serial number' } : { fr: 'date de péremption', en: 'expiry date' }
  return {
    field: 'dataMatrix',
    code: 'MISSING_SEPARATOR',
    message:
      lang === 'fr'
        ? `Numéro de lot ambigu : à partir de son caractère ${other.offset}, il peut contenir l’AI ${other.ai} (${name.fr}) si le séparateur GS a été perdu, et les deux lectures ne donnent pas la même réponse. Scannez de nouveau ou saisissez le produit et le lot.`
        : `Ambiguous batch number: from its character ${other.offset}, it may hold AI ${other.ai} (${name.en}) if the GS separator was lost, and the two readings do not give the same answer. Scan again or key in the product and batch.`,
  }
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
          summary: 'May the boxes of this dispensation be dispensed? (recalled, withdrawn or expired batches)',
          description: [
            `Call it before dispensing, with every box of the dispensation (1 to ${MAX_BOXES}), each as its scanned DataMatrix or as product and batch. Each box is answered on its own: an unreadable box does not fail the others.`,
            '',
            'A box is blocked, whether or not its lab has uploaded its packs yet, while: a DP-Rappels recall that blocks dispensation names its batch (from the moment ANSM’s approval is committed until the recall is closed or a new version removes the batch); the lab has recalled, withdrawn or expired its batch or its whole product (from the moment the lab’s change is answered); or the expiry printed in its DataMatrix has passed (Paris time). The answer is never taken from a stale copy, and it is the answer pack verification and every pack state change give for the same box (`code`). Read-only: safe to repeat. An `Idempotency-Key` is ignored: every call answers from the facts in force at that moment, never a stored answer.',
          ].join('\n'),
          body: DispensationCheckRequest,
          response: { 200: DispensationCheck, ...problems(400, 401, 403) },
        },
      },
      async (request, reply) => {
        const lang = langOf(request)
        const now = app.now()
        const input = request.body.boxes
        const reads: Read[] = new Array(input.length)
        const wanted: Array<{ cip13: string; batch: string }> = []
        for (let i = 0; i < input.length; i++) {
          const r = readBox(input[i]!, i, lang, now)
          reads[i] = r
          // A foreign GTIN is no French presentation: no French recall or lab status can name it.
          if (r.ok && r.cip13) {
            wanted.push({ cip13: r.cip13, batch: r.batch })
            for (const other of r.others) wanted.push({ cip13: r.cip13, batch: other.batch })
          }
        }
        const generation = fallback.generation
        const lookup = fallback.lookup(wanted)
        const found = Array.isArray(lookup) ? lookup : await lookup
        // Written by hand, as the schema says (answer-json.ts tells why); set last, so that an error is still a problem.
        // With its own serializer, Fastify leaves the content type to the route.
        reply.type('application/json; charset=utf-8').serializer(checkAnswerJson)
        return answer(reads, found, lang, Math.max(generation, 0), now)
      },
    )
  },
  { name: 'dispensation-blocking', dependencies: ['auth'] },
)

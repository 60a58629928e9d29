import { SerializerSelector } from '@fastify/fast-json-stringify-compiler'
import fc from 'fast-check'
import t from 'tap'
import { type CheckAnswer, checkAnswerJson } from '../src/dispensation/answer-json.ts'
import '../src/dispensation/routes.ts'
import { applyBlocks } from '../src/recalls/use-cases/blocking.ts'
import { registeredSchemas } from '../src/platform/schemas.ts'
import { ORG, testApp } from './helpers.ts'

// The check's answer is written by hand (src/dispensation/answer-json.ts). It must be, byte for byte, what the route's
// compiled serializer would write from the contract's schema: the same fields, in the same order, and nothing else.
const compiled = SerializerSelector()(
  Object.fromEntries(registeredSchemas().map((s) => [(s as { $id: string }).$id, s])) as never,
  {} as never,
)({ schema: { $ref: 'DispensationCheck#' }, method: 'POST', url: '/v1/dispensation-checks', httpStatus: '200' } as never) as (data: unknown) => string

// Text of every kind: quotes, backslashes, control characters, accents, emoji, lone surrogates.
const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.constantFrom('"', '\\', '\n\t\u0000', '\ud800', 'Lot rappelé : ne délivrez pas', '</script>'))
const instant = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-12-31T23:59:59Z'), noInvalidDate: true }).map((d) => d.toISOString())
const day = instant.map((s) => s.slice(0, 10))
const recall = fc.record({ reference: anyText, version: fc.integer({ min: 1, max: 1000 }), lab: anyText, message: anyText, expiry: fc.option(day), since: instant })
const labStatus = fc.record({ scope: fc.constantFrom('batch', 'product'), status: fc.constantFrom('recalled', 'withdrawn', 'expired'), reason: fc.option(anyText), since: instant })
const error = fc.record({ field: anyText, code: anyText, position: fc.integer({ min: 1, max: 400 }), message: anyText }, { requiredKeys: ['field', 'code', 'message'] })
const box = fc.record(
  {
    index: fc.integer({ min: 0, max: 99 }),
    status: fc.constantFrom('blocked', 'clear', 'unreadable'),
    cip13: fc.option(anyText),
    batch: fc.option(anyText),
    code: fc.constantFrom('BATCH_RECALLED', 'WITHDRAWN', 'EXPIRED'),
    message: anyText,
    recalls: fc.array(recall, { maxLength: 3 }),
    labStatuses: fc.array(labStatus, { maxLength: 2 }),
    expiry: day,
    errors: fc.array(error, { maxLength: 3 }),
  },
  { requiredKeys: ['index', 'status', 'cip13', 'batch'] },
)
const answer: fc.Arbitrary<CheckAnswer> = fc.record({ blocked: fc.boolean(), allClear: fc.boolean(), generation: fc.integer({ min: 0, max: 2 ** 31 - 1 }), checkedAt: instant, boxes: fc.array(box, { maxLength: 6 }) })

t.test('any answer is written as the compiled serializer writes it', async (t) => {
  fc.assert(
    fc.property(answer, (a) => {
      const json = checkAnswerJson(a)
      return json === compiled(a) && json === checkAnswerJson(a) // the second call reads what the first one kept
    }),
    { seed: 20261207, numRuns: 2000 },
  )
  // A field the schema does not name is never written (the compiled serializer leaves it out too).
  const extra = { blocked: false, allClear: true, generation: 1, checkedAt: '2026-12-07T10:00:00.000Z', secret: 1, boxes: [{ index: 0, status: 'clear', cip13: '3400949497294', batch: 'B', internal: 'x' }] }
  t.equal(checkAnswerJson(extra as CheckAnswer), compiled(extra))
  t.notMatch(checkAnswerJson(extra as CheckAnswer), /secret|internal/)
})

t.test('the route answers every shape of box as the compiled serializer would', async (t) => {
  const { app, auth, database } = await testApp(t)
  const PRODUCT = '3400949497294'
  await database.db.insertInto('serial_batches').values({ cip13: PRODUCT, batch: 'WD-1', lab_id: ORG.labBiogaran, expiry: '2027-12-31', status: 'withdrawn', status_reason: 'retrait « qualité »', created_at: new Date(), updated_at: new Date() }).execute()
  await applyBlocks(app, {
    recallId: 'rec-1', reference: 'R-2026-0001', version: 1, labId: ORG.labBiogaran,
    messageFr: 'Lot rappelé : ne pas délivrer, « quarantaine ».', messageEn: 'Recalled batch: do not dispense, "quarantine".',
    batches: [{ cip13: PRODUCT, batch: 'WD-1', expiry: '2027-12-31' }, { cip13: PRODUCT, batch: 'REC-2', expiry: null as never }],
  }, async () => undefined)
  const GS = '\x1d'
  const boxes = [
    { product: PRODUCT, batch: 'wd-1' }, // recalled and withdrawn: recalls and labStatuses
    { product: PRODUCT, batch: 'REC-2' },
    { product: PRODUCT, batch: 'FREE"1%' }, // clear, with a quote to escape
    { dataMatrix: `010${PRODUCT}21SER1${GS}10OLD${GS}17200131` }, // expired by its printed date
    { dataMatrix: 'not a code' },
    { product: '123', batch: 'x' },
    { product: PRODUCT, batch: 'FREE "1" \\ é' }, // outside GS1's characters: unreadable
    { dataMatrix: `010${PRODUCT}21SER1${GS}10B1`, product: PRODUCT },
  ]
  for (const lang of ['fr', 'en']) {
    const res = await app.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: { ...auth('pharmacy', ORG.pharmacyParis), 'accept-language': lang }, payload: { boxes } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
    const body = res.json()
    t.same(body.boxes.map((b: { status: string }) => b.status), ['blocked', 'blocked', 'clear', 'blocked', 'unreadable', 'unreadable', 'unreadable', 'unreadable'], lang)
    t.ok(body.boxes[0].recalls.length === 1 && body.boxes[0].labStatuses.length === 1 && body.boxes[3].expiry && body.boxes[4].errors.length > 0, 'every optional field appears')
    t.equal(res.body, compiled(body), `${lang}: the compiled serializer's bytes`)
  }
  // An error is still a problem, not an answer written by the check's writer.
  const bad = await app.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: auth('pharmacy', ORG.pharmacyParis), payload: { boxes: [] } })
  t.equal(bad.statusCode, 400)
  t.equal(bad.headers['content-type'], 'application/problem+json; charset=utf-8')
})

// One reading of a scan: the dispensation check and pack verification read a DataMatrix the same way, and no
// mangling of a recalled box's DataMatrix makes the check answer "clear". Property-based (fast-check): valid element
// strings in any order, then the mutations scanners and keyboards produce. Seeded: FC_SEED replays a failure,
// FC_RUNS enlarges a run.
import fc from 'fast-check'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { applyBlocks } from '../src/recalls/use-cases/blocking.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { PACK_AIS, parseDataMatrix, parseDataMatrixDetailed } from '../src/serialization/rules/gs1.ts'
import { ORG, testApp } from './helpers.ts'

const SEED = Number(process.env.FC_SEED ?? 20261206)
const RUNS = Number(process.env.FC_RUNS ?? 300)
const GS = '\x1d'
const SERIALIZED = '3400949497294' // its lab uploads its packs
const PLAIN = '3400927612343' // paracetamol: no prescription condition, no packs uploaded: a 2011-style DataMatrix (01, 17, 10) is enough
const RX = '3400936128149' // amoxicillin, liste I: under serialization by the referential, though its lab uploaded nothing
const BLOCKED = ['LOT42', 'B2021A', 'X17B', 'AB1'] // recalled on both products; some hold what reads as an AI
const SERIALS = ['SERIAL9', 'abc123', 'S-1/2', '2110AB']
const now = new Date('2026-12-06T10:00:00Z')

interface Scan {
  product: string
  fields: Array<[string, string]>
  prefix: string
  trailer: string
}

const set82 = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-./_%&*+'.split(''))
/** A well-formed element string: the AIs in any order, separators after variable fields (the last may go without). */
const render = (s: Scan) => s.prefix + s.fields.map(([ai, v], i) => `${ai}${v}${(ai === '10' || ai === '21') && i < s.fields.length - 1 ? GS : ''}`).join('') + s.trailer
const scan = (product: fc.Arbitrary<string>, batch: fc.Arbitrary<string>, withSerial: fc.Arbitrary<boolean>) =>
  fc
    .record({
      product,
      batch,
      serial: fc.oneof(fc.constantFrom(...SERIALS), fc.array(set82, { minLength: 1, maxLength: 20 }).map((a) => a.join(''))),
      withSerial,
      order: fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
      prefix: fc.constantFrom('', ']d2', ']Q3', GS),
      trailer: fc.constantFrom('', GS, '\r\n', '\n'),
    })
    .map((r): Scan => {
      const fields: Array<[string, string]> = [['01', `0${r.product}`], ['17', '301231'], ['10', r.batch]]
      if (r.withSerial) fields.push(['21', r.serial])
      const keyed = fields.map((f, i) => ({ f, k: r.order[i]! }))
      keyed.sort((a, b) => a.k - b.k)
      return { product: r.product, fields: keyed.map((x) => x.f), prefix: r.prefix, trailer: r.trailer }
    })

const indexesOf = (s: string, c: string) => [...s].flatMap((x, i) => (x === c ? [i] : []))
const letters = (s: string) => [...s].flatMap((x, i) => (/[a-z]/i.test(x) ? [i] : []))
const swap = (c: string) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())
const NOT_SET82 = ['\x00', '\t', ' ', 'é', 'ß', '{', '~', '\x7f', '€', '#', '$', '@', '[']

/** What scanners and keyboards do to a scan, safety-relevant ones only (see the property below). */
const safeMutation = fc.oneof(
  fc.nat().map((k) => (s: string) => { const at = indexesOf(s, GS); return at.length ? s.slice(0, at[k % at.length]) + s.slice(at[k % at.length]! + 1) : s }), // a lost separator
  fc.nat().map((k) => (s: string) => { const at = indexesOf(s, GS); return at.length ? s.slice(0, at[k % at.length]) + GS + s.slice(at[k % at.length]) : s }), // a doubled one
  fc.constant((s: string) => s.replace(/[a-z]/gi, swap)), // Caps Lock
  fc.nat().map((k) => (s: string) => { const at = letters(s); if (!at.length) return s; const i = at[k % at.length]!; return s.slice(0, i) + swap(s[i]!) + s.slice(i + 1) }), // one letter's case
  fc.tuple(fc.nat(), fc.constantFrom(...NOT_SET82)).map(([k, c]) => (s: string) => { const i = k % (s.length + 1); return s.slice(0, i) + c + s.slice(i) }), // a stray character
  fc.constant((s: string) => s.replaceAll(GS, '{GS}')), // a written separator
)
/** Any mutation, truncation included: for the agreement of the two readers. */
const anyMutation = fc.oneof(safeMutation, fc.nat().map((k) => (s: string) => s.slice(0, k % (s.length + 1))))

t.test('the fast path and the strict reader agree on mutated scans, whatever AIs are required', async (t) => {
  const input = fc.tuple(scan(fc.constantFrom(SERIALIZED, PLAIN), fc.array(set82, { minLength: 1, maxLength: 20 }).map((a) => a.join('')), fc.boolean()), fc.array(anyMutation, { maxLength: 3 }))
  fc.assert(
    fc.property(input, fc.constantFrom(['01', '10'], PACK_AIS as string[]), ([s, mutations], require) => {
      const text = mutations.reduce((x, m) => m(x), render(s))
      t.same(parseDataMatrix(text, { require, now }), parseDataMatrixDetailed(text, { require, now }))
    }),
    { seed: SEED, numRuns: RUNS * 10 },
  )
})

t.test('the check and verification, on one instance over one database', async (t) => {
  const { app, auth, database } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  const lab = auth('lab', ORG.labBiogaran)
  const pharmacy = auth('pharmacy', ORG.pharmacyParis, 'alice')
  for (const batch of BLOCKED) {
    const r = await app.inject({ method: 'POST', url: '/v1/serialization/packs', headers: lab, payload: { product: SERIALIZED, batch, expiry: '2030-12-31', serials: SERIALS.map((s) => `${s}`) } })
    // Serials are unique per product: the first batch takes them, the others conflict (reported, not an error).
    t.equal(r.statusCode, 200, r.body)
  }
  await applyBlocks(app, { recallId: 'rec-read', reference: 'R-2026-0100', version: 1, labId: ORG.labBiogaran, messageFr: 'Lot rappelé.', batches: BLOCKED.flatMap((batch) => [SERIALIZED, PLAIN].map((cip13) => ({ cip13, batch, expiry: '2030-12-31' }))) }, async () => {})
  await app.blockRegistry!.reload()
  // A character no text may hold (NUL, a lone surrogate) is refused for the whole call, before any reading (400).
  const refused = (r: { statusCode: number; json: () => any }): any => (r.statusCode === 400 ? { status: 'refused', code: 'INVALID_CODE', errors: r.json().errors } : null)
  const check = async (dataMatrix: string): Promise<any> => {
    const r = await app.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: pharmacy, payload: { boxes: [{ dataMatrix }] } })
    return refused(r) ?? r.json().boxes[0]
  }
  const verify = async (dataMatrix: string): Promise<any> => {
    const r = await app.inject({ method: 'POST', url: '/v1/serialization/packs/verify', headers: pharmacy, payload: { dataMatrix } })
    return refused(r) ?? r.json()
  }

  t.test('a recalled box is never "clear", however its DataMatrix is mangled', async (t) => {
    const input = fc.tuple(scan(fc.constantFrom(SERIALIZED, PLAIN), fc.constantFrom(...BLOCKED), fc.boolean()), fc.array(safeMutation, { maxLength: 3 }))
    await fc.assert(
      fc.asyncProperty(input, async ([s, mutations]) => {
        const text = mutations.reduce((x, m) => m(x), render(s))
        const box = await check(text)
        if (box.status === 'clear') t.fail(`clear: ${JSON.stringify(text)} read as ${JSON.stringify(box)}`)
        return box.status !== 'clear'
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  t.test('a product under serialization: the check reads a scan exactly as verification does', async (t) => {
    const input = fc.tuple(scan(fc.constant(SERIALIZED), fc.constantFrom(...BLOCKED), fc.boolean()), fc.array(anyMutation, { maxLength: 3 }))
    await fc.assert(
      fc.asyncProperty(input, async ([s, mutations]) => {
        const text = mutations.reduce((x, m) => m(x), render(s))
        const [box, v] = await Promise.all([check(text), verify(text)])
        // The Caps Lock hint needs the pack (verification knows it, the check does not): both refuse to clear.
        const unreadable = v.code === 'INVALID_CODE' && !v.errors.some((e: { code: string }) => e.code === 'KEYBOARD_CASE_INVERTED')
        const agree = box.status === 'refused' ? v.status === 'refused' : (box.status === 'unreadable') === unreadable
        const sameReading = unreadable || v.code === 'INVALID_CODE' || (box.cip13 === v.pack.product && box.batch === v.pack.batch)
        if (!agree || !sameReading) t.fail(`${JSON.stringify(text)}: check ${JSON.stringify(box)}, verify ${v.code} ${JSON.stringify(v.pack ?? v.errors)}`)
        return agree && sameReading
      }),
      { seed: SEED, numRuns: RUNS },
    )
  })

  t.test('examples from the field', async (t) => {
    const box = (s: string) => check(s).then((b) => [b.status, b.errors?.[0]?.code ?? b.code])
    t.same(await box(`]d2010${PLAIN}17301231${`10LOT4221SERIAL`}`), ['unreadable', 'MISSING_SEPARATOR'], 'a lost separator after the batch: not read as batch LOT4221SERIAL')
    t.same(await box(`]d2010${PLAIN}1730123110LOT42`), ['blocked', 'BATCH_RECALLED'], 'the 2011 DataMatrix (01, 17, 10) of a product without serials')
    t.same(await box(`]d2010${SERIALIZED}1730123110LOT42`), ['unreadable', 'MISSING_AI'], 'a serialized product’s DataMatrix without its serial')
    t.same(await box(`]d2010${SERIALIZED}10LOT42${GS}21SERIAL9`), ['unreadable', 'MISSING_AI'], 'nor without its expiry')
    t.same(await box(`]d2010${RX}1730123110LOT42`), ['unreadable', 'MISSING_AI'], 'a prescription-only product (liste I) is under serialization by the referential alone')
    t.same(await box(`]d2010${PLAIN}1730123110C2021X`), ['clear', undefined], 'a batch holding "21" is read as it is when no reading of it is blocked')
    t.same(await box(`]d2010${PLAIN}1730123110B2021A`), ['unreadable', 'MISSING_SEPARATOR'], 'but when its two readings (B2021A, or B20 then serial A) do not give the same answer, it is not read')
    t.same(await box(`]d2010${PLAIN}10B2021A${GS}17301231`), ['unreadable', 'MISSING_SEPARATOR'], 'wherever the batch is')
    t.same(await box(`]d2010${SERIALIZED}10B2021A${GS}21SERIAL9${GS}17301231`), ['blocked', 'BATCH_RECALLED'], 'with its own serial (21) read, nothing is ambiguous')
    t.same(await box(`]d2010${PLAIN}10LOT4217301231`), ['unreadable', 'MISSING_SEPARATOR'], 'an expiry swallowed by the batch')
    t.match((await verify(`]d2010${PLAIN}1730123110LOT4221SERIAL`)).code, 'INVALID_CODE', 'verification refuses it too (a serial is required)')
  })
})

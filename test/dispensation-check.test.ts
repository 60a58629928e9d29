import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildApp } from '../src/app.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { applyBlocks, type RecallBlocks } from '../src/recalls/use-cases/blocking.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, sql, testApp } from './helpers.ts'

const GS = '\x1d'
const PRODUCT = '3400949497294'
const OTHER = '3400936128149'
const dm = (batch: string, opts: { prefix?: string; order?: 'standard' | 'reversed' } = {}) =>
  opts.order === 'reversed' ? `${opts.prefix ?? ''}17271231${`10${batch}`}${GS}21SER1${GS}010${PRODUCT}` : `${opts.prefix ?? ''}010${PRODUCT}21SER1${GS}10${batch}${GS}17271231`

const recall = (batches: Array<{ cip13: string; batch: string }>, over: Partial<RecallBlocks> = {}): RecallBlocks => ({
  recallId: 'rec-1',
  reference: 'R-2026-0001',
  version: 1,
  labId: ORG.labBiogaran,
  messageFr: 'Lot rappelé : ne pas délivrer, mettre en quarantaine.',
  messageEn: 'Recalled batch: do not dispense, quarantine it.',
  batches: batches.map((b) => ({ ...b, expiry: '2027-12-31' })),
  ...over,
})

t.test('dispensation check: blocked and clear boxes, GS1 forms, errors per box', async (t) => {
  const { app, auth } = await testApp(t)
  const check = (boxes: unknown[], headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: { ...auth('pharmacy', ORG.pharmacyParis), ...headers }, payload: { boxes } })

  let r = await check([{ dataMatrix: dm('LOTA') }])
  t.equal(r.statusCode, 200)
  t.same(r.json().boxes[0], { index: 0, status: 'clear', cip13: PRODUCT, batch: 'LOTA' })
  t.equal(r.json().allClear, true)

  await applyBlocks(app, recall([{ cip13: PRODUCT, batch: 'LOTA' }]), async () => undefined)

  r = await check([
    { dataMatrix: dm('LOTA', { prefix: ']d2' }) }, // AIM prefix
    { dataMatrix: dm('LOTA', { order: 'reversed' }) }, // fields in another order
    { product: PRODUCT, batch: 'lota' }, // typed by hand, lower case
    { product: `0${PRODUCT}`, batch: 'LOTB' }, // GTIN, another batch
    { product: OTHER, batch: 'LOTA' }, // same batch number, another product
    { dataMatrix: `010${PRODUCT}10LOTA${GS}10LOTB` }, // duplicated batch: unreadable, not cleared
    { dataMatrix: `]D2010${PRODUCT}10LOTA` }, // Caps Lock
    { product: '3400949497295', batch: 'LOTA' }, // wrong check digit
    { dataMatrix: dm('LOTA'), product: PRODUCT }, // both forms
    {},
  ])
  t.equal(r.statusCode, 200)
  const body = r.json()
  t.equal(body.blocked, true)
  t.equal(body.allClear, false)
  t.same(body.boxes.map((b: { status: string }) => b.status), ['blocked', 'blocked', 'blocked', 'clear', 'clear', 'unreadable', 'unreadable', 'unreadable', 'unreadable', 'unreadable'])
  t.match(body.boxes[0].recalls, [{ reference: 'R-2026-0001', version: 1, lab: ORG.labBiogaran, message: /ne pas délivrer/, expiry: '2027-12-31' }])
  t.equal(body.boxes[2].batch, 'lota', 'the batch is answered as given')
  t.ok(body.boxes[5].errors.length > 0 && body.boxes[5].errors[0].field === 'dataMatrix', 'the unreadable box says why')
  t.equal(body.boxes[6].errors[0].code, 'SYMBOLOGY_CORRUPTED')
  t.equal(body.boxes[7].errors[0].code, 'GTIN_CHECK_DIGIT')
  t.equal(body.boxes[8].errors[0].code, 'AMBIGUOUS_INPUT')

  r = await check([{ product: PRODUCT, batch: 'LOTA' }], { 'accept-language': 'en' })
  t.match(r.json().boxes[0].recalls[0].message, /do not dispense/)

  // The whole call is refused only when its shape is wrong.
  r = await check([])
  t.equal(r.statusCode, 400)
  r = await check(Array.from({ length: 101 }, () => ({ product: PRODUCT, batch: 'LOTA' })))
  t.equal(r.statusCode, 400)
  t.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8')
  r = await check([{ product: PRODUCT, batch: 'LOTA', quantity: 2 }])
  t.equal(r.statusCode, 400)

  // Who may call it.
  r = await app.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: auth('hospital', ORG.hospital), payload: { boxes: [{ product: PRODUCT, batch: 'LOTA' }] } })
  t.equal(r.json().blocked, true)
  r = await app.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: auth('lab', ORG.labBiogaran), payload: { boxes: [{ product: PRODUCT, batch: 'LOTA' }] } })
  t.equal(r.statusCode, 403)
  r = await app.inject({ method: 'POST', url: '/v1/dispensation-checks', payload: { boxes: [{ product: PRODUCT, batch: 'LOTA' }] } })
  t.equal(r.statusCode, 401)
})

t.test('an Idempotency-Key never replays an earlier answer: the check is always made at the time of the call', async (t) => {
  const { app, auth } = await testApp(t)
  // Many HTTP clients add a key to every POST; a key reused for the same dispensation must not bring back "clear".
  const check = () =>
    app.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: { ...auth('pharmacy', ORG.pharmacyParis), 'idempotency-key': 'dispensation-0001' }, payload: { boxes: [{ product: PRODUCT, batch: 'LOTK' }] } })
  let r = await check()
  t.equal(r.json().boxes[0].status, 'clear')
  await applyBlocks(app, recall([{ cip13: PRODUCT, batch: 'LOTK' }]), async () => undefined)
  r = await check()
  t.equal(r.statusCode, 200)
  t.equal(r.json().boxes[0].status, 'blocked', 'the same key answers from the blocks in force now')
  t.equal(r.headers['idempotent-replayed'], undefined)
  const kept = await app.db.selectFrom('idempotency_keys').select('key').where('key', '=', 'dispensation-0001').execute()
  t.same(kept, [], 'nothing is stored for the key')
})

t.test('a second instance blocks in the same instant the broadcast commits; a new version and the close unblock', async (t) => {
  const { app, auth, config, database, clock } = await testApp(t)
  const second = await buildApp({ config, database, now: () => clock.now, background: 'manual-jobs' })
  await second.ready()
  t.teardown(() => second.close())
  const check = (on: typeof app, batch: string, product = PRODUCT) =>
    on.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: auth('pharmacy', ORG.pharmacyLyon), payload: { boxes: [{ product, batch }] } }).then((r) => r.json())

  t.equal((await check(second, 'L1')).blocked, false)
  const before = second.blockRegistry!.generation
  await applyBlocks(app, recall([{ cip13: PRODUCT, batch: 'L1' }, { cip13: PRODUCT, batch: 'L2' }, { cip13: OTHER, batch: 'L1' }]), async () => undefined)
  // No wait: the broadcast returned only after every instance had loaded the new batches.
  const now = await check(second, 'L1')
  t.equal(now.blocked, true, 'the second instance blocks at once')
  t.ok(now.generation > before, 'and it answers from its own (reloaded) copy')
  t.equal((await check(second, 'L2')).blocked, true)
  t.equal((await check(second, 'L1', OTHER)).blocked, true)

  // A new version that removes L2 unblocks only L2.
  await applyBlocks(app, recall([{ cip13: PRODUCT, batch: 'L1' }, { cip13: OTHER, batch: 'L1' }], { version: 2 }), async () => undefined)
  await second.blockRegistry!.reload()
  t.equal((await check(second, 'L2')).blocked, false, 'the removed batch is free again')
  const l1 = await check(second, 'L1')
  t.equal(l1.blocked, true, 'the others stay blocked')
  t.equal(l1.boxes[0].recalls[0].version, 2, 'with the new version')

  // Closing unblocks everything.
  await applyBlocks(app, recall([], { version: 2 }), async () => undefined)
  await second.blockRegistry!.reload()
  await app.blockRegistry!.reload()
  t.equal((await check(second, 'L1')).blocked, false)
  t.equal((await check(app, 'L1', OTHER)).blocked, false)
})

t.test('a broadcast waits for every live instance to load its batches', async (t) => {
  const { app, database } = await testApp(t)
  // An instance that holds a lease but has not loaded anything yet (a paused process, a lost notification).
  await sql`insert into dispensation_block_instances (id, loaded_generation, lease_until, started_at) values ('lagging', -1, now() + interval '1 minute', now())`.execute(database.db)
  let done = false
  const broadcast = applyBlocks(app, recall([{ cip13: PRODUCT, batch: 'W1' }]), async () => undefined).then(() => (done = true))
  await sleep(300)
  t.equal(done, false, 'not committed while an instance has not loaded the batch')
  const pending = await database.db.selectFrom('dispensation_blocks').select('state').where('batch', '=', 'W1').execute()
  t.same(pending, [{ state: 'pending' }], 'announced as pending (already blocking)')
  const { generation } = await database.db.selectFrom('dispensation_block_generation').select('generation').executeTakeFirstOrThrow()
  await sql`update dispensation_block_instances set loaded_generation = ${generation} where id = 'lagging'`.execute(database.db)
  await broadcast
  t.equal(done, true)
  const active = await database.db.selectFrom('dispensation_blocks').select('state').where('batch', '=', 'W1').execute()
  t.same(active, [{ state: 'active' }])

  // An instance whose lease has run out is not waited for (it answers from the database, see below).
  await sql`update dispensation_block_instances set loaded_generation = -1, lease_until = now() - interval '1 second' where id = 'lagging'`.execute(database.db)
  await applyBlocks(app, recall([{ cip13: PRODUCT, batch: 'W1' }, { cip13: PRODUCT, batch: 'W2' }]), async () => undefined)
  t.pass('not blocked by an expired lease')
})

t.test('an instance that is not current answers from the database', async (t) => {
  const { app, auth, config, database, clock } = await testApp(t)
  // background 'off': no copy in memory at all.
  const cold = await buildApp({ config, database, now: () => clock.now, background: 'off' })
  await cold.ready()
  t.teardown(() => cold.close())
  t.equal(cold.blockRegistry, null)
  await applyBlocks(app, recall([{ cip13: PRODUCT, batch: 'C1' }]), async () => undefined)
  const r = await cold.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: auth('pharmacy', ORG.pharmacyParis), payload: { boxes: [{ product: PRODUCT, batch: 'c1' }] } })
  t.equal(r.json().blocked, true)
  t.equal(r.json().boxes[0].recalls[0].reference, 'R-2026-0001')
})

t.test('a failed broadcast blocks nothing; a recall leaves the lab’s own batch statuses as they are', async (t) => {
  const { app, auth, database } = await testApp(t)
  await database.db.insertInto('serial_batches').values({ cip13: PRODUCT, batch: 'Ser-1', lab_id: ORG.labBiogaran, expiry: '2027-12-31', status: 'active', status_reason: null, created_at: new Date(), updated_at: new Date() }).execute()
  await database.db.insertInto('serial_batches').values({ cip13: PRODUCT, batch: 'WD-1', lab_id: ORG.labBiogaran, expiry: '2027-12-31', status: 'withdrawn', status_reason: 'retrait', created_at: new Date(), updated_at: new Date() }).execute()
  const status = async (batch: string) => (await database.db.selectFrom('serial_batches').select('status').where('batch', '=', batch).executeTakeFirstOrThrow()).status
  const check = async (batch: string) => (await app.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: auth('pharmacy', ORG.pharmacyParis), payload: { boxes: [{ product: PRODUCT, batch }] } })).json().boxes[0]

  await t.rejects(
    applyBlocks(app, recall([{ cip13: PRODUCT, batch: 'SER-1' }]), async () => {
      throw new Error('the broadcast failed')
    }),
    /the broadcast failed/,
  )
  t.same(await database.db.selectFrom('dispensation_blocks').selectAll().execute(), [], 'the announced rows are withdrawn')
  await app.blockRegistry!.reload()
  t.equal((await check('Ser-1')).status, 'clear')

  await applyBlocks(app, recall([{ cip13: PRODUCT, batch: 'SER-1' }, { cip13: PRODUCT, batch: 'WD-1' }]), async () => undefined)
  t.match(await check('Ser-1'), { status: 'blocked', code: 'BATCH_RECALLED' }, 'blocked (matched without regard to case)')
  t.match(await check('WD-1'), { status: 'blocked', code: 'BATCH_RECALLED', labStatuses: [{ scope: 'batch', status: 'withdrawn' }] }, 'a recall outranks a withdrawal; both are shown')
  t.equal(await status('Ser-1'), 'active', 'nothing is copied into the lab’s statuses')
  t.equal(await status('WD-1'), 'withdrawn')
  await applyBlocks(app, recall([]), async () => undefined)
  await app.blockRegistry!.reload()
  t.equal((await check('Ser-1')).status, 'clear', 'the close lifts the recall')
  t.match(await check('WD-1'), { status: 'blocked', code: 'WITHDRAWN' }, 'and leaves the lab’s withdrawal')
})

t.test('end to end: ANSM approval blocks on every instance at once, the close unblocks', async (t) => {
  const { app, auth, config, database, clock } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  const second = await buildApp({ config, database, now: () => clock.now, background: 'manual-jobs' })
  await second.ready()
  t.teardown(() => second.close())
  const biogaran = auth('lab', ORG.labBiogaran)
  const ansm = auth('ansm', ORG.ansm)
  const check = (on: typeof app) =>
    on
      .inject({ method: 'POST', url: '/v1/dispensation-checks', headers: auth('pharmacy', ORG.pharmacyAjaccio), payload: { boxes: [{ dataMatrix: `]d2010${OTHER}21S1${GS}10E2E-1${GS}17271231` }, { product: OTHER, batch: 'E2E-2' }] } })
      .then((r) => r.json())

  const created = await app.inject({
    method: 'POST',
    url: '/v1/recalls',
    headers: biogaran,
    payload: {
      title: 'Rappel de lot',
      reason: 'Défaut de fabrication',
      message: 'Ne pas délivrer : mettez les boîtes en quarantaine.',
      action: 'quarantine_return',
      recipients: { categories: ['pharmacy'] },
      contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 01' }],
      batches: [{ cip13: OTHER, batch: 'E2E-1', expiry: '2027-12-31' }],
      blockDispensation: true,
    },
  })
  t.equal(created.statusCode, 201)
  const id = created.json().id
  t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: biogaran })).statusCode, 200)
  t.equal((await check(second)).blocked, false, 'nothing is blocked before approval')
  t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/approve`, headers: ansm })).statusCode, 200)
  const after = await check(second)
  t.same(after.boxes.map((b: { status: string }) => b.status), ['blocked', 'clear'], 'blocked on the other instance as soon as the approval answered')
  t.match(after.boxes[0].recalls[0], { reference: /^R-\d{4}-\d{4}$/, message: /ne pas délivrer/ })

  t.equal((await app.inject({ method: 'POST', url: `/v1/recalls/${id}/close`, headers: biogaran })).statusCode, 200)
  await second.blockRegistry!.reload()
  t.equal((await check(second)).blocked, false, 'the close unblocks')
})

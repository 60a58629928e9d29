import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { pharmacyPseudonym, userPseudonym } from '../src/serialization/rules/pseudonyms.ts'
import { ORG, testApp } from './helpers.ts'

const GS = '\x1d'
const BIOGARAN = '3400949497294' // ROSUVASTATINE BIOGARAN (lab 412345670)
const ARROW = '3400938801460' // AMOXICILLINE/ACIDE CLAVULANIQUE ARROW (lab 301234563)
const EXPIRY = '2030-12-31'
const dm = (serial: string, batch = 'LOT-A', exp = '301231', product = BIOGARAN) => `]d2010${product}21${serial}${GS}10${batch}${GS}17${exp}`
const DAY = 86_400_000

t.test('serialization', async (t) => {
  const { app, auth, config, database, clock } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  const lab = auth('lab', ORG.labBiogaran, 'qualite')
  const otherLab = auth('lab', ORG.labArrow)
  const paris = auth('pharmacy', ORG.pharmacyParis, 'alice')
  const parisBob = auth('pharmacy', ORG.pharmacyParis, 'bob')
  const lyon = auth('pharmacy', ORG.pharmacyLyon, 'carla')
  const post = (url: string, headers: Record<string, string>, payload: unknown) => app.inject({ method: 'POST', url: `/v1/serialization${url}`, headers, payload: payload as object })
  const put = (url: string, headers: Record<string, string>, payload: unknown) => app.inject({ method: 'PUT', url: `/v1/serialization${url}`, headers, payload: payload as object })
  const get = (url: string, headers: Record<string, string>) => app.inject({ method: 'GET', url: `/v1/serialization${url}`, headers })
  const upload = (serials: string[], batch = 'LOT-A', expiry = EXPIRY, headers = lab, product = BIOGARAN) => post('/packs', headers, { product, batch, expiry, serials })
  const verify = async (input: object, headers = paris) => {
    const res = await post('/packs/verify', headers, input)
    if (res.statusCode !== 200) t.fail(res.body)
    return res.json()
  }
  const change = async (action: string, serial: string, headers = paris, extra: object = {}) => {
    const res = await post('/packs/state', headers, { action, dataMatrix: dm(serial), ...extra })
    if (res.statusCode !== 200) t.fail(res.body)
    return res.json()
  }

  // 60 packs in LOT-A, 5 in LOT-B
  const serials = Array.from({ length: 60 }, (_, i) => `S${String(i).padStart(4, '0')}`)

  t.test('a lab uploads its packs, idempotently', async (t) => {
    const first = await upload(serials)
    t.equal(first.statusCode, 200, first.body)
    t.same(first.json(), { product: BIOGARAN, batch: 'LOT-A', expiry: EXPIRY, received: 60, created: 60, unchanged: 0, duplicatesInRequest: 0, conflicts: [] })
    const again = await upload([...serials.slice(0, 10), 'S0000', 'NEW1'])
    t.same(again.json(), { product: BIOGARAN, batch: 'LOT-A', expiry: EXPIRY, received: 12, created: 1, unchanged: 10, duplicatesInRequest: 1, conflicts: [] })
    const other = await post('/packs', lab, { product: `0${BIOGARAN}`, batch: 'LOT-B', expiry: '301100', serials: ['B1', 'B2', 'B3', 'B4', 'B5', 'S0001'] })
    t.equal(other.statusCode, 200)
    t.same(other.json(), { product: BIOGARAN, batch: 'LOT-B', expiry: '2030-11-30', received: 6, created: 5, unchanged: 0, duplicatesInRequest: 0, conflicts: [{ serial: 'S0001', batch: 'LOT-A' }] }, 'GTIN accepted, YYMMDD day 00, conflict reported')
    const expiryConflict = await upload(['X1'], 'LOT-A', '2031-01-31')
    t.equal(expiryConflict.statusCode, 409)
    t.equal(expiryConflict.json().code, 'BATCH_EXPIRY_CONFLICT')
    const audit = await database.db.selectFrom('audit_log').select(['action', 'actor_org']).where('object_type', '=', 'serial_batch').execute()
    t.same(audit.map((a) => a.action), ['serialization.packs.uploaded', 'serialization.packs.uploaded', 'serialization.packs.uploaded'], 'audited (not the no-op)')
  })

  t.test('upload refusals', async (t) => {
    const foreign = await upload(['Z1'], 'LOT-Z', EXPIRY, otherLab)
    t.equal(foreign.statusCode, 404, 'another lab’s product is answered as unknown')
    t.equal(foreign.json().code, 'NOT_FOUND')
    t.equal((await upload(['Z1'], 'LOT-Z', EXPIRY, paris)).statusCode, 403, 'a pharmacy cannot upload')
    const badSerial = await upload(['OK', 'has space', 'A'.repeat(21)])
    t.equal(badSerial.statusCode, 400)
    t.same(badSerial.json().errors.map((e: { field: string }) => e.field).sort(), ['body.serials.1', 'body.serials.2'])
    const badProduct = await post('/packs', lab, { product: '3400949497295', batch: 'L', expiry: EXPIRY, serials: ['A'] })
    t.equal(badProduct.statusCode, 400)
    t.equal(badProduct.json().code, 'INVALID_IDENTIFIER')
    const tooMany = await upload(Array.from({ length: 10_001 }, (_, i) => `M${i}`))
    t.equal(tooMany.statusCode, 400)
    const big = Array.from({ length: 10_000 }, (_, i) => `BIG${i}`)
    const full = await upload(big, 'LOT-BIG')
    t.equal(full.statusCode, 200)
    t.match(full.json(), { received: 10_000, created: 10_000 }, '10,000 serials in one call')
    t.match((await upload(big, 'LOT-BIG')).json(), { created: 0, unchanged: 10_000 }, 'and again: unchanged')
    const badDate = await upload(['A'], 'LOT-Q', '2030-02-30')
    t.equal(badDate.statusCode, 400)
    t.equal(badDate.json().errors[0].field, 'body.expiry')
  })

  t.test('the return-code catalogue', async (t) => {
    const res = await get('/return-codes', paris)
    t.equal(res.statusCode, 200)
    const codes = res.json() as Array<{ code: string; alert: boolean; fr: string; en: string }>
    for (const c of ['UNKNOWN_PRODUCT', 'UNKNOWN_SERIAL', 'ALREADY_INACTIVE', 'STATUS_ALREADY_SET', 'UNDO_WINDOW_EXCEEDED', 'UNDO_OTHER_USER', 'BATCH_RECALLED', 'BATCH_UNKNOWN', 'EXPIRY_MISMATCH', 'WITHDRAWN', 'TOO_MANY_REQUESTS']) {
      t.ok(codes.find((x) => x.code === c), c)
    }
    t.ok(codes.every((c) => c.fr && c.en))
    t.ok(codes.find((c) => c.code === 'UNKNOWN_SERIAL')!.alert)
  })

  t.test('verify', async (t) => {
    const ok = await verify({ dataMatrix: dm('S0000') })
    t.match(ok, { ok: true, code: 'PACK_ACTIVE', alert: false, pack: { product: BIOGARAN, serial: 'S0000', batch: 'LOT-A', expiry: EXPIRY, state: 'active', dispensable: true } })
    t.match(ok.message, /délivrer/)
    t.match(await verify({ product: BIOGARAN, serial: 'S0000', batch: 'LOT-A', expiry: EXPIRY }), { code: 'PACK_ACTIVE' }, 'as fields')
    t.match(await verify({ dataMatrix: dm('NOPE') }), { ok: false, code: 'UNKNOWN_SERIAL', alert: true, pack: { state: 'not_found', dispensable: false } })
    t.match(await verify({ dataMatrix: dm('S0000', 'LOT-B') }), { code: 'BATCH_MISMATCH', alert: true })
    t.match(await verify({ dataMatrix: dm('S0000', 'LOT-A', '301130') }), { code: 'EXPIRY_MISMATCH', alert: true })
    t.match(await verify({ dataMatrix: dm('A1', 'L', '301231', ARROW) }), { code: 'UNKNOWN_PRODUCT', alert: false }, 'a product without packs')
    const foreign = `]d20104006381333931 21A${GS}10L${GS}17301231`.replace(' ', '')
    t.match(await verify({ dataMatrix: foreign }), { code: 'UNKNOWN_PRODUCT', pack: { product: null } }, 'a non-French GTIN')
    const unreadable = await verify({ dataMatrix: `]D2${dm('S0000').slice(3)}` })
    t.match(unreadable, { ok: false, code: 'INVALID_CODE', pack: null, errors: [{ field: 'dataMatrix', code: 'SYMBOLOGY_CORRUPTED', position: 1 }] })
    const hostile = await verify({ dataMatrix: dm("' OR 1=1--") })
    t.equal(hostile.code, 'INVALID_CODE')
    t.notMatch(JSON.stringify(hostile), /OR 1=1/, 'never echoed')
    t.match(await verify({ dataMatrix: dm('S0000'), serial: 'S0000' }), { code: 'INVALID_CODE', errors: [{ code: 'AMBIGUOUS_INPUT' }] })
    t.match(await verify({ product: BIOGARAN, serial: 'S0000' }), { code: 'INVALID_CODE' }, 'batch and expiry are required')
    const en = await app.inject({ method: 'POST', url: '/v1/serialization/packs/verify', headers: { ...paris, 'accept-language': 'en' }, payload: { dataMatrix: dm('S0000') } })
    t.match(en.json().message, /dispense/)
    t.equal((await post('/packs/verify', lab, { dataMatrix: dm('S0000') })).statusCode, 403, 'a lab does not verify')
    t.equal((await post('/packs/verify', auth('hospital', ORG.hospital), { dataMatrix: dm('S0000') })).statusCode, 200)
    t.equal((await post('/packs/verify', auth('wholesaler', ORG.wholesaler), { dataMatrix: dm('S0000') })).statusCode, 200)
  })

  t.test('every transition from active, then every action on every inactive state', async (t) => {
    const actions = { supply: 'supplied', destroy: 'destroyed', stolen: 'stolen', sample: 'sample', free_sample: 'free_sample', lock: 'locked', export: 'exported' } as const
    let n = 10
    for (const [action, state] of Object.entries(actions)) {
      const serial = serials[n++]!
      const r = await change(action, serial)
      t.match(r, { ok: true, code: 'STATE_CHANGED', pack: { state, dispensable: false } }, action)
      t.match(r.transactionId, /^[0-9a-f-]{36}$/)
      t.match(await verify({ dataMatrix: dm(serial) }), { code: 'ALREADY_INACTIVE', pack: { state } }, `verify ${state}`)
      for (const [again, target] of Object.entries(actions)) {
        // The same organisation repeating its own change: status already set. Anything else on an inactive pack: an alert.
        if (target === state) t.match(await change(again, serial), { ok: false, code: 'STATUS_ALREADY_SET', alert: false, pack: { state } }, `${again} again on ${state}`)
        else t.match(await change(again, serial), { ok: false, code: 'ALREADY_INACTIVE', alert: true, alertReference: /^ALR-/, pack: { state } }, `${again} on ${state}`)
      }
      t.match(await change(action, serial, lyon), { ok: false, code: 'ALREADY_INACTIVE', alert: true, pack: { state } }, `${action} on ${state} by another pharmacy`)
      const undo = await change('undo', serial, paris, { transactionId: r.transactionId })
      if (state === 'destroyed' || state === 'stolen') t.match(undo, { ok: false, code: 'UNDO_NOT_ALLOWED', alert: true, pack: { state } }, `${state} is final`)
      else {
        t.match(undo, { ok: true, code: 'STATE_CHANGED', undid: r.transactionId, pack: { state: 'active' } }, `undo ${state}`)
        t.match(await change('undo', serial, paris, { transactionId: r.transactionId }), { code: 'STATUS_ALREADY_SET' }, 'undo twice')
      }
    }
    const txns = await database.db.selectFrom('pack_transactions').selectAll().where('cip13', '=', BIOGARAN).where('serial', '=', serials[10]!).orderBy('at').execute()
    const org = pharmacyPseudonym(config.SCAN_PSEUDONYM_SECRET, ORG.pharmacyParis)
    const user = userPseudonym(config.SCAN_PSEUDONYM_SECRET, ORG.pharmacyParis, 'alice')
    t.same(txns.map((x) => [x.action, x.from_state, x.to_state, x.org_pseudonym, x.user_pseudonym]), [
      ['supply', 'active', 'supplied', org, user],
      ['undo', 'supplied', 'active', org, user],
    ], 'recorded under pseudonyms')
    t.equal(txns[1]!.undoes, txns[0]!.id)
  })

  t.test('lock and unlock', async (t) => {
    const locked = await change('lock', 'S0020')
    t.equal(locked.code, 'STATE_CHANGED')
    const supplied = await change('supply', 'S0021')
    t.match(await change('unlock', 'S0021', paris, { transactionId: supplied.transactionId }), { code: 'UNDO_NOT_ALLOWED' }, 'unlock only reverts a lock')
    t.match(await change('unlock', 'S0020', paris, { transactionId: locked.transactionId }), { code: 'STATE_CHANGED', pack: { state: 'active' } })
  })

  t.test('undo rules: window, user, organisation, transaction', async (t) => {
    const start = clock.now
    const a = await change('supply', 'S0030')
    const b = await change('supply', 'S0031')
    t.match(await change('undo', 'S0030', parisBob, { transactionId: a.transactionId }), { code: 'UNDO_OTHER_USER', alert: true })
    const otherPharmacy = await change('undo', 'S0030', lyon, { transactionId: a.transactionId })
    t.match(otherPharmacy, { code: 'UNDO_OTHER_ORGANISATION', alert: true, pack: { state: 'supplied' } })
    t.notMatch(JSON.stringify(otherPharmacy), new RegExp(`${ORG.pharmacyParis}|alice`), 'nothing about the other pharmacy')
    t.match(await change('undo', 'S0030', paris, { transactionId: b.transactionId }), { code: 'UNKNOWN_TRANSACTION' }, 'another pack’s transaction')
    t.match(await change('undo', 'S0030', paris, { transactionId: 'not-a-uuid' }), { code: 'UNKNOWN_TRANSACTION' })
    t.match(await change('undo', 'S0030', paris), { code: 'UNKNOWN_TRANSACTION' }, 'no transaction named')
    clock.now = new Date(start.getTime() + 10 * DAY - 3600_000) // 9 days 23 hours
    t.match(await change('undo', 'S0030', paris, { transactionId: a.transactionId }), { code: 'STATE_CHANGED' }, 'at 9 days 23 hours')
    clock.now = new Date(start.getTime() + 10 * DAY + 60_000) // 10 days 1 minute
    t.match(await change('undo', 'S0031', paris, { transactionId: b.transactionId }), { code: 'UNDO_WINDOW_EXCEEDED', alert: true }, 'at 10 days 1 minute')
    clock.now = start
  })

  t.test('recalled, withdrawn and expired batches', async (t) => {
    const supplied = await change('supply', 'S0040')
    const recall = await put('/products/3400949497294/batches/LOT-A/status', lab, { status: 'recalled', reason: 'Défaut' })
    t.equal(recall.statusCode, 200, recall.body)
    t.match(recall.json(), { batch: 'LOT-A', status: 'recalled', statusReason: 'Défaut' })
    t.match(await verify({ dataMatrix: dm('S0041') }), { ok: false, code: 'BATCH_RECALLED', pack: { state: 'recalled', batchStatus: 'recalled', dispensable: false } })
    t.match(await change('supply', 'S0041'), { code: 'BATCH_RECALLED' }, 'not dispensed')
    t.match(await change('sample', 'S0041'), { code: 'BATCH_RECALLED' })
    t.match(await change('undo', 'S0040', paris, { transactionId: supplied.transactionId }), { code: 'BATCH_RECALLED' }, 'never undone on a recalled batch')
    t.match(await change('destroy', 'S0042'), { code: 'STATE_CHANGED', pack: { state: 'destroyed' } }, 'a recalled box may be destroyed')
    t.match(await verify({ dataMatrix: dm('B1', 'LOT-B', '301100') }), { code: 'PACK_ACTIVE' }, 'other batches unaffected')
    t.equal((await put('/products/3400949497294/batches/LOT-A/status', otherLab, { status: 'active' })).statusCode, 404, 'another lab')
    t.equal((await put('/products/3400949497294/batches/NOPE/status', lab, { status: 'active' })).statusCode, 404, 'unknown batch')
    t.equal((await put('/products/3400949497294/batches/LOT-A/status', lab, { status: 'active' })).statusCode, 200)
    t.match(await verify({ dataMatrix: dm('S0041') }), { code: 'PACK_ACTIVE' })

    const withdraw = await put('/products/03400949497294/status', lab, { status: 'withdrawn' })
    t.same(withdraw.json(), { product: BIOGARAN, status: 'withdrawn', previous: 'active' })
    t.match(await verify({ dataMatrix: dm('B2', 'LOT-B', '301100') }), { code: 'WITHDRAWN', pack: { state: 'withdrawn' } })
    t.match(await change('supply', 'S0043'), { code: 'WITHDRAWN' })
    t.equal((await put('/products/3400949497294/status', otherLab, { status: 'active' })).statusCode, 404, 'another lab')
    t.same((await put('/products/3400949497294/status', lab, { status: 'active' })).json(), { product: BIOGARAN, status: 'active', previous: 'withdrawn' })

    await put('/products/3400949497294/batches/LOT-B/status', lab, { status: 'expired' })
    t.match(await verify({ dataMatrix: dm('B3', 'LOT-B', '301100') }), { code: 'EXPIRED' })
    await put('/products/3400949497294/batches/LOT-B/status', lab, { status: 'active' })
    const start = clock.now
    clock.now = new Date('2031-01-01T12:00:00Z')
    t.match(await verify({ dataMatrix: dm('S0044') }), { code: 'EXPIRED', pack: { state: 'expired' } }, 'past its expiry date')
    t.match(await change('supply', 'S0044'), { code: 'EXPIRED' })
    clock.now = new Date('2030-12-31T22:30:00Z') // 23:30 in Paris: still the expiry day
    t.match(await verify({ dataMatrix: dm('S0044') }), { code: 'PACK_ACTIVE' }, 'valid through its expiry day, French time')
    clock.now = start
    const audit = await database.db.selectFrom('audit_log').select(['action']).where('action', 'like', 'serialization.%.status').execute()
    t.equal(audit.length, 6, 'every status change audited (recall, reactivate, withdraw, reactivate, expire, reactivate)')
  })

  t.test('bulk', async (t) => {
    const verified = await post('/packs/verify-bulk', paris, { packs: [{ dataMatrix: dm('S0050') }, { dataMatrix: dm('NOPE') }, { dataMatrix: 'garbage' }, { product: BIOGARAN, serial: 'S0051', batch: 'LOT-A', expiry: EXPIRY }] })
    t.equal(verified.statusCode, 200)
    t.same(verified.json().results.map((r: { code: string }) => r.code), ['PACK_ACTIVE', 'UNKNOWN_SERIAL', 'INVALID_CODE', 'PACK_ACTIVE'])
    t.same(verified.json().summary, { total: 4, ok: 2, failed: 2, alerts: 1 })
    const changed = await post('/packs/state-bulk', paris, {
      items: [
        { action: 'supply', dataMatrix: dm('S0050') },
        { action: 'supply', dataMatrix: dm('S0050') },
        { action: 'destroy', dataMatrix: dm('S0052') },
        { action: 'supply', dataMatrix: dm('NOPE') },
        { action: 'supply', dataMatrix: dm('S0053', 'LOT-B') },
      ],
    })
    t.equal(changed.statusCode, 200)
    t.same(changed.json().results.map((r: { code: string }) => r.code), ['STATE_CHANGED', 'STATUS_ALREADY_SET', 'STATE_CHANGED', 'UNKNOWN_SERIAL', 'BATCH_MISMATCH'], 'the second supply of S0050 by the same pharmacy: status already set')
    const tooMany = await post('/packs/state-bulk', paris, { items: Array.from({ length: 101 }, () => ({ action: 'supply', dataMatrix: dm('S0054') })) })
    t.equal(tooMany.statusCode, 400)
    t.equal((await post('/packs/state-bulk', paris, { items: [{ action: 'fly', dataMatrix: dm('S0054') }] })).statusCode, 400, 'unknown action')
  })

  t.test('a retry with the same idempotency key returns the first answer', async (t) => {
    const headers = { ...paris, 'idempotency-key': 'retry-key-0001' }
    const first = await post('/packs/state', headers, { action: 'supply', dataMatrix: dm('S0055') })
    const retry = await post('/packs/state', headers, { action: 'supply', dataMatrix: dm('S0055') })
    t.equal(retry.headers['idempotent-replayed'], 'true')
    t.same(retry.json(), first.json())
    t.equal(first.json().code, 'STATE_CHANGED')
    const n = await database.db.selectFrom('pack_transactions').select((eb) => eb.fn.countAll<number>().as('n')).where('serial', '=', 'S0055').executeTakeFirstOrThrow()
    t.equal(Number(n.n), 1)
  })

  t.test('a verification with an Idempotency-Key is made anew at each call: never a stale "active"', async (t) => {
    const headers = { ...paris, 'idempotency-key': 'verify-key-0001' }
    const before = await post('/packs/verify', headers, { dataMatrix: dm('S0056') })
    t.equal(before.json().code, 'PACK_ACTIVE')
    t.equal((await change('supply', 'S0056')).code, 'STATE_CHANGED')
    const after = await post('/packs/verify', headers, { dataMatrix: dm('S0056') })
    t.equal(after.headers['idempotent-replayed'], undefined)
    t.match(after.json(), { code: 'ALREADY_INACTIVE', pack: { state: 'supplied' } }, 'the same key answers from the pack’s state now')
    const bulk = await post('/packs/verify-bulk', { ...paris, 'idempotency-key': 'verify-key-0002' }, { packs: [{ dataMatrix: dm('S0056') }] })
    t.equal(bulk.json().results[0].code, 'ALREADY_INACTIVE')
    const kept = await database.db.selectFrom('idempotency_keys').select('key').where('key', 'in', ['verify-key-0001', 'verify-key-0002']).execute()
    t.same(kept, [], 'nothing is stored for the keys')
  })

  t.test('batch figures', async (t) => {
    const res = await get('/products/3400949497294/batches?limit=1', lab)
    t.equal(res.statusCode, 200)
    const page = res.json()
    t.equal(page.items[0].batch, 'LOT-A')
    t.ok(page.nextCursor)
    const next = await get(`/products/3400949497294/batches?limit=1&cursor=${page.nextCursor}`, lab)
    t.equal(next.json().items[0].batch, 'LOT-B')
    const one = (await get('/products/3400949497294/batches/LOT-A', lab)).json()
    t.equal(one.packs, 61)
    const counts = await database.db.selectFrom('packs').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).where('batch', '=', 'LOT-A').groupBy('state').execute()
    t.same(one.byState, Object.fromEntries(counts.map((c) => [c.state, Number(c.n)])))
    t.ok(one.byState.supplied >= 1 && one.byState.destroyed >= 1)
    t.equal((await get('/products/3400949497294/batches', otherLab)).statusCode, 404, 'another lab cannot read')
    t.equal((await get('/products/3400949497294/batches/LOT-A', otherLab)).statusCode, 404)
    t.equal((await get('/products/3400949497294/batches/NOPE', lab)).statusCode, 404)
    t.equal((await get('/products/3400949497294/batches', paris)).statusCode, 403)
  })
})

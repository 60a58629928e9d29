// One answer to "may this box be dispensed?": for every source that can block a batch (a DP-Rappels recall, in
// whatever order it meets the upload; the lab's own batch or product status), every route an LGO calls at the
// counter gives the same answer, on two instances sharing one database.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.ts'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { applyBlocks, type RecallBlocks } from '../src/recalls/use-cases/blocking.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { ORG, testApp } from './helpers.ts'

const GS = '\x1d'
const PRODUCT = '3400949497294' // ROSUVASTATINE BIOGARAN (lab 412345670)
const EXPIRY = '2030-12-31'
const dm = (serial: string, batch: string) => `]d2010${PRODUCT}21${serial}${GS}10${batch}${GS}17301231`

type Blocked = 'BATCH_RECALLED' | 'WITHDRAWN' | 'EXPIRED' | null

t.test('every blocking source × every counter route, on two instances: one answer', async (t) => {
  const { app, auth, config, database, clock } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  const second = await buildApp({ config, database, now: () => clock.now, background: 'manual-jobs' })
  await second.ready()
  t.teardown(() => second.close())
  const lab = auth('lab', ORG.labBiogaran, 'qualite')
  const pharmacy = auth('pharmacy', ORG.pharmacyParis, 'alice')

  const upload = async (batch: string) => {
    const serials = Array.from({ length: 20 }, (_, i) => `${batch}-${i}`)
    const r = await app.inject({ method: 'POST', url: '/v1/serialization/packs', headers: lab, payload: { product: PRODUCT, batch, expiry: EXPIRY, serials } })
    if (r.statusCode !== 200) t.fail(r.body)
  }
  let recallNo = 0
  const recall = (batches: string[], over: Partial<RecallBlocks> = {}): RecallBlocks => ({
    recallId: `rec-${++recallNo}`,
    reference: `R-2026-${String(recallNo).padStart(4, '0')}`,
    version: 1,
    labId: ORG.labBiogaran,
    messageFr: 'Lot rappelé : ne pas délivrer.',
    messageEn: 'Recalled batch: do not dispense.',
    batches: batches.map((batch) => ({ cip13: PRODUCT, batch, expiry: EXPIRY })),
    ...over,
  })
  const labStatus = async (batch: string, status: string) => {
    const r = await app.inject({ method: 'PUT', url: `/v1/serialization/products/${PRODUCT}/batches/${batch}/status`, headers: lab, payload: { status, reason: 'Décision du laboratoire' } })
    if (r.statusCode !== 200) t.fail(r.body)
  }
  const productStatus = async (status: string) => {
    const r = await app.inject({ method: 'PUT', url: `/v1/serialization/products/${PRODUCT}/status`, headers: lab, payload: { status } })
    if (r.statusCode !== 200) t.fail(r.body)
  }

  // Each source uses a batch of its own. `unblocks`: the last step lifts a block (an instance may learn it a
  // heartbeat later: blocking a moment too long is harmless), so the second instance reloads before it answers.
  const sources: Array<{ name: string; batch: string; expect: Blocked; unblocks?: boolean; setup: (batch: string) => Promise<void> }> = [
    { name: 'recall approved before the upload', batch: 'RB-1', expect: 'BATCH_RECALLED', setup: async (b) => { await applyBlocks(app, recall([b]), async () => {}); await upload(b) } },
    { name: 'recall approved after the upload', batch: 'RA-1', expect: 'BATCH_RECALLED', setup: async (b) => { await upload(b); await applyBlocks(app, recall([b]), async () => {}) } },
    {
      name: 'recall corrected to remove the batch',
      batch: 'RC-1',
      expect: null,
      unblocks: true,
      setup: async (b) => {
        await upload(b)
        const r = recall([b, 'RC-OTHER'])
        await applyBlocks(app, r, async () => {})
        await applyBlocks(app, { ...r, version: 2, batches: r.batches.filter((x) => x.batch !== b) }, async () => {})
      },
    },
    {
      name: 'recall closed',
      batch: 'RX-1',
      expect: null,
      unblocks: true,
      setup: async (b) => {
        await upload(b)
        const r = recall([b])
        await applyBlocks(app, r, async () => {})
        await applyBlocks(app, { ...r, batches: [] }, async () => {})
      },
    },
    { name: 'lab: batch recalled', batch: 'LR-1', expect: 'BATCH_RECALLED', setup: async (b) => { await upload(b); await labStatus(b, 'recalled') } },
    { name: 'lab: batch withdrawn', batch: 'LW-1', expect: 'WITHDRAWN', setup: async (b) => { await upload(b); await labStatus(b, 'withdrawn') } },
    { name: 'lab: batch expired', batch: 'LE-1', expect: 'EXPIRED', setup: async (b) => { await upload(b); await labStatus(b, 'expired') } },
    { name: 'lab: batch withdrawn, then active again', batch: 'LA-1', expect: null, unblocks: true, setup: async (b) => { await upload(b); await labStatus(b, 'withdrawn'); await labStatus(b, 'active') } },
    {
      name: 'lab: batch active again while a recall still blocks it',
      batch: 'LAR-1',
      expect: 'BATCH_RECALLED',
      setup: async (b) => { await upload(b); await applyBlocks(app, recall([b]), async () => {}); await labStatus(b, 'recalled'); await labStatus(b, 'active') },
    },
    {
      name: 'recall closed while the lab has withdrawn the batch',
      batch: 'RXW-1',
      expect: 'WITHDRAWN',
      unblocks: true,
      setup: async (b) => {
        await upload(b)
        const r = recall([b])
        await applyBlocks(app, r, async () => {})
        await labStatus(b, 'withdrawn')
        await applyBlocks(app, { ...r, batches: [] }, async () => {})
      },
    },
  ]

  const checkOn = async (on: FastifyInstance, box: object) => {
    const r = await on.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: pharmacy, payload: { boxes: [box] } })
    if (r.statusCode !== 200) t.fail(r.body)
    return r.json().boxes[0] as { status: string; code?: string }
  }
  const serialization = async (on: FastifyInstance, url: string, payload: object) => {
    const r = await on.inject({ method: 'POST', url: `/v1/serialization${url}`, headers: pharmacy, payload })
    if (r.statusCode !== 200) t.fail(r.body)
    return r.json()
  }

  for (const source of sources) {
    await source.setup(source.batch)
    const b = source.batch
    for (const [label, on] of [['first instance', app], ['second instance', second]] as const) {
      if (source.unblocks) await on.blockRegistry!.reload()
      const n = label === 'first instance' ? 0 : 10
      const answers = {
        'check, typed': await checkOn(on, { product: PRODUCT, batch: b.toLowerCase() }),
        'check, DataMatrix': await checkOn(on, { dataMatrix: dm(`${b}-${n}`, b) }),
      }
      const verify = await serialization(on, '/packs/verify', { dataMatrix: dm(`${b}-${n + 1}`, b) })
      const bulk = await serialization(on, '/packs/verify-bulk', { packs: [{ dataMatrix: dm(`${b}-${n + 2}`, b) }] })
      const supply = await serialization(on, '/packs/state', { action: 'supply', dataMatrix: dm(`${b}-${n + 3}`, b) })
      const stateBulk = await serialization(on, '/packs/state-bulk', { items: [{ action: 'supply', dataMatrix: dm(`${b}-${n + 4}`, b) }] })
      const where = `${source.name}, ${label}`
      for (const [route, a] of Object.entries(answers)) {
        t.equal(a.status, source.expect ? 'blocked' : 'clear', `${where}: ${route}`)
        t.equal(a.code, source.expect ?? undefined, `${where}: ${route} says why`)
      }
      t.equal(verify.code, source.expect ?? 'PACK_ACTIVE', `${where}: verify`)
      t.equal(bulk.results[0].code, source.expect ?? 'PACK_ACTIVE', `${where}: verify-bulk`)
      t.equal(supply.code, source.expect ?? 'STATE_CHANGED', `${where}: supply`)
      t.equal(stateBulk.results[0].code, source.expect ?? 'STATE_CHANGED', `${where}: state-bulk`)
    }
  }

  // A whole product withdrawn by the lab blocks every batch, at the check too; back to active, the batches' own
  // statuses apply again.
  await upload('PW-1')
  await productStatus('withdrawn')
  for (const on of [app, second]) {
    t.equal((await checkOn(on, { product: PRODUCT, batch: 'PW-1' })).code, 'WITHDRAWN', 'product withdrawn: check')
    t.equal((await serialization(on, '/packs/verify', { dataMatrix: dm('PW-1-5', 'PW-1') })).code, 'WITHDRAWN', 'product withdrawn: verify')
  }
  await productStatus('active')
  for (const on of [app, second]) {
    await on.blockRegistry!.reload()
    t.equal((await checkOn(on, { product: PRODUCT, batch: 'PW-1' })).status, 'clear')
    t.equal((await checkOn(on, { product: PRODUCT, batch: 'LW-1' })).code, 'WITHDRAWN', 'the batch keeps its own status')
  }
})

t.test('a box past its printed expiry is not cleared by the check (DataMatrix)', async (t) => {
  const { app, auth, clock } = await testApp(t)
  clock.now = new Date('2031-01-01T12:00:00Z')
  const r = await app.inject({ method: 'POST', url: '/v1/dispensation-checks', headers: auth('pharmacy', ORG.pharmacyParis), payload: { boxes: [{ dataMatrix: dm('X1', 'OLD-1') }] } })
  t.match(r.json().boxes[0], { status: 'blocked', code: 'EXPIRED' })
  t.equal(r.json().allClear, false)
})

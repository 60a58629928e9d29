import t from 'tap'
import { sql } from 'kysely'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { AUDIT_CHAINS, audit, verifyAudit } from '../src/platform/audit.ts'
import { canonicalJson } from '../src/platform/canonical-json.ts'
import { migrateToLatest } from '../src/platform/db/migrate.ts'
import { ORG, testApp, testDatabase } from './helpers.ts'

t.test('audit trail', async (t) => {
  const { app, auth, database } = await testApp(t)
  const db = database.db
  const ordre = auth('ordre', ORG.ordre)

  t.test('every change is recorded with actor, request id and what changed', async (t) => {
    const res = await app.inject({
      method: 'PATCH',
      url: `/v1/organisations/${ORG.pharmacyParis}`,
      headers: { ...ordre, 'x-request-id': 'req-audit-1' },
      payload: { phone: '+33 1 23 45 67 89' },
    })
    t.equal(res.statusCode, 200)
    const history = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.pharmacyParis}/history`, headers: ordre })
    const last = history.json().at(-1)
    t.match(last, { action: 'organisation.updated', actor: { role: 'ordre', org: 'ORDRE', user: 'ordre-user' }, requestId: 'req-audit-1', changes: { phone: [null, '+33 1 23 45 67 89'] } })
  })

  t.test('an organisation reads its own history, not another’s', async (t) => {
    const own = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.pharmacyParis}/history`, headers: auth('pharmacy', ORG.pharmacyParis) })
    t.equal(own.statusCode, 200)
    const other = await app.inject({ method: 'GET', url: `/v1/organisations/${ORG.pharmacyLyon}/history`, headers: auth('pharmacy', ORG.pharmacyParis) })
    t.equal(other.statusCode, 404)
  })

  t.test('a rolled-back change leaves no audit entry', async (t) => {
    const before = await verifyAudit(db)
    await t.rejects(
      db.transaction().execute(async (tx) => {
        await audit(tx, { role: 'ordre', org: 'ORDRE', user: 'x' }, { action: 'test', objectType: 'test', objectId: '1', changes: {} })
        throw new Error('rollback')
      }),
    )
    const after = await verifyAudit(db)
    t.same(after.chains, before.chains, 'every chain as it was')
    t.ok(after.ok)
  })

  t.test('concurrent appends keep one unbroken chain', async (t) => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        db.transaction().execute((tx) => audit(tx, { role: 'ordre', org: 'ORDRE', user: 'x' }, { action: 'test.concurrent', objectType: 'test', objectId: String(i), changes: { i, nested: { b: 2, a: 1 } } })),
      ),
    )
    const r = await verifyAudit(db)
    t.ok(r.ok)
    const rows = await db.selectFrom('audit_log').select(['chain', 'chain_seq']).where('action', '=', 'test.concurrent').execute()
    t.equal(new Set(rows.map((x) => x.chain)).size, 1, 'one organisation: one chain')
  })

  // The append reads its chain's head after waiting for the chain's lock, in the same statement: the head must be
  // the entry the lock's previous holder committed meanwhile, not the one the statement's own snapshot saw.
  t.test('an append that waited for its chain follows the entry committed while it waited', { skip: database.kind !== 'postgres' && 'one connection: nothing waits' }, async (t) => {
    const actor = { role: 'ordre', org: 'ORDRE', user: 'x' }
    let holding!: () => void
    const held = new Promise<void>((resolve) => (holding = resolve))
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let chain = -1
    const first = db.transaction().execute(async (tx) => {
      const entry = await audit(tx, actor, { action: 'test.wait', objectType: 'test', objectId: 'first', changes: null })
      chain = entry.chain
      holding()
      await released
      return entry
    })
    await held
    const second = db.transaction().execute((tx) => audit(tx, actor, { action: 'test.wait', objectType: 'test', objectId: 'second', changes: null }))
    // The second append waits for the chain's lock (a two-key advisory lock: objsubid 2, the chain as second key, in
    // this test's database) before the first commits.
    let waited = false
    for (let k = 0; k < 200 && !waited; k++) {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from pg_locks
        where locktype = 'advisory' and not granted and objsubid = 2 and objid = ${chain}
          and database = (select oid from pg_database where datname = current_database())`.execute(db)
      waited = rows[0]!.n > 0
      if (!waited) await new Promise((r) => setTimeout(r, 10))
    }
    t.ok(waited, 'the second append waited for the chain')
    release()
    const [a, b] = await Promise.all([first, second])
    t.equal(b.chain, a.chain)
    t.equal(b.chainSeq, a.chainSeq + 1, 'the next position in the chain')
    const row = await db.selectFrom('audit_log').select('prev_hash').where('seq', '=', b.seq).executeTakeFirstOrThrow()
    t.equal(row.prev_hash, a.hash, 'linked to the entry committed meanwhile')
    t.ok((await verifyAudit(db)).ok)
  })

  t.test('many organisations at once: spread over the chains, each chain gapless and intact', async (t) => {
    const orgs = Array.from({ length: 60 }, (_, i) => `99${String(i).padStart(7, '0')}`)
    await Promise.all(
      orgs.map((org, i) =>
        db.transaction().execute((tx) => audit(tx, { role: 'pharmacy', org, user: 'u' }, { action: 'test.spread', objectType: 'recall', objectId: 'same-recall', changes: { i } })),
      ),
    )
    const r = await verifyAudit(db)
    t.ok(r.ok)
    t.equal(r.chains.length, AUDIT_CHAINS)
    const rows = await db.selectFrom('audit_log').select(['chain', 'chain_seq', 'seq']).orderBy('seq').execute()
    t.ok(new Set(rows.map((x) => x.chain)).size >= 8, 'entries of 60 organisations land on many chains')
    for (const chain of new Set(rows.map((x) => x.chain))) {
      const positions = rows.filter((x) => x.chain === chain).map((x) => Number(x.chain_seq)).sort((a, b) => a - b)
      t.same(positions, positions.map((_, k) => k + 1), `chain ${chain}: positions 1…${positions.length}`)
    }
    t.equal(new Set(rows.map((x) => x.seq)).size, rows.length, 'the overall order numbers every entry once')
    t.equal(r.checked, rows.length)
  })

  // The hash is computed by SQL when an entry is written and by JavaScript when the chain is verified: whatever an
  // entry holds (any text, numbers, nesting, null actors), the two must agree, or the operator's check would report
  // tampering that never happened.
  t.test('whatever an entry holds, the hash written is the one the verifier recomputes (property)', async (t) => {
    // Without NUL and lone surrogates: text that PostgreSQL cannot store and the API refuses (platform/input.ts).
    const storable = (v: unknown) => !/\\u0000|\\ud[89a-f]/i.test(JSON.stringify(v))
    const text = fc.string({ unit: 'grapheme', maxLength: 12 }).filter(storable)
    const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v))).filter(storable)
    const entry = fc.record({
      actor: fc.record({ role: fc.option(text), org: fc.option(text), user: fc.option(text), requestId: fc.option(text) }),
      action: text,
      objectId: text,
      changes: json,
      at: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true }),
    })
    let written = 0
    await fc.assert(
      fc.asyncProperty(entry, async (e) => {
        const r = await db.transaction().execute((tx) => audit(tx, e.actor, { action: e.action, objectType: 'test.property', objectId: e.objectId, changes: e.changes }, e.at))
        written++
        const v = await verifyAudit(db)
        if (!v.ok) throw new Error(`chain ${r.chain} broken at ${JSON.stringify(v.broken)} after ${JSON.stringify(e)}`)
      }),
      { seed: 20261207, numRuns: 60 },
    )
    t.equal(written, 60)
  })

  t.test('one transaction keeps to one chain, whoever acts in it', async (t) => {
    const [a, b] = await db.transaction().execute(async (tx) => [
      await audit(tx, { role: 'pharmacy', org: '990000001', user: 'u' }, { action: 'test.mixed', objectType: 'test', objectId: 'm', changes: {} }),
      await audit(tx, { role: 'lab', org: '412345670', user: 'v' }, { action: 'test.mixed', objectType: 'test', objectId: 'm', changes: {} }),
    ])
    t.equal(a.chain, b.chain)
    t.equal(b.chainSeq, a.chainSeq + 1)
    t.ok((await verifyAudit(db)).ok)
  })

  t.test('the operator verifies the chain; others may not', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/audit/verify', headers: ordre })
    t.equal(res.statusCode, 200)
    t.equal(res.json().ok, true)
    t.ok(res.json().checked > 20)
    const refused = await app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth('ansm', ORG.ansm) })
    t.equal(refused.statusCode, 403)
    for (const [role, org] of [['pharmacy', ORG.pharmacyParis], ['lab', ORG.labArrow], ['ansm', ORG.ansm]] as const) {
      const entries = await app.inject({ method: 'GET', url: `/v1/audit/entries?objectType=organisation&objectId=${ORG.pharmacyParis}`, headers: auth(role, org) })
      t.equal(entries.statusCode, 403, `${role} cannot read the audit trail`)
    }
    const own = await app.inject({ method: 'GET', url: `/v1/audit/entries?objectType=organisation&objectId=${ORG.pharmacyParis}`, headers: ordre })
    t.ok(own.json().length >= 1, 'the operator reads any object’s history')
  })

  t.test('a modified row is detected at its chain and position', async (t) => {
    const target = await db.selectFrom('audit_log').select(['seq', 'chain', 'chain_seq']).where('action', '=', 'organisation.updated').executeTakeFirstOrThrow()
    await sql`update audit_log set changes = '{"phone":[null,"+33 6 66 66 66 66"]}'::jsonb where seq = ${target.seq}`.execute(db)
    const res = await app.inject({ method: 'GET', url: '/v1/audit/verify', headers: ordre })
    t.match(res.json(), { ok: false, broken: { chain: target.chain, position: target.chain_seq, reason: 'modified' } })
    t.match(res.json().chains.find((c: { chain: number }) => c.chain === target.chain), { lastPosition: target.chain_seq - 1, broken: { position: target.chain_seq, reason: 'modified' } })
    t.ok(res.json().chains.filter((c: { broken?: unknown }) => c.broken).length === 1, 'the other chains are intact')
  })

  t.test('a deleted row is detected', async (t) => {
    const chain = (await db.selectFrom('audit_log').select('chain').where('action', '=', 'test.concurrent').executeTakeFirstOrThrow()).chain
    const rows = await db.selectFrom('audit_log').select(['seq', 'chain_seq']).where('chain', '=', chain).orderBy('chain_seq').execute()
    const victim = rows[5]!
    await sql`delete from audit_log where seq = ${victim.seq}`.execute(db)
    const r = await verifyAudit(db)
    t.equal(r.ok, false)
    const broken = r.chains.find((c) => c.chain === chain)!.broken!
    // the modified row found above may come first in the same chain
    t.ok(broken.position <= victim.chain_seq)
  })

  t.test('a deleted row alone reports missing', async (t) => {
    const fresh = await testApp(t)
    await fresh.app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.pharmacyParis}`, headers: fresh.auth('ordre', ORG.ordre), payload: { city: 'Paris 4e' } })
    const fdb = fresh.database.db
    const { chain } = await fdb.selectFrom('audit_log').select(['chain', fdb.fn.countAll().as('n')]).groupBy('chain').having(fdb.fn.countAll(), '>=', 3).orderBy('chain').executeTakeFirstOrThrow()
    await sql`delete from audit_log where chain = ${chain} and chain_seq = 3`.execute(fdb)
    const r = await verifyAudit(fdb)
    t.match(r, { ok: false, broken: { chain, position: 3, reason: 'missing' } })
    t.match(r.chains.find((c) => c.chain === chain), { lastPosition: 2, checked: 2 })
  })
})

t.test('a trail written before the chains were split verifies as chain 0 and goes on', async (t) => {
  // The schema as it was just before the chains were split (later migrations never need undoing).
  const database = await testDatabase(t, { upTo: '0012_recall_discard' })
  const db = database.db
  // Three entries as the single chain wrote them: seq 1…3, hashed over the previous hash and the canonical row.
  let prev = '0'.repeat(64)
  for (let seq = 1; seq <= 3; seq++) {
    const row = { seq, at: new Date(Date.UTC(2026, 0, seq)), actor_role: 'ordre', actor_org: 'ORDRE', actor_user: 'u', action: 'old.entry', object_type: 'test', object_id: String(seq), changes: { seq }, request_id: null }
    const hash = createHash('sha256').update(prev).update('\n').update(canonicalJson({ ...row, at: row.at.toISOString() })).digest('hex')
    await db.insertInto('audit_log' as never).values({ ...row, changes: JSON.stringify(row.changes), prev_hash: prev, hash } as never).execute()
    prev = hash
  }
  await migrateToLatest(db)
  const before = await verifyAudit(db)
  t.match(before, { ok: true, checked: 3 })
  t.match(before.chains[0], { chain: 0, checked: 3, lastPosition: 3, lastHash: prev })
  const next = await db.transaction().execute((tx) => audit(tx, { role: null, org: null, user: 'system' }, { action: 'new.entry', objectType: 'test', objectId: '4', changes: {} }))
  t.match(next, { seq: 4, chain: 0, chainSeq: 4 })
  t.match(await verifyAudit(db), { ok: true, checked: 4 })
})

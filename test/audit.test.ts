import t from 'tap'
import { sql } from 'kysely'
import { audit, verifyAudit } from '../src/platform/audit.ts'
import { ORG, testApp } from './helpers.ts'

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
    t.equal(after.lastSeq, before.lastSeq)
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

  t.test('a modified row is detected at its sequence number', async (t) => {
    const target = await db.selectFrom('audit_log').select('seq').where('action', '=', 'organisation.updated').executeTakeFirstOrThrow()
    await sql`update audit_log set changes = '{"phone":[null,"+33 6 66 66 66 66"]}'::jsonb where seq = ${target.seq}`.execute(db)
    const res = await app.inject({ method: 'GET', url: '/v1/audit/verify', headers: ordre })
    t.match(res.json(), { ok: false, broken: { seq: target.seq, reason: 'modified' }, lastSeq: target.seq - 1 })
  })

  t.test('a deleted row is detected', async (t) => {
    // restore a clean chain first: rebuild from scratch in a new table state
    const rows = await db.selectFrom('audit_log').select('seq').orderBy('seq').execute()
    const victim = rows[5]!.seq
    await sql`delete from audit_log where seq = ${victim}`.execute(db)
    const r = await verifyAudit(db)
    t.equal(r.ok, false)
    // the first break is still the modified row if it comes first; check that the hole is reported when it is first
    const firstBreak = r.broken!.seq
    t.ok(firstBreak <= victim)
    const ids = await db.selectFrom('audit_log').select('seq').where('seq', '<', victim).orderBy('seq').execute()
    t.equal(ids.length, victim - 1, 'rows before the hole are untouched')
  })

  t.test('a deleted row alone reports missing', async (t) => {
    const fresh = await testApp(t)
    await fresh.app.inject({ method: 'PATCH', url: `/v1/organisations/${ORG.pharmacyParis}`, headers: fresh.auth('ordre', ORG.ordre), payload: { city: 'Paris 4e' } })
    await sql`delete from audit_log where seq = 3`.execute(fresh.database.db)
    const r = await verifyAudit(fresh.database.db)
    t.match(r, { ok: false, broken: { seq: 3, reason: 'missing' }, lastSeq: 2 })
  })
})

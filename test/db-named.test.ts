// Named statements: the hot path's prepared() on connections that always take the generic plan, and
// executeNamed's statements, inside Kysely's transactions, parsed once per connection. Same answers on the
// embedded database, where neither applies.
import t from 'tap'
import { sql } from 'kysely'
import { executeNamed } from '../src/platform/db/named.ts'
import { inTransaction } from '../src/platform/db/transaction.ts'
import { testDatabase } from './helpers.ts'

t.test('named statements', async (t) => {
  const database = await testDatabase(t)
  const postgres = database.kind === 'postgres'

  t.test('prepared() runs on connections set to the generic plan; the general pool keeps the default', async (t) => {
    const [hot] = await database.prepared<{ mode: string }>('test_plan_mode', "select current_setting('plan_cache_mode') as mode", [])
    const { rows } = await sql<{ mode: string }>`select current_setting('plan_cache_mode') as mode`.execute(database.db)
    t.equal(rows[0]!.mode, 'auto', 'Kysely\'s statements: PostgreSQL chooses per call')
    t.equal(hot!.mode, postgres ? 'force_generic_plan' : 'auto')
  })

  t.test('a statement run by executeNamed is prepared once on its connection and answers as before', async (t) => {
    const seen = await inTransaction(database.db, async (tx) => {
      const answers: number[] = []
      for (let n = 1; n <= 8; n++) {
        const { rows } = await executeNamed(tx, 'test_named_double', sql<{ doubled: number }>`select ${n}::int * 2 as doubled`)
        answers.push(rows[0]!.doubled)
      }
      const prepared = postgres
        ? (await sql<{ name: string; statement: string; generic_plans: number; custom_plans: number }>`
            select name, statement, generic_plans::int, custom_plans::int from pg_prepared_statements where name = 'test_named_double'`.execute(tx)).rows
        : []
      return { answers, prepared }
    })
    t.same(seen.answers, [2, 4, 6, 8, 10, 12, 14, 16])
    if (postgres) {
      t.equal(seen.prepared.length, 1, 'one prepared statement of that name on the connection')
      const p = seen.prepared[0]!
      t.equal(p.generic_plans + p.custom_plans, 8, 'executed 8 times from one parse')
      t.ok(p.generic_plans > 0, 'PostgreSQL settled on the generic plan (no planning per call)')
    }
  })

  t.test('a name keeps its text: another statement under the same name is refused before it is sent', async (t) => {
    await executeNamed(database.db, 'test_named_once', sql`select 1 as one`)
    await t.rejects(executeNamed(database.db, 'test_named_once', sql`select 2 as two`), /test_named_once: its text changed/)
  })

  t.test('the publication and the audit entry, named, write what they wrote before', async (t) => {
    // The shapes of audience each have their statement: one organisation, several, roles.
    const { publish } = await import('../src/platform/events/publish.ts')
    const { audit, verifyAudit } = await import('../src/platform/audit.ts')
    await database.db
      .insertInto('organisations')
      .values(['750100010', '690100020', '130100030'].map((id) => ({ id, role: 'pharmacy' as const, name: `Pharmacie ${id}`, department: id.slice(0, 2), region: '11', updated_at: new Date() })))
      .execute()
    const pharmacies = await database.db.selectFrom('organisations').select('id').where('role', '=', 'pharmacy').where('active', '=', true).orderBy('id').execute()
    const counts = await inTransaction(database.db, async (tx) => {
      const one = await publish(tx, { type: 'test.named', payload: {}, audience: { orgs: [pharmacies[0]!.id] } })
      const two = await publish(tx, { type: 'test.named', payload: {}, audience: { orgs: [pharmacies[0]!.id, pharmacies[1]!.id] } })
      const all = await publish(tx, { type: 'test.named', payload: {}, audience: { orgs: [pharmacies[0]!.id], roles: ['pharmacy'] } })
      await audit(tx, { role: 'pharmacy', org: pharmacies[0]!.id, user: 'u' }, { action: 'test.named', objectType: 'test', objectId: '1', changes: { a: 1 } })
      return [one.recipients, two.recipients, all.recipients]
    })
    t.same(counts, [1, 2, pharmacies.length])
    t.equal((await verifyAudit(database.db)).broken, undefined, 'the audit chains verify')
  })
})

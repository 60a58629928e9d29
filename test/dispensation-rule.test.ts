// The rule that decides whether a box may be dispensed exists twice: in TypeScript for the dispensation check (over
// each instance's memory) and in SQL for verification and state changes (next to the pack's row). Both must give
// the same answer on every combination of facts.
import t from 'tap'
import { sql } from 'kysely'
import { blockingOf, blockingSql } from '../src/dispensation/rule.ts'
import { testDatabase } from './helpers.ts'

const STATUSES = [null, 'active', 'recalled', 'withdrawn', 'expired'] as const
const TODAY = '2026-12-06'
const EXPIRIES = [null, '2026-12-05', TODAY, '2026-12-07'] as const

t.test('the SQL twin of the rule answers as the rule, on every combination', async (t) => {
  const database = await testDatabase(t)
  const combos = []
  for (const recalls of [0, 1, 2])
    for (const batchStatus of STATUSES)
      for (const productStatus of STATUSES)
        for (const expiry of EXPIRIES) combos.push({ i: combos.length, batch: `b${combos.length}`, recalls, batchStatus, productStatus, expiry })
  // The recall rows hold the batch in capitals; the pack's batch is matched without regard to case.
  const recallRows = combos.flatMap((c) => Array.from({ length: c.recalls }, (_, k) => ({ cip13: '3400949497294', batch: c.batch.toUpperCase(), recall_id: `r${k}`, reference: `R-${k}`, version: 1, lab_id: 'L', expiry: null, message_fr: 'm', message_en: null, state: k === 0 ? ('active' as const) : ('pending' as const), since: new Date() })))
  await database.db.insertInto('dispensation_blocks').values(recallRows).execute()
  const expr = blockingSql({ cip13: `'3400949497294'`, batch: 'v.batch', batchStatus: 'v.bs', productStatus: 'v.ps', expiry: 'v.exp::date', today: `'${TODAY}'::date` })
  const rows = await sql<{ i: number; blocking: string | null }>`
    select v.i, ${sql.raw(expr)} as blocking
    from unnest(${combos.map((c) => c.i)}::int[], ${combos.map((c) => c.batch)}::text[], ${combos.map((c) => c.batchStatus)}::text[], ${combos.map((c) => c.productStatus)}::text[], ${combos.map((c) => c.expiry)}::text[])
      as v(i, batch, bs, ps, exp)
    order by v.i`.execute(database.db)
  t.equal(rows.rows.length, combos.length)
  let mismatches = 0
  for (const c of combos) {
    const expected = blockingOf({ recalls: c.recalls, batchStatus: c.batchStatus, productStatus: c.productStatus, expiry: c.expiry }, TODAY)
    const got = rows.rows[c.i]!.blocking
    if (got !== expected) {
      mismatches++
      t.fail(`${JSON.stringify(c)}: SQL ${got}, rule ${expected}`)
    }
  }
  t.equal(mismatches, 0, `${combos.length} combinations agree (${database.kind})`)
  // A few lines of the table, spelled out.
  t.equal(blockingOf({ recalls: 1, batchStatus: 'withdrawn', productStatus: null, expiry: '2020-01-01' }, TODAY), 'recalled', 'a recall outranks a withdrawal and the date')
  t.equal(blockingOf({ recalls: 0, batchStatus: 'active', productStatus: 'withdrawn', expiry: null }, TODAY), 'withdrawn', 'the product’s status applies to every batch')
  t.equal(blockingOf({ recalls: 0, batchStatus: 'active', productStatus: 'active', expiry: TODAY }, TODAY), null, 'valid through its expiry day')
  t.equal(blockingOf({ recalls: 0, batchStatus: null, productStatus: null, expiry: '2026-12-05' }, TODAY), 'expired')
})

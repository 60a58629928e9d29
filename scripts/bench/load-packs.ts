// npx tsx scripts/bench/load-packs.ts --database-url postgres://…/bench_db [--count 2000000] [--batch 50000] [--products 8] [--per-lot 100000]
// Loads N synthetic packs into a PostgreSQL database for the serialization benchmarks (verify, decommission).
// The database is migrated and given the demo organisations and products if it has none (so the script works on
// the fresh database `npm run bench` creates, or on one made for it). It refuses the `postgres` maintenance
// database. Rows go in with multi-row INSERT … SELECT FROM unnest($arrays) in batches (one round trip and one
// transaction per batch), then ANALYZE. Re-running is idempotent (ON CONFLICT DO NOTHING).
//
// The packs are deterministic, so that a scenario can build the DataMatrix of any of them without a query:
//   pack i (0 ≤ i < N) → product P[i % products], k = floor(i / products)
//   serial = 'S' + k (10 digits, zero-padded); batch = 'LOT' + floor(k / perLot) (6 digits); expiry 2030-12-31
// where P is the list printed at the end (the demo presentations of labs, ordered by cip13). See packOf().
import { parseArgs } from 'node:util'
import { sql } from 'kysely'
import { createDatabase, type DatabaseHandle } from '../../src/platform/db/index.ts'
import { migrateToLatest } from '../../src/platform/db/migrate.ts'
import { loadDemoData } from '../../src/demo/seed.ts'

export const BENCH_EXPIRY = '2030-12-31'

export interface PackSpec {
  product: string
  serial: string
  batch: string
  expiry: string
}

/** The i-th loaded pack, from the product list the loader returns. */
export function packOf(products: string[], i: number, perLot = 100_000): PackSpec {
  const k = Math.floor(i / products.length)
  return { product: products[i % products.length]!, serial: `S${String(k).padStart(10, '0')}`, batch: `LOT${String(Math.floor(k / perLot)).padStart(6, '0')}`, expiry: BENCH_EXPIRY }
}

/** The GS1 element string of a pack, as a scanner gives it (GS = ASCII 29). */
export const dataMatrixOf = (p: PackSpec) => `]d2010${p.product}21${p.serial}\x1d10${p.batch}\x1d17${p.expiry.slice(2).replaceAll('-', '')}`

export interface LoadOptions {
  count: number
  batch?: number
  products?: number
  perLot?: number
  log?: (line: string) => void
}

/** Loads the packs; returns the products used (in packOf order) and the counts. */
export async function loadPacks(database: DatabaseHandle, opts: LoadOptions) {
  const { count, batch = 50_000, perLot = 100_000, log = () => {} } = opts
  const db = database.db
  await migrateToLatest(db)
  await loadDemoData(db)
  const rows = await db
    .selectFrom('presentations as p')
    .innerJoin('medicines as m', 'm.cis', 'p.cis')
    .select(['p.cip13', 'm.lab_id'])
    .where('m.lab_id', 'is not', null)
    .orderBy('p.cip13')
    .limit(opts.products ?? 8)
    .execute()
  if (rows.length === 0) throw new Error('no presentation with a lab: load the demo products first')
  const products = rows.map((r) => r.cip13)
  const now = new Date()

  // The batches first (packs reference them).
  const perProduct = Math.ceil(count / products.length)
  const lots = Math.ceil(perProduct / perLot)
  for (const r of rows) {
    const names = Array.from({ length: lots }, (_, l) => `LOT${String(l).padStart(6, '0')}`)
    await sql`
      insert into serial_batches (cip13, batch, lab_id, expiry, status, created_at, updated_at)
      select ${r.cip13}, b, ${r.lab_id}, ${BENCH_EXPIRY}::date, 'active', ${now}::timestamptz, ${now}::timestamptz from unnest(${names}::text[]) as b
      on conflict (cip13, batch) do nothing`.execute(db)
  }

  const started = Date.now()
  let inserted = 0
  for (let from = 0; from < count; from += batch) {
    const n = Math.min(batch, count - from)
    const cip13s: string[] = new Array(n)
    const serials: string[] = new Array(n)
    const batches: string[] = new Array(n)
    for (let j = 0; j < n; j++) {
      const p = packOf(products, from + j, perLot)
      cip13s[j] = p.product
      serials[j] = p.serial
      batches[j] = p.batch
    }
    const res = await sql`
      insert into packs (cip13, serial, batch, state, state_at, last_txn, created_at)
      select c, s, b, 'active', ${now}::timestamptz, null, ${now}::timestamptz
      from unnest(${cip13s}::text[], ${serials}::text[], ${batches}::text[]) as t(c, s, b)
      on conflict (cip13, serial) do nothing`.execute(db)
    inserted += Number(res.numAffectedRows ?? 0)
    const done = from + n
    if (done % (batch * 10) === 0 || done === count) {
      const s = (Date.now() - started) / 1000
      log(`  ${done.toLocaleString('en')} / ${count.toLocaleString('en')} packs (${Math.round(done / s).toLocaleString('en')}/s)`)
    }
  }
  await sql`analyze serial_batches`.execute(db)
  await sql`analyze packs`.execute(db)
  return { products, inserted, count, seconds: (Date.now() - started) / 1000 }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      count: { type: 'string', default: '2000000' },
      batch: { type: 'string', default: '50000' },
      products: { type: 'string', default: '8' },
      'per-lot': { type: 'string', default: '100000' },
    },
  })
  const url = values['database-url'] ?? process.env.DATABASE_URL
  const fail = (m: string) => {
    console.error(m)
    process.exit(2)
  }
  if (!url || !/^postgres(ql)?:\/\//.test(url)) fail('--database-url (or DATABASE_URL) postgres://…/<database> is required')
  const name = new URL(url!).pathname.replace(/^\//, '')
  if (!name || name === 'postgres' || name.startsWith('template')) fail(`refusing to load packs into the "${name || 'postgres'}" database: create one for the benchmark`)
  const num = (v: string, what: string) => {
    const n = Number(v.replaceAll('_', ''))
    if (!Number.isInteger(n) || n < 1) fail(`--${what}: a positive integer is expected`)
    return n
  }
  const database = await createDatabase({ databaseUrl: url!, poolMax: 2 })
  try {
    console.log(`loading packs into ${name}…`)
    const r = await loadPacks(database, {
      count: num(values.count!, 'count'), batch: num(values.batch!, 'batch'), products: num(values.products!, 'products'), perLot: num(values['per-lot']!, 'per-lot'), log: console.log,
    })
    console.log(`${r.inserted.toLocaleString('en')} new packs of ${r.count.toLocaleString('en')} in ${r.seconds.toFixed(1)} s; products (packOf order): ${r.products.join(',')}`)
  } finally {
    await database.close()
  }
}

// The serialization benchmarks' helpers (used by scripts/bench.ts): packs loaded once per run, the HTTP requests
// that verify or decommission a different pack each, and pgbench running the decommission's own SQL statement.
import { sql } from 'kysely'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type autocannon from 'autocannon'
import { createDatabase } from '../../src/platform/db/index.ts'
import { pharmacyPseudonym, userPseudonym } from '../../src/serialization/rules/pseudonyms.ts'
import { parisDay } from '../../src/platform/paris-time.ts'
import { CHANGE_BATCH_SQL } from '../../src/serialization/queries/change-batch.ts'
import { CHANGE_SQL } from '../../src/serialization/queries/packs.ts'
import { BENCH_EXPIRY, dataMatrixOf, loadPacks, packOf } from './load-packs.ts'

const PER_LOT = 100_000
export const BENCH_PHARMACY = '750100010'

export interface LoadedPacks {
  products: string[]
  count: number
}

/** Loads `count` packs into the service's (fresh) database, then VACUUM (ANALYZE) so that the run starts clean. */
export async function loadBenchPacks(databaseUrl: string, count: number, log: (line: string) => void): Promise<LoadedPacks> {
  const database = await createDatabase({ databaseUrl, poolMax: 2 })
  try {
    const started = Date.now()
    const r = await loadPacks(database, { count, perLot: PER_LOT, log })
    // Vacuumed before anything is measured: an autovacuum of the freshly loaded table starting during a measured
    // run is a cost of the bench's load, not of the service.
    await sql`vacuum (analyze) packs, serial_batches`.execute(database.db)
    log(`  loaded ${r.inserted.toLocaleString('en')} packs in ${((Date.now() - started) / 1000).toFixed(0)} s, vacuumed`)
    return { products: r.products, count }
  } finally {
    await database.close()
  }
}

/** Pack indices: a counter shared by every connection of a scenario (each request a different pack). */
export function counter(from: number, to: number) {
  let next = from
  return () => {
    if (next >= to) throw new Error(`bench: no more packs in [${from}, ${to}): give a larger --packs`)
    return next++
  }
}

const json = 'application/json'

/** POST /v1/serialization/packs/verify, each request a different (active) loaded pack, cycling over [0, count). */
export function verifyRequests(token: string, packs: LoadedPacks): autocannon.Request[] {
  let i = 0
  return [
    {
      method: 'POST', path: '/v1/serialization/packs/verify', headers: { authorization: `Bearer ${token}`, 'content-type': json },
      setupRequest: (req: any) => ({ ...req, body: JSON.stringify({ dataMatrix: dataMatrixOf(packOf(packs.products, i++ % packs.count, PER_LOT)) }) }),
    },
  ] as autocannon.Request[]
}

/** POST /v1/serialization/packs/state {action: supply}, each request a different active pack taken from `next`. */
export function decommissionRequests(token: string, packs: LoadedPacks, next: () => number): autocannon.Request[] {
  return [
    {
      method: 'POST', path: '/v1/serialization/packs/state', headers: { authorization: `Bearer ${token}`, 'content-type': json },
      setupRequest: (req: any) => ({ ...req, body: JSON.stringify({ action: 'supply', dataMatrix: dataMatrixOf(packOf(packs.products, next(), PER_LOT)) }) }),
    },
  ] as autocannon.Request[]
}

/** One decommission request (for the paced load): a different active pack from `next` each time. */
export const decommissionRequest = (token: string, packs: LoadedPacks, next: () => number) => () => ({
  method: 'POST',
  path: '/v1/serialization/packs/state',
  headers: { authorization: `Bearer ${token}`, 'content-type': json },
  body: JSON.stringify({ action: 'supply', dataMatrix: dataMatrixOf(packOf(packs.products, next(), PER_LOT)) }),
})

export function findPgbench(): string | null {
  const which = spawnSync('sh', ['-c', 'command -v pgbench'], { encoding: 'utf8' })
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim()
  for (const v of ['17', '16', '15', '14']) {
    const p = `/usr/lib/postgresql/${v}/bin/pgbench`
    if (existsSync(p)) return p
  }
  return null
}

/**
 * The pgbench script: the service's decommission statement (queries/packs.ts CHANGE_SQL), its parameters replaced by
 * the same values computed in SQL, each transaction a different active pack: client c takes the packs
 * from + c, from + c + clients, from + c + 2·clients… (pgbench keeps a client's variables between transactions).
 */
export function pgbenchScript(packs: LoadedPacks, secret: string, now = new Date()): string {
  const P = packs.products.length
  const lit = (s: string) => `'${s.replaceAll("'", "''")}'`
  const args: Record<number, string> = {
    1: `(array[${packs.products.map(lit).join(',')}])[:pi]`,
    2: `('S' || lpad(cast(:k as text), 10, '0'))`,
    3: lit('supplied'),
    4: 'now()',
    5: 'gen_random_uuid()',
    6: `('LOT' || lpad(cast(:lot as text), 6, '0'))`,
    7: lit(BENCH_EXPIRY),
    8: 'false',
    9: lit(parisDay(now)),
    10: lit('supply'),
    11: lit(pharmacyPseudonym(secret, BENCH_PHARMACY)),
    12: lit(userPseudonym(secret, BENCH_PHARMACY, 'bench')),
    13: lit('pharmacy'),
    14: 'gen_random_uuid()',
  }
  const statement = CHANGE_SQL.replace(/\$(\d+)/g, (_, n: string) => {
    const a = args[Number(n)]
    if (a === undefined) throw new Error(`pgbench script: no value for $${n}`)
    return a
  })
  return [
    '\\set n :n + 1',
    '\\set i :from + :client_id + (:n - 1) * :clients',
    `\\set pi :i % ${P} + 1`,
    `\\set k :i / ${P}`,
    `\\set lot :k / ${PER_LOT}`,
    `${statement.trim().replace(/\s+/g, ' ')};`,
    '',
  ].join('\n')
}

/**
 * The same for the statement the service really sends (queries/change-batch.ts CHANGE_BATCH_SQL): `group` packs per
 * transaction, as a group commit of that size would. Client c takes the blocks of `group` consecutive packs
 * from + (c + (n - 1)·clients)·group.
 */
export function pgbenchGroupScript(packs: LoadedPacks, secret: string, group: number, now = new Date()): string {
  const P = packs.products.length
  const lit = (s: string) => `'${s.replaceAll("'", "''")}'`
  const each = (expr: string, type: string) => `array(select ${expr} from generate_series(0, ${group - 1}) g order by g)::${type}[]`
  const same = (value: string, type: string) => `array_fill(${value}::${type}, array[${group}])`
  const args: Record<number, string> = {
    1: each(`(array[${packs.products.map(lit).join(',')}])[(:b + g) % ${P} + 1]`, 'text'),
    2: each(`'S' || lpad(cast((:b + g) / ${P} as text), 10, '0')`, 'text'),
    3: same(lit('supplied'), 'text'),
    4: each('gen_random_uuid()', 'uuid'),
    5: each(`'LOT' || lpad(cast((:b + g) / ${P} / ${PER_LOT} as text), 6, '0')`, 'text'),
    6: same(lit(BENCH_EXPIRY), 'date'),
    7: same('false', 'boolean'),
    8: same(lit('supply'), 'text'),
    9: same(lit(pharmacyPseudonym(secret, BENCH_PHARMACY)), 'text'),
    10: same(lit(userPseudonym(secret, BENCH_PHARMACY, 'bench')), 'text'),
    11: same(lit('pharmacy'), 'text'),
    12: each('gen_random_uuid()', 'uuid'),
    13: same('now()', 'timestamptz'),
    14: same(lit(parisDay(now)), 'date'),
  }
  const statement = CHANGE_BATCH_SQL.replace(/\$(\d+)::\w+\[\]/g, (_, n: string) => {
    const a = args[Number(n)]
    if (a === undefined) throw new Error(`pgbench group script: no value for $${n}`)
    return a
  })
  return ['\\set n :n + 1', `\\set b :from + (:client_id + (:n - 1) * :clients) * ${group}`, `${statement.trim().replace(/\s+/g, ' ')};`, ''].join('\n')
}

/** Runs pgbench with the decommission script; returns transactions per second and the latency it reports. */
export async function runPgbench(
  pgbench: string,
  databaseUrl: string,
  script: string,
  opts: { clients: number; duration: number; from: number },
): Promise<{ tps: number; latencyMs: number; failed: number; output: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-pgbench-'))
  try {
    const file = path.join(dir, 'decommission.sql')
    writeFileSync(file, script)
    const args = ['-n', '-M', 'prepared', '-j', '1', '-c', String(opts.clients), '-T', String(opts.duration), '-D', 'n=0', '-D', `from=${opts.from}`, '-D', `clients=${opts.clients}`, '-f', file, databaseUrl]
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(pgbench, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.on('data', (d) => (out += d.toString()))
      child.stderr.on('data', (d) => (out += d.toString()))
      child.on('error', reject)
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`pgbench exited with ${code}:\n${out}`))))
    })
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(output)?.[1] ?? NaN)
    const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(output)?.[1] ?? NaN)
    const failed = Number(/number of failed transactions: (\d+)/.exec(output)?.[1] ?? 0)
    return { tps, latencyMs, failed, output }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

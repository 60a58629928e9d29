// The serialization bench's race and storm scenarios (used by scripts/bench.ts):
// - one pack decommissioned by 200 pharmacies at once: every answer within 1 s, exactly one success, an alert for
//   every other attempt (the pack is already inactive: NMVS_NC_PCK_22);
// - an alert storm: 2,000 alert-raising decommissions in 10 s, paced, while other packs are verified at a fixed
//   rate: the verifications keep their p99 and every alert is recorded.
import pg from 'pg'
import { paced } from './paced.ts'
import { statementsSince } from './statements.ts'
import { dataMatrixOf, packOf } from './load-packs.ts'
import type { LoadedPacks } from './decommission.ts'

const PER_LOT = 100_000
const json = 'application/json'
/** Pharmacies of the race and the storm: synthetic FINESS-shaped identifiers 980000000…, department 10. */
const pharmacyIds = (n: number) => Array.from({ length: n }, (_, i) => String(980_000_000 + i))

/** Pharmacies the scenarios act for (in the service's database), as `ids`. */
export async function insertPharmacies(databaseUrl: string, ids: string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    await client.query(
      `insert into organisations (id, role, name, department, region, updated_at)
       select unnest($1::text[]), 'pharmacy', 'Pharmacie bench', '10', '44', now() on conflict do nothing`,
      [ids],
    )
  } finally {
    await client.end()
  }
  return ids
}

async function countAlerts(databaseUrl: string, since: Date): Promise<{ alerts: number; occurrences: number }> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const { rows } = await client.query('select count(*)::int as alerts, coalesce(sum(occurrences), 0)::int as occurrences from serial_alerts where created_at >= $1', [since])
    return rows[0]
  } finally {
    await client.end()
  }
}

async function supply(url: string, token: string, dataMatrix: string): Promise<{ status: number; code: string; alert: boolean; ms: number }> {
  const started = performance.now()
  const res = await fetch(`${url}/v1/serialization/packs/state`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': json },
    body: JSON.stringify({ action: 'supply', dataMatrix }),
  })
  const body: any = await res.json().catch(() => ({}))
  return { status: res.status, code: body.code ?? body.type ?? '?', alert: body.alert === true, ms: performance.now() - started }
}

/**
 * 200 pharmacies decommission the same pack at the same moment, three times after a first race (four packs taken
 * from the end of the loaded table, which no other scenario uses). Prints the slowest answer of each race.
 */
export async function burstScenario(url: string, databaseUrl: string, packs: LoadedPacks, token: (org: string) => string, racers = 200) {
  const orgs = await insertPharmacies(databaseUrl, pharmacyIds(racers))
  const tokens = orgs.map(token)
  // Connections opened beforehand, as 200 pharmacies' workstations would have them: the race is the requests'.
  await Promise.all(tokens.map((t) => fetch(`${url}/v1/organisations/${orgs[0]}`, { headers: { authorization: `Bearer ${t}` } }).then((r) => r.arrayBuffer())))
  const results: string[] = []
  // A first race, printed apart and not one of the three: the service's first burst after its start also opens
  // its pooled connections and compiles the alert path (its first race took 1.1-1.2 s where the next took 0.6-0.9).
  let warmUp = ''
  for (let race = -1; race < 3; race++) {
    const dataMatrix = dataMatrixOf(packOf(packs.products, packs.count - 1 - (race < 0 ? 3 : race), PER_LOT))
    const since = new Date()
    const statements = await statementsSince(url)
    const started = performance.now()
    const answers = await Promise.all(tokens.map((t) => supply(url, t, dataMatrix)))
    const all = performance.now() - started
    const sent = await statements()
    const perRacer = sent === null ? '' : `, ${(sent / racers).toFixed(1)} DB statements per racer`
    const changed = answers.filter((a) => a.code === 'STATE_CHANGED').length
    const inactive = answers.filter((a) => a.code === 'ALREADY_INACTIVE')
    const other = answers.length - changed - inactive.length
    const { alerts } = await countAlerts(databaseUrl, since)
    const result = `${all.toFixed(0)} ms (${changed} STATE_CHANGED, ${inactive.length} ALREADY_INACTIVE of which ${inactive.filter((a) => a.alert).length} alert: true, ${other} other; ${alerts} alerts recorded${perRacer})`
    if (race < 0) warmUp = result
    else results.push(result)
  }
  console.log(
    `${'pack-burst'.padEnd(22)} ${racers} pharmacies on one pack, all answered in: ${results.join('; ')}   (target: ≤ 1000 ms, exactly one STATE_CHANGED, an alert for every other attempt; ` +
      `the first race after the start, not counted: ${warmUp})`,
  )
}

/**
 * 2,000 alert-raising decommissions (packs already supplied by the bench pharmacy, each attempted by another
 * pharmacy: NMVS_NC_PCK_22) paced over 10 s, while other packs are verified at `verifyRate` per second; the
 * verifications' p99 during the storm, and the alerts recorded against the attempts made.
 *
 * A first storm at the same rate (`warmUp` attempts, on other packs) runs before, reported apart and not counted,
 * as every other scenario is warmed before it is measured: the first alerts after the start run the alert path's
 * code cold (interpreted, then compiled while the storm goes on) and prepare its named statements on each pooled
 * connection; on the development machine that first storm's verifications had a p99 of 1.7 s, the measured storm's
 * after it 49-53 ms.
 */
export async function alertStormScenario(
  url: string, databaseUrl: string, packs: LoadedPacks, token: (org: string) => string, benchToken: string, verifyRate: number,
  opts: { storm?: number; seconds?: number; warmUp?: number; cpu?: () => Record<'service' | 'postgres' | 'load', number> } = {},
) {
  const storm = opts.storm ?? 2000
  const seconds = opts.seconds ?? 10
  const warmUp = opts.warmUp ?? 1000
  const orgs = await insertPharmacies(databaseUrl, pharmacyIds(500))
  const tokens = orgs.map(token)
  // The storm's packs: 2,000 packs before the burst's, and the warm-up's before them (verifications read the table's
  // start, up to 5,000 packs before its end), supplied first by the bench pharmacy.
  const packAt = (i: number) => dataMatrixOf(packOf(packs.products, packs.count - 10 - i, PER_LOT))
  const targets = Array.from({ length: storm }, (_, i) => packAt(i))
  const warmTargets = Array.from({ length: warmUp }, (_, i) => packAt(storm + i))
  const supplied = [...targets, ...warmTargets]
  for (let i = 0; i < supplied.length; i += 50) await Promise.all(supplied.slice(i, i + 50).map((dm) => supply(url, benchToken, dm)))
  // Verifications of other packs: the start of the table (pack-verify's packs, read-only).
  let v = 0
  const verify = () => ({
    method: 'POST', path: '/v1/serialization/packs/verify', headers: { authorization: `Bearer ${benchToken}`, 'content-type': json },
    body: JSON.stringify({ dataMatrix: dataMatrixOf(packOf(packs.products, v++ % Math.max(1, packs.count - 5000), PER_LOT)) }),
  })
  // Each pharmacy in turn attempts the next pack of the list.
  const attempts = (list: string[]) => {
    let s = 0
    return () => {
      const i = s++
      return {
        method: 'POST', path: '/v1/serialization/packs/state', headers: { authorization: `Bearer ${tokens[i % tokens.length]}`, 'content-type': json },
        body: JSON.stringify({ action: 'supply', dataMatrix: list[i % list.length] }),
      }
    }
  }
  const rate = storm / seconds
  const [warmVerify, warmRaised] = warmUp > 0
    ? await Promise.all([
      paced({ url, rate: verifyRate, seconds: warmUp / rate, request: verify }),
      paced({ url, rate, seconds: warmUp / rate, request: attempts(warmTargets) }),
    ])
    : [null, null]
  const quiet = await paced({ url, rate: verifyRate, seconds: 5, request: verify })
  let alerted = 0
  const attempt = attempts(targets)
  const since = new Date()
  const statements = await statementsSince(url)
  const cpuBefore = opts.cpu?.()
  const stormStarted = performance.now()
  const [during, raised] = await Promise.all([
    paced({ url, rate: verifyRate, seconds, request: verify }),
    paced({ url, rate, seconds, request: attempt, onResponse: (_status, body) => (body.includes('"alert":true') ? alerted++ : undefined) }),
  ])
  // Where the two cores went meanwhile, as a share of one core (µs of CPU per µs of the storm).
  const cpuAfter = opts.cpu?.()
  const sent = await statements()
  // The verifications' statements are in it too: they share a statement among many (about one for ten here).
  const perAttempt = sent === null ? '' : `   DB statements during the storm: ${(sent / raised.completed).toFixed(1)} per attempt (the verifications' included)`
  const stormUs = (performance.now() - stormStarted) * 1000
  const cores = cpuBefore && cpuAfter
    ? `   CPU during the storm, share of one core: ${(['service', 'postgres', 'load'] as const).map((k) => `${k} ${(((cpuAfter[k] - cpuBefore[k]) / stormUs) * 100).toFixed(0)}%`).join(', ')}`
    : ''
  const { alerts, occurrences } = await countAlerts(databaseUrl, since)
  console.log(
    `${'alert-storm'.padEnd(22)} ${raised.completed}/${storm} attempts in ${seconds} s (p99 ${raised.p99} ms, ${raised.non2xx} non-2xx, ${alerted} answered alert: true; ${alerts} alerts recorded, ${occurrences} occurrences)   ` +
      `verify at ${verifyRate}/s: p99 ${quiet.p99} ms before, ${during.p99} ms during the storm (max ${during.max} ms, ${during.non2xx} non-2xx)   (target: verify p99 ≤ 20 ms, no alert lost)${cores}${perAttempt}` +
      (warmVerify && warmRaised ? `   the first storm after the start, not counted: ${warmRaised.completed} attempts in ${warmUp / rate} s (p99 ${warmRaised.p99} ms), verify p99 ${warmVerify.p99} ms` : ''),
  )
}

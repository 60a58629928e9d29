// npm run bench [-- --duration 10 --connections 50 --rounds 5 --only product-lookup --packs 2000000 --cpu-prof dir]
// Runs, in one run and with the same connections, a bare Fastify hello world and the service's scenarios,
// and prints one line per scenario: requests/s, p99 latency, ratio to the baseline, and the CPU time each process
// (service, baseline server, PostgreSQL, load generator) spent per request.
// The service runs on DATABASE_URL when set (a fresh database is created beside it), else on a fresh embedded one.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pg from 'pg'
import { loadConfig } from '../src/platform/config.ts'
import { signDevToken } from '../src/platform/tokens.ts'
import { paced } from './bench/paced.ts'
import { statementsSince } from './bench/statements.ts'
import { type ProfileWindow, summariseProfiles } from './bench/profile.ts'
import { alertStormScenario, burstScenario } from './bench/burst.ts'
import { ACK_PHARMACIES, broadcastBenchRecall, dispensationBody, seedBlockedBatches } from './bench/dispensation.ts'
import { BENCH_PHARMACY, counter, decommissionRequest, decommissionRequests, findPgbench, type LoadedPacks, loadBenchPacks, pgbenchGroupScript, pgbenchScript, runPgbench, verifyRequests } from './bench/decommission.ts'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    // A scenario with a ceiling: the service and the ceiling alternate, this many slices each (see alternated()).
    rounds: { type: 'string', default: '5' },
    only: { type: 'string' },
    // The target is 25,000; a process may hold no more descriptors than its hard RLIMIT_NOFILE (printed when capped).
    streams: { type: 'string', default: '25000' },
    // Push streams per connection: HTTP/2 connections carrying this many each (the service speaks HTTP/2 without
    // TLS on its port); 1: an HTTP/1.1 connection per stream, as many descriptors in the service.
    'streams-per-connection': { type: 'string', default: '100' },
    // Packs loaded for pack-decommission (a few million: the table size the target is set for); pack-verify
    // alone loads 200,000. Only loaded when one of them runs, on PostgreSQL.
    packs: { type: 'string', default: '2000000' },
    // Profile the service (node --cpu-prof): a .cpuprofile per run in this folder, summarised at the end.
    'cpu-prof': { type: 'string' },
  },
})
const duration = Number(values.duration)
const connections = Number(values.connections)
const rounds = Math.max(1, Math.round(Number(values.rounds)))

interface Scenario {
  name: string
  /** What the scenario measures, for the printed table. */
  what: string
  requests: (ctx: { token: (role: 'pharmacy' | 'lab' | 'ansm' | 'ordre' | 'prescriber', org: string) => string; packs: LoadedPacks | null; recallId: string | null }) => autocannon.Request[]
  target?: string
  /** Also measure the scenario's ceiling: bare Fastify answering the same requests with the service's answer, no work. */
  ceiling?: boolean
  /** Targets (engineering.md): service CPU per request over the ceiling's, and p99 at half the saturation rate. */
  maxCpuRatio?: number
  maxHalfP99?: number
}

/** Later services add their scenarios here. */
const scenarios: Scenario[] = [
  {
    name: 'product-lookup',
    what: 'GET /v1/products/{cip13}, authenticated pharmacy',
    target: 'informative',
    requests: ({ token }) => [{ method: 'GET', path: '/v1/products/3400949497294', headers: { authorization: `Bearer ${token('pharmacy', '750100010')}` } }],
  },
  {
    // The first request creates the signal; every later one takes the duplicate path (the open signal, its
    // declaration and automatic response): the path every LGO retry takes.
    name: 'shortage-signal',
    what: 'POST /v1/shortage-signals, authenticated pharmacy, duplicate path with automatic-response lookup',
    target: 'informative',
    requests: ({ token }) => [
      {
        method: 'POST', path: '/v1/shortage-signals',
        headers: { authorization: `Bearer ${token('pharmacy', '750100010')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ code: '3400936128149', wholesaler: 'OCP', unavailableSince: '2025-01-01' }),
      },
    ],
  },
  {
    name: 'shortage-public-stats',
    what: 'GET /v1/public/shortage-statistics, no token',
    target: 'informative',
    requests: () => [{ method: 'GET', path: '/v1/public/shortage-statistics' }],
  },
  {
    // On PostgreSQL: each request verifies a different loaded (active) pack, and every scan writes its log row.
    // On the embedded database (no packs loaded): the "unknown product" answer, same statement.
    name: 'pack-verify',
    what: 'POST /v1/serialization/packs/verify (DataMatrix), authenticated pharmacy, a different loaded pack each, scan logged',
    target: 'service CPU ≤ 1.5× the ceiling\'s, p99 ≤ 20 ms at half saturation',
    maxCpuRatio: 1.5,
    maxHalfP99: 20,
    ceiling: true,
    requests: ({ token, packs }) => packs ? verifyRequests(token('pharmacy', BENCH_PHARMACY), packs) : [
      {
        method: 'POST', path: '/v1/serialization/packs/verify',
        headers: { authorization: `Bearer ${token('pharmacy', '750100010')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ dataMatrix: ']d2010340094949729421BENCH0000001\u001d10BENCHLOT\u001d17301231' }),
      },
    ],
  },
  {
    // 2,000 blocked batches in memory (on PostgreSQL; none on the embedded database), five boxes per call:
    // three DataMatrix and two product + batch, two of them blocked.
    name: 'dispensation-check',
    what: 'POST /v1/dispensation-checks, 5 boxes (2 blocked), authenticated pharmacy',
    target: 'service CPU ≤ 1.3× the ceiling\'s, p99 ≤ 10 ms at half saturation',
    maxCpuRatio: 1.3,
    maxHalfP99: 10,
    ceiling: true,
    requests: ({ token }) => [
      {
        method: 'POST', path: '/v1/dispensation-checks',
        headers: { authorization: `Bearer ${token('pharmacy', '750100010')}`, 'content-type': 'application/json' },
        body: dispensationBody,
      },
    ],
  },
  {
    // Pharmacies in turn (1,000 on PostgreSQL, the 6 demo ones on the embedded database) acknowledge a broadcast
    // recall, each time with other quantities: every request records a new acknowledgement (history kept, audited).
    name: 'recall-acknowledgement',
    what: 'PUT /v1/recalls/{id}/acknowledgement, pharmacies in turn, changed quantities each time',
    target: 'informative',
    requests: ({ token, recallId }) => {
      const orgs = process.env.DATABASE_URL ? ACK_PHARMACIES : ['750100010', '690100020', '130100030', '2A0100040', '971100050', '974100060']
      const pharmacies = orgs.map((org) => `Bearer ${token('pharmacy', org)}`)
      let n = 0
      return [
        {
          method: 'PUT', path: `/v1/recalls/${recallId}/acknowledgement`,
          headers: { 'content-type': 'application/json' },
          setupRequest: (req: any) => {
            n++
            return { ...req, headers: { ...req.headers, authorization: pharmacies[n % pharmacies.length] }, body: JSON.stringify({ status: 'done', quarantined: n, returned: 0, destroyed: 0 }) }
          },
        },
      ] as autocannon.Request[]
    },
  },
  {
    name: 'eprescription-cycle',
    what: 'issue → take (QR) → record 1 line → close with signed receipt; req/s counts the 4 requests',
    target: 'informative',
    requests: ({ token }) => {
      const prescriber = `Bearer ${token('prescriber', '10001234565')}`
      const pharmacy = `Bearer ${token('pharmacy', '750100010')}`
      const json = 'application/json'
      return [
        {
          method: 'POST', path: '/v1/eprescriptions', headers: { authorization: prescriber, 'content-type': json },
          body: JSON.stringify({ patient: { familyName: 'BENCH', givenName: 'Test', birthDate: '1980-01-01' }, lines: [{ cip13: '3400949497294', dosage: '1 comprimé le soir', quantity: 1 }] }),
          onResponse: (status: number, body: string, c: any) => { c.qr = status === 201 ? JSON.parse(body).qrPayload : 'none' },
        },
        {
          method: 'POST', path: '/v1/eprescriptions/accept', headers: { authorization: pharmacy, 'content-type': json },
          setupRequest: (req: any, c: any) => ({ ...req, body: JSON.stringify({ qr: c.qr }) }),
          onResponse: (status: number, body: string, c: any) => {
            const r = status === 200 ? JSON.parse(body) : null
            c.id = r?.prescription.id ?? 'none'
            c.secret = r?.secret ?? 'none'
          },
        },
        {
          method: 'PUT', path: '/', headers: { authorization: pharmacy, 'content-type': json },
          setupRequest: (req: any, c: any) => ({
            ...req, path: `/v1/eprescriptions/${c.id}/dispensation/lines/1`, headers: { ...req.headers, 'x-eprescription-secret': c.secret },
            body: JSON.stringify({ outcome: 'delivered', cip13: '3400949497294', quantity: 1, batch: 'B1' }),
          }),
        },
        {
          method: 'POST', path: '/', headers: { authorization: pharmacy }, // close has no body
          setupRequest: (req: any, c: any) => ({ ...req, path: `/v1/eprescriptions/${c.id}/close`, headers: { ...req.headers, 'x-eprescription-secret': c.secret } }),
        },
      ] as autocannon.Request[]
    },
  },
]

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start:\n${out}`)), 120_000)
    const onData = (d: Buffer) => {
      out += d.toString()
      const m = /listening (http:\/\/[^\s"]+)|Docs[^:\n]*:\s+(http:\/\/\S+)\/docs/.exec(out)
      if (m) {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        resolve({ child, url: (m[1] ?? m[2])! })
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (d) => (out += d.toString()))
    child.on('exit', (code) => reject(new Error(`exited with ${code}:\n${out}`)))
  })
}

/**
 * The ceiling of a scenario: the baseline's bare Fastify reads the same requests (same headers and bodies) and
 * answers each with the answer the service gave to the first one, doing nothing else. Returns those requests,
 * once the ceiling has stored the answer and warmed up on them.
 */
async function ceilingRequests(helloUrl: string, serviceUrl: string, requests: autocannon.Request[]) {
  const first: any = requests[0]!
  const req = first.setupRequest ? first.setupRequest({ ...first }, {}) : first
  const answer = await fetch(serviceUrl + req.path, { method: req.method, headers: req.headers, body: req.body })
  if (!answer.ok) throw new Error(`ceiling: the service answered ${answer.status} to ${req.method} ${req.path}`)
  await fetch(`${helloUrl}/fixed`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: await answer.text() })
  const toFixed = (r: any) => ({ ...r, path: '/fixed', ...(r.setupRequest ? { setupRequest: (x: any, c: any) => ({ ...r.setupRequest(x, c), path: '/fixed' }) } : {}) })
  const same = requests.map(toFixed) as autocannon.Request[]
  await autocannon({ url: helloUrl, connections, duration: 2, requests: same })
  return same
}

/**
 * The service and its ceiling measured in alternated slices (service, ceiling, service…), `rounds` of each, for
 * `duration` seconds in all on each side. This machine's speed drifts by a third within minutes: two runs ten
 * seconds apart could differ by that much for no reason of theirs, where slices of two seconds side by side
 * share the machine's state. The ratio is taken on the totals; each round's own ratio shows the spread.
 */
async function alternated(serviceUrl: string, requests: autocannon.Request[], helloUrl: string, fixed: autocannon.Request[]) {
  const slice = duration / rounds
  const service: Measured[] = []
  const ceiling: Measured[] = []
  for (let i = 0; i < rounds; i++) {
    service.push(await measure(serviceUrl, requests, slice))
    ceiling.push(await measure(helloUrl, fixed, slice))
  }
  const each = service
    .map((m, i) => perRequest(m.cpu, m.result.requests.total).service / perRequest(ceiling[i]!.cpu, ceiling[i]!.result.requests.total).baseline)
    .sort((a, b) => a - b)
  return { service: summary(service), ceiling: summary(ceiling), each }
}

/** The processes whose CPU time each run reports (Linux): set once they are started. */
const cpuOf: { service?: number; baseline?: number } = {}
const TICK_US = 1e6 / 100 // USER_HZ, 100 on Linux
function ticks(pid: number, part: 'all' | 'system' = 'all'): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return part === 'system' ? Number(f[12]) : Number(f[11]) + Number(f[12])
  } catch {
    return 0 // gone, or not Linux
  }
}
function postgresPids(): number[] {
  const isPostgres = (pid: string) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres'
    } catch {
      return false // ended meanwhile
    }
  }
  try {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d) && isPostgres(d)).map(Number)
  } catch {
    return [] // not Linux
  }
}
/** CPU time of each process group, in µs: the service, the baseline server, PostgreSQL (all its processes), the load generator (this process). */
function cpuSnapshot() {
  const pg = postgresPids()
  const usage = process.cpuUsage()
  return {
    service: cpuOf.service ? ticks(cpuOf.service) * TICK_US : 0,
    baseline: cpuOf.baseline ? ticks(cpuOf.baseline) * TICK_US : 0,
    // The kernel's share (sockets, epoll, the loopback's TCP work): what a profile of JavaScript does not show.
    serviceKernel: cpuOf.service ? ticks(cpuOf.service, 'system') * TICK_US : 0,
    baselineKernel: cpuOf.baseline ? ticks(cpuOf.baseline, 'system') * TICK_US : 0,
    postgres: pg.reduce((sum, pid) => sum + ticks(pid), 0) * TICK_US,
    load: usage.user + usage.system,
  }
}

const HELLO: autocannon.Request[] = [{ method: 'GET', path: '/' }]
const percent = (part: number, whole: number) => `${((part / whole) * 100).toFixed(0)}%`

type Snapshot = ReturnType<typeof cpuSnapshot>
/** One autocannon run: its result and the CPU time each process spent meanwhile. */
interface Measured {
  result: autocannon.Result
  cpu: Snapshot
  /** Statements the service sent to its database meanwhile (null: a server without them, the baseline). */
  statements: number | null
}

async function measure(url: string, requests: autocannon.Request[], seconds = duration): Promise<Measured> {
  // Read outside the CPU window: a scrape costs the service a little.
  const statements = await statementsSince(url)
  const before = cpuSnapshot()
  const result = await autocannon({ url, connections, duration: seconds, requests, pipelining: 1 })
  const after = cpuSnapshot()
  const sent = await statements()
  const cpu = Object.fromEntries((Object.keys(after) as Array<keyof Snapshot>).map((k) => [k, after[k] - before[k]])) as Snapshot
  return { result, cpu, statements: sent }
}

/** CPU time per request answered, in µs, for each process group. */
function perRequest(cpu: Snapshot, requests: number): Snapshot {
  const count = Math.max(1, requests)
  return Object.fromEntries(Object.entries(cpu).map(([k, us]) => [k, us / count])) as Snapshot
}

/** One or several runs of the same requests, added up (the p99 is the worst run's). */
function summary(runs: Measured[]) {
  const total = (f: (m: Measured) => number) => runs.reduce((sum, m) => sum + f(m), 0)
  const cpu = Object.fromEntries((Object.keys(runs[0]!.cpu) as Array<keyof Snapshot>).map((k) => [k, total((m) => m.cpu[k])])) as Snapshot
  const requests = total((m) => m.result.requests.total)
  const per = perRequest(cpu, requests)
  return {
    rps: requests / total((m) => m.result.duration),
    p99: Math.max(...runs.map((m) => m.result.latency.p99)),
    errors: total((m) => m.result.errors + m.result.timeouts),
    non2xx: total((m) => m.result.non2xx),
    // Where the two cores went, per request answered: what a ratio to the baseline cannot show.
    cpu: (Object.keys(per) as Array<keyof Snapshot>).filter((k) => per[k] >= 1).map((k) => `${k} ${per[k].toFixed(0)}`).join(', '),
    cpuUs: per,
    statements: runs.every((m) => m.statements !== null) ? total((m) => m.statements!) / Math.max(1, requests) : null,
  }
}

const run = async (url: string, requests: autocannon.Request[]) => summary([await measure(url, requests)])

/** A paced run (open loop) and the CPU time each process spent per completed request meanwhile. */
async function pacedWithCpu(url: string, rate: number, request: ReturnType<typeof oneRequest>) {
  const before = cpuSnapshot()
  const p = await paced({ url, rate, seconds: duration, request })
  const after = cpuSnapshot()
  const per = (k: keyof typeof after) => (after[k] - before[k]) / Math.max(1, p.completed)
  return { ...p, cpu: { service: per('service'), serviceKernel: per('serviceKernel'), baseline: per('baseline'), baselineKernel: per('baselineKernel') } }
}

/** One request of a scenario, built as autocannon would (for the paced, open-loop runs). */
function oneRequest(requests: autocannon.Request[]) {
  const first: any = requests[0]!
  return () => {
    const r = first.setupRequest ? first.setupRequest({ ...first }, {}) : first
    return { method: r.method, path: r.path, headers: r.headers, body: r.body }
  }
}

const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!

/**
 * Push: N streams (one per pharmacy) on the instance, one broadcast to every pharmacy, time from the commit
 * of the publication until each stream has it; the server's memory before and after opening the streams.
 */
async function pushScenario(service: { child: ChildProcess; url: string }, databaseUrl: string, wanted: number, perConnection: number) {
  // One descriptor per connection in the server: no more connections than its RLIMIT_NOFILE allows, less some headroom.
  const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync(`/proc/${service.child.pid}/limits`, 'utf8'))?.[1] ?? Infinity)
  const streams = Math.min(wanted, (limit - 1000) * perConnection)
  const capped = streams < wanted ? ` (capped from ${wanted.toLocaleString('en')}: the server's open-file limit is ${limit.toLocaleString('en')})` : ''
  const carried = perConnection > 1 ? `over ${Math.ceil(streams / perConnection).toLocaleString('en')} HTTP/2 connections (${perConnection} streams each)` : 'one HTTP/1.1 connection each'
  const { createDatabase } = await import('../src/platform/db/index.ts')
  const { publish } = await import('../src/platform/events/publish.ts')
  const database = await createDatabase({ databaseUrl, poolMax: 2 })
  try {
    const first = 100_000_000 // synthetic FINESS-shaped identifiers 100000000…, department 10
    for (let i = 0; i < streams; i += 1000) {
      await database.db
        .insertInto('organisations')
        .values(Array.from({ length: Math.min(1000, streams - i) }, (_, k) => ({ id: String(first + i + k), role: 'pharmacy' as const, name: `Pharmacie bench ${i + k}`, department: '10', region: '44', city: null, email: null, phone: null, fax: null, updated_at: new Date() })))
        .onConflict((oc) => oc.column('id').doNothing())
        .execute()
    }
    const { last_pos } = await database.db.selectFrom('feed_sequence').select('last_pos').where('id', '=', 1).executeTakeFirstOrThrow()
    const rssBefore = rssMiB(service.child.pid!)
    // Streams per client process (each holds one descriptor per connection, under its own RLIMIT_NOFILE).
    const PER_CLIENT = 10_000
    const clients: Array<{ child: ChildProcess; out: string }> = []
    for (let i = 0; i < streams; i += PER_CLIENT) {
      const n = Math.min(PER_CLIENT, streams - i)
      const child = spawn(tsx, ['scripts/bench/push-client.ts', service.url, String(last_pos), String(first + i), String(n), `127.0.0.${2 + clients.length}`, String(perConnection)], { stdio: ['pipe', 'pipe', 'inherit'] })
      children.push(child)
      const c = { child, out: '' }
      child.stdout!.on('data', (d: Buffer) => (c.out += d.toString()))
      clients.push(c)
    }
    const waitFor = (prefix: string, ms: number) =>
      Promise.all(
        clients.map(
          (c) =>
            new Promise<string>((resolve, reject) => {
              const deadline = Date.now() + ms
              const check = () => {
                const line = c.out.split('\n').slice(0, -1).find((l) => l.startsWith(prefix)) // complete lines only
                if (line) return resolve(line.slice(prefix.length + 1))
                if (Date.now() > deadline) return reject(new Error(`push client: no "${prefix}" within ${ms} ms`))
                setTimeout(check, 20)
              }
              check()
            }),
        ),
      )
    const opened = (await waitFor('ready', 600_000)).reduce((sum, n) => sum + Number(n), 0)
    await new Promise((r) => setTimeout(r, 1000))
    const rssAfter = rssMiB(service.child.pid!)
    await database.db.transaction().execute((tx) => publish(tx, { type: 'bench.broadcast', payload: { message: 'Rappel de lot (bench)' }, audience: { roles: ['pharmacy'] } }))
    const committed = Date.now()
    const times = (await waitFor('done', 120_000)).flatMap((d) => JSON.parse(d) as number[]).map((t) => t - committed).sort((a, b) => a - b)
    const rssPeak = rssMiB(service.child.pid!)
    console.log(
      `${'push'.padEnd(22)} ${String(times.length).padStart(5)}/${opened} streams reached${capped}, ${carried}   p50 ${pct(times, 50)} ms   p99 ${pct(times, 99)} ms   max ${times.at(-1)} ms   ` +
        `server RSS ${rssBefore.toFixed(0)} MiB idle, ${rssAfter.toFixed(0)} MiB with the streams (${(((rssAfter - rssBefore) * 1024) / Math.max(1, opened)).toFixed(1)} KiB each), ${rssPeak.toFixed(0)} MiB after the broadcast   (target: 25,000 streams, p99 ≤ 2000 ms)`,
    )
    for (const c of clients) c.child.kill('SIGTERM')
  } finally {
    await database.close()
  }
}

/**
 * Decommission (supply), each request a different active pack of the loaded table: the service at full rate,
 * then pgbench with as many clients as the service has pooled connections, on other packs of the same table,
 * running a decommission's transaction (serialization/queries/packs.ts, one pack: the target's reference), then the grouped
 * statement the service sends (informative); then the service held at 1,000 requests/s.
 */
async function decommissionScenario(
  url: string, databaseUrl: string, packs: LoadedPacks, token: string, pool: number, secret: string,
  line: (name: string, r: { rps: number; p99: number; errors: number; non2xx: number }, ratio: string, note?: string) => void,
) {
  const next = counter(0, Math.floor(packs.count / 2)) // the service's packs: the first half; pgbench's: the second
  let changed = 0
  let other = 0
  const requests = decommissionRequests(token, packs, next).map((r) => ({
    ...r,
    onResponse: (status: number, body: string) => (status === 200 && body.includes('"code":"STATE_CHANGED"') ? changed++ : other++),
  })) as autocannon.Request[]
  await autocannon({ url, connections, duration: 2, requests })
  changed = other = 0
  const full = await run(url, requests)
  const fullChanged = changed
  const fullOther = other

  const pgbench = findPgbench()
  let ratio = 'n/a'
  let pgNote = 'pgbench not found (Debian: apt-get install postgresql-client)'
  if (pgbench) {
    const r = await runPgbench(pgbench, databaseUrl, pgbenchScript(packs, secret), { clients: pool, duration, from: Math.floor(packs.count / 2) })
    ratio = percent(full.rps, r.tps)
    pgNote = `pgbench ${r.tps.toFixed(0)} tps (${pool} clients, one decommission per transaction: CHANGE_SQL, latency avg ${r.latencyMs} ms${r.failed ? `, ${r.failed} failed` : ''})`
  }
  line('pack-decommission', full, ratio, `POST /v1/serialization/packs/state supply, a different active pack each of ${packs.count.toLocaleString('en')}; ${fullChanged} STATE_CHANGED, ${fullOther} other; ratio to ${pgNote} (target: ≥ 90% of pgbench)`)
  if (pgbench) {
    // The service groups concurrent decommissions (serialization/queries/change-batch.ts): the same comparison with the grouped statement,
    // 10 packs per transaction (about what 50 connections and 4 statements in flight make), packs counted in the table.
    const group = 10
    const changedPacks = async () => {
      const c = new pg.Client({ connectionString: databaseUrl })
      await c.connect()
      try {
        return Number((await c.query(`select count(*) as n from packs where state <> 'active'`)).rows[0].n)
      } finally {
        await c.end()
      }
    }
    const before = await changedPacks()
    const g = await runPgbench(pgbench, databaseUrl, pgbenchGroupScript(packs, secret, group), { clients: pool, duration, from: Math.floor((packs.count * 3) / 4) })
    const packsPerSecond = (await changedPacks() - before) / duration
    console.log(
      `${'pack-decommission-grp'.padEnd(22)} ${full.rps.toFixed(0).padStart(8)} req/s vs pgbench ${packsPerSecond.toFixed(0)} packs/s = ${percent(full.rps, packsPerSecond)}   ` +
        `(pgbench: the service's grouped statement CHANGE_BATCH_SQL, ${group} packs per transaction, ${g.tps.toFixed(0)} tps, ${pool} clients, latency avg ${g.latencyMs} ms${g.failed ? `, ${g.failed} failed` : ''}; informative)`,
    )
  }

  // 1,000 requests/s sustained, two ways. autocannon's overallRate: each connection sends its quota of the
  // second back to back (bursts at full concurrency), timed from when each request is written.
  changed = other = 0
  const held = await autocannon({ url, connections, duration, requests, pipelining: 1, overallRate: 1000 })
  line(
    'pack-decommission@1k',
    { rps: held.requests.average, p99: held.latency.p99, errors: held.errors + held.timeouts, non2xx: held.non2xx },
    '',
    `autocannon overallRate 1000 (per-second bursts on ${connections} connections): ${changed} STATE_CHANGED, ${other} other (target: p99 ≤ 50 ms)`,
  )
  // Open loop (scripts/bench/paced.ts): one request every millisecond, latency from its due time.
  changed = other = 0
  const p = await paced({
    url, rate: 1000, seconds: duration, request: decommissionRequest(token, packs, next),
    onResponse: (status, body) => (status === 200 && body.includes('"code":"STATE_CHANGED"') ? changed++ : other++),
  })
  line(
    'pack-decommission@1k-open',
    { rps: p.rate, p99: p.p99, errors: p.errors, non2xx: p.non2xx },
    '',
    `open loop, 1,000 req/s evenly, latency from the due time: p50 ${p.p50} ms, max ${p.max} ms; ${changed} STATE_CHANGED, ${other} other (target: p99 ≤ 50 ms)`,
  )
}

const tsx = path.join('node_modules', '.bin', 'tsx')
const children: ChildProcess[] = []
// The measured run of each scenario, in seconds since the service was started: what the profile summary looks at.
const profileWindows: ProfileWindow[] = []
const cleanups: Array<() => Promise<void> | void> = []
try {
  const hello = await start(process.execPath, ['--import', 'tsx', 'scripts/bench/hello.ts'], { PORT: '0' })
  children.push(hello.child)
  cpuOf.baseline = hello.child.pid

  // No per-organisation rate: the bench is one pharmacy at full speed.
  const env: NodeJS.ProcessEnv = { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DEMO_DATA: 'true', AUTO_MIGRATE: 'true', MAX_EVENT_LOOP_DELAY_MS: '0', SERIALIZATION_RATE_PER_MINUTE: '0', DRAIN_DELAY_MS: '0' }
  let database = 'embedded'
  if (process.env.DATABASE_URL) {
    const name = `bench_${Date.now()}`
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL })
    await admin.connect()
    await admin.query(`create database ${name}`)
    await admin.end()
    const url = new URL(process.env.DATABASE_URL)
    url.pathname = `/${name}`
    env.DATABASE_URL = url.toString()
    database = 'PostgreSQL'
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: process.env.DATABASE_URL })
      await c.connect()
      await c.query(`drop database if exists ${name} with (force)`)
      await c.end()
    })
  } else {
    const dir = mkdtempSync(path.join(tmpdir(), 'bench-pglite-'))
    env.PGLITE_DIR = dir
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  }
  // Node itself (not the tsx wrapper) so that the memory read is the server's.
  const profile = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(values['cpu-prof'])}`] : []
  const serviceSpawnedAt = Date.now()
  const service = await start(process.execPath, [...profile, '--import', 'tsx', 'src/server.ts'], env)
  children.push(service.child)
  cpuOf.service = service.child.pid

  /** Runs fn and records its time span as a profile window (what the --cpu-prof summary looks at). */
  const profiled = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const from = (Date.now() - serviceSpawnedAt) / 1000
    const result = await fn()
    profileWindows.push({ name, from, to: (Date.now() - serviceSpawnedAt) / 1000 })
    return result
  }

  const config = loadConfig({ ...process.env, DATABASE_URL: undefined })
  const token = (role: 'pharmacy' | 'lab' | 'ansm' | 'ordre' | 'prescriber', org: string) => signDevToken(config, { role, org })

  console.log(`bench: ${connections} connections, ${duration} s per scenario, service on ${database}, node ${process.version}`)
  // Warm-up, so that JIT and caches do not favour the second run.
  await autocannon({ url: hello.url, connections, duration: 2 })
  const baseline = await run(hello.url, HELLO)
  const line = (name: string, r: { rps: number; p99: number; errors: number; non2xx: number; cpu?: string; statements?: number | null }, ratio: string, note = '') =>
    console.log(
      `${name.padEnd(22)} ${r.rps.toFixed(0).padStart(8)} req/s   p99 ${String(r.p99).padStart(5)} ms   ${ratio.padStart(6)}   errors ${r.errors} non-2xx ${r.non2xx}${r.cpu ? `   CPU µs/req: ${r.cpu}` : ''}` +
        `${typeof r.statements === 'number' ? `   DB statements/req: ${r.statements.toFixed(2)}` : ''}${note ? `   ${note}` : ''}`,
    )
  line('baseline-hello', baseline, '100%')
  const selected = (name: string) => !values.only || values.only.split(',').includes(name)
  let packs: LoadedPacks | null = null
  if (env.DATABASE_URL && ['pack-verify', 'pack-decommission', 'pack-burst', 'alert-storm'].some(selected)) {
    const count = selected('pack-decommission') ? Number(values.packs) : Math.min(200_000, Number(values.packs))
    console.log(`loading ${count.toLocaleString('en')} packs (scripts/bench/load-packs.ts)…`)
    packs = await loadBenchPacks(env.DATABASE_URL, count, (l) => console.log(l))
  }
  if (env.DATABASE_URL && selected('dispensation-check')) await seedBlockedBatches(env.DATABASE_URL)
  const recallId = selected('recall-acknowledgement') ? await broadcastBenchRecall(service.url, token, env.DATABASE_URL) : null
  if (env.DATABASE_URL) {
    // The set-up's dirty pages (migrations, demo data, loaded packs) written now: a checkpoint that the set-up's WAL
    // triggers during a measured run stalls its commits, a cost of the bench's own load.
    const c = new pg.Client({ connectionString: env.DATABASE_URL })
    await c.connect()
    await c.query('checkpoint')
    await c.end()
  }
  for (const s of scenarios) {
    if (!selected(s.name)) continue
    const requests = s.requests({ token, packs, recallId })
    await autocannon({ url: service.url, connections, duration: 2, requests })
    // A scenario with a target also gets the hello world measured just before it (the machine's speed drifts within
    // a run), and its ceiling measured in slices alternated with its own (alternated()).
    const near = s.ceiling ? await run(hello.url, HELLO) : null
    const fixed = s.ceiling ? await ceilingRequests(hello.url, service.url, requests) : null
    const both = fixed ? await profiled(s.name, () => alternated(service.url, requests, hello.url, fixed)) : null
    const r = both ? both.service : await profiled(s.name, () => run(service.url, requests))
    const top = both?.ceiling ?? null
    // Latency at half the saturation rate, open loop (every request due at its time, queueing counted).
    // A first paced run warms the client's sockets and the JIT of both sides; only the second is reported.
    const halfRate = Math.max(1, Math.round(r.rps / 2))
    if (s.maxHalfP99) await paced({ url: service.url, rate: halfRate, seconds: 3, request: oneRequest(requests) })
    const half = s.maxHalfP99 ? await pacedWithCpu(service.url, halfRate, oneRequest(requests)) : null
    // The ceiling at the same rate and with the same client: CPU per request at equal load. At saturation each side
    // runs as fast as it can, and the kernel's share of a request (waking the load generator, which shares the two
    // cores) grows when the server is slower: this second ratio shows how much of the gap that is.
    const toFixed = (request: ReturnType<typeof oneRequest>) => () => ({ ...request(), path: '/fixed' })
    if (half && top) await paced({ url: hello.url, rate: halfRate, seconds: 3, request: toFixed(oneRequest(requests)) })
    const halfTop = half && top ? await pacedWithCpu(hello.url, halfRate, toFixed(oneRequest(requests))) : null
    if (near) line(`${s.name}-hello`, near, percent(near.rps, baseline.rps), 'the baseline again, just before the scenario')
    const ratios = near && top ? `; ${percent(r.rps, near.rps)} of the hello world just before it, ${percent(r.rps, top.rps)} of its ceiling` : ''
    line(s.name, r, percent(r.rps, baseline.rps), `${s.what}${s.target ? ` (target: ${s.target}${ratios})` : ''}`)
    if (top) line(`${s.name}-ceiling`, top, percent(top.rps, baseline.rps), 'bare Fastify: the same requests, parsed, answered with the service\'s answer, no other work')
    if (top && s.maxCpuRatio) {
      const ratio = r.cpuUs.service / top.cpuUs.baseline
      const pgNote = r.cpuUs.postgres >= 1 ? `; PostgreSQL ${r.cpuUs.postgres.toFixed(0)} µs per request` : ''
      const halfNote = half ? `; p99 ${half.p99} ms at ${Math.round(r.rps / 2)} req/s (half saturation, open loop; p50 ${half.p50} ms, ${half.non2xx + half.errors} failed) ${half.p99 <= s.maxHalfP99! ? 'within' : 'OVER'} ≤ ${s.maxHalfP99} ms` : ''
      const spread = both && rounds > 1 ? ` (${rounds} alternated rounds of ${duration / rounds} s each: ${both.each[0]!.toFixed(2)}–${both.each.at(-1)!.toFixed(2)}×)` : ''
      console.log(
        `${`${s.name}-ratio`.padEnd(22)} service CPU ${r.cpuUs.service.toFixed(0)} µs / ceiling ${top.cpuUs.baseline.toFixed(0)} µs per request = ${ratio.toFixed(2)}× ${ratio <= s.maxCpuRatio ? 'within' : 'OVER'} ≤ ${s.maxCpuRatio}×${spread}${pgNote}${halfNote}`,
      )
      if (half && halfTop) {
        const equal = half.cpu.service / halfTop.cpu.baseline
        console.log(
          `${`${s.name}-equal-load`.padEnd(22)} at ${halfRate} req/s both, open loop, same client: service CPU ${half.cpu.service.toFixed(0)} µs (kernel ${half.cpu.serviceKernel.toFixed(0)}) / ceiling ${halfTop.cpu.baseline.toFixed(0)} µs (kernel ${halfTop.cpu.baselineKernel.toFixed(0)}) per request = ${equal.toFixed(2)}×; p99 ${half.p99} ms (p50 ${half.p50}) / ceiling's ${halfTop.p99} ms (p50 ${halfTop.p50})   (informative: the ratio above, at saturation, is the target's)`,
        )
      }
    }
  }
  if (selected('pack-decommission')) {
    if (!env.DATABASE_URL || !packs) console.log('pack-decommission      skipped: needs DATABASE_URL (PostgreSQL, pgbench)')
    else await decommissionScenario(service.url, env.DATABASE_URL, packs, token('pharmacy', BENCH_PHARMACY), Number(env.DATABASE_POOL_MAX ?? 20), config.SCAN_PSEUDONYM_SECRET, line)
  }
  if (selected('pack-burst') || selected('alert-storm')) {
    if (!env.DATABASE_URL || !packs) console.log('pack-burst, alert-storm skipped: need DATABASE_URL (PostgreSQL) and loaded packs')
    else {
      const pharmacy = (org: string) => token('pharmacy', org)
      // Profiled whole (set-up included): their own lines say which part is measured.
      if (selected('pack-burst')) await profiled('pack-burst', () => burstScenario(service.url, env.DATABASE_URL!, packs!, pharmacy))
      if (selected('alert-storm')) await profiled('alert-storm', () => alertStormScenario(service.url, env.DATABASE_URL!, packs!, pharmacy, token('pharmacy', BENCH_PHARMACY), 1000, { cpu: cpuSnapshot }))
    }
  }
  if (!values.only || values.only.split(',').includes('push')) {
    if (env.DATABASE_URL) await pushScenario(service, env.DATABASE_URL, Number(values.streams), Math.max(1, Math.round(Number(values['streams-per-connection']))))
    else console.log('push                   skipped: needs DATABASE_URL (the broadcast is published from this process)')
  }
} finally {
  const exited = children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r))))
  for (const c of children) c.kill('SIGTERM')
  // The profile is written when the service exits (its graceful shutdown may wait for the drain).
  await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, values['cpu-prof'] ? 30_000 : 500))])
  if (values['cpu-prof']) summariseProfiles(path.resolve(values['cpu-prof']), profileWindows)
  for (const c of cleanups) await c()
}

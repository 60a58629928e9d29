// npm run bench [-- --duration 10 --connections 50 --only product-lookup]
// Runs, in one run and with the same connections, a bare Fastify hello world and the service's scenarios,
// and prints one line per scenario: requests/s, p99 latency, ratio to the baseline.
// The service runs on DATABASE_URL when set (a fresh database is created beside it), else on a fresh embedded one.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import pg from 'pg'
import { loadConfig } from '../src/platform/config.ts'
import { signDevToken } from '../src/platform/tokens.ts'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string' },
    streams: { type: 'string', default: '10000' },
  },
})
const duration = Number(values.duration)
const connections = Number(values.connections)

interface Scenario {
  name: string
  /** What the scenario measures, for the printed table. */
  what: string
  requests: (ctx: { token: (role: 'pharmacy' | 'lab' | 'ansm' | 'ordre' | 'prescriber', org: string) => string }) => autocannon.Request[]
  target?: string
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
    // The demo data has no packs: this measures the "unknown product" answer, which runs the same single
    // prepared query as a hit. Upload packs first (see the README) to measure hits.
    name: 'pack-verify',
    what: 'POST /v1/serialization/packs/verify (DataMatrix), authenticated pharmacy',
    target: '≥ 40% of baseline',
    requests: ({ token }) => [
      {
        method: 'POST', path: '/v1/serialization/packs/verify',
        headers: { authorization: `Bearer ${token('pharmacy', '750100010')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ dataMatrix: ']d2010340094949729421BENCH0000001\u001d10BENCHLOT\u001d17301231' }),
      },
    ],
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
      const m = /listening (http:\/\/[^\s"]+)|Docs \(contract\):\s+(http:\/\/\S+)\/docs/.exec(out)
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

async function run(url: string, requests: autocannon.Request[]) {
  const result = await autocannon({ url, connections, duration, requests, pipelining: 1 })
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
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
async function pushScenario(service: { child: ChildProcess; url: string }, databaseUrl: string, streams: number) {
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
    const client = spawn(tsx, ['scripts/bench/push-client.ts', service.url, String(last_pos), String(first), String(streams)], { stdio: ['pipe', 'pipe', 'inherit'] })
    children.push(client)
    let out = ''
    const waitFor = (prefix: string, ms: number) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`push client: no "${prefix}" within ${ms} ms`)), ms)
        const check = () => {
          const line = out.split('\n').slice(0, -1).find((l) => l.startsWith(prefix)) // complete lines only
          if (line) {
            clearTimeout(timer)
            client.stdout!.off('data', onData)
            resolve(line.slice(prefix.length + 1))
          }
        }
        const onData = (d: Buffer) => {
          out += d.toString()
          check()
        }
        client.stdout!.on('data', onData)
        check()
      })
    const opened = Number(await waitFor('ready', 300_000))
    await new Promise((r) => setTimeout(r, 1000))
    const rssAfter = rssMiB(service.child.pid!)
    await database.db.transaction().execute((tx) => publish(tx, { type: 'bench.broadcast', payload: { message: 'Rappel de lot (bench)' }, audience: { roles: ['pharmacy'] } }))
    const committed = Date.now()
    const times = (JSON.parse(await waitFor('done', 120_000)) as number[]).map((t) => t - committed).sort((a, b) => a - b)
    const rssPeak = rssMiB(service.child.pid!)
    console.log(
      `${'push'.padEnd(22)} ${String(times.length).padStart(5)}/${opened} streams reached   p50 ${pct(times, 50)} ms   p99 ${pct(times, 99)} ms   max ${times.at(-1)} ms   ` +
        `server RSS ${rssBefore.toFixed(0)} MiB idle, ${rssAfter.toFixed(0)} MiB with the streams (${(((rssAfter - rssBefore) * 1024) / Math.max(1, opened)).toFixed(1)} KiB each), ${rssPeak.toFixed(0)} MiB after the broadcast   (target: p99 ≤ 2000 ms)`,
    )
    client.kill('SIGTERM')
  } finally {
    await database.close()
  }
}

const tsx = path.join('node_modules', '.bin', 'tsx')
const children: ChildProcess[] = []
const cleanups: Array<() => Promise<void> | void> = []
try {
  const hello = await start(process.execPath, ['--import', 'tsx', 'scripts/bench/hello.ts'], { PORT: '0' })
  children.push(hello.child)

  const env: NodeJS.ProcessEnv = { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DEMO_DATA: 'true', AUTO_MIGRATE: 'true', MAX_EVENT_LOOP_DELAY_MS: '0' }
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
  const service = await start(process.execPath, ['--import', 'tsx', 'src/server.ts'], env)
  children.push(service.child)

  const config = loadConfig({ ...process.env, DATABASE_URL: undefined })
  const token = (role: 'pharmacy' | 'lab' | 'ansm' | 'ordre' | 'prescriber', org: string) => signDevToken(config, { role, org })

  console.log(`bench: ${connections} connections, ${duration} s per scenario, service on ${database}, node ${process.version}`)
  // Warm-up, so that JIT and caches do not favour the second run.
  await autocannon({ url: hello.url, connections, duration: 2 })
  const baseline = await run(hello.url, [{ method: 'GET', path: '/' }])
  const line = (name: string, r: { rps: number; p99: number; errors: number; non2xx: number }, ratio: string, note = '') =>
    console.log(`${name.padEnd(22)} ${r.rps.toFixed(0).padStart(8)} req/s   p99 ${String(r.p99).padStart(5)} ms   ${ratio.padStart(6)}   errors ${r.errors} non-2xx ${r.non2xx}${note ? `   ${note}` : ''}`)
  line('baseline-hello', baseline, '100%')
  for (const s of scenarios) {
    if (values.only && !values.only.split(',').includes(s.name)) continue
    const requests = s.requests({ token })
    await autocannon({ url: service.url, connections, duration: 2, requests })
    const r = await run(service.url, requests)
    line(s.name, r, `${((r.rps / baseline.rps) * 100).toFixed(0)}%`, `${s.what}${s.target ? ` (target: ${s.target})` : ''}`)
  }
  if (!values.only || values.only.split(',').includes('push')) {
    if (env.DATABASE_URL) await pushScenario(service, env.DATABASE_URL, Number(values.streams))
    else console.log('push                   skipped: needs DATABASE_URL (the broadcast is published from this process)')
  }
} finally {
  for (const c of children) c.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 500))
  for (const c of cleanups) await c()
}

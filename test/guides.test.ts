// Every curl in the guides (openapi/guides/*.md) and the README runs against the service as written: each names an
// operation of the contract (method and path), with a token of a role it allows and, when the body is given in
// full, a body its schema accepts; each one that is complete (no "…" to fill in) is run against a started service,
// in the order of its guide, and must not answer 5xx, 401, 403 or an unknown route. Identifiers a guide tells the
// reader to copy from an answer (`ID=…`) are taken from the answers, as a reader would.
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'
import t from 'tap'
import { loadDemoData } from '../src/demo/seed.ts'
import { isCip13 } from '../src/platform/identifiers.ts'
import { signDevToken } from '../src/platform/tokens.ts'
import type { Role } from '../src/platform/db/schema.ts'
import { registerFaxJobs } from '../src/platform/fax/job.ts'
import { JobRunner } from '../src/platform/jobs.ts'
import { testApp, type TestContext } from './helpers.ts'

// 87 commands, each a shell and a curl, in order (each guide's ids come from its earlier answers): on a loaded CI
// machine running four test files at a time this takes minutes, not the default file timeout.
t.setTimeout(600_000)

const run = promisify(execFile)
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv
const GUIDES = new URL('../openapi/guides/', import.meta.url)

interface Curl {
  file: string
  line: number
  text: string
  /** Variables assigned before it in its file (API, H, tokens). */
  env: Record<string, string>
}

/** The shell blocks of a markdown file: curl commands (continuation lines joined) and the assignments before them. */
export function curlsOf(file: string, markdown: string): Curl[] {
  const out: Curl[] = []
  const env: Record<string, string> = {}
  const lines = markdown.split('\n')
  let inShell = false
  for (let i = 0; i < lines.length; i++) {
    const fence = lines[i]!.match(/^```(\w*)/)
    if (fence) {
      inShell = !inShell && ['sh', 'bash', 'shell', ''].includes(fence[1]!) && !lines[i]!.startsWith('```json')
      if (fence[1] && !['sh', 'bash', 'shell'].includes(fence[1])) inShell = false
      continue
    }
    if (!inShell) continue
    let text = lines[i]!
    const start = i + 1
    while (/\\\s*$/.test(text) && i + 1 < lines.length) text = text.replace(/\\\s*$/, ' ') + lines[++i]!.trim()
    // A -d '…' spanning several lines (a JSON body written out).
    const quotes = (x: string) => !x.trimStart().startsWith('#') && (x.replace(/\s#\s[^']*$/, '').match(/'/g)?.length ?? 0) % 2 === 1
    while (quotes(text) && i + 1 < lines.length && !lines[i + 1]!.startsWith('```')) text += '\n' + lines[++i]!
    const assign = text.match(/^([A-Z_]+)=(.*)$/)
    if (assign) env[assign[1]!] = assign[2]!.replace(/\s+#.*$/, '').trim()
    if (/(^|[\s;(|&])curl\s/.test(text) && !text.trim().startsWith('#')) out.push({ file, line: start, text: text.trim(), env: { ...env } })
  }
  return out
}

function allCurls(): Curl[] {
  const files = readdirSync(GUIDES).filter((f) => f.endsWith('.md')).sort()
  const out = files.flatMap((f) => curlsOf(`openapi/guides/${f}`, readFileSync(new URL(f, GUIDES), 'utf8')))
  out.push(...curlsOf('README.md', readFileSync(new URL('../README.md', import.meta.url), 'utf8')))
  return out
}

/** The token variable's role, from `X=$(npm run --silent token -- --role R --org O)`. */
function tokenOf(assignment: string | undefined): { role: Role; org: string } | null {
  const m = assignment?.match(/token -- --role (\w+) --org (\w+)/)
  return m ? { role: m[1] as Role, org: m[2]! } : null
}

function parts(c: Curl) {
  const text = c.text.replace(/\$\{?API\}?/g, 'http://localhost:3000')
  const url = text.match(/(?:https?:\/\/)?(?:localhost|127\.0\.0\.1):\d+(\/[^\s'"|)]*)/)
  const method = text.match(/-X\s+([A-Z]+)/)?.[1] ?? (/\s(-d|--data(-binary|-raw)?|--json|-F|-T)\s/.test(text) ? 'POST' : 'GET')
  const auth = text.match(/Bearer \$\{?(\w+)\}?/)?.[1]
  const body = text.match(/\s(?:-d|--data(?:-raw)?)\s+'([\s\S]*?)'/)?.[1]
  return { method, path: url?.[1]?.split('?')[0] ?? null, auth, body }
}

function matchOperation(doc: any, method: string, p: string) {
  const segs = p.replace(/\/$/, '').split('/')
  for (const [template, item] of Object.entries<Record<string, any>>(doc.paths)) {
    const ts = template.split('/')
    if (ts.length !== segs.length) continue
    if (ts.every((s, i) => s === segs[i] || (s.startsWith('{') && segs[i] !== ''))) {
      const op = item[method.toLowerCase()]
      if (op) return { template, op }
    }
  }
  return null
}

t.test('every curl of the guides names an operation of the contract, with a role it allows and a valid body', async (t) => {
  const { app } = await testApp(t, { seed: false })
  const doc = (await app.inject('/openapi.json')).json()
  const ajv = new Ajv({ strict: false, allErrors: true })
  addFormats(ajv)
  ajv.addFormat('cip13', { type: 'string', validate: (v: string) => isCip13(v) })
  ajv.addSchema({ $id: 'openapi', components: JSON.parse(JSON.stringify(doc.components).replaceAll('"#/components/', '"openapi#/components/')) })
  const curls = allCurls()
  t.ok(curls.length >= 50, `${curls.length} curl commands in the guides`)
  for (const c of curls) {
    const where = `${c.file}:${c.line}`
    const { method, path: p, auth, body } = parts(c)
    if (!p) {
      t.fail(`${where}: no address in ${c.text.slice(0, 80)}`)
      continue
    }
    if (!p.startsWith('/v1')) continue
    const found = matchOperation(doc, method, p)
    if (!t.ok(found, `${where}: ${method} ${p} is an operation`)) continue
    const roles = found!.op['x-roles']
    if (Array.isArray(roles)) {
      const token = tokenOf(auth ? c.env[auth] : undefined)
      if (auth && token) t.ok(roles.includes(token.role), `${where}: ${found!.op.operationId} allows ${token.role}`)
      else t.ok(auth, `${where}: ${found!.op.operationId} is sent with a token`)
    }
    if (body && !body.includes('…') && found!.op.requestBody) {
      let json: unknown
      try {
        json = JSON.parse(body)
      } catch {
        t.fail(`${where}: the body is not JSON`)
        continue
      }
      const media = found!.op.requestBody.content['application/json']
      if (media) {
        const validate = ajv.compile(JSON.parse(JSON.stringify(media.schema).replaceAll('"#/components/', '"openapi#/components/')))
        t.ok(validate(json), `${where}: the body of ${found!.op.operationId} is valid ${ajv.errorsText(validate.errors)}`)
      }
    }
  }
})

/**
 * A letter to post, as the service leaves one when a recall's fax to a wholesaler keeps failing: the recall is
 * broadcast by the guides' lab to wholesalers, every fax fails (one retry), and the letter is pending. Guide 06's
 * paper-letter curls then run as a lab would after that failure.
 */
async function leaveAPaperLetter(ctx: TestContext) {
  const { app, auth, clock } = ctx
  const jobs = new JobRunner({ db: app.db, log: app.log, now: () => clock.now })
  registerFaxJobs({ db: app.db, config: app.config, jobs }, { send: async () => Promise.reject(new Error('ligne occupée')) })
  const lab = auth('lab', '412345670')
  const created = await app.inject({
    method: 'POST', url: '/v1/recalls', headers: lab,
    payload: {
      title: 'Rappel du lot L2411A', reason: 'Défaut d’étanchéité', message: 'Mettez en quarantaine les boîtes du lot concerné.', action: 'quarantine_return',
      recipients: { categories: ['wholesaler'], regions: ['11'] }, contacts: [{ name: 'Pharmacien responsable', phone: '+33 1 00 00 00 01' }],
      batches: [{ cip13: '3400936128149', batch: 'L2411A', expiry: '2027-06-30' }], blockDispensation: false, reminderDelaysHours: [],
    },
  })
  const id = created.json().id
  await app.inject({ method: 'POST', url: `/v1/recalls/${id}/submit`, headers: lab })
  const approved = await app.inject({ method: 'POST', url: `/v1/recalls/${id}/approve`, headers: auth('ansm', 'ANSM') })
  if (approved.statusCode !== 200) throw new Error(approved.body)
  for (let i = 0; i < 4; i++) {
    await jobs.runDue()
    clock.advance(5 * 60_000)
  }
  const letters = await app.db.selectFrom('paper_letters').select('id').where('status', '=', 'pending').execute()
  if (letters.length === 0) throw new Error('no paper letter was left by the failing fax')
}

t.test('the curls of the guides run against the service', async (t) => {
  const ctx = await testApp(t, { seed: false, env: { FAX_RETRY_MINUTES: '1' } })
  const { app, database, config } = ctx
  await loadDemoData(database.db)
  await leaveAPaperLetter(ctx)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const dir = mkdtempSync(path.join(tmpdir(), 'guides-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  let ran = 0
  const byFile = new Map<string, Curl[]>()
  for (const c of allCurls()) byFile.set(c.file, [...(byFile.get(c.file) ?? []), c])
  for (const [file, curls] of byFile) {
    const captured: Record<string, string> = {}
    let latestId: string | undefined
    for (const c of curls) {
      const env: Record<string, string> = { PATH: process.env.PATH ?? '', API: base, H: 'content-type: application/json' }
      for (const [k, v] of Object.entries(c.env)) {
        const token = tokenOf(v)
        if (token) env[k] = signDevToken(config, { role: token.role, org: token.org, sub: 'guide-reader' })
        else if (/^\$\w+$/.test(v)) env[k] = env[v.slice(1)] ?? ''
        else if (!v.includes('…') && !v.startsWith('$(')) env[k] = v.replace(/^['"]|['"]$/g, '').replace(/http:\/\/(localhost|127\.0\.0\.1):3000/g, base)
      }
      if (env.TOKEN === undefined) env.TOKEN = signDevToken(config, { role: 'pharmacy', org: '750100010', sub: 'guide-reader' })
      Object.assign(env, captured)
      // `ID=…   # the id answered`: the reader copies the id of what was just created.
      for (const [k, v] of Object.entries(c.env)) if (v.includes('…') && latestId && !(k in captured)) env[k] = latestId
      env.API = base
      const text = c.text.replace(/http:\/\/(localhost|127\.0\.0\.1):3000/g, base).replace(/(^|[\s"'])localhost:3000/g, `$1${base}`)
      const vars = [...text.matchAll(/\$\{?([A-Z_]+)\}?/g)].map((m) => m[1]!)
      if (text.includes('…') || vars.some((v) => env[v] === undefined)) {
        if (process.env.GUIDES_DEBUG) t.comment(`not run: ${c.file}:${c.line} ${text.slice(0, 120)}`)
        continue
      }
      // `X=$(curl …)`: run as written, and X keeps what it answered for the commands after it.
      const assigned = text.match(/^([A-Z_]+)=\$\(/)?.[1]
      const script = `curl() { command curl -sS -D "$HDR" "$@"; }\n${text}${assigned ? `\nprintf '%s' "$${assigned}"` : ''}`
      // --norc: Node gives the child sockets for stdio, and bash then takes itself for a remote shell and reads the
      // user's ~/.bashrc (whatever it starts: half a second per command on some machines), which a reader's
      // terminal would not do for each command.
      const res = await run('bash', ['--norc', '-c', script], { cwd: dir, env: { ...env, HDR: path.join(dir, 'headers') }, maxBuffer: 50 * 1024 * 1024 }).catch((e) => ({ stdout: String(e.stdout ?? ''), stderr: String(e.stderr ?? e.message) }))
      const headers = readFileSync(path.join(dir, 'headers'), 'utf8')
      const status = Number(headers.match(/^HTTP\/[\d.]+ (\d{3})/gm)?.pop()?.split(' ')[1] ?? 0)
      ran++
      const where = `${c.file}:${c.line} ${text.slice(0, 100)}`
      t.ok(status > 0 && status < 500 && status !== 401 && status !== 403, `${where} → ${status}`)
      t.notMatch(res.stdout, /"code":\s*"ROUTE_NOT_FOUND"/, `${where}: a known route`)
      // What a reader copies from an answer (ID=… after a creation): the id answered.
      if (assigned) captured[assigned] = res.stdout.trim()
      // Or the first one listed (`LETTER_ID=…   # an id listed`).
      const id = res.stdout.match(/^\s*\{\s*(?:"items"\s*:\s*\[\s*\{\s*)?"id"\s*:\s*"([^"]+)"/)?.[1]
      if (id) latestId = id
    }
  }
  t.ok(ran >= 30, `${ran} curls run`)
})

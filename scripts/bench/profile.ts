// Where the service's CPU went, from the .cpuprofile files `node --cpu-prof` wrote (npm run bench -- --cpu-prof dir):
// self time by package (or by our own source folder) and the heaviest functions. The same profiles open in Chrome's
// DevTools or speedscope for a flame graph; this is the summary to compare two runs by.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  startTime: number
  nodes: Node[]
  samples: number[]
  timeDeltas: number[]
}

/** `fastify`, `pino`, `src/platform`, `node:internal`, `(gc)`…: who a function belongs to. */
function owner(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)'
  const modules = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)
  if (modules) return modules[1]!
  const ours = /\/(src|scripts)\/([^/]+)\//.exec(url)
  if (ours) return `${ours[1]}/${ours[2]}`
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0]
  return path.basename(url)
}

/** A scenario's measured run, in seconds since the service was started (the profile also holds its start-up). */
export interface ProfileWindow {
  name: string
  from: number
  to: number
}

export function summariseProfiles(dir: string, windows: ProfileWindow[] = [], top = 25) {
  // The main thread's profile (the others are the module loader's worker threads).
  const files = readdirSync(dir).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f) || (f.endsWith('.cpuprofile') && !/\.\d+\.\d+\.cpuprofile$/.test(f)))
  for (const f of files) {
    const p = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Profile
    for (const w of windows.length ? windows : [{ name: 'whole run', from: 0, to: Infinity }]) summarise(f, p, w, top)
  }
}

function summarise(f: string, p: Profile, w: ProfileWindow, top: number) {
  {
    const byId = new Map(p.nodes.map((n) => [n.id, n]))
    const self = new Map<number, number>()
    // Sample times are offsets from the profile's start, which is within milliseconds of the process's.
    let at = 0
    p.samples.forEach((id, i) => {
      const dt = p.timeDeltas[i] ?? 0
      at += dt
      if (at / 1e6 >= w.from && at / 1e6 <= w.to) self.set(id, (self.get(id) ?? 0) + dt)
    })
    const total = [...self.values()].reduce((a, b) => a + b, 0)
    const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0)
    const busy = total - idle
    const owners = new Map<string, number>()
    const functions = new Map<string, number>()
    for (const [id, t] of self) {
      const { functionName, url, lineNumber } = byId.get(id)!.callFrame
      if (functionName === '(idle)') continue
      const o = owner(url, functionName)
      owners.set(o, (owners.get(o) ?? 0) + t)
      const key = `${functionName || '(anonymous)'} ${o}${url ? `:${lineNumber + 1}` : ''}`
      functions.set(key, (functions.get(key) ?? 0) + t)
    }
    const share = (t: number) => `${((t / busy) * 100).toFixed(1).padStart(5)}%`
    console.log(`\nprofile ${f}, ${w.name}: ${(busy / 1e6).toFixed(1)} s busy of ${(total / 1e6).toFixed(1)} s`)
    console.log('  self time by owner:')
    for (const [o, t] of [...owners].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${share(t)}  ${o}`)
    console.log('  heaviest functions (self time):')
    for (const [fn, t] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${share(t)}  ${fn}`)
  }
}

// Run alone: npx tsx scripts/bench/profile.ts dir
if (import.meta.url === `file://${process.argv[1]}`) summariseProfiles(process.argv[2] ?? '.')

// The runtime promise of package.json: the service installs without engine warnings on every Node line it names.
// npm only warns (EBADENGINE) when a dependency's `engines.node` excludes the running Node, so the check is made on
// the lockfile itself, for the lowest release of each supported line and the current one of each.
import { readFileSync } from 'node:fs'
import semver from 'semver'
import t from 'tap'

const root = new URL('../', import.meta.url)
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8'))
const nvmrc = readFileSync(new URL('.nvmrc', root), 'utf8').trim()

// The lowest release the project accepts on each line, and a recent one of each (Node 20, 22, 24).
const NODES = ['20.19.0', '20.20.2', '22.13.0', '22.21.0', '24.0.0', '24.11.0']

t.test('the project names the Node lines it supports, and the contributors’ version is one of them', async (t) => {
  const range = pkg.engines?.node as string
  t.ok(range, 'package.json has engines.node')
  for (const v of NODES) t.ok(semver.satisfies(v, range), `${v} satisfies ${range}`)
  t.ok(semver.satisfies(semver.coerce(nvmrc)!, range), `.nvmrc (${nvmrc}) is within ${range}`)
  t.ok(semver.satisfies(process.version, range), `the running Node (${process.version}) is within ${range}`)
})

t.test('no installed package requires a Node the project says it supports not to have', async (t) => {
  const refused: string[] = []
  for (const [where, entry] of Object.entries<any>(lock.packages ?? {})) {
    const wanted = entry?.engines?.node
    if (!where || !wanted || typeof wanted !== 'string') continue
    for (const v of NODES) {
      if (!semver.satisfies(v, wanted)) refused.push(`${where.replace(/^node_modules\//, '')}@${entry.version} wants node ${wanted}, not ${v}`)
    }
  }
  t.same(refused, [], 'every engines.node in the lockfile accepts every supported release')
})

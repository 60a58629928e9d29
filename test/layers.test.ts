// The layers' rules that imports cannot show (dependency-cruiser checks the imports: `npm run lint:layers`): a route
// file starts no transaction and builds no query, and stays short enough to read: its handlers call use cases.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const SRC = fileURLToPath(new URL('../src/', import.meta.url))
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
const isRouteFile = (p: string) => /(^|\/)(routes|[^/]+-routes)\.ts$/.test(p) || /\/routes\//.test(p)
const routeFiles = files(SRC).filter(isRouteFile).map((p) => path.relative(SRC, p))

// A transaction, a query builder, raw SQL, or a query run on the app's database handle.
const SQL = /\.transaction\(\)|\b(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)\(|\bsql`|\b(app|deps)\.db\.(selectFrom|insertInto|updateTable|deleteFrom|transaction|executeQuery)/
const MAX_LINES = 300

t.test('route files hold no SQL and no transaction', async (t) => {
  t.ok(routeFiles.length >= 20, `route files found (${routeFiles.length})`)
  const offending = routeFiles.flatMap((f) =>
    readFileSync(path.join(SRC, f), 'utf8')
      .split('\n')
      .flatMap((line, i) => (SQL.test(line) ? [`${f}:${i + 1}: ${line.trim().slice(0, 100)}`] : [])),
  )
  t.same(offending, [], 'no transaction or query in a route file')
})

t.test(`route files stay under ${MAX_LINES} lines`, async (t) => {
  const long = routeFiles.map((f) => ({ f, lines: readFileSync(path.join(SRC, f), 'utf8').split('\n').length })).filter((x) => x.lines > MAX_LINES)
  t.same(long, [], 'split by resource or actor when a file grows')
})

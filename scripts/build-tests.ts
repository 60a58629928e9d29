// npm test's first step: bundles each test file (test/*.test.ts) with what it imports, src/ and most packages, into
// build/tests/, where `npm test` then runs them (test/bundled.taprc).
//
// Why: tap runs every test file in a process of its own, and each one loaded some 1,400 modules (the app, typebox,
// kysely, fastify…) through tsx's loader hooks, which on Node 20 run on a thread of their own and see every module
// and its source: 2.4–2.7 s before a test's first line, against about 0.5 s for the same code bundled, in each of
// the suite's processes. esbuild is the transpiler tsx itself uses, so the code that runs is the same; a file run
// alone (`npx tap test/x.test.ts`) still goes through tsx, from the sources.
import { readdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as esbuild from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const OUT = path.join(ROOT, 'build/tests')

// Left to Node's own loader, each for a reason the bundle would break:
const EXTERNAL = new Set([
  'tap', // the runner's plugins and its one instance per process
  'pg', // tracing patches it as it loads (OpenTelemetry's pg instrumentation)
  '@opentelemetry/api', // one global registry, shared with the instrumentations
  '@opentelemetry/sdk-node',
  '@opentelemetry/instrumentation-pg',
  '@fastify/otel',
  '@electric-sql/pglite', // its WebAssembly and data files, beside its modules
  'pino', // worker threads started from its files' paths
  'pino-pretty',
  'thread-stream',
  'pdfkit', // reads its font metrics next to its modules
  'dejavu-fonts-ttf',
  '@scalar/fastify-api-reference', // serves its own files
  'tsx', // for the few files a test imports at run time
  'typescript',
  'playwright-core',
  'autocannon',
  'pdf-parse', // starts pdf.js's worker from its own folder
  'pdfjs-dist',
  'ajv', // imported at run time as CommonJS, which a split bundle would give as a default export only
  'ajv-formats',
])

function packageName(specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!
}

/** Node's own modules and the packages above are imported at run time, from where Node finds them. */
const externals: esbuild.Plugin = {
  name: 'externals',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) =>
      args.kind !== 'entry-point' && (args.path.startsWith('node:') || EXTERNAL.has(packageName(args.path))) ? { path: args.path, external: true } : undefined,
    )
  },
}

/**
 * Keeps each module's own address: `import.meta.url` (and CommonJS's `__dirname`/`__filename`) would otherwise be the
 * bundle's, and the code that reads the migrations, the guides, fixtures or its package's files by a path relative
 * to itself would look in build/.
 */
const ownAddress: esbuild.Plugin = {
  name: 'own-address',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8')
      const url = source.includes('import.meta.url')
      const dirname = /\b__(dirname|filename)\b/.test(source) && !/\b(const|let|var)\s+__(dirname|filename)\b/.test(source)
      if (!url && !dirname) return undefined
      let contents = url ? source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)) : source
      if (dirname) contents = `var __dirname = ${JSON.stringify(path.dirname(args.path))}, __filename = ${JSON.stringify(args.path)};\n${contents}`
      const ext = path.extname(args.path)
      return { contents, loader: ext === '.ts' || ext === '.mts' || ext === '.cts' ? 'ts' : 'js' }
    })
  },
}

const started = performance.now()
const entries = (await readdir(path.join(ROOT, 'test'))).filter((f) => f.endsWith('.test.ts')).map((f) => path.join(ROOT, 'test', f))
await rm(OUT, { recursive: true, force: true })
await esbuild.build({
  entryPoints: entries,
  outdir: OUT,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true, // what test files share is one chunk, not a copy in each
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked', // a failing assertion's stack points into test/ and src/
  plugins: [externals, ownAddress],
  // CommonJS packages in an ES module bundle still call require() for Node's modules.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  logLevel: 'warning',
})
console.log(`${entries.length} test files bundled into ${path.relative(ROOT, OUT)}/ in ${Math.round(performance.now() - started)} ms`)

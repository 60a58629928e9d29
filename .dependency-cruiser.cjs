// The layers of src/ (see "Where things are" in the README), checked by `npm run lint:layers` in `npm test` and CI.
const SERVICES = 'alerts|diffusion|dispensation|emergency|eprescription|recalls|referential|serialization|shortages|stock|demo'

// Route files: routes.ts, *-routes.ts, or any file of a routes/ folder. Query modules: queries.ts, *-queries.ts, or a
// queries/ folder. Use cases: use-cases.ts or a use-cases/ folder.
const ROUTE_FILES = ['^src/.*/routes[.]ts$', '^src/.*-routes[.]ts$', '^src/.*/routes/']
const QUERY_MODULES = ['^src/.*/queries[.]ts$', '^src/.*-queries[.]ts$', '^src/.*/queries/']

// Reached by other services although it is neither a use case nor a rule (see services-meet-through-use-cases).
const OTHER_PUBLIC_MODULES = [
  '^src/diffusion/routes[.]ts$', // the pipeline's routes, registered by recalls and alerts for their kind
]

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only imports included: a cycle means two modules are one, or a type lives in the wrong place.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'platform-imports-no-service',
      comment: 'The platform (auth, errors, events, audit, database…) is what services stand on; it knows none of them.',
      severity: 'error',
      from: { path: '^src/platform/' },
      to: { path: `^src/(${SERVICES})/` },
    },
    {
      name: 'no-route-file-of-another-service',
      comment: "A service never imports another service's routes: services meet in their rules and use cases. The diffusion pipeline's routes are shared by recalls and alerts, which register them for their kind.",
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/[^/]*routes[.]ts$', pathNot: ['^src/$1/', '^src/diffusion/routes[.]ts$'] },
    },
    {
      name: 'routes-import-no-queries',
      comment: 'A route file parses, authorises, calls a use case and shapes the answer: SQL lives in query modules, which only use cases (and other queries) import.',
      severity: 'error',
      from: { path: ROUTE_FILES },
      to: { path: QUERY_MODULES },
    },
    {
      name: 'routes-build-no-sql',
      comment: 'Nor do route files build queries themselves (test/layers.test.ts also looks for transactions and query builders in them).',
      severity: 'error',
      from: { path: ROUTE_FILES },
      to: { path: '^node_modules/kysely/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-query-module-of-another-service',
      comment: "A service's SQL is its own: another service reaches that data through its use cases or rules.",
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { path: QUERY_MODULES, pathNot: '^src/$1/' },
    },
    {
      name: 'services-meet-through-use-cases',
      comment:
        "A service reaches another through its use cases, its rules, its schemas and its tables' types. The one exception (OTHER_PUBLIC_MODULES) is the diffusion pipeline's routes, which recalls and alerts register for their kind.",
      severity: 'error',
      from: { path: '^src/([^/]+)/', pathNot: ['^src/platform/', '^src/demo/'] },
      to: {
        path: `^src/(${SERVICES})/`,
        pathNot: ['^src/$1/', '^src/[^/]+/use-cases(/|[.]ts$)', '^src/[^/]+/rules?(/|[.]ts$)', '^src/[^/]+/schemas([.]ts$|/)', '^src/[^/]+/db[.]ts$', ...OTHER_PUBLIC_MODULES],
      },
    },
    {
      name: 'nothing-imports-the-app',
      comment: 'app.ts assembles the services; server.ts runs it. Neither is imported by what they assemble.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/server\\.ts$' },
      to: { path: '^src/(app|server)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
}

// The layers of src/ (see "Where things are" in the README), checked by `npm run lint:layers` in `npm test` and CI.
const SERVICES = 'alerts|diffusion|dispensation|emergency|eprescription|recalls|referential|serialization|shortages|stock|demo'

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

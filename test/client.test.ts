// The contract as a vendor uses it: openapi-typescript turns openapi/openapi.json into types, a small program using
// openapi-fetch (client/flow.ts) must type-check against them and run the counter flow against the service.
import { execFile } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import t from 'tap'
import { tsImport } from 'tsx/esm/api'
import { loadDemoData } from '../src/demo/seed.ts'
import type { Role } from '../src/platform/db/schema.ts'
import { signDevToken } from '../src/platform/tokens.ts'
import { generateClientTypes } from './client/generate.ts'
import { testApp } from './helpers.ts'

const run = promisify(execFile)

t.test('a client generated from the contract runs the counter flow', async (t) => {
  await generateClientTypes()
  const tsc = run(process.execPath, [new URL('../node_modules/typescript/bin/tsc', import.meta.url).pathname, '-p', new URL('./client/tsconfig.json', import.meta.url).pathname]).then(
    () => '',
    (err: { stdout?: string; message: string }) => err.stdout || err.message,
  )
  const { app, database, config } = await testApp(t, { seed: false })
  await loadDemoData(database.db)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  // Imported by address: the project's own type-check does not follow it (the types it needs are generated above);
  // the program is type-checked against them by the tsc run above. Through tsx's API, since `npm test` runs this
  // file bundled, with no TypeScript loader.
  const { counterFlow } = (await tsImport('./client/flow.ts', import.meta.url)) as { counterFlow: (base: string, token: (role: Role, org: string) => string, step: (s: string) => void) => Promise<void> }
  const steps: string[] = []
  await counterFlow(`http://127.0.0.1:${port}`, (role, org) => signDevToken(config, { role, org, sub: `${role}-user` }), (s) => steps.push(s))
  t.equal(steps.length, 11, steps.join(' → '))
  t.equal(await tsc, '', 'the program type-checks against the generated types (tsc --noEmit)')
})

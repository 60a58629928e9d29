// Turns the committed contract into TypeScript types with openapi-typescript, as a vendor would
// (`npx openapi-typescript openapi.json -o portail-dp.ts --default-non-nullable false`).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import openapiTS, { astToString } from 'openapi-typescript'

export const GENERATED = new URL('./generated/portail-dp.ts', import.meta.url)

export async function generateClientTypes(): Promise<string> {
  const doc = JSON.parse(readFileSync(new URL('../../openapi/openapi.json', import.meta.url), 'utf8'))
  const ast = await openapiTS(doc, { defaultNonNullable: false })
  const source = astToString(ast)
  mkdirSync(new URL('./generated/', import.meta.url), { recursive: true })
  writeFileSync(GENERATED, source)
  return source
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const source = await generateClientTypes()
  console.log(`wrote ${GENERATED.pathname} (${source.length} characters)`)
}

import { readFileSync } from 'node:fs'
import { Validator } from '@seriousme/openapi-schema-validator'
import t from 'tap'
import { testApp } from './helpers.ts'

t.test('the OpenAPI document', async (t) => {
  const { app } = await testApp(t, { seed: false })
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()

  t.test('is a valid OpenAPI 3.1 document (third-party validator)', async (t) => {
    const validator = new Validator()
    const result = await validator.validate(structuredClone(doc))
    t.same(result.errors ?? [], [], 'no schema errors')
    t.equal(result.valid, true)
  })

  t.test('every operation is documented for a client generator', async (t) => {
    const schemas = doc.components.schemas as Record<string, unknown>
    const operationIds = new Set<string>()
    for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        if (method === 'head') continue
        const where = `${method.toUpperCase()} ${path}`
        t.ok(op.summary, `${where} has a summary`)
        t.ok(op.tags?.length, `${where} has tags`)
        if (!path.startsWith('/v1')) continue
        t.ok(op.operationId, `${where} has an operationId`)
        t.notOk(operationIds.has(op.operationId), `${where} operationId is unique`)
        operationIds.add(op.operationId)
        const roles = op['x-roles']
        if (Array.isArray(roles)) {
          t.same(op.security, [{ bearerAuth: [] }], `${where} declares bearer security`)
          t.ok(op.responses['401'] && op.responses['403'], `${where} documents 401 and 403`)
          t.match(op.description, /Rôles autorisés/, `${where} shows the roles`)
        }
        t.ok(op.responses['500'], `${where} documents 500`)
        for (const [status, r] of Object.entries<any>(op.responses)) {
          if (Number(status) >= 400) t.ok(r.content?.['application/problem+json'], `${where} ${status} is problem+json`)
        }
      }
    }
    t.ok(operationIds.size >= 8)
    t.ok(schemas.Problem && schemas.Organisation, 'named components')
    t.match(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer' })
  })

  t.test('every write documents the Idempotency-Key it honours; the read-only checks say they ignore it', async (t) => {
    // Answers computed at each call (config idempotency: false), and the streamed upload, which refuses a key.
    const fresh = new Set(['checkDispensation', 'verifyPack', 'verifyPacks'])
    for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        if (!['post', 'put', 'patch', 'delete'].includes(method) || !path.startsWith('/v1')) continue
        const documented = (op.parameters ?? []).some((p: any) => p.in === 'header' && p.name === 'idempotency-key')
        if (fresh.has(op.operationId)) t.match(op.description, /`Idempotency-Key` is ignored/, `${op.operationId} says the key is ignored`)
        else if (op.operationId === 'streamPacks') t.match(op.description, /no `Idempotency-Key`/, 'streamPacks says it takes no key')
        else t.ok(documented, `${method.toUpperCase()} ${path} documents the Idempotency-Key header`)
      }
    }
  })

  t.test('the committed export matches the code', async (t) => {
    const committed = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'))
    t.same(committed, doc, 'run `npm run openapi` after changing a route')
  })

  t.test('the docs page renders the contract', async (t) => {
    const page = await app.inject({ method: 'GET', url: '/docs/' })
    t.equal(page.statusCode, 200)
    t.match(page.headers['content-type'], /text\/html/)
    t.match(page.body, /swagger-ui/i)
    const json = await app.inject({ method: 'GET', url: '/docs/json' })
    t.equal(json.json().info.title, doc.info.title)
  })
})

t.test('health', async (t) => {
  const { app, database } = await testApp(t, { seed: false })
  t.same((await app.inject('/health/live')).json(), { status: 'ok' })
  t.same((await app.inject('/health/ready')).json(), { status: 'ok', database: 'ok' })
  await database.close()
  const down = await app.inject('/health/ready')
  t.equal(down.statusCode, 503)
  t.equal(down.json().code, 'SERVICE_UNAVAILABLE')
  t.equal(down.headers['retry-after'], '5')
})

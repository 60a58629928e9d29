import { readFileSync } from 'node:fs'
import { Validator } from '@seriousme/openapi-schema-validator'
import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'
import t from 'tap'
import { COMPILED_AT_START } from '../src/app.ts'
import { ERRORS } from '../src/platform/errors.ts'
import { EVENT_TYPE_NAMES } from '../src/platform/events/event-types.ts'
import { isCip13 } from '../src/platform/identifiers.ts'
import { testApp } from './helpers.ts'

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv
const JSON_TYPE = /^application\/(.+\+)?json\b/

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
        else if (op.operationId === 'uploadPacksAsText') t.match(op.description, /no `Idempotency-Key`/, 'uploadPacksAsText says it takes no key')
        else t.ok(documented, `${method.toUpperCase()} ${path} documents the Idempotency-Key header`)
      }
    }
  })

  // What a client generator and a vendor reading the reference need, for every operation (a route added tomorrow too).
  t.test('every operation is complete: answers described, examples valid, problem codes, headers, named bodies', async (t) => {
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true })
    addFormats(ajv)
    ajv.addFormat('cip13', { type: 'string', validate: (v: string) => isCip13(v) })
    ajv.addSchema({ $id: 'openapi', components: JSON.parse(JSON.stringify(doc.components).replaceAll('"#/components/', '"openapi#/components/')) })
    const compiled = new Map<string, ReturnType<Ajv['compile']>>()
    const check = (schema: any, example: unknown, where: string) => {
      const key = JSON.stringify(schema)
      let validate = compiled.get(key)
      if (!validate) compiled.set(key, (validate = ajv.compile(JSON.parse(key.replaceAll('"#/components/', '"openapi#/components/')))))
      if (!validate(example)) t.fail(`${where}: example does not match its schema: ${ajv.errorsText(validate.errors)}`)
    }
    const exampleOf = (media: any) => {
      if (media.example !== undefined) return [media.example]
      return Object.values<any>(media.examples ?? {}).map((e) => (e.$ref ? doc.components.examples[e.$ref.split('/').pop()].value : e.value))
    }
    let n = 0
    for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        if (method === 'head') continue
        const where = `${method.toUpperCase()} ${path}`
        const idempotent = (op.parameters ?? []).some((p: any) => p.in === 'header' && p.name === 'idempotency-key')
        for (const [type, media] of Object.entries<any>(op.requestBody?.content ?? {})) {
          t.ok(media.schema?.$ref, `${where}: its ${type} body is a named component`)
          const examples = exampleOf(media)
          t.ok(examples.length, `${where}: its ${type} body has an example`)
          if (JSON_TYPE.test(type)) for (const x of examples) check(media.schema, x, `${where} body`)
        }
        if (path.startsWith('/v1')) t.ok(Array.isArray(op['x-problem-codes']) && op['x-problem-codes'].length, `${where}: lists its problem codes`)
        for (const [status, response] of Object.entries<any>(op.responses)) {
          const s = Number(status)
          t.not(response.description, 'Default Response', `${where} ${status} is described`)
          if (s < 400) {
            for (const [type, media] of Object.entries<any>(response.content ?? {})) {
              if (!JSON_TYPE.test(type)) continue
              const examples = exampleOf(media)
              t.ok(examples.length, `${where} ${status} has an example`)
              for (const x of examples) check(media.schema, x, `${where} ${status}`)
              n++
            }
            if (idempotent && s < 300) t.ok(response.headers?.['idempotent-replayed'], `${where} ${status} declares Idempotent-Replayed`)
            if (op['x-rate-limited'] && s < 300) t.ok(response.headers?.['x-ratelimit-remaining'], `${where} ${status} declares the rate-limit headers`)
          } else {
            const media = response.content?.['application/problem+json']
            const examples = media ? exampleOf(media) : []
            t.ok(examples.length, `${where} ${status} has a problem example`)
            for (const x of examples) {
              t.equal(x.status, s, `${where} ${status}: its example has its own status`)
              t.equal(ERRORS[x.code]?.status, s, `${where} ${status}: its example's code ${x.code} is one of that status`)
              check(media.schema, x, `${where} ${status}`)
            }
            for (const code of op['x-problem-codes'] ?? []) t.ok(op.responses[ERRORS[code]!.status], `${where}: ${code}'s status is documented`)
            if (s === 429 || s === 503) t.ok(response.headers?.['retry-after'], `${where} ${status} declares Retry-After`)
          }
        }
        if (op.responses['201'] && ['createWebhookEndpoint', 'issueEprescription', 'createOrganisation'].includes(op.operationId)) t.ok(op.responses['201'].headers?.location, `${where} declares Location`)
        for (const p of op.parameters ?? []) if (p.in === 'query' && p.schema && 'default' in p.schema) t.notOk(p.required, `${where}: ${p.name} has a default, so it is optional`)
      }
    }
    t.ok(n > 100, `${n} JSON answers checked`)
    t.notOk(JSON.stringify(doc).match(/"operationId":"(streamPacks|openEmergencyRequests|closeEmergencyRequests|takeEprescription|putShortageSettings)"/), 'the renamed operation ids are gone')
  })

  t.test('the event catalogue: feed item, stream data and webhook body are a union of typed events', async (t) => {
    const feed = doc.components.schemas.FeedEvent
    t.equal(feed.discriminator?.propertyName, 'type')
    t.equal(feed.oneOf.length, EVENT_TYPE_NAMES.length, 'one member per event type')
    for (const type of EVENT_TYPE_NAMES) {
      const ref = feed.discriminator.mapping[type]
      t.ok(ref, `${type} is in the union`)
      const event = doc.components.schemas[ref.split('/').pop()]
      t.same(event?.properties?.type?.const ?? event?.properties?.type?.enum, event?.properties?.type?.const !== undefined ? type : [type], `${type}: its event fixes type`)
      const payload = doc.components.schemas[event.properties.payload.$ref.split('/').pop()]
      t.ok(payload, `${type}: its payload is a named component`)
      t.ok(doc.webhooks?.[type]?.post?.requestBody, `${type}: listed in webhooks`)
    }
    t.same(Object.keys(doc.webhooks).sort(), [...EVENT_TYPE_NAMES].sort(), 'webhooks lists exactly the catalogue')
    for (const [id, prop] of [['EmergencyRequest', 'answer'], ['RecallHistory', 'versions']] as const) t.notMatch(JSON.stringify(doc.components.schemas[id].properties[prop]), /^\{\}$/, `${id}.${prop} is typed`)
  })

  t.test('the committed export matches the code', async (t) => {
    const committed = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'))
    t.same(committed, doc, 'run `npm run openapi` after changing a route')
  })

  t.test('the docs page renders the contract, served from this process (no CDN)', async (t) => {
    const page = await app.inject({ method: 'GET', url: '/docs/' })
    t.equal(page.statusCode, 200)
    t.match(page.headers['content-type'], /text\/html/)
    t.match(page.body, /Portail DP/)
    const scripts = [...page.body.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]!)
    t.ok(scripts.length > 0, 'loads a script')
    for (const src of scripts) {
      t.notMatch(src, /^(https?:)?\/\//, `${src} is served locally`)
      const js = await app.inject({ method: 'GET', url: new URL(src, 'http://x/docs/').pathname })
      t.equal(js.statusCode, 200, `${src} answers`)
      t.ok(js.body.length > 100_000, `${src} is the renderer's bundle`)
    }
    const json = await app.inject({ method: 'GET', url: '/docs/openapi.json' })
    t.equal(json.statusCode, 200)
    t.equal(json.json().info.title, doc.info.title)
    t.match(json.json().info.description, /# Getting started/, 'the guides are in the page')
    t.notMatch(doc.info.description, /# Getting started/, 'and not in the contract')
  })

})

t.test('the routes whose answers are compiled at start exist (a renamed one would silently go back to compiling on its first answer)', async (t) => {
  const { app } = await testApp(t, { seed: false })
  for (const url of COMPILED_AT_START) t.ok(app.hasRoute({ method: 'POST', url }), `POST ${url}`)
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

t.test('a route being retired says so: deprecated in the contract, Deprecation and Sunset headers on its answers', async (t) => {
  const { app } = await testApp(t, {
    seed: false,
    extend: (app) =>
      app.get(
        '/v1/retired-example',
        { config: { roles: 'public', deprecation: { since: '2026-12-01', sunset: '2027-06-30', use: 'GET /v1/products/{code}' } } as never, schema: { tags: ['operations'], summary: 'A retired route (test)', operationId: 'retiredExample' } },
        async () => ({ ok: true }),
      ),
  })
  const res = await app.inject('/v1/retired-example')
  t.equal(res.headers.deprecation, `@${Date.UTC(2026, 11, 1) / 1000}`)
  t.equal(res.headers.sunset, 'Wed, 30 Jun 2027 00:00:00 GMT')
  t.match(res.headers.link, /rel="deprecation"/)
  const op = (await app.inject('/openapi.json')).json().paths['/v1/retired-example'].get
  t.equal(op.deprecated, true)
  t.match(op.description, /Deprecated/)
})

// What the service actually answers, checked against what the contract says it may answer. The contract's problem
// codes per operation and its response headers are written from the routes' declarations (openapi-document.ts);
// this observes every answer a test app sends (every test built on testApp: the domain suites, the generated hostile
// requests, the guides' curls) and fails the test when an answer's status, problem code or header is not declared
// for its operation. A new route that answers a code it does not declare is caught by the first test that makes it.
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'

interface Operation {
  operationId: string
  responses?: Record<string, { headers?: Record<string, unknown> }>
  'x-problem-codes'?: string[]
}

// The committed contract: `npm run openapi:check` keeps it equal to the one the app serves.
let operations: Map<string, Operation> | undefined
function contractOperations(): Map<string, Operation> {
  if (operations) return operations
  const doc = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, Operation>> }
  operations = new Map()
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      // Keyed as Fastify names the route: `/v1/x/:id`.
      if (op && typeof op === 'object' && 'responses' in op) operations.set(`${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`, op)
    }
  }
  return operations
}

// Headers whose presence the contract must announce on the answer that carries them.
const DECLARED_HEADERS = ['location', 'retry-after', 'idempotent-replayed', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'deprecation', 'sunset', 'content-disposition']

export interface ContractObserver {
  /** One line per answer the contract does not describe (deduplicated), e.g. `POST /v1/x 409 SOME_CODE: code not declared`. */
  undeclared(): string[]
}

export function observeContract(app: FastifyInstance): ContractObserver {
  const problems = new Set<string>()
  const ops = contractOperations()
  app.addHook('onSend', async (request, reply, payload) => {
    const url = request.routeOptions.url
    // HEAD answers are GET's; unmatched URLs (404 of the router) belong to no operation.
    if (!url || request.method === 'HEAD') return payload
    const op = ops.get(`${request.method} ${url}`)
    if (!op) return payload // routes outside the contract: the docs page, metrics
    const status = reply.statusCode
    const where = `${request.method} ${url} ${status}`
    const response = op.responses?.[String(status)] ?? op.responses?.default
    if (!response) {
      problems.add(`${where}: status not declared`)
      return payload
    }
    const type = String(reply.getHeader('content-type') ?? '')
    if (status >= 400 && type.startsWith('application/problem+json') && typeof payload === 'string') {
      const code = (JSON.parse(payload) as { code?: string }).code
      if (!code || !op['x-problem-codes']?.includes(code)) problems.add(`${where} ${code}: code not declared`)
    }
    // A 304 stands for the 200 it revalidates, with that answer's headers.
    const declared = (status === 304 ? op.responses?.['200']?.headers : response.headers) ?? {}
    for (const h of DECLARED_HEADERS) if (reply.hasHeader(h) && !(h in declared)) problems.add(`${where}: header ${h} not declared`)
    return payload
  })
  return { undeclared: () => [...problems].sort() }
}

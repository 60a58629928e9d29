import { request as httpRequest } from 'node:http'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import { SYSTEM } from '../src/platform/audit.ts'
import { DEMO_BDPM_DIR } from '../src/demo/seed.ts'
import { importBdpmDirectory } from '../src/referential/use-cases/bdpm-import.ts'
import { MAX_STREAMED_SERIALS } from '../src/serialization/rules/stream-upload.ts'
import { streamsRunning } from '../src/serialization/routes/upload-stream.ts'
import { ORG, testApp } from './helpers.ts'

const BIOGARAN = '3400949497294' // ROSUVASTATINE BIOGARAN (lab 412345670)
const EXPIRY = '2030-12-31'
const GS = '\x1d'

/** A body delivered in pieces of `size` bytes, so that lines (and CRLF) straddle the pieces. */
const pieces = (text: string, size: number) => {
  const all = Buffer.from(text)
  const out: Buffer[] = []
  for (let i = 0; i < all.length; i += size) out.push(all.subarray(i, i + size))
  return Readable.from(out, { objectMode: false })
}

t.test('streamed upload of a batch’s serials', async (t) => {
  const { app, auth, database } = await testApp(t)
  await importBdpmDirectory(database.db, DEMO_BDPM_DIR, SYSTEM)
  const lab = auth('lab', ORG.labBiogaran, 'qualite')
  const otherLab = auth('lab', ORG.labArrow)
  const paris = auth('pharmacy', ORG.pharmacyParis, 'alice')

  const stream = (
    payload: string | Readable,
    opts: { batch?: string; expiry?: string | null; headers?: Record<string, string>; product?: string; contentType?: string | null } = {},
  ) => {
    const { batch = 'LOT-S', expiry = EXPIRY, headers = lab, product = BIOGARAN, contentType = 'text/plain' } = opts
    const query = expiry === null ? '' : `?expiry=${encodeURIComponent(expiry)}`
    return app.inject({
      method: 'POST',
      url: `/v1/serialization/products/${product}/batches/${encodeURIComponent(batch)}/packs${query}`,
      headers: { ...headers, ...(contentType === null ? {} : { 'content-type': contentType }) },
      payload,
    })
  }
  const packCount = async (batch?: string) => {
    let q = database.db.selectFrom('packs').select((eb) => eb.fn.countAll<number>().as('n')).where('cip13', '=', BIOGARAN)
    if (batch !== undefined) q = q.where('batch', '=', batch)
    return Number((await q.executeTakeFirstOrThrow()).n)
  }
  const batchExists = async (batch: string) => !!(await database.db.selectFrom('serial_batches').select('batch').where('cip13', '=', BIOGARAN).where('batch', '=', batch).executeTakeFirst())
  const uploads = async () => (await database.db.selectFrom('audit_log').select('changes').where('action', '=', 'serialization.packs.uploaded').execute()).length

  const big = Array.from({ length: 25_000 }, (_, i) => `S${String(i).padStart(6, '0')}`)
  const bigBody = `${big.join('\n')}\n`

  t.test('25,000 serials streamed in pieces, then again: idempotent', async (t) => {
    const res = await stream(pieces(bigBody, 4093))
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), { product: BIOGARAN, batch: 'LOT-S', expiry: EXPIRY, received: 25_000, created: 25_000, unchanged: 0, conflictCount: 0, conflicts: [] })
    t.equal(await packCount('LOT-S'), 25_000)
    const figures = await app.inject({ method: 'GET', url: `/v1/serialization/products/${BIOGARAN}/batches/LOT-S`, headers: lab })
    t.match(figures.json(), { batch: 'LOT-S', expiry: EXPIRY, packs: 25_000, byState: { active: 25_000 } }, 'the batch figures show them')
    t.equal(await uploads(), 1, 'one audit entry for the upload')

    const again = await stream(bigBody)
    t.equal(again.statusCode, 200, again.body)
    t.same(again.json(), { product: BIOGARAN, batch: 'LOT-S', expiry: EXPIRY, received: 25_000, created: 0, unchanged: 25_000, conflictCount: 0, conflicts: [] })
    t.equal(await packCount('LOT-S'), 25_000)
    t.equal(await uploads(), 1, 'a re-upload that changes nothing is not audited')
  })

  t.test('the uploaded packs verify', async (t) => {
    for (const serial of [big[0]!, big[12_345]!, big.at(-1)!]) {
      const res = await app.inject({ method: 'POST', url: '/v1/serialization/packs/verify', headers: paris, payload: { product: BIOGARAN, serial, batch: 'LOT-S', expiry: EXPIRY } })
      t.match(res.json(), { ok: true, code: 'PACK_ACTIVE', pack: { serial, batch: 'LOT-S', state: 'active' } }, serial)
    }
    const dm = await app.inject({ method: 'POST', url: '/v1/serialization/packs/verify', headers: paris, payload: { dataMatrix: `]d20103400949497294 21${big[7]}${GS}10LOT-S${GS}17301231`.replace(' ', '') } })
    t.match(dm.json(), { ok: true, code: 'PACK_ACTIVE' }, 'as a scanned DataMatrix')
  })

  t.test('CRLF, empty lines, a trailing newline or none, a byte-order mark, repeated lines', async (t) => {
    const res = await stream('\uFEFFC1\r\nC2\r\n\r\n\nC3\r\nC2\r\nC4', { batch: 'LOT-CRLF' })
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), { product: BIOGARAN, batch: 'LOT-CRLF', expiry: EXPIRY, received: 5, created: 4, unchanged: 1, conflictCount: 0, conflicts: [] }, 'a repeated line counts as unchanged')
    const split = await stream(pieces('C5\r\nC6\r\n', 3), { batch: 'LOT-CRLF' }) // 'C5\r' | '\nC6' | '\r\n'
    t.same(split.json(), { product: BIOGARAN, batch: 'LOT-CRLF', expiry: EXPIRY, received: 2, created: 2, unchanged: 0, conflictCount: 0, conflicts: [] }, 'CRLF split between two pieces')
    const serials = await database.db.selectFrom('packs').select('serial').where('cip13', '=', BIOGARAN).where('batch', '=', 'LOT-CRLF').orderBy('serial').execute()
    t.same(serials.map((s) => s.serial), ['C1', 'C2', 'C3', 'C4', 'C5', 'C6'], 'no CR, no byte-order mark kept')
    const charset = await stream('C7\n', { batch: 'LOT-CRLF', contentType: 'text/plain; charset=UTF-8' })
    t.equal(charset.statusCode, 200, 'charset utf-8 accepted')
  })

  t.test('invalid lines: all of them named, nothing recorded', async (t) => {
    const before = await packCount()
    const lines = ['OK1', 'OK2', 'has space', 'A'.repeat(21), '}', ' OK3', 'café', ...big.map((s) => `N${s}`), 'bad\tline']
    const res = await stream(pieces(lines.join('\r\n'), 1000), { batch: 'LOT-BAD' })
    t.equal(res.statusCode, 400, res.body)
    t.match(res.headers['content-type'], /application\/problem\+json/)
    const body = res.json()
    t.equal(body.code, 'VALIDATION_FAILED')
    t.equal(body.invalidLines, 6)
    t.match(body.detail, /6 erreur/)
    t.same(
      body.errors.map((e: { field: string; code: string }) => [e.field, e.code]),
      [
        ['body.line.3', 'INVALID_CHARACTER'],
        ['body.line.4', 'FIELD_TOO_LONG'],
        ['body.line.5', 'INVALID_CHARACTER'],
        ['body.line.6', 'INVALID_CHARACTER'],
        ['body.line.7', 'INVALID_CHARACTER'],
        [`body.line.${lines.length}`, 'INVALID_CHARACTER'],
      ],
    )
    t.match(body.errors[0].message, /^ligne 3 : caractère U\+0020 en position 4/)
    t.match(body.errors[2].message, /« } »/)
    t.match(body.errors[4].message, /U\+00E9 en position 4/)
    t.notMatch(res.body, /has space|café/, 'the lines are not echoed')
    t.equal(await packCount(), before, 'nothing inserted')
    t.notOk(await batchExists('LOT-BAD'), 'the batch is not created either')

    const late = await stream(pieces(`${big.map((s) => `N${s}`).join('\n')}\nlast line\n`, 65_536), { batch: 'LOT-BAD' })
    t.equal(late.statusCode, 400)
    t.match(late.json(), { invalidLines: 1, errors: [{ field: `body.line.${big.length + 1}` }] })
    t.equal(await packCount(), before, 'the chunks inserted before the invalid line are rolled back')
    t.notOk(await batchExists('LOT-BAD'))

    const en = await stream('OK\nhas space\n', { batch: 'LOT-BAD', headers: { ...lab, 'accept-language': 'en' } })
    t.equal(en.statusCode, 400)
    t.match(en.json(), { detail: /1 error/, errors: [{ field: 'body.line.2', message: /^line 2: character U\+0020 at position 4, outside the GS1 character set/ }] })

    const many = await stream(Array.from({ length: 150 }, (_, i) => `bad ${i}`).join('\n'), { batch: 'LOT-BAD' })
    t.equal(many.statusCode, 400)
    t.equal(many.json().errors.length, 100, 'the first 100 listed')
    t.equal(many.json().invalidLines, 150, 'all counted')
    t.equal(many.json().errors[99].field, 'body.line.100')

    const empty = await stream('\n\r\n\n', { batch: 'LOT-BAD' })
    t.equal(empty.statusCode, 400, 'no serial at all')
    t.match(empty.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'body', code: 'FIELD_EMPTY' }] })
    t.notOk(await batchExists('LOT-BAD'))
  })

  t.test('refusals', async (t) => {
    const before = await packCount()
    const foreign = await stream('Z1\nZ2\n', { batch: 'LOT-Z', headers: otherLab })
    t.equal(foreign.statusCode, 404, 'another lab’s product is answered as unknown')
    t.equal(foreign.json().code, 'NOT_FOUND')
    t.equal((await stream('Z1\n', { batch: 'LOT-Z', headers: paris })).statusCode, 403, 'a pharmacy cannot upload')
    t.equal((await stream('Z1\n', { batch: 'LOT-Z', headers: {} })).statusCode, 401)

    const expiryConflict = await stream('Z1\n', { batch: 'LOT-S', expiry: '2031-01-31' })
    t.equal(expiryConflict.statusCode, 409)
    t.equal(expiryConflict.json().code, 'BATCH_EXPIRY_CONFLICT')
    const badDate = await stream('Z1\n', { batch: 'LOT-Z', expiry: '2030-02-30' })
    t.equal(badDate.statusCode, 400)
    t.equal(badDate.json().errors[0].field, 'querystring.expiry')
    const noDate = await stream('Z1\n', { batch: 'LOT-Z', expiry: null })
    t.equal(noDate.statusCode, 400)
    t.equal(noDate.json().errors[0].field, 'querystring.expiry')
    const badProduct = await stream('Z1\n', { batch: 'LOT-Z', product: '3400949497295' })
    t.equal(badProduct.statusCode, 400)
    t.equal(badProduct.json().code, 'INVALID_IDENTIFIER')
    const badBatch = await stream('Z1\n', { batch: 'LOT Z' })
    t.equal(badBatch.statusCode, 400)
    t.equal(badBatch.json().errors[0].field, 'params.batch')

    for (const contentType of ['application/json', 'text/csv', 'application/x-ndjson', 'text/plain; charset=iso-8859-1', null]) {
      const res = await stream(contentType === 'application/json' ? JSON.stringify(['Z1']) : 'Z1\n', { batch: 'LOT-Z', contentType })
      t.equal(res.statusCode, 415, String(contentType))
      t.match(res.json(), { code: 'UNSUPPORTED_MEDIA_TYPE', detail: /text\/plain/ })
    }
    const key = await stream('Z1\n', { batch: 'LOT-Z', headers: { ...lab, 'idempotency-key': 'f0f9c1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6' } })
    t.equal(key.statusCode, 400, 'no Idempotency-Key on this route')
    t.match(key.json(), { code: 'VALIDATION_FAILED', errors: [{ field: 'headers.idempotency-key' }] })

    const tooLarge = await app.inject({
      method: 'POST',
      url: `/v1/serialization/products/${BIOGARAN}/batches/LOT-Z/packs?expiry=${EXPIRY}`,
      headers: { ...lab, 'content-type': 'text/plain', 'content-length': String(300 * 1024 * 1024) },
      payload: Readable.from([Buffer.from('Z1\n')], { objectMode: false }),
    })
    t.equal(tooLarge.statusCode, 413, 'a declared length above the limit')
    t.equal(tooLarge.json().code, 'PAYLOAD_TOO_LARGE')

    t.equal(await packCount(), before, 'none of these inserted anything')
    t.notOk(await batchExists('LOT-Z'))
  })

  t.test(`more than ${MAX_STREAMED_SERIALS.toLocaleString('en')} serials: 413, nothing recorded`, async (t) => {
    // Lines of one character outside the set: read and counted, never inserted, so the test stays fast.
    const line = Buffer.from('~\n'.repeat(500_000))
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < MAX_STREAMED_SERIALS / 500_000; i++) yield line
        yield Buffer.from('~\n')
      })(),
      { objectMode: false },
    )
    const res = await stream(body, { batch: 'LOT-MAX' })
    t.equal(res.statusCode, 413, res.body)
    t.equal(res.json().code, 'TOO_MANY_SERIALS')
    t.match(res.json().detail, /1\s000\s000/)
    t.notOk(await batchExists('LOT-MAX'))
  })

  t.test('conflicts with another batch: counted per line, listed up to 1,000', async (t) => {
    const res = await stream(['NEW1', big[0], big[1], 'NEW2', big[0]].join('\n'), { batch: 'LOT-T' })
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), {
      product: BIOGARAN,
      batch: 'LOT-T',
      expiry: EXPIRY,
      received: 5,
      created: 2,
      unchanged: 0,
      conflictCount: 3,
      conflicts: [
        { serial: big[0], batch: 'LOT-S' },
        { serial: big[1], batch: 'LOT-S' },
        { serial: big[0], batch: 'LOT-S' },
      ],
    })
    const still = await database.db.selectFrom('packs').select('batch').where('cip13', '=', BIOGARAN).where('serial', '=', big[0]!).executeTakeFirstOrThrow()
    t.equal(still.batch, 'LOT-S', 'left in its batch')

    const many = await stream(big.slice(0, 1_500).join('\n'), { batch: 'LOT-T' })
    t.equal(many.statusCode, 200)
    t.match(many.json(), { received: 1_500, created: 0, unchanged: 0, conflictCount: 1_500 })
    t.equal(many.json().conflicts.length, 1_000, 'the list is bounded')
    const audit = await database.db.selectFrom('audit_log').select('changes').where('action', '=', 'serialization.packs.uploaded').where('object_id', '=', `${BIOGARAN}/LOT-T`).execute()
    t.equal(audit.length, 2, 'an upload with conflicts is audited')
    t.match(audit[1]!.changes, { received: 1_500, created: 0, conflicts: 1_500, streamed: true })
  })

  t.test('the JSON upload still answers as before', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/v1/serialization/packs', headers: lab, payload: { product: BIOGARAN, batch: 'LOT-J', expiry: EXPIRY, serials: ['J1', 'J1', big[2], 'J2'] } })
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), { product: BIOGARAN, batch: 'LOT-J', expiry: EXPIRY, received: 4, created: 2, unchanged: 0, duplicatesInRequest: 1, conflicts: [{ serial: big[2], batch: 'LOT-S' }] })
  })

  t.test('over real HTTP, chunked, without a declared length', async (t) => {
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const serials = Array.from({ length: 30_000 }, (_, i) => `H${i}`)
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'POST', path: `/v1/serialization/products/0${BIOGARAN}/batches/LOT-H/packs?expiry=301200`, headers: { ...lab, 'content-type': 'text/plain' } },
        (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (c) => (body += c))
          res.on('end', () => resolve({ status: res.statusCode!, body }))
        },
      )
      req.on('error', reject)
      // Written in 30 pieces, one event-loop turn apart: the server reads while the client still sends.
      let i = 0
      const next = () => {
        if (i === serials.length) return req.end()
        req.write(`${serials.slice(i, i + 1_000).join('\r\n')}\r\n`)
        i += 1_000
        setImmediate(next)
      }
      next()
    })
    t.equal(answer.status, 200, answer.body)
    t.same(JSON.parse(answer.body), { product: BIOGARAN, batch: 'LOT-H', expiry: '2030-12-31', received: 30_000, created: 30_000, unchanged: 0, conflictCount: 0, conflicts: [] }, 'GTIN-14 and YYMMDD with day 00')
    t.equal(await packCount('LOT-H'), 30_000)

    // Two uploads whose bodies have not ended hold their transaction: a third is refused before anything is read.
    const open = (batch: string) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: `/v1/serialization/products/${BIOGARAN}/batches/${batch}/packs?expiry=${EXPIRY}`, headers: { ...lab, 'content-type': 'text/plain' } })
      const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
        req.on('error', reject)
        req.on('response', (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (c) => (body += c))
          res.on('end', () => resolve({ status: res.statusCode!, body }))
        })
      })
      req.write(`${batch}-1\n`)
      return { req, answer }
    }
    const slow = [open('LOT-W1'), open('LOT-W2')]
    for (let i = 0; i < 200 && streamsRunning() < 2; i++) await new Promise((r) => setTimeout(r, 25))
    t.equal(streamsRunning(), 2, 'both are running')
    const third = await stream('W3\n', { batch: 'LOT-W3' })
    t.equal(third.statusCode, 503, 'a third concurrent streamed upload waits its turn')
    t.match(third.json(), { code: 'SERVICE_UNAVAILABLE', detail: /2 envois en flux/ })
    t.equal(third.headers['retry-after'], '30')
    for (const [i, s] of slow.entries()) s.req.end(`LOT-W${i + 1}-2\n`)
    for (const [i, s] of slow.entries()) {
      const a = await s.answer
      t.equal(a.status, 200, a.body)
      t.match(JSON.parse(a.body), { batch: `LOT-W${i + 1}`, received: 2, created: 2 })
    }
    t.equal((await stream('W4\n', { batch: 'LOT-W3' })).statusCode, 200, 'and goes through once they are done')
  })

  t.test('over HTTP/2: the same upload, and a refusal before the end of the body leaves the connection usable', async (t) => {
    const { port } = app.server.address() as AddressInfo
    const session = http2.connect(`http://127.0.0.1:${port}`)
    t.teardown(() => session.destroy())
    const upload = (path: string, headers: Record<string, string>, write: (stream: http2.ClientHttp2Stream) => void) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': path, ...headers, 'content-type': 'text/plain' })
        let status = 0
        let body = ''
        stream.setEncoding('utf8')
        stream.on('response', (h) => (status = Number(h[':status'])))
        stream.on('data', (c: string) => (body += c))
        stream.on('end', () => resolve({ status, body }))
        stream.on('error', reject)
        write(stream)
      })
    const serials = Array.from({ length: 30_000 }, (_, i) => `T${i}`)
    const done = await upload(`/v1/serialization/products/${BIOGARAN}/batches/LOT-H2/packs?expiry=${EXPIRY}`, lab, (stream) => {
      let i = 0
      const next = () => {
        if (i === serials.length) return stream.end()
        stream.write(`${serials.slice(i, i + 1_000).join('\n')}\n`)
        i += 1_000
        setImmediate(next)
      }
      next()
    })
    t.equal(done.status, 200, done.body)
    t.same(JSON.parse(done.body), { product: BIOGARAN, batch: 'LOT-H2', expiry: EXPIRY, received: 30_000, created: 30_000, unchanged: 0, conflictCount: 0, conflicts: [] })
    t.equal(await packCount('LOT-H2'), 30_000)
    // Another lab's product: 404 while the body is still coming; the rest is read and dropped, the stream ends.
    let answeredBeforeTheEnd = false
    const refused = await upload(`/v1/serialization/products/${BIOGARAN}/batches/LOT-H2X/packs?expiry=${EXPIRY}`, otherLab, (stream) => {
      let ended = false
      stream.once('response', () => (answeredBeforeTheEnd = !ended))
      stream.write('X1\n')
      setTimeout(() => {
        ended = true
        stream.end('X2\n')
      }, 1000)
    })
    t.equal(refused.status, 404, refused.body)
    t.ok(answeredBeforeTheEnd, 'answered while the body was still open')
    t.notOk(await batchExists('LOT-H2X'))
    const again = await upload(`/v1/serialization/products/${BIOGARAN}/batches/LOT-H2/packs?expiry=${EXPIRY}`, lab, (stream) => stream.end('T0\n'))
    t.equal(again.status, 200, 'the same connection carries the next upload')
    t.match(JSON.parse(again.body), { received: 1, created: 0, unchanged: 1 })
  })
})

/**
 * HTTP/2 without TLS ("h2c" with prior knowledge, RFC 9113 §3.3) on the service's own port, beside HTTP/1.1.
 *
 * Why: an event stream is then an HTTP/2 stream, not a connection. A vendor's server that holds the feeds of a
 * thousand pharmacies, or a load balancer that speaks HTTP/2 to its instances, carries them over a few connections,
 * and an instance holds more streams than it may open file descriptors (one per HTTP/1.1 connection).
 *
 * How: the first bytes of a connection tell. HTTP/2's client preface (`PRI * HTTP/2.0…`, 24 bytes) begins no
 * HTTP/1.1 request: as soon as the bytes read differ from it the connection goes to Fastify's HTTP/1.1 server as
 * it would have; once all 24 match, to an HTTP/2 server whose requests take the same Fastify routes (app.routing),
 * with the same hooks, authentication, validation and errors. Node has no such switch of its own: its HTTP/2
 * server falls back to HTTP/1.1 only under TLS (ALPN), and TLS ends at the load balancer here. Both of Node's
 * servers take a connection handed to them through their 'connection' event, as Node's documentation allows.
 */
import type { Server } from 'node:http'
import http2 from 'node:http2'
import type { Socket } from 'node:net'
import type { FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression } from 'fastify'
import { preRouteProblem } from './errors.ts'

/** HTTP/2's client connection preface (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

/** Streams one HTTP/2 connection may have open at once (the SETTINGS_MAX_CONCURRENT_STREAMS the server announces). */
export const MAX_STREAMS_PER_CONNECTION = 1000
/** The largest header list a request may send (RFC 9113 §6.5.2: names, values, 32 bytes each), as over HTTP/1.1 (Node's 16 KiB). */
const MAX_HEADER_LIST_SIZE = 16 * 1024

/** Refused before any route, as Node's HTTP/1.1 server refuses it (app.ts, clientErrorHandler). */
function refuse(res: http2.Http2ServerResponse, code: 'HEADERS_TOO_LARGE' | 'REQUEST_TIMEOUT') {
  const { status, headers, body } = preRouteProblem(code)
  res.writeHead(status, headers)
  res.end(body)
}

function headerListSize(raw: string[]) {
  let size = 0
  for (const field of raw) size += field.length + 16 // 32 bytes per name and value pair
  return size
}

/**
 * Serves HTTP/2 on the app's own listener. Draining sends GOAWAY to every HTTP/2 connection (its streams finish,
 * new ones go elsewhere), as `Connection: close` does for HTTP/1.1; closing the app closes them.
 */
export function serveHttp2Cleartext(app: FastifyInstance) {
  const server: Server = app.server
  const h2 = http2.createServer(
    // Node's own header limit (64 KiB, a reset stream beyond it) stays: under it, the answer is HTTP/1.1's 431.
    { settings: { maxConcurrentStreams: MAX_STREAMS_PER_CONNECTION } },
    (req, res) => {
      if (headerListSize(req.rawHeaders) > MAX_HEADER_LIST_SIZE) return refuse(res, 'HEADERS_TOO_LARGE')
      // As over HTTP/1.1 (server.requestTimeout), the whole request must arrive within the delay: a body that
      // trickles in would otherwise hold its stream, and its connection stays busy with the others'.
      if (!req.stream.endAfterHeaders && server.requestTimeout > 0) {
        const timer = setTimeout(() => {
          if (!res.headersSent) refuse(res, 'REQUEST_TIMEOUT')
          // Node sends what was written before the RST_STREAM: the client gets the answer, then stops sending.
          req.stream.close(http2.constants.NGHTTP2_CANCEL)
        }, server.requestTimeout)
        const received = () => clearTimeout(timer)
        req.stream.once('end', received)
        req.stream.once('close', received)
      }
      app.routing(req as unknown as RawRequestDefaultExpression, res as unknown as RawReplyDefaultExpression)
    },
  )
  const sessions = new Set<http2.ServerHttp2Session>()
  h2.on('session', (session) => {
    sessions.add(session)
    app.metrics.http2Connections.set(sessions.size)
    session.once('close', () => {
      sessions.delete(session)
      app.metrics.http2Connections.set(sessions.size)
    })
    // Like an idle HTTP/1.1 keep-alive connection (read when the connection opens: server.ts sets it after building).
    if (server.keepAliveTimeout > 0) session.setTimeout(server.keepAliveTimeout, () => session.close())
    // Draining: answer what the new connection asks first, then GOAWAY, as an HTTP/1.1 connection opened now gets
    // its answer with `Connection: close` (closed at once, its first request would be refused, and come back).
    if (app.drain.draining) session.once('stream', () => session.close())
  })
  // A client that breaks the protocol: its connection is closed by Node; nothing of ours to clean.
  h2.on('sessionError', (err) => app.log.info({ err }, 'HTTP/2 connection closed on a protocol error'))
  const goAway = () => {
    for (const session of sessions) session.close()
  }
  app.drain.onDrain(goAway)
  app.addHook('preClose', (done) => {
    goAway()
    done()
  })

  // The HTTP/1.1 server's own connection handling, now called for the connections that speak HTTP/1.1.
  const http1 = server.listeners('connection') as Array<(socket: Socket) => void>
  server.removeAllListeners('connection')
  server.on('connection', (socket: Socket) => {
    let head: Buffer | undefined
    const drop = () => socket.destroy()
    const onData = (chunk: Buffer) => {
      head = head ? Buffer.concat([head, chunk]) : chunk
      const n = Math.min(head.length, PREFACE.length)
      const http2Preface = head.compare(PREFACE, 0, n, 0, n) === 0
      if (http2Preface && n < PREFACE.length) return // a beginning of the preface: wait for more
      socket.removeListener('data', onData)
      socket.removeListener('end', drop)
      socket.removeListener('error', drop)
      socket.removeListener('timeout', drop)
      socket.setTimeout(0)
      // Give back what was read: the chosen server reads it first.
      socket.pause()
      socket.unshift(head)
      if (http2Preface) {
        h2.emit('connection', socket)
      } else {
        for (const listener of http1) listener.call(server, socket)
        socket.resume()
      }
    }
    socket.on('data', onData)
    // Ended or reset before saying anything: nobody else listens yet (and the HTTP/1.1 server allows half-open sockets).
    socket.on('end', drop)
    socket.on('error', drop)
    // Silent this long: closed, as HTTP/1.1 closes a connection whose request headers have not come (60 s by default).
    socket.on('timeout', drop)
    if (server.headersTimeout > 0) socket.setTimeout(server.headersTimeout)
  })
}

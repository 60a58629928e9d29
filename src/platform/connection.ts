import type { FastifyReply, FastifyRequest } from 'fastify'

/** Whether a request came over HTTP/2 (platform/http2.ts), where connection-level headers do not exist. */
export const isHttp2 = (request: FastifyRequest) => request.raw.httpVersionMajor === 2

/**
 * After this answer, the client should open a new connection for its next request (draining, or a body left
 * unread). HTTP/1.1: `Connection: close`. HTTP/2 has no such header and its connection carries other streams:
 * the stream ends on its own, and a draining instance has already sent GOAWAY to its HTTP/2 connections.
 */
export function closeConnectionAfter(request: FastifyRequest, reply: FastifyReply) {
  if (!isHttp2(request)) reply.header('connection', 'close')
}

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { closeConnectionAfter } from './connection.ts'

/**
 * The draining state of this instance. On SIGTERM (server.ts) the instance drains before it closes: readiness
 * answers 503 at once so the load balancer stops routing to it, every answer carries `Connection: close` and
 * HTTP/2 connections are sent GOAWAY, so that clients open their next connection elsewhere, streams end with a
 * reconnect hint and long-polls return what they have. It keeps serving meanwhile; server.ts closes the listener
 * after DRAIN_DELAY_MS.
 */
export class Drain {
  private since: Date | undefined
  private readonly listeners: Array<() => void> = []

  get draining() {
    return this.since !== undefined
  }

  get startedAt() {
    return this.since
  }

  /** Called once when draining starts (the event hub ends its streams). */
  onDrain(fn: () => void) {
    this.listeners.push(fn)
  }

  start(now = new Date()) {
    if (this.since) return
    this.since = now
    for (const fn of this.listeners) fn()
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    drain: Drain
  }
}

export default fp(
  async function drainPlugin(app: FastifyInstance) {
    const drain = new Drain()
    app.decorate('drain', drain)
    // At answer time, so that a request that began before the drain (a long-poll) also says it. Node's server
    // closes the connection after an answer that says so; HTTP/1.1 clients then reconnect. HTTP/2 connections
    // were sent GOAWAY when the drain began (http2.ts).
    app.addHook('onSend', (request, reply, payload, done) => {
      if (drain.draining) closeConnectionAfter(request, reply)
      done(null, payload)
    })
    drain.onDrain(() => app.metrics?.draining.set(1))
  },
  { name: 'drain' },
)

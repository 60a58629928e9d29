/**
 * The feed as Server-Sent Events on an open response: catch-up from the database, then live pushes from the hub,
 * with flow control, heartbeats and the reconnect hint when the instance drains.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import { type FeedItem, readFeed, touchFeedReader } from './feed.ts'
import type { Deps } from './use-cases.ts'

const HEARTBEAT_MS = 15_000
/** The reconnect delay a stream ended by a draining instance asks for (SSE `retry:`). */
export const DRAIN_RETRY_MS = 1000
const DRAIN_NOTICE = `retry: ${DRAIN_RETRY_MS}\n: instance en cours d’arrêt, reconnectez-vous / instance stopping, reconnect\n\n`

/**
 * Streams the organisation's feed after `lastSent` on `raw`, whose head is written. Resolves once the catch-up
 * has gone live (or the stream has ended); the stream then lives on until the client leaves or the hub ends it.
 */
export async function streamFeed(deps: Deps, raw: ServerResponse, opts: { org: string; lastSent: number; log: FastifyBaseLogger }) {
  const { org, log } = opts
  let lastSent = opts.lastSent
  if (deps.drain.draining) {
    // This instance is stopping: the client comes back, through the load balancer, to another one.
    raw.end(DRAIN_NOTICE)
    return
  }
  raw.write('retry: 3000\n\n')
  void touchFeedReader(deps.db, org, deps.now()).catch((err) => log.warn({ err }, 'could not record the feed reader'))

  // Flow control: write while the socket accepts; when it pushes back, stop and re-read from the database
  // after 'drain'. The database is the buffer, so a connection holds at most one socket buffer and one
  // event, whatever the client's speed. A client that stays stalled is dropped; it resumes from its last id.
  let state: 'catchup' | 'live' | 'blocked' | 'closed' = 'catchup'
  let missed = false
  let stallTimer: NodeJS.Timeout | undefined
  const close = () => {
    if (state === 'closed') return
    state = 'closed'
    clearInterval(heartbeat)
    clearTimeout(stallTimer)
    unsubscribe()
    raw.end()
  }
  const write = (items: FeedItem[]) => {
    const sent: number[] = []
    for (const item of items) {
      if (item.pos <= lastSent) continue
      const accepted = raw.write(`id: ${item.pos}\nevent: ${item.type}\ndata: ${JSON.stringify(item)}\n\n`)
      lastSent = item.pos
      sent.push(item.pos)
      if (!accepted) {
        state = 'blocked'
        stallTimer = setTimeout(() => {
          log.info({ org, lastSent }, 'stalled stream dropped')
          raw.destroy()
        }, deps.stallMs)
        raw.once('drain', () => {
          clearTimeout(stallTimer)
          if (state !== 'blocked') return
          state = 'catchup'
          void pump()
        })
        break
      }
    }
    if (sent.length) {
      deps.hub.delivered(sent)
      deps.metrics.delivered.inc({ channel: 'stream' }, sent.length)
    }
  }
  const pump = async () => {
    try {
      for (;;) {
        missed = false
        const items = await readFeed(deps.db, org, lastSent, 200)
        if (state !== 'catchup') return
        if (items.length === 0) {
          if (missed) continue // something was sequenced while we read: read again
          state = 'live'
          return
        }
        write(items)
        if (state !== 'catchup') return
      }
    } catch (err) {
      log.error({ err }, 'stream catch-up failed')
      close()
    }
  }
  const unsubscribe = deps.hub.subscribe({
    orgId: org,
    push: (items) => {
      if (state === 'live') write(items)
      else missed = true // catching up or blocked: these will be read from the database
    },
    // Shutdown or drain: tell the client to reconnect soon (to another instance), then end cleanly.
    end: () => {
      if (state !== 'closed') raw.write(DRAIN_NOTICE)
      close()
    },
  })
  const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), HEARTBEAT_MS)
  raw.on('close', close)
  raw.on('error', close)
  await pump()
}

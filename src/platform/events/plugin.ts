import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { DatabaseHandle } from '../db/index.ts'
import { JobRunner } from '../jobs.ts'
import { Hub } from './hub.ts'
import { createNotifier } from './notifier.ts'

declare module 'fastify' {
  interface FastifyInstance {
    hub: Hub
    jobs: JobRunner
  }
}

export interface EventsPluginOptions {
  database: DatabaseHandle
  /** Start the background work (dispatch, scheduled jobs). Off for contract export; tests drive jobs by hand. */
  background: boolean
  /** Poll the job table (on by default); tests call app.jobs.runDue() with their clock instead. */
  pollJobs: boolean
}

/** The hub (feed dispatch to streams and long-polls) and the job runner of this instance. */
export default fp(
  async function events(app: FastifyInstance, opts: EventsPluginOptions) {
    const notifier = createNotifier(opts.database, app.log)
    const hub = new Hub(app.db, notifier, app.log, app.now, app.metrics)
    const jobs = new JobRunner({ db: app.db, log: app.log, now: app.now, metrics: app.metrics })
    app.decorate('hub', hub)
    app.decorate('jobs', jobs)
    app.metrics.addCollector(() => {
      app.metrics.openStreams.set(hub.connections)
      app.metrics.waitingLongPolls.set(hub.waiting)
      app.metrics.jobsRunning.reset()
      for (const [queue, n] of jobs.activeByQueue) app.metrics.jobsRunning.set({ queue }, n)
    })
    app.drain.onDrain(() => hub.drain())
    if (!opts.background) return
    app.addHook('onReady', async () => {
      await hub.start()
      if (opts.pollJobs) jobs.start()
    })
    // Streams are long-lived: end them first so that close() does not wait for them.
    app.addHook('preClose', async () => {
      await hub.close()
    })
    app.addHook('onClose', async () => {
      await jobs.stop()
    })
  },
  { name: 'events', dependencies: ['metrics', 'drain'] },
)

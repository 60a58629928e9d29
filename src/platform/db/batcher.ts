/**
 * Group commit for hot single-row writes: requests that arrive while statements are in flight are gathered and
 * sent together, one statement (and one commit) per group, instead of one round trip and one commit each.
 *
 * Why: on the bench, each small statement cost a socket round trip to a database process on the same cores, its
 * parse/bind/execute and its commit; a group of 20 costs little more than one of them. Nothing is traded: each
 * caller is answered only after the statement holding its item has committed.
 *
 * `key`: two items with the same key never go in the same group (the later one waits for the next), so that a
 * statement never has to decide between two requests on the same row.
 */
export interface BatcherOptions<I> {
  /** Statements in flight at once (each holds one pooled connection). */
  maxInFlight: number
  /** Items per statement at most. */
  maxBatch: number
  key?: (item: I) => string
}

interface Pending<I, R> {
  item: I
  resolve: (r: R) => void
  reject: (e: unknown) => void
}

export class Batcher<I, R> {
  private queue: Array<Pending<I, R>> = []
  private inFlight = 0
  private scheduled = false

  /** `run` answers one result per item, in the order given; an Error in its place fails that item's caller alone. */
  constructor(
    private readonly run: (items: I[]) => Promise<Array<R | Error>>,
    private readonly opts: BatcherOptions<I>,
  ) {}

  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject })
      this.schedule()
    })
  }

  private schedule() {
    if (this.scheduled || this.inFlight >= this.opts.maxInFlight || this.queue.length === 0) return
    this.scheduled = true
    // Let the requests already parsed in this turn of the event loop join the group.
    setImmediate(() => {
      this.scheduled = false
      this.flush()
    })
  }

  private take(): Array<Pending<I, R>> {
    const { key, maxBatch } = this.opts
    if (!key) return this.queue.splice(0, maxBatch)
    const seen = new Set<string>()
    const group: Array<Pending<I, R>> = []
    const rest: Array<Pending<I, R>> = []
    for (const p of this.queue) {
      const k = key(p.item)
      if (group.length < maxBatch && !seen.has(k)) {
        seen.add(k)
        group.push(p)
      } else rest.push(p)
    }
    this.queue = rest
    return group
  }

  private flush() {
    while (this.inFlight < this.opts.maxInFlight && this.queue.length > 0) {
      const group = this.take()
      this.inFlight++
      this.run(group.map((p) => p.item))
        .then(
          (results) => {
            // One result per item, always; never leave a request hanging if that ever broke.
            group.forEach((p, n) => {
              const r = results[n]
              if (r === undefined) p.reject(new Error('batched statement: no result for an item'))
              else if (r instanceof Error) p.reject(r)
              else p.resolve(r)
            })
          },
          (err) => {
            for (const p of group) p.reject(err)
          },
        )
        .finally(() => {
          this.inFlight--
          this.schedule()
        })
    }
  }
}

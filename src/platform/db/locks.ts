/**
 * The service's PostgreSQL advisory locks, one key each, in one place: two uses of one key make the one wait for
 * the other (a BDPM import, which holds its lock for its whole transaction, had the sequencer's key: events published
 * during an import got no feed position until it committed). Held until the transaction ends (the _xact_ forms).
 *
 * A lock on one thing of many (a chain, a pharmacy's request, a repeated failure) uses the two-key form with its
 * namespace here as the first key: PostgreSQL keeps the one-key and two-key forms apart, and the namespace keeps
 * each kind apart from the others (the repeated failures' lock was a bare hashtext() in the one-key form, where it
 * could fall on another lock's key). Keys already in use were kept, but for those two (operations guide: during a
 * rolling deploy the two versions do not serialise with each other on them).
 */
export const LOCKS = {
  /** One key: feed positions are given by one sequencer at a time (events/sequencer.ts). */
  sequencer: 7_203_115,
  /** One key: one availability import at a time (shortages). */
  availabilityImport: 7_203_116,
  /** One key: one BDPM import at a time (referential). */
  bdpmImport: 7_203_118,
  /** Namespace: an audit chain's appends, in order (audit.ts, migration 0019's audit_chain_head). */
  auditChain: 7_203_114,
  /** Namespace: a pharmacy's pending emergency request for a presentation (emergency). */
  emergencyPending: 7_203_117,
  /** Namespace: the repeated identical failures of one pharmacy on one pack, counted on one alert (serialization). */
  alertRepeat: 7_203_119,
} as const

import { assert } from '../platform/assert.ts';

/** Named bounds of metering; relations are checked at load. */
export const meteringLimits = {
  /** Events held in memory at most; beyond it new events are dropped and counted. */
  bufferEventsMax: 100_000,
  /**
   * Events written by one flush transaction. Its rollup upserts and commit cost the same for
   * 1,000 events as for 25,000, so larger batches ingest more per second (bench/metering.bench.ts:
   * PostgreSQL CPU per event 13 µs at 10,000, 9 µs at 25,000, 8.6 µs at 50,000).
   */
  flushBatchEventsMax: 25_000,
  /** The longest an event waits in memory before a flush starts (the crash-loss window). */
  flushIntervalMs: 1_000,
  /** A flush starts early once this many events are buffered. */
  flushEarlyAtEvents: 25_000,
  /** Graceful shutdown waits this long for the final flush. */
  shutdownFlushTimeoutMs: 10_000,
  /** Properties per event and the length of each value. */
  propertiesMax: 16,
  propertyValueLengthMax: 200,
  /** Storage sampler period, and tenants measured per run. */
  storageSampleIntervalMs: 60 * 60 * 1_000,
  storageSampleTenantsMax: 100_000,
  /** Buckets one usage query may return (hours in about two months). */
  usageBucketsMax: 1_500,
  /** Tenants whose in-memory counters feed /metrics and detection. */
  trackedTenantsMax: 100_000,
  /** Per-tenant Prometheus series: the top N consumers; the rest are summed as `other`. */
  metricsTopTenantsDefault: 20,
  metricsTopTenantsMax: 1_000,
  /** A month can be issued this long after it ends: every instance has flushed its usage by then. */
  invoiceIssueGraceMs: 60 * 60 * 1_000,
  /** Late usage of an issued month is billed on the invoices of at most this many months after it. */
  lateUsageMonthsMax: 12,
} as const;

assert(meteringLimits.flushEarlyAtEvents < meteringLimits.bufferEventsMax, 'flush early before the buffer is full');
assert(meteringLimits.flushBatchEventsMax <= meteringLimits.flushEarlyAtEvents, 'a batch fits in the early threshold');
assert(meteringLimits.metricsTopTenantsDefault <= meteringLimits.metricsTopTenantsMax, 'default top N within max');

import { assert } from '../platform/assert.ts';

/** Named bounds of the limits domain, with their relations checked at load. */
export const limitsLimits = {
  /** Plans (tier + overrides) are cached this long; an operator change takes effect within it. */
  planCacheTtlMs: 5_000,
  planCacheEntriesMax: 10_000,
  /** Bucket and quota entries the in-process store keeps before sweeping idle ones. */
  memoryStoreEntriesMax: 50_000,
  /** Longest wait for one of the tenant's database connection slots before DATABASE_CONNECTIONS_BUSY. */
  connectionWaitMsMax: 2_000,
  /** Waiters per tenant for a connection slot; beyond it the request fails at once. */
  connectionWaitersMax: 64,
  /** A tenant counts as active for the connection share this long after its last scope (to twice it). */
  activeTenantWindowMs: 1_000,
  /** Batch work gives way to firms' requests while one came this recently (batch-yield.ts). */
  batchBusyWindowMs: 1_000,
  /** Longest pacing wait of one batch transaction, however long the one before took. */
  batchPaceWaitMsMax: 2_000,
  /** An instance firms are using tells the others at most this often (interactive-signal.ts). */
  interactiveAnnounceEveryMs: 250,
  /** The longest wait before the interactive signal's connection is retried. */
  interactiveSignalReconnectMsMax: 30_000,
  /** Callers remembered as certain to be refused (penalty-box.ts). */
  penaltyEntriesMax: 10_000,
  /** Retry-After for bulkhead and shedding refusals. */
  retryAfterSecondsOverloaded: 1,
  /** Redis: connect and per-command timeouts, and the reconnect interval while it is down. */
  redisConnectTimeoutMs: 1_000,
  redisCommandTimeoutMs: 1_000,
  redisReconnectIntervalMs: 1_000,
  /** Overrides may not go beyond these. */
  ratePerSecondMax: 100_000,
  burstMax: 1_000_000,
  quotaLimitMax: 1_000_000_000,
  routeWeightMax: 100,
  statementTimeoutMsMax: 600_000,
  inFlightRequestsMaxUpper: 10_000,
  databaseConnectionsMaxUpper: 200,
} as const;

assert(
  limitsLimits.redisCommandTimeoutMs < limitsLimits.connectionWaitMsMax,
  'a Redis call must be shorter than a wait',
);
assert(
  limitsLimits.interactiveAnnounceEveryMs * 2 <= limitsLimits.batchBusyWindowMs,
  'a busy instance announces itself at least twice per busy window',
);

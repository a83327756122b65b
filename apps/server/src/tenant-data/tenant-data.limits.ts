import { assert } from '../platform/assert.ts';

/** Bounds of exports, purges and moves (docs/offboarding.md, docs/tier-changes.md). */
export const tenantDataLimits = {
  /** Rows one purge statement deletes; short transactions keep row locks brief on a shared database. */
  purgeBatchRows: 20_000,
  /** statement_timeout of maintenance transactions (a bulk copy of a large table is one statement). */
  maintenanceStatementTimeoutMs: 30 * 60_000,
  /** Export and move handlers are aborted after this long. */
  jobTimeoutMs: 60 * 60_000,
  exportMaxAttempts: 3,
  /** A failed move rolls back; it is not retried by itself (the operator asks again). */
  moveMaxAttempts: 1,
  /** Catch-up rounds before the freeze; the freeze comes early once a round is this small. */
  catchUpRoundsMax: 8,
  catchUpSmallRows: 500,
  /** Changed rows fetched and applied per statement during catch-up. */
  catchUpBatchRows: 2_000,
  /** How long the mover waits for writers in flight when it freezes (then it rolls back). */
  freezeLockWaitMs: 10_000,
  /** How long transactions older than the move's start may run before the move gives up. */
  oldTransactionsWaitMs: 30_000,
  /** Progress is written at most this often. */
  progressIntervalMs: 250,
  /**
   * After the flip the source is purged only once every instance has dropped its cached
   * placement (the registry cache lives 5 s), so a read routed by a stale cache still finds rows.
   */
  purgeGraceMs: 6_000,
  /** Exports listed per tenant. */
  listMax: 50,
} as const;

assert(
  tenantDataLimits.catchUpSmallRows < tenantDataLimits.catchUpBatchRows,
  'a small catch-up round fits in one batch',
);

import { assert } from '../platform/assert.ts';

/**
 * Named bounds of the job queue. Relations between them are checked at load: a heartbeat must
 * come well inside the lease, or a live worker would lose its jobs to recovery.
 */
export const jobLimits = {
  /** A claimed job belongs to its worker this long unless a heartbeat renews it. */
  leaseMs: 30_000,
  /** How often a worker renews the leases of its running jobs and reads cancellation requests. */
  heartbeatMs: 5_000,
  /** How often an idle worker looks for work (a local submission wakes it at once). */
  pollMs: 500,
  /** How often each worker sweeps for jobs whose lease expired (their worker died). */
  recoveryMs: 5_000,
  /**
   * Before each tenant transaction of a job, the worker waits at most this long for a moment
   * with no interactive request in flight on its instance (jobs.scope-gate.ts).
   */
  interactiveLullWaitMsMax: 250,
  /** Worker slots per process. */
  workerSlotsDefault: 4,
  workerSlotsMax: 64,
  /** Candidate tenants one claim looks at before it gives up for this round. */
  claimTenantsMax: 50,
  /** Retries: delay = base · 2^(attempt−1), at most the max, plus up to 10 % jitter. */
  backoffBaseMs: 1_000,
  backoffMaxMs: 10 * 60_000,
  backoffJitterRatio: 0.1,
  maxAttemptsDefault: 5,
  maxAttemptsMax: 100,
  priorityMin: -100,
  priorityMax: 100,
  /** A handler that runs longer is aborted (per kind it may be shorter). */
  handlerTimeoutMsDefault: 60 * 60_000,
  /** Progress is written at most this often per job. */
  progressFlushMs: 250,
  progressMessageLengthMax: 500,
  errorLengthMax: 2_000,
  /** How long shutdown waits for running handlers after aborting them. */
  shutdownGraceMs: 10_000,
  pageSizeDefault: 50,
  pageSizeMax: 200,
  /** Server-sent events: how often the stream reads the job, comment pings, and its lifetime. */
  eventsPollMs: 500,
  eventsPingMs: 15_000,
  eventsStreamMsMax: 15 * 60_000,
  /** Jobs one bulk submission may hold. */
  submitBatchMax: 5_000,
} as const;

assert(jobLimits.heartbeatMs * 3 <= jobLimits.leaseMs, 'jobLimits: three heartbeats must fit in a lease');
assert(jobLimits.backoffBaseMs <= jobLimits.backoffMaxMs, 'jobLimits: backoff base above its max');
assert(jobLimits.maxAttemptsDefault <= jobLimits.maxAttemptsMax, 'jobLimits: default attempts above max');
assert(jobLimits.eventsPollMs < jobLimits.eventsPingMs, 'jobLimits: events poll slower than pings');

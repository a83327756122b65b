import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Metering } from '../metering/metering.runtime.ts';
import { assert } from '../platform/assert.ts';
import type { TenantContext, TenantDb, TenantScopes } from '../platform/database/tenant-scope.ts';
import type { Platform } from '../platform/platform.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { type AttemptOutcome, backoffMs, type JobDispatcher } from './jobs.dispatcher.ts';
import { jobLimits } from './jobs.limits.ts';
import type { JobRegistry } from './jobs.registry.ts';
import { readTenantCheckpoint, writeCheckpoint, writeTenantCheckpoint } from './jobs.store.ts';
import {
  type ClaimedJob,
  type JobKind,
  JobLeaseLostError,
  type JobProgress,
  type JsonValue,
  PermanentJobError,
} from './jobs.types.ts';

/**
 * A worker: a fixed number of slots in one process. It claims jobs of the kinds it knows
 * (the database decides which tenant goes next and enforces each tenant's cap), rebuilds the
 * job's tenant context from the registry, and runs the handler inside that tenant's scope.
 * Heartbeats renew leases and carry cancellation; a sweep recovers jobs of dead workers.
 */
export interface JobWorkerOptions {
  dispatcher: JobDispatcher;
  registry: JobRegistry;
  scopes: Pick<TenantScopes, 'run'>;
  /** The tenant's current context from the registry, or null when it is unknown or not active. */
  tenantContext(tenantId: string): Promise<TenantContext | null>;
  log: Logger;
  slots?: number;
  leaseMs?: number;
  heartbeatMs?: number;
  pollMs?: number;
  recoveryMs?: number;
  backoffBaseMs?: number;
  shutdownGraceMs?: number;
  /** Restricts the kinds this worker claims (default: every registered kind). */
  kinds?: readonly string[];
  /** Told each attempt's own time (wall time less its transactions' waits to start) as a `job_us` usage event (metering); optional in tests. */
  usage?: Pick<Metering, 'recordUsage'>;
}

type AbortReason = 'cancelled' | 'lease_lost' | 'timeout' | 'shutdown';

interface RunningJob {
  job: ClaimedJob;
  controller: AbortController;
  reason: AbortReason | null;
  settled: Promise<void>;
}

const errorText = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

export class JobWorker {
  readonly id = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  readonly #options: JobWorkerOptions;
  readonly #slots: number;
  readonly #leaseMs: number;
  readonly #kinds: string[];
  readonly #log: Logger;
  readonly #running = new Map<string, RunningJob>();
  readonly #timers: NodeJS.Timeout[] = [];
  #pollTimer: NodeJS.Timeout | null = null;
  #filling = false;
  #fillAgain = false;
  #stopping = false;
  #started = false;

  constructor(options: JobWorkerOptions) {
    this.#options = options;
    this.#slots = options.slots ?? jobLimits.workerSlotsDefault;
    this.#leaseMs = options.leaseMs ?? jobLimits.leaseMs;
    this.#kinds = [...(options.kinds ?? options.registry.kinds())];
    this.#log = options.log.child({ worker: this.id });
    assert(this.#slots >= 1 && this.#slots <= jobLimits.workerSlotsMax, 'worker slots out of range');
    assert((options.heartbeatMs ?? jobLimits.heartbeatMs) * 3 <= this.#leaseMs, 'three heartbeats must fit in a lease');
    for (const kind of this.#kinds) assert(options.registry.get(kind), `worker asked for unknown kind ${kind}`);
  }

  get runningCount(): number {
    return this.#running.size;
  }

  start(): void {
    assert(!this.#started, 'a worker starts once');
    this.#started = true;
    // Renewals and sweeps skip rows a running transaction holds, so they do not wait on them; a
    // tick that finds the last one still running (a slow database) skips rather than pile up.
    const heartbeat = setInterval(
      nonOverlapping(() => this.#heartbeat()),
      this.#options.heartbeatMs ?? jobLimits.heartbeatMs,
    );
    const recovery = setInterval(
      nonOverlapping(() => this.#recover()),
      this.#options.recoveryMs ?? jobLimits.recoveryMs,
    );
    this.#timers.push(heartbeat, recovery);
    this.#log.info({ slots: this.#slots, kinds: this.#kinds }, 'job worker started');
    void this.#recover();
    this.wake();
  }

  /** Looks for work now (after a local submission, or when a slot frees). */
  wake(): void {
    if (!this.#started || this.#stopping) return;
    void this.#fill();
  }

  async #fill(): Promise<void> {
    if (this.#filling) {
      this.#fillAgain = true;
      return;
    }
    this.#filling = true;
    try {
      do {
        this.#fillAgain = false;
        while (!this.#stopping && this.#running.size < this.#slots) {
          const job = await this.#options.dispatcher.claim(this.id, this.#kinds, this.#leaseMs);
          if (!job) break;
          this.#launch(job);
        }
      } while (this.#fillAgain && !this.#stopping);
    } catch (error) {
      this.#log.error({ err: error }, 'claiming jobs failed; retrying after the poll interval');
    } finally {
      this.#filling = false;
      this.#schedulePoll();
    }
  }

  #schedulePoll(): void {
    if (this.#stopping) return;
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    this.#pollTimer = setTimeout(() => this.wake(), this.#options.pollMs ?? jobLimits.pollMs);
  }

  #launch(job: ClaimedJob): void {
    const entry: RunningJob = { job, controller: new AbortController(), reason: null, settled: Promise.resolve() };
    this.#running.set(job.id, entry);
    entry.settled = this.#execute(entry)
      .catch((error: unknown) => this.#log.error({ err: error, jobId: job.id }, 'recording a job outcome failed'))
      .finally(() => {
        this.#running.delete(job.id);
        this.wake();
      });
  }

  #abort(entry: RunningJob, reason: AbortReason): void {
    if (entry.reason !== null) return;
    entry.reason = reason;
    entry.controller.abort(new Error(`job ${reason.replace('_', ' ')}`));
  }

  async #execute(entry: RunningJob): Promise<void> {
    const { job } = entry;
    const log = this.#log.child({ jobId: job.id, tenantId: job.tenantId, kind: job.kind, attempt: job.attempts });
    const kind = this.#options.registry.get(job.kind);
    assert(kind !== undefined, `claimed a job of unknown kind ${job.kind}`);
    const timeout = setTimeout(
      () => this.#abort(entry, 'timeout'),
      kind.timeoutMs ?? jobLimits.handlerTimeoutMsDefault,
    );
    const progress = new ProgressWriter(this.#options.dispatcher, job, log);
    let outcome: AttemptOutcome;
    let lastProgress: JobProgress | null;
    try {
      outcome = await this.#attempt(entry, kind, progress, log);
    } finally {
      clearTimeout(timeout);
      lastProgress = await progress.close();
    }
    if (entry.reason === 'lease_lost') {
      log.warn('the job was recovered by another worker while this attempt ran; its outcome is dropped');
      return;
    }
    const recorded = await this.#options.dispatcher.finish(job, outcome, lastProgress);
    if (!recorded) log.warn({ outcome: outcome.kind }, 'the attempt no longer held the job; outcome dropped');
    else log.info({ outcome: outcome.kind }, 'job attempt ended');
  }

  async #attempt(
    entry: RunningJob,
    kind: JobKind<unknown>,
    progress: ProgressWriter,
    log: Logger,
  ): Promise<AttemptOutcome> {
    const { job } = entry;
    let payload: unknown;
    try {
      payload = kind.parsePayload(job.payload);
    } catch (error) {
      return { kind: 'dead', error: `invalid payload: ${errorText(error)}` };
    }
    const tenant = await this.#options.tenantContext(job.tenantId);
    // The tenant was suspended or removed after the claim: put the job back without using an attempt.
    if (tenant === null) return { kind: 'released' };
    const startedMs = performance.now();
    const scopes = new WaitCountingScopes(this.#options.scopes);
    let outcome: AttemptOutcome | null = null;
    // A tenant in its own database keeps its checkpoints there (see writeTenantCheckpoint).
    const dedicated = tenant.placement.model !== 'pool';
    try {
      const checkpoint = dedicated
        ? await scopes.run(tenant, (db) => readTenantCheckpoint(db, job.id))
        : job.checkpoint;
      const result = await kind.run({
        job: { ...job, checkpoint },
        payload,
        tenant,
        scopes,
        signal: entry.controller.signal,
        progress: (percent, message) => progress.set(percent, message ?? null),
        saveCheckpoint: async (db, checkpoint: JsonValue) => {
          assert(db.tenantId === job.tenantId, 'checkpoint written from another tenant scope');
          // The lease of a dedicated tenant's job is checked by the heartbeat, not in this transaction.
          if (dedicated) await writeTenantCheckpoint(db, job.id, job.attempts, checkpoint);
          else if (!(await writeCheckpoint(db, job.id, job.attempts, checkpoint, this.#leaseMs)))
            throw new JobLeaseLostError(job.id);
        },
        log,
      });
      outcome = { kind: 'succeeded', result };
    } catch (error) {
      outcome = this.#failure(entry, error);
    }
    this.#options.usage?.recordUsage({
      tenantId: tenant.tenantId,
      tier: tenant.tier,
      metric: 'job_us',
      // The attempt's own time: waits for its turn beside other firms' requests are not the firm's.
      quantity: Math.max(0, Math.round((performance.now() - startedMs - scopes.waitedMs) * 1_000)),
      properties: { kind: job.kind, outcome: outcome.kind },
    });
    return outcome;
  }

  #failure(entry: RunningJob, error: unknown): AttemptOutcome {
    switch (entry.reason) {
      case 'cancelled':
        return { kind: 'cancelled', error: 'cancelled on request' };
      case 'shutdown':
        return { kind: 'released' };
      case 'timeout':
        return {
          kind: 'failed',
          error: 'the handler ran past its time limit',
          retryDelayMs: backoffMs(entry.job.attempts, this.#options.backoffBaseMs),
        };
      default:
        if (error instanceof PermanentJobError) return { kind: 'dead', error: errorText(error) };
        if (error instanceof JobLeaseLostError) this.#abort(entry, 'lease_lost');
        return {
          kind: 'failed',
          error: errorText(error),
          retryDelayMs: backoffMs(entry.job.attempts, this.#options.backoffBaseMs),
        };
    }
  }

  async #heartbeat(): Promise<void> {
    const entries = [...this.#running.values()];
    if (entries.length === 0) return;
    try {
      const held = await this.#options.dispatcher.heartbeat(
        this.id,
        entries.map((entry) => entry.job.id),
        this.#leaseMs,
      );
      for (const entry of entries) {
        const cancelRequested = held.get(entry.job.id);
        if (cancelRequested === undefined) {
          // Still running here but no longer ours in the database: it may have just finished.
          if (this.#running.has(entry.job.id)) this.#abort(entry, 'lease_lost');
        } else if (cancelRequested) this.#abort(entry, 'cancelled');
      }
    } catch (error) {
      this.#log.error({ err: error }, 'renewing job leases failed');
    }
  }

  async #recover(): Promise<void> {
    try {
      const recovered = await this.#options.dispatcher.recoverExpired(this.#options.backoffBaseMs);
      if (recovered > 0) {
        this.#log.warn({ recovered }, 'recovered jobs whose worker stopped (lease expired)');
        this.wake();
      }
    } catch (error) {
      this.#log.error({ err: error }, 'recovering expired jobs failed');
    }
  }

  /**
   * Stops claiming, asks running handlers to stop, and waits (bounded) for them: a job that
   * stops in time goes back to the queue without using an attempt; one that does not keeps
   * its lease and is recovered when the lease expires.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    // A claim in flight may still hand us a job: let it land so it is stopped with the rest.
    while (this.#filling) await new Promise((resolve) => setTimeout(resolve, 10));
    const entries = [...this.#running.values()];
    for (const entry of entries) this.#abort(entry, 'shutdown');
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      graceTimer = setTimeout(resolve, this.#options.shutdownGraceMs ?? jobLimits.shutdownGraceMs);
    });
    await Promise.race([Promise.all(entries.map((entry) => entry.settled)), grace]);
    clearTimeout(graceTimer);
    this.#log.info({ abandoned: this.#running.size }, 'job worker stopped');
  }
}

/** Runs `work` unless its previous run is still going. */
function nonOverlapping(work: () => Promise<void>): () => void {
  let running = false;
  return () => {
    if (running) return;
    running = true;
    void work().finally(() => {
      running = false;
    });
  };
}

/**
 * Progress writes while the attempt runs, at most one per flush interval per job. A write that
 * finds the job's row locked by the job's own transaction (`busy`) is put back and tried at the
 * next interval, unless newer progress came in meanwhile; whatever is still unwritten at the
 * end goes with the attempt's outcome (`close`), so the last progress is never lost.
 */
class ProgressWriter {
  readonly #dispatcher: JobDispatcher;
  readonly #job: ClaimedJob;
  readonly #log: Logger;
  #pending: JobProgress | null = null;
  #timer: NodeJS.Timeout | null = null;
  #lastWriteMs = 0;
  #writes: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(dispatcher: JobDispatcher, job: ClaimedJob, log: Logger) {
    this.#dispatcher = dispatcher;
    this.#job = job;
    this.#log = log;
  }

  set(percent: number, message: string | null): void {
    assert(Number.isFinite(percent), 'progress percent must be a number');
    this.#pending = { percent: Math.max(0, Math.min(100, Math.floor(percent))), message };
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    const waitMs = Math.max(0, this.#lastWriteMs + jobLimits.progressFlushMs - Date.now());
    this.#timer = setTimeout(() => this.#flush(), waitMs);
  }

  #flush(): void {
    this.#timer = null;
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = null;
    this.#lastWriteMs = Date.now();
    this.#writes = this.#writes.then(() =>
      this.#dispatcher.writeProgress(this.#job, pending.percent, pending.message).then(
        (outcome) => {
          if (outcome !== 'busy' || this.#pending !== null) return;
          this.#pending = pending;
          this.#schedule();
        },
        (error: unknown) => this.#log.warn({ err: error }, 'writing job progress failed'),
      ),
    );
  }

  /** Stops writing and returns the progress not yet written, for the attempt's outcome to carry. */
  async close(): Promise<JobProgress | null> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#writes;
    return this.#pending;
  }
}

/**
 * One attempt's view of the tenant scopes: counts how long its transactions waited before
 * their work began — for batch work's turn beside interactive requests, then a connection —
 * so the attempt's metered time (job_us) leaves out the time it gave way to others.
 */
class WaitCountingScopes implements Pick<TenantScopes, 'run'> {
  readonly #scopes: Pick<TenantScopes, 'run'>;
  waitedMs = 0;

  constructor(scopes: Pick<TenantScopes, 'run'>) {
    this.#scopes = scopes;
  }

  async run<T>(tenant: TenantContext, work: (db: TenantDb) => Promise<T>): Promise<T> {
    const calledMs = performance.now();
    return await this.#scopes.run(tenant, (db) => {
      this.waitedMs += performance.now() - calledMs;
      return work(db);
    });
  }
}

/** A worker wired to a platform: tenant contexts come from the registry, and only active tenants run. */
export function createJobWorker(
  platform: Pick<Platform, 'jobDispatcher' | 'jobRegistry' | 'batchScopes' | 'tenancy' | 'metering'>,
  log: Logger,
  options: Omit<JobWorkerOptions, 'dispatcher' | 'registry' | 'scopes' | 'tenantContext' | 'log' | 'usage'> = {},
): JobWorker {
  return new JobWorker({
    ...options,
    usage: platform.metering,
    dispatcher: platform.jobDispatcher,
    registry: platform.jobRegistry,
    // Handlers' transactions yield to this instance's interactive requests first.
    scopes: platform.batchScopes,
    log,
    async tenantContext(tenantId) {
      // The registry's short cache, as for requests: a suspension takes effect within seconds.
      const record = await platform.tenancy.lookup(tenantId);
      return record && record.status === 'active' ? tenantContextOf(record) : null;
    },
  });
}

import { recordAuditEvent } from '../audit/audit.service.ts';
import { assert } from '../platform/assert.ts';
import { runIdempotent } from '../platform/database/idempotency.ts';
import type { TenantContext, TenantScopes } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { formatId, newUuid } from '../platform/ids.ts';
import type { JobDispatcher } from './jobs.dispatcher.ts';
import { jobLimits } from './jobs.limits.ts';
import type { JobRegistry } from './jobs.registry.ts';
import { cancelJob, findJobSummary, insertJobs, type JobInsert, listAttempts, listJobs } from './jobs.store.ts';
import type { Job, JobAttempt, JobPage, JobStatus, NewJob, TenantJobCounts } from './jobs.types.ts';

/** Batch jobs as tenants and the operator see them: submit, read, list, watch, cancel. */
export class JobsService {
  readonly #scopes: TenantScopes;
  readonly #registry: JobRegistry;
  readonly #dispatcher: JobDispatcher;
  readonly #submitted = new Set<() => void>();

  constructor(scopes: TenantScopes, registry: JobRegistry, dispatcher: JobDispatcher) {
    this.#scopes = scopes;
    this.#registry = registry;
    this.#dispatcher = dispatcher;
  }

  /** Calls `listener` after each submission commits (an in-process worker wakes up at once). */
  onSubmitted(listener: () => void): () => void {
    this.#submitted.add(listener);
    return () => this.#submitted.delete(listener);
  }

  #toInsert(job: NewJob): JobInsert {
    const kind = this.#registry.get(job.kind);
    assert(kind !== undefined, `no handler is registered for job kind "${job.kind}"`);
    const priority = job.priority ?? 0;
    const maxAttempts = job.maxAttempts ?? kind.maxAttempts ?? jobLimits.maxAttemptsDefault;
    assert(
      Number.isInteger(priority) && priority >= jobLimits.priorityMin && priority <= jobLimits.priorityMax,
      'job priority out of range',
    );
    assert(
      Number.isInteger(maxAttempts) && maxAttempts >= 1 && maxAttempts <= jobLimits.maxAttemptsMax,
      'job maxAttempts out of range',
    );
    return {
      id: newUuid(),
      kind: job.kind,
      payload: job.payload,
      priority,
      maxAttempts,
      createdBy: job.createdBy ?? null,
    };
  }

  #announce(): void {
    for (const listener of this.#submitted) listener();
  }

  /** Queues jobs for the tenant in one transaction (kinds must be registered: a programmer error otherwise). */
  async submit(tenant: TenantContext, jobs: readonly NewJob[]): Promise<Job[]> {
    assert(jobs.length >= 1 && jobs.length <= jobLimits.submitBatchMax, 'job batch size out of range');
    const inserts = jobs.map((job) => this.#toInsert(job));
    const submitted = await this.#scopes.run(tenant, async (db) => {
      const created = await insertJobs(db, inserts);
      const first = created[0];
      assert(first !== undefined, 'job insert returned rows');
      await recordAuditEvent(db, {
        action: 'job.create',
        resource: { type: 'job', id: formatId('job', first.id) },
        after: created,
        summary: { jobs: created.length, kind: first.kind },
      });
      return created;
    });
    this.#announce();
    return submitted;
  }

  /**
   * Queues one job behind an Idempotency-Key: a retry returns the first response, not a second job.
   * Errors: IDEMPOTENCY_KEY_INVALID, IDEMPOTENCY_KEY_REUSED.
   */
  async submitIdempotent<Body>(
    tenant: TenantContext,
    job: NewJob,
    idempotency: { key: string | undefined; route: string; request: unknown },
    render: (job: Job) => Body,
  ): Promise<{ status: number; body: Body; replayed: boolean }> {
    const insert = this.#toInsert(job);
    const outcome = await this.#scopes.run(tenant, (db) =>
      runIdempotent(db, idempotency.key, idempotency.route, idempotency.request, async () => {
        const [created] = await insertJobs(db, [insert]);
        assert(created !== undefined, 'job insert returned no row');
        await recordAuditEvent(db, {
          action: 'job.create',
          resource: { type: 'job', id: formatId('job', created.id) },
          after: created,
          summary: { jobs: 1, kind: created.kind },
        });
        return { status: 202, body: render(created) };
      }),
    );
    if (!outcome.replayed) this.#announce();
    return outcome;
  }

  /** The job (without its payload) and its attempts. Errors: JOB_NOT_FOUND (also for another tenant's job). */
  async get(tenant: TenantContext, id: string): Promise<{ job: Job; attempts: JobAttempt[] }> {
    const found = await this.#scopes.run(tenant, async (db) => {
      const job = await findJobSummary(db, id);
      return job ? { job, attempts: await listAttempts(db, id) } : null;
    });
    if (!found) throw new AppError('JOB_NOT_FOUND');
    return found;
  }

  /** The job without its payload, for event streams. Errors: JOB_NOT_FOUND. */
  async getSummary(tenant: TenantContext, id: string): Promise<Job> {
    const job = await this.#scopes.runOne(tenant, (db) => findJobSummary(db, id));
    if (!job) throw new AppError('JOB_NOT_FOUND');
    return job;
  }

  async list(
    tenant: TenantContext,
    beforeId: string | null,
    status: JobStatus | null,
    limit: number,
  ): Promise<JobPage> {
    return await this.#scopes.runOne(tenant, (db) => listJobs(db, beforeId, status, limit));
  }

  /**
   * Cancels a queued job at once, or asks a running job's handler to stop (it sees its signal
   * abort within one heartbeat). Cancelling a cancelled job again is harmless.
   * Errors: JOB_NOT_FOUND, JOB_ALREADY_FINISHED.
   */
  async cancel(tenant: TenantContext, id: string): Promise<Job> {
    return await this.#scopes.run(tenant, async (db) => {
      const outcome = await cancelJob(db, id);
      const job = await findJobSummary(db, id);
      if (!job) throw new AppError('JOB_NOT_FOUND');
      if (outcome === null && job.status !== 'cancelled') {
        throw new AppError(
          'JOB_ALREADY_FINISHED',
          `The job has already ${job.status === 'dead' ? 'failed' : job.status}.`,
        );
      }
      // A repeated cancel changes nothing and records nothing.
      if (outcome !== null) {
        await recordAuditEvent(db, {
          action: 'job.cancel',
          resource: { type: 'job', id: formatId('job', id) },
          after: job,
          summary: { kind: job.kind, status: job.status },
        });
      }
      return job;
    });
  }

  /** Operator view: per-tenant queued, running and dead-lettered jobs. */
  async tenantCounts(): Promise<TenantJobCounts[]> {
    return await this.#dispatcher.tenantCounts();
  }
}

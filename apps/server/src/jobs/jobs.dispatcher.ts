import type pg from 'pg';
import type { TierCatalogue } from '../tenancy/tiers.ts';
import { jobLimits } from './jobs.limits.ts';
import { claimedJobFromRow, type JobRow, jobColumns } from './jobs.store.ts';
import type { ClaimedJob, JobProgress, JsonValue, TenantJobCounts } from './jobs.types.ts';

/**
 * The dispatcher's side of the queue: claims across tenants, leases, progress, outcomes and
 * recovery. It runs as the owner role, which sees every tenant's jobs only through the
 * owner-only policy `dispatcher_all` (0005_jobs.sql); it never touches a tenant's other data,
 * which handlers reach through the tenant scope.
 */
export type AttemptOutcome =
  | { kind: 'succeeded'; result: JsonValue }
  | { kind: 'failed'; error: string; retryDelayMs: number }
  | { kind: 'dead'; error: string }
  | { kind: 'cancelled'; error: string | null }
  | { kind: 'released' };

export interface TierScheduling {
  concurrency: number;
  weight: number;
}

/** Per-tier caps and weights, as the claim function takes them. */
export function tierScheduling(tiers: TierCatalogue): Record<string, TierScheduling> {
  return Object.fromEntries(
    tiers
      .list()
      .map((tier) => [
        tier.name,
        { concurrency: tier.limits.jobConcurrency, weight: tier.limits.jobWeight ?? tier.limits.jobConcurrency },
      ]),
  );
}

/** Exponential backoff with up to 10 % jitter on top, so the nominal delay is a lower bound. */
export function backoffMs(attempt: number, baseMs: number = jobLimits.backoffBaseMs, random = Math.random): number {
  const nominal = Math.min(baseMs * 2 ** Math.max(0, attempt - 1), jobLimits.backoffMaxMs);
  return Math.round(nominal * (1 + jobLimits.backoffJitterRatio * random()));
}

// The status an attempt's outcome ($5) leads to; a failure retries until the attempts run out.
const nextStatus = `(case $5::text
    when 'succeeded' then 'succeeded'
    when 'cancelled' then 'cancelled'
    when 'dead' then 'dead'
    when 'released' then 'queued'
    else case when attempts >= max_attempts then 'dead' else 'queued' end
  end)`;

function clip(text: string, lengthMax: number): string {
  return text.length > lengthMax ? `${text.slice(0, lengthMax - 1)}…` : text;
}

export class JobDispatcher {
  readonly #pool: pg.Pool;
  readonly #tiers: string;

  constructor(ownerPool: pg.Pool, tiers: TierCatalogue) {
    this.#pool = ownerPool;
    this.#tiers = JSON.stringify(tierScheduling(tiers));
  }

  /** Claims the next job for this worker, or null when no tenant has work it may start now. */
  async claim(worker: string, kinds: readonly string[], leaseMs: number): Promise<ClaimedJob | null> {
    if (kinds.length === 0) return null;
    const { rows } = await this.#pool.query<JobRow>(
      `select ${jobColumns} from jobs_claim($1, $2::text[], $3::jsonb, $4, $5)`,
      [worker, kinds, this.#tiers, leaseMs, jobLimits.claimTenantsMax],
    );
    return rows[0] ? claimedJobFromRow(rows[0]) : null;
  }

  /**
   * Renews the leases this worker holds. Returns, per job id still held, whether a cancel was
   * requested; a job missing from the answer was lost (recovered after its lease expired).
   * A row another transaction holds — a pooled firm's job writing its checkpoint in its own
   * tenant transaction — is not waited for: it is still held (as last committed) and its
   * checkpoint write renews the lease (writeCheckpoint), so one long chunk never delays the
   * renewals and cancel checks of the worker's other jobs.
   */
  async heartbeat(worker: string, jobIds: readonly string[], leaseMs: number): Promise<Map<string, boolean>> {
    if (jobIds.length === 0) return new Map();
    const { rows } = await this.#pool.query<{ id: string; cancel_requested: boolean }>(
      `with renewable as (
         select tenant_id, id from jobs
          where id = any($2::uuid[]) and status = 'running' and lease_owner = $1
            for no key update skip locked
       ), renewed as (
         update jobs j set lease_expires_at = clock_timestamp() + $3 * interval '1 millisecond'
           from renewable r
          where j.tenant_id = r.tenant_id and j.id = r.id
       )
       select id, cancel_requested_at is not null as cancel_requested from jobs
        where id = any($2::uuid[]) and status = 'running' and lease_owner = $1`,
      [worker, jobIds, leaseMs],
    );
    return new Map(rows.map((row) => [row.id, row.cancel_requested]));
  }

  /**
   * Writes progress while the attempt still holds the job. A pooled firm's handler writes its
   * checkpoints to the same row inside its own (batch-priority) transactions, so the row can be
   * locked for as long as one of those runs; progress is advice, so rather than hold one of
   * the control pool's few connections waiting for it, a locked row is skipped: `busy`, to be
   * written again later. `lost` when the attempt no longer holds the job.
   */
  async writeProgress(job: ClaimedJob, percent: number, message: string | null): Promise<'written' | 'busy' | 'lost'> {
    const { rows } = await this.#pool.query<{ written: boolean; held: boolean }>(
      `with target as (
         select tenant_id, id from jobs
          where tenant_id = $1 and id = $2 and status = 'running' and lease_owner = $3 and attempts = $4
            for no key update skip locked
       ), written as (
         update jobs j set progress_percent = $5, progress_message = $6, updated_at = clock_timestamp()
           from target t
          where j.tenant_id = t.tenant_id and j.id = t.id
         returning j.id
       )
       select exists (select 1 from written) as written,
              exists (select 1 from jobs
                       where tenant_id = $1 and id = $2 and status = 'running' and lease_owner = $3
                         and attempts = $4) as held`,
      [
        job.tenantId,
        job.id,
        job.leaseOwner,
        job.attempts,
        percent,
        message === null ? null : clip(message, jobLimits.progressMessageLengthMax),
      ],
    );
    const row = rows[0];
    if (row?.written) return 'written';
    return row?.held ? 'busy' : 'lost';
  }

  /**
   * Records how an attempt ended, in one statement (the job and its attempt row together);
   * false when the attempt had already lost the job.
   */
  async finish(job: ClaimedJob, outcome: AttemptOutcome, progress: JobProgress | null = null): Promise<boolean> {
    const error = 'error' in outcome && outcome.error !== null ? clip(outcome.error, jobLimits.errorLengthMax) : null;
    const { rows } = await this.#pool.query<{ status: string }>(
      `with done as (
         update jobs
            set status = ${nextStatus},
                finished_at = case when ${nextStatus} in ('succeeded', 'cancelled', 'dead') then clock_timestamp() end,
                result = case when $5::text = 'succeeded' then $6::jsonb else result end,
                last_error = coalesce($7::text, last_error),
                -- A released attempt (shutdown) does not count against the job: it gets one more.
                max_attempts = case when $5::text = 'released' then least(max_attempts + 1, 100) else max_attempts end,
                run_after = case when $5::text = 'failed' then clock_timestamp() + $8 * interval '1 millisecond'
                                 else clock_timestamp() end,
                -- Progress the attempt set but could not write while it ran (writeProgress: busy).
                progress_percent = case when $5::text = 'succeeded' then 100
                                        else coalesce($10::integer, progress_percent) end,
                progress_message = case when $10::integer is null then progress_message else $11::text end,
                lease_owner = null,
                lease_expires_at = null,
                updated_at = clock_timestamp()
          where tenant_id = $1 and id = $2 and status = 'running' and lease_owner = $3 and attempts = $4
          returning status
       ), attempt as (
         update job_attempts
            set ended_at = clock_timestamp(), outcome = $9, error = $7
          where tenant_id = $1 and job_id = $2 and attempt = $4 and exists (select 1 from done)
       )
       select status from done`,
      [
        job.tenantId,
        job.id,
        job.leaseOwner,
        job.attempts,
        outcome.kind,
        outcome.kind === 'succeeded' ? JSON.stringify(outcome.result) : null,
        error,
        outcome.kind === 'failed' ? outcome.retryDelayMs : 0,
        outcome.kind === 'dead' ? 'failed' : outcome.kind,
        progress?.percent ?? null,
        progress?.message == null ? null : clip(progress.message, jobLimits.progressMessageLengthMax),
      ],
    );
    return rows.length === 1;
  }

  /**
   * Recovers jobs whose worker stopped heartbeating: the lease expired, so the attempt is
   * recorded as lost and the job goes back to the queue after its backoff (or to the dead
   * letters when it has used its attempts, or to cancelled when a cancel was asked for). A row
   * a transaction holds is skipped: a dead worker's transactions end with its connections, so
   * it is a live attempt writing its checkpoint, which renews the lease when it commits.
   */
  async recoverExpired(backoffBaseMs: number = jobLimits.backoffBaseMs): Promise<number> {
    const error = 'the worker holding this job stopped renewing its lease (lease expired)';
    const { rows } = await this.#pool.query<{ id: string }>(
      `with expired as (
         select tenant_id, id from jobs
          where status = 'running' and lease_expires_at < clock_timestamp()
            for no key update skip locked
       ), lost as (
         update jobs j
            set status = case when cancel_requested_at is not null then 'cancelled'
                              when attempts >= max_attempts then 'dead'
                              else 'queued' end,
                run_after = clock_timestamp()
                  + least($1 * power(2, greatest(attempts - 1, 0)), $2) * interval '1 millisecond',
                finished_at = case when cancel_requested_at is not null or attempts >= max_attempts
                                   then clock_timestamp() end,
                last_error = $3,
                lease_owner = null,
                lease_expires_at = null,
                updated_at = clock_timestamp()
           from expired e
          where j.tenant_id = e.tenant_id and j.id = e.id
          returning j.tenant_id, j.id, j.attempts
       )
       update job_attempts a
          set ended_at = clock_timestamp(), outcome = 'lost', error = $3
         from lost
        where a.tenant_id = lost.tenant_id and a.job_id = lost.id and a.attempt = lost.attempts
       returning lost.id`,
      [backoffBaseMs, jobLimits.backoffMaxMs, error],
    );
    return rows.length;
  }

  /** Queued, running and dead-lettered jobs per tenant, with the cap each tenant's tier gives. */
  async tenantCounts(): Promise<TenantJobCounts[]> {
    const tiers = JSON.parse(this.#tiers) as Record<string, TierScheduling>;
    const { rows } = await this.#pool.query<{
      tenant_id: string;
      tier: string;
      queued: number;
      running: number;
      dead: number;
    }>(
      `select j.tenant_id, tn.tier,
              count(*) filter (where j.status = 'queued')::integer as queued,
              count(*) filter (where j.status = 'running')::integer as running,
              count(*) filter (where j.status = 'dead')::integer as dead
         from jobs j join tenants tn on tn.id = j.tenant_id
        where j.status in ('queued', 'running', 'dead')
        group by j.tenant_id, tn.tier
        order by j.tenant_id`,
    );
    return rows.map((row) => ({
      tenantId: row.tenant_id,
      tier: row.tier,
      queued: row.queued,
      running: row.running,
      dead: row.dead,
      concurrencyCap: tiers[row.tier]?.concurrency ?? null,
    }));
  }
}

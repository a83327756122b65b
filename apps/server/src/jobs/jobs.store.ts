import type { TenantDb } from '../platform/database/tenant-scope.ts';
import type { ClaimedJob, Job, JobAttempt, JobPage, JobStatus, JsonValue } from './jobs.types.ts';

/**
 * Jobs seen from inside a tenant scope (runtime role): submit, read, list, cancel, checkpoint.
 * No query names a tenant; row-level security supplies it and inserts take the scope's id.
 */
export interface JobRow {
  tenant_id: string;
  id: string;
  kind: string;
  status: JobStatus;
  priority: number;
  payload: JsonValue;
  checkpoint: JsonValue | null;
  result: JsonValue | null;
  attempts: number;
  max_attempts: number;
  run_after: Date;
  lease_owner: string | null;
  progress_percent: number;
  progress_message: string | null;
  cancel_requested_at: Date | null;
  last_error: string | null;
  created_by: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
}

export const jobColumns = `tenant_id, id, kind, status, priority, payload, checkpoint, result, attempts, max_attempts,
  run_after, lease_owner, progress_percent, progress_message, cancel_requested_at, last_error, created_by,
  created_at, started_at, finished_at, updated_at`;

// Columns for reads that do not need the payload (lists, event streams).
const summaryColumns = jobColumns.replace(
  'payload, checkpoint,',
  "'null'::jsonb as payload, null::jsonb as checkpoint,",
);

export function jobFromRow(row: JobRow): Job {
  return {
    tenantId: row.tenant_id,
    id: row.id,
    kind: row.kind,
    status: row.status,
    priority: row.priority,
    payload: row.payload,
    result: row.result,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAfter: row.run_after,
    progress: { percent: row.progress_percent, message: row.progress_message },
    cancelRequestedAt: row.cancel_requested_at,
    lastError: row.last_error,
    createdBy: row.created_by,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    updatedAt: row.updated_at,
  };
}

export function claimedJobFromRow(row: JobRow): ClaimedJob {
  return { ...jobFromRow(row), leaseOwner: row.lease_owner ?? '', checkpoint: row.checkpoint };
}

export interface JobInsert {
  id: string;
  kind: string;
  payload: JsonValue;
  priority: number;
  maxAttempts: number;
  createdBy: string | null;
}

/**
 * Inserts queued jobs and registers the tenant with the scheduler (once). The payloads are not
 * read back (an import's is up to 2 MiB): each job returned carries the payload it was given.
 */
export async function insertJobs(db: TenantDb, jobs: readonly JobInsert[]): Promise<Job[]> {
  await db.query('insert into job_tenants (tenant_id) values ($1) on conflict (tenant_id) do nothing', [db.tenantId]);
  const { rows } = await db.query<JobRow>(
    `insert into jobs (tenant_id, id, kind, status, priority, payload, max_attempts, created_by)
     select $1, j.id, j.kind, 'queued', j.priority, coalesce(j.payload, 'null'::jsonb), j.max_attempts, j.created_by
       from jsonb_to_recordset($2::jsonb)
         as j(id uuid, kind text, priority smallint, payload jsonb, max_attempts integer, created_by uuid)
     returning ${summaryColumns}`,
    [
      db.tenantId,
      JSON.stringify(
        jobs.map((job) => ({
          id: job.id,
          kind: job.kind,
          priority: job.priority,
          payload: job.payload,
          max_attempts: job.maxAttempts,
          created_by: job.createdBy,
        })),
      ),
    ],
  );
  const payloads = new Map(jobs.map((job) => [job.id, job.payload]));
  return rows.map((row) => ({ ...jobFromRow(row), payload: payloads.get(row.id) ?? null }));
}

/** The job without its payload: what an event stream re-reads every poll. */
export async function findJobSummary(db: TenantDb, id: string): Promise<Job | null> {
  const { rows } = await db.query<JobRow>(`select ${summaryColumns} from jobs where id = $1`, [id]);
  return rows[0] ? jobFromRow(rows[0]) : null;
}

export async function listAttempts(db: TenantDb, jobId: string): Promise<JobAttempt[]> {
  const { rows } = await db.query<{
    attempt: number;
    worker: string;
    started_at: Date;
    ended_at: Date | null;
    outcome: JobAttempt['outcome'];
    error: string | null;
  }>(
    'select attempt, worker, started_at, ended_at, outcome, error from job_attempts where job_id = $1 order by attempt',
    [jobId],
  );
  return rows.map((row) => ({
    attempt: row.attempt,
    worker: row.worker,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    outcome: row.outcome,
    error: row.error,
  }));
}

/** Newest first, keyset-paginated on the time-ordered id; optionally one status. */
export async function listJobs(
  db: TenantDb,
  beforeId: string | null,
  status: JobStatus | null,
  limit: number,
): Promise<JobPage> {
  const { rows } = await db.query<JobRow>(
    `select ${summaryColumns} from jobs
      where ($1::uuid is null or id < $1::uuid) and ($2::text is null or status = $2::text)
      order by id desc
      limit $3`,
    [beforeId, status, limit + 1],
  );
  const items = rows.slice(0, limit).map(jobFromRow);
  const last = items.at(-1);
  return { items, nextBeforeId: rows.length > limit && last ? last.id : null };
}

/**
 * Cancels in one statement: a queued job is cancelled at once; a running one gets a request
 * its worker reads at the next heartbeat. If a claim took the row meanwhile, PostgreSQL
 * re-evaluates this update on the running row, so the request is never lost.
 */
export async function cancelJob(db: TenantDb, id: string): Promise<'cancelled' | 'requested' | null> {
  const { rows } = await db.query<{ status: JobStatus }>(
    `update jobs
        set status = case when status = 'queued' then 'cancelled' else status end,
            finished_at = case when status = 'queued' then clock_timestamp() else finished_at end,
            cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp()),
            updated_at = clock_timestamp()
      where id = $1 and status in ('queued', 'running')
      returning status`,
    [id],
  );
  const row = rows[0];
  if (!row) return null;
  return row.status === 'cancelled' ? 'cancelled' : 'requested';
}

/**
 * Writes a handler's checkpoint in its tenant transaction, and renews the attempt's lease with
 * it: the heartbeat skips the row while this transaction holds it (migration 0027). False when
 * the attempt lost the job.
 */
export async function writeCheckpoint(
  db: TenantDb,
  id: string,
  attempt: number,
  checkpoint: JsonValue,
  leaseMs: number,
): Promise<boolean> {
  const result = await db.query(
    `update jobs set checkpoint = $3, updated_at = clock_timestamp(),
            lease_expires_at = greatest(lease_expires_at, clock_timestamp() + $4 * interval '1 millisecond')
      where id = $1 and attempts = $2 and status = 'running'`,
    [id, attempt, JSON.stringify(checkpoint), leaseMs],
  );
  return result.rowCount === 1;
}

/**
 * A tenant in its own database keeps its jobs' checkpoints there (job_checkpoints), in the
 * transaction of the batch they describe; the queue row in the shared database cannot join it.
 */
export async function writeTenantCheckpoint(
  db: TenantDb,
  jobId: string,
  attempt: number,
  checkpoint: JsonValue,
): Promise<void> {
  await db.query(
    `insert into job_checkpoints (tenant_id, job_id, attempt, checkpoint) values ($1, $2, $3, $4)
     on conflict (tenant_id, job_id) do update
       set attempt = excluded.attempt, checkpoint = excluded.checkpoint, updated_at = now()`,
    [db.tenantId, jobId, attempt, JSON.stringify(checkpoint)],
  );
}

export async function readTenantCheckpoint(db: TenantDb, jobId: string): Promise<JsonValue | null> {
  const { rows } = await db.query<{ checkpoint: JsonValue }>(
    'select checkpoint from job_checkpoints where job_id = $1',
    [jobId],
  );
  return rows[0]?.checkpoint ?? null;
}

/** Appends a batch's row reports (job_row_reports), in the batch's own tenant transaction. */
export async function writeRowReports(
  db: TenantDb,
  jobId: string,
  reports: readonly { row: number; report: JsonValue }[],
): Promise<void> {
  if (reports.length === 0) return;
  await db.query(
    `insert into job_row_reports (tenant_id, job_id, row_no, report)
     select $1, $2, r.row_no, r.report from jsonb_to_recordset($3::jsonb) as r(row_no integer, report jsonb)`,
    [db.tenantId, jobId, JSON.stringify(reports.map(({ row, report }) => ({ row_no: row, report })))],
  );
}

/** Every row report of a job, in row order: one value to parse, not a row per report. */
export async function readRowReports(db: TenantDb, jobId: string): Promise<JsonValue[]> {
  const { rows } = await db.query<{ reports: JsonValue[] }>(
    `select coalesce(jsonb_agg(report order by row_no), '[]') as reports from job_row_reports where job_id = $1`,
    [jobId],
  );
  return rows[0]?.reports ?? [];
}

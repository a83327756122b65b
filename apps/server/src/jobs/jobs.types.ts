import type { Logger } from 'pino';
import type { TenantContext, TenantDb, TenantScopes } from '../platform/database/tenant-scope.ts';

/** Plain data of the batch-job queue (docs/jobs.md). Ids are uuids; public ids add `job_`. */
export const jobStatuses = ['queued', 'running', 'succeeded', 'cancelled', 'dead'] as const;
export type JobStatus = (typeof jobStatuses)[number];

/** Statuses a job never leaves. */
export const finishedStatuses: ReadonlySet<JobStatus> = new Set(['succeeded', 'cancelled', 'dead']);

/** A JSON value as stored in jsonb. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface JobProgress {
  percent: number;
  message: string | null;
}

export interface Job {
  tenantId: string;
  id: string;
  kind: string;
  status: JobStatus;
  priority: number;
  payload: JsonValue;
  result: JsonValue | null;
  attempts: number;
  maxAttempts: number;
  runAfter: Date;
  progress: JobProgress;
  cancelRequestedAt: Date | null;
  lastError: string | null;
  createdBy: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
}

export interface JobAttempt {
  attempt: number;
  worker: string;
  startedAt: Date;
  endedAt: Date | null;
  outcome: 'succeeded' | 'failed' | 'cancelled' | 'lost' | 'released' | null;
  error: string | null;
}

/** A job as the dispatcher holds it while a worker runs it. */
export interface ClaimedJob extends Job {
  leaseOwner: string;
  checkpoint: JsonValue | null;
}

export interface NewJob {
  kind: string;
  payload: JsonValue;
  priority?: number | undefined;
  maxAttempts?: number | undefined;
  createdBy?: string | null | undefined;
}

export interface JobPage {
  items: Job[];
  nextBeforeId: string | null;
}

/** Per-tenant work for the operator view. */
export interface TenantJobCounts {
  tenantId: string;
  tier: string;
  queued: number;
  running: number;
  dead: number;
  concurrencyCap: number | null;
}

/** Everything a handler gets: its tenant's scope, its payload, a way to report, and a signal. */
export interface JobContext<Payload> {
  job: ClaimedJob;
  payload: Payload;
  tenant: TenantContext;
  /** Runs work in the job's tenant scope: the only way a handler reaches tenant data. */
  scopes: Pick<TenantScopes, 'run'>;
  /** Aborted when the job is cancelled, its lease is lost, it times out, or the worker stops. */
  signal: AbortSignal;
  /** Records progress; written at most every few hundred milliseconds, and always at the end. */
  progress(percent: number, message?: string): void;
  /**
   * Saves a checkpoint inside the handler's own tenant transaction, so the work of a batch and
   * the record that it is done commit together; a retry reads it back as `job.checkpoint`.
   * Throws JobLeaseLostError when this attempt no longer owns the job (the transaction rolls back).
   */
  saveCheckpoint(db: TenantDb, checkpoint: JsonValue): Promise<void>;
  log: Logger;
}

/** A job kind: how to check its payload and how to run it. */
export interface JobKind<Payload> {
  kind: string;
  /** Returns the payload typed, or throws (the job is then dead at once: a retry cannot help). */
  parsePayload(payload: JsonValue): Payload;
  run(context: JobContext<Payload>): Promise<JsonValue>;
  maxAttempts?: number;
  /** The handler is aborted after this long and the attempt counts as failed. */
  timeoutMs?: number;
}

/** Thrown by handlers for failures a retry cannot fix: the job goes to the dead letters at once. */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

/** The attempt no longer owns its job (lease expired and recovered, or finished elsewhere). */
export class JobLeaseLostError extends Error {
  override name = 'JobLeaseLostError';
}

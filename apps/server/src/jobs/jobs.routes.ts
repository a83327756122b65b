import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { requirePermission } from '../identity/access.ts';
import { requirePrincipal } from '../identity/auth.plugin.ts';
import { AppError } from '../platform/errors.ts';
import type { App } from '../platform/http/http-types.ts';
import { operatorSecurity, problemResponses, tenantSecurity } from '../platform/http/schemas.ts';
import { formatId, idPattern, parseId } from '../platform/ids.ts';
import { jobLimits } from './jobs.limits.ts';
import type { JobsService } from './jobs.service.ts';
import { finishedStatuses, type Job, type JobAttempt, jobStatuses } from './jobs.types.ts';

const JobStatusSchema = Type.Union(jobStatuses.map((status) => Type.Literal(status)));
const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

const JobSchema = Type.Object(
  {
    id: Type.String({ pattern: idPattern('job') }),
    kind: Type.String(),
    status: JobStatusSchema,
    priority: Type.Integer(),
    progress: Type.Object({ percent: Type.Integer(), message: Type.Union([Type.String(), Type.Null()]) }),
    attempts: Type.Integer(),
    maxAttempts: Type.Integer(),
    cancelRequested: Type.Boolean(),
    lastError: Type.Union([Type.String(), Type.Null()]),
    result: Type.Unknown({ description: 'What the handler returned (for an import: the per-row report).' }),
    runAfter: Type.String({ format: 'date-time', description: 'Not started before this time (retry backoff).' }),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Timestamp,
    finishedAt: Timestamp,
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Job' },
);

const JobDetailSchema = Type.Object({
  ...JobSchema.properties,
  history: Type.Array(
    Type.Object({
      attempt: Type.Integer(),
      startedAt: Type.String({ format: 'date-time' }),
      endedAt: Timestamp,
      outcome: Type.Union([Type.String(), Type.Null()]),
      error: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
});

const JobParams = Type.Object({ jobId: Type.String({ maxLength: 100 }) });

const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: jobLimits.pageSizeMax, default: jobLimits.pageSizeDefault }),
    cursor: Type.Optional(Type.String({ maxLength: 100 })),
    status: Type.Optional(JobStatusSchema),
  },
  { additionalProperties: false },
);

export function renderJob(job: Job) {
  return {
    id: formatId('job', job.id),
    kind: job.kind,
    status: job.status,
    priority: job.priority,
    progress: job.progress,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    cancelRequested: job.cancelRequestedAt !== null,
    lastError: job.lastError,
    result: job.result,
    runAfter: job.runAfter.toISOString(),
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
    updatedAt: job.updatedAt.toISOString(),
  };
}

// Worker names are the operator's business; tenants see when and how each attempt ended.
function renderAttempt(attempt: JobAttempt) {
  return {
    attempt: attempt.attempt,
    startedAt: attempt.startedAt.toISOString(),
    endedAt: attempt.endedAt?.toISOString() ?? null,
    outcome: attempt.outcome,
    error: attempt.error,
  };
}

function jobIdOf(request: FastifyRequest<{ Params: { jobId: string } }>): string {
  const id = parseId('job', request.params.jobId);
  if (id === null) throw new AppError('JOB_NOT_FOUND');
  return id;
}

function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined) return null;
  const id = parseId('job', Buffer.from(cursor, 'base64url').toString('utf8'));
  if (id === null) throw new AppError('PAGINATION_CURSOR_INVALID');
  return id;
}

function encodeCursor(id: string | null): string | null {
  return id === null ? null : Buffer.from(formatId('job', id)).toString('base64url');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A tenant's jobs: list, read, watch as server-sent events, cancel. */
export async function jobsRoutes(app: App, options: { jobs: JobsService }): Promise<void> {
  const { jobs } = options;
  let closing = false;
  // preClose, not onClose: the server waits for open connections before onClose runs, and
  // event streams must end first.
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addSchema(JobSchema);
  app.addHook('onRequest', app.authenticateTenant);

  app.get(
    '/v1/jobs',
    {
      config: { ...requirePermission('jobs.read') },
      schema: {
        summary: "List the firm's jobs, newest first, a page at a time",
        tags: ['jobs'],
        security: tenantSecurity,
        querystring: ListQuery,
        response: {
          200: Type.Object({
            items: Type.Array(Type.Ref('Job')),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problemResponses,
        },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const page = await jobs.list(
        principal.tenant,
        decodeCursor(request.query.cursor),
        request.query.status ?? null,
        request.query.limit,
      );
      return { items: page.items.map(renderJob), nextCursor: encodeCursor(page.nextBeforeId) };
    },
  );

  app.get(
    '/v1/jobs/:jobId',
    {
      config: { ...requirePermission('jobs.read') },
      schema: {
        summary: 'Read a job: status, progress, result and the history of its attempts',
        tags: ['jobs'],
        security: tenantSecurity,
        params: JobParams,
        response: { 200: JobDetailSchema, ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      const { job, attempts } = await jobs.get(principal.tenant, jobIdOf(request));
      return { ...renderJob(job), history: attempts.map(renderAttempt) };
    },
  );

  app.post(
    '/v1/jobs/:jobId/cancel',
    {
      config: { ...requirePermission('jobs.cancel') },
      schema: {
        summary: 'Cancel a job: a queued job at once, a running one at its next heartbeat',
        tags: ['jobs'],
        security: tenantSecurity,
        params: JobParams,
        response: { 200: Type.Ref('Job'), ...problemResponses },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      return renderJob(await jobs.cancel(principal.tenant, jobIdOf(request)));
    },
  );

  app.get(
    '/v1/jobs/:jobId/events',
    {
      // A long-lived watch of batch work: were it interactive, jobs would wait on it for their whole run.
      config: { routeClass: 'batch', ...requirePermission('jobs.read') },
      schema: {
        summary: "Watch a job's progress as server-sent events",
        description:
          'A `text/event-stream`: an `update` event with the job now and whenever it changes, comment pings, and a final `finished` event when the job succeeds, is cancelled or dead-lettered; then the stream ends. Streams end after 15 minutes; reconnect to continue.',
        tags: ['jobs'],
        security: tenantSecurity,
        params: JobParams,
        response: { 200: Type.String({ description: 'text/event-stream' }), ...problemResponses },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const id = jobIdOf(request);
      // Read before the stream opens, so another tenant's or an unknown job is a plain 404.
      let job = await jobs.getSummary(principal.tenant, id);
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-request-id': request.id,
      });
      let disconnected = false;
      request.raw.on('close', () => {
        disconnected = true;
      });
      let sequence = 0;
      const send = (event: string, data: unknown) => {
        sequence++;
        raw.write(`id: ${sequence}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      send(finishedStatuses.has(job.status) ? 'finished' : 'update', renderJob(job));
      const openedMs = Date.now();
      let lastPingMs = openedMs;
      try {
        while (!finishedStatuses.has(job.status) && !disconnected && !closing) {
          if (Date.now() - openedMs > jobLimits.eventsStreamMsMax) break;
          await sleep(jobLimits.eventsPollMs);
          const next = await jobs.getSummary(principal.tenant, id);
          if (next.updatedAt.getTime() !== job.updatedAt.getTime() || next.status !== job.status) {
            job = next;
            send(finishedStatuses.has(job.status) ? 'finished' : 'update', renderJob(job));
          } else if (Date.now() - lastPingMs >= jobLimits.eventsPingMs) {
            lastPingMs = Date.now();
            raw.write(': ping\n\n');
          }
        }
      } catch (error) {
        request.log.error({ err: error }, 'job event stream failed');
      } finally {
        raw.end();
      }
    },
  );
}

/** The operator's view of the queue: queued, running and dead-lettered jobs per tenant. */
export async function jobsAdminRoutes(app: App, options: { jobs: JobsService }): Promise<void> {
  app.addHook('onRequest', app.authenticateOperator);
  app.get(
    '/v1/admin/jobs',
    {
      schema: {
        summary: 'Queued, running and dead-lettered jobs per tenant, with each tenant’s concurrency cap',
        tags: ['operator'],
        security: operatorSecurity,
        response: {
          200: Type.Object({
            totals: Type.Object({ queued: Type.Integer(), running: Type.Integer(), dead: Type.Integer() }),
            tenants: Type.Array(
              Type.Object({
                tenantId: Type.String({ pattern: idPattern('tenant') }),
                tier: Type.String(),
                queued: Type.Integer(),
                running: Type.Integer(),
                dead: Type.Integer(),
                concurrencyCap: Type.Union([Type.Integer(), Type.Null()]),
              }),
            ),
          }),
          ...problemResponses,
        },
      },
    },
    async () => {
      const counts = await options.jobs.tenantCounts();
      const sum = (key: 'queued' | 'running' | 'dead') => counts.reduce((total, row) => total + row[key], 0);
      return {
        totals: { queued: sum('queued'), running: sum('running'), dead: sum('dead') },
        tenants: counts.map((row) => ({ ...row, tenantId: formatId('tenant', row.tenantId) })),
      };
    },
  );
}

import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, operatorKey, startTestStack, type TestStack, type TestTenant } from '../../test/harness.ts';
import type { UsageEvent } from '../metering/metering.types.ts';
import { parseId } from '../platform/ids.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { waitForJob } from './jobs.test-support.ts';
import { createJobWorker, type JobWorker } from './jobs.worker.ts';
import { entityImportKind, entityImportLimits } from './kinds/entity-import.ts';

/**
 * Jobs over HTTP, end to end with the real entity import: a firm posts CSV or JSON, gets 202
 * and a job id, and watches it through GET and server-sent events until the per-row report
 * arrives. Bad input is refused before any job exists; another firm gets 404 for every job
 * route; the operator sees queued and running counts per tenant.
 */
let stack: TestStack;
let worker: JobWorker;
let firmA: TestTenant;
let firmB: TestTenant;
// A kind no worker in this file claims, so its jobs stay queued until cancelled.
const idleKind = `test.idle.${process.pid}`;

beforeAll(async () => {
  stack = await startTestStack();
  stack.platform.jobRegistry.register({
    kind: idleKind,
    parsePayload: (payload) => payload,
    run: async () => null,
  });
  worker = createJobWorker(stack.platform, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), {
    slots: 2,
    pollMs: 50,
    heartbeatMs: 200,
    leaseMs: 2_000,
    kinds: [entityImportKind],
  });
  stack.platform.jobs.onSubmitted(() => worker.wake());
  worker.start();
  firmA = await createTenant(stack.app, 'Jobs A');
  firmB = await createTenant(stack.app, 'Jobs B');
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
});

interface JobBody {
  id: string;
  status: string;
  progress: { percent: number; message: string | null };
  result: {
    rows: number;
    created: number;
    duplicates: number;
    invalid: number;
    report: Array<{ row: number; status: string; entityId?: string; errors?: string[] }>;
  } | null;
  history: Array<{ attempt: number; outcome: string | null }>;
}

async function postImport(tenant: TestTenant, body: string | object, contentType: string, headers = {}) {
  return await stack.app.inject({
    method: 'POST',
    url: '/v1/entities/imports',
    headers: { ...tenant.auth, 'content-type': contentType, ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function entityNames(tenant: TestTenant): Promise<string[]> {
  const response = await stack.app.inject({ method: 'GET', url: '/v1/entities?limit=200', headers: tenant.auth });
  return response.json<{ items: Array<{ name: string }> }>().items.map((item) => item.name);
}

async function jobCount(tenant: TestTenant): Promise<number> {
  const response = await stack.app.inject({ method: 'GET', url: '/v1/jobs?limit=200', headers: tenant.auth });
  return response.json<{ items: unknown[] }>().items.length;
}

async function submitIdle(tenant: TestTenant): Promise<string> {
  const uuid = parseId('tenant', tenant.id);
  const record = uuid ? await stack.platform.tenancy.getTenant(uuid) : null;
  if (!record) throw new Error('tenant not found');
  const [job] = await stack.platform.jobs.submit(tenantContextOf(record), [{ kind: idleKind, payload: {} }]);
  if (!job) throw new Error('no job');
  return `job_${job.id.replaceAll('-', '')}`;
}

describe('entity import', () => {
  it('imports a CSV as a job and reports every row: created, invalid, duplicate', async () => {
    const firm = await createTenant(stack.app, 'Import CSV');
    expect(
      (await stack.app.inject({ method: 'POST', url: '/v1/entities', headers: firm.auth, payload: { name: 'Old Co' } }))
        .statusCode,
    ).toBe(201);
    const csv = [
      'name,entityType,baseCurrency,fiscalYearEnd',
      'Alder LLC,partnership,EUR,06-30',
      'Bad Type Inc,llp,,',
      'Old Co,,,',
      '"Comma, Quoted Ltd",,,',
      'Alder LLC,,,',
    ].join('\n');
    const accepted = await postImport(firm, csv, 'text/csv');
    expect(accepted.statusCode).toBe(202);
    const { jobId, links } = accepted.json<{ jobId: string; links: { job: string } }>();
    expect(jobId).toMatch(/^job_[0-9a-f]{32}$/);
    expect(accepted.headers.location).toBe(`/v1/jobs/${jobId}`);
    expect(links.job).toBe(`/v1/jobs/${jobId}`);

    const job = await waitForJob<JobBody>(stack, firm, jobId);
    expect(job.status).toBe('succeeded');
    expect(job.progress.percent).toBe(100);
    expect(job.result).toMatchObject({ rows: 5, created: 2, duplicates: 2, invalid: 1 });
    expect(job.result?.report.map((row) => [row.row, row.status])).toEqual([
      [1, 'created'],
      [2, 'invalid'],
      [3, 'duplicate'],
      [4, 'created'],
      [5, 'duplicate'],
    ]);
    expect(job.result?.report[1]?.errors).toEqual([expect.stringMatching(/^entityType: must be one of/)]);
    expect(job.history).toEqual([expect.objectContaining({ attempt: 1, outcome: 'succeeded' })]);

    expect((await entityNames(firm)).sort()).toEqual(['Alder LLC', 'Comma, Quoted Ltd', 'Old Co']);
    const alderId = job.result?.report[0]?.entityId;
    const alder = await stack.app.inject({ method: 'GET', url: `/v1/entities/${alderId}`, headers: firm.auth });
    expect(alder.json()).toMatchObject({ name: 'Alder LLC', entityType: 'partnership', baseCurrency: 'EUR' });
  });

  it("paces an import's transactions within the batch share while firms use the instance, and shows it to the operator", async () => {
    const instance = async () =>
      (
        await stack.app.inject({
          method: 'GET',
          url: '/v1/admin/limits',
          headers: { authorization: `Bearer ${operatorKey}` },
        })
      ).json<{ instance: { batchSharePercent: number; batchPaced: number; batchPacedMs: number } }>().instance;
    const before = await instance();
    expect(before.batchSharePercent).toBe(10);
    const firm = await createTenant(stack.app, 'Import Paced');
    const rows = Array.from({ length: entityImportLimits.batchRows * 3 }, (_, index) => ({ name: `Paced ${index}` }));
    const accepted = await postImport(firm, rows, 'application/json');
    expect(accepted.statusCode).toBe(202);
    // Polling the job is a firm's interactive traffic: the instance is busy all along.
    const job = await waitForJob<JobBody>(stack, firm, accepted.json<{ jobId: string }>().jobId);
    expect(job.result).toMatchObject({ rows: rows.length, created: rows.length });
    const after = await instance();
    expect(after.batchPaced - before.batchPaced).toBeGreaterThanOrEqual(2);
    expect(after.batchPacedMs).toBeGreaterThan(before.batchPacedMs);
  });

  it('imports a JSON list, checking each row like POST /v1/entities', async () => {
    const firm = await createTenant(stack.app, 'Import JSON');
    const accepted = await postImport(
      firm,
      [{ name: 'Birch LLC', entityType: 'nonprofit' }, { name: 42 }, { name: 'Cedar', colour: 'red' }, {}],
      'application/json',
    );
    expect(accepted.statusCode).toBe(202);
    const job = await waitForJob<JobBody>(stack, firm, accepted.json<{ jobId: string }>().jobId);
    expect(job.result).toMatchObject({ rows: 4, created: 1, invalid: 3 });
    expect(job.result?.report.map((row) => row.errors ?? [])).toEqual([
      [],
      ['name: must be a string'],
      ['colour: is not a known field'],
      ['name: is required'],
    ]);
    expect(await entityNames(firm)).toEqual(['Birch LLC']);
  });

  it('is idempotent: the same Idempotency-Key returns the same job, and a re-import creates nothing', async () => {
    const firm = await createTenant(stack.app, 'Import Idem');
    const csv = 'name\nDogwood LLC\nElm LLC\n';
    const headers = { 'idempotency-key': 'import-1' };
    const first = await postImport(firm, csv, 'text/csv', headers);
    const retry = await postImport(firm, csv, 'text/csv', headers);
    expect(retry.statusCode).toBe(202);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json()).toEqual(first.json());
    await waitForJob<JobBody>(stack, firm, first.json<{ jobId: string }>().jobId);
    expect(await jobCount(firm)).toBe(1);

    const again = await postImport(firm, csv, 'text/csv');
    const second = await waitForJob<JobBody>(stack, firm, again.json<{ jobId: string }>().jobId);
    expect(second.result).toMatchObject({ created: 0, duplicates: 2 });
    expect((await entityNames(firm)).sort()).toEqual(['Dogwood LLC', 'Elm LLC']);
  });

  it('streams progress as server-sent events, ending with the finished job', async () => {
    const firm = await createTenant(stack.app, 'Import SSE');
    const rows = Array.from({ length: 450 }, (_, index) => ({ name: `Row ${index}` }));
    const accepted = await postImport(firm, rows, 'application/json');
    const { jobId } = accepted.json<{ jobId: string }>();
    const events = await stack.app.inject({ method: 'GET', url: `/v1/jobs/${jobId}/events`, headers: firm.auth });
    expect(events.statusCode).toBe(200);
    expect(events.headers['content-type']).toMatch(/^text\/event-stream/);
    const parsed = events.body
      .split('\n\n')
      .filter((block) => block.startsWith('id:'))
      .map((block) => {
        const event = /^event: (.+)$/m.exec(block)?.[1];
        const data = JSON.parse(/^data: (.+)$/m.exec(block)?.[1] ?? 'null') as JobBody;
        return { event, data };
      });
    expect(parsed.at(-1)?.event).toBe('finished');
    expect(parsed.at(-1)?.data).toMatchObject({ id: jobId, status: 'succeeded', progress: { percent: 100 } });
    expect(parsed.slice(0, -1).every((entry) => entry.event === 'update')).toBe(true);
    // Percentages never go backwards.
    const percents = parsed.map((entry) => entry.data.progress.percent);
    expect([...percents].sort((a, b) => a - b)).toEqual(percents);
  });
});

describe('bad input writes nothing', () => {
  const tooMany = `name\n${Array.from({ length: entityImportLimits.rowsMax + 1 }, (_, index) => `N${index}`).join('\n')}`;
  const cases: Array<{ title: string; body: string; contentType: string; status: number; code: string }> = [
    {
      title: 'an unclosed quote',
      body: 'name\n"Open',
      contentType: 'text/csv',
      status: 400,
      code: 'IMPORT_CSV_INVALID',
    },
    {
      title: 'an unknown column',
      body: 'name,owner\nA,B',
      contentType: 'text/csv',
      status: 400,
      code: 'IMPORT_CSV_INVALID',
    },
    {
      title: 'no name column',
      body: 'entityType\nnonprofit',
      contentType: 'text/csv',
      status: 400,
      code: 'IMPORT_CSV_INVALID',
    },
    {
      title: 'a ragged row',
      body: 'name,entityType\nA',
      contentType: 'text/csv',
      status: 400,
      code: 'IMPORT_CSV_INVALID',
    },
    { title: 'a header only', body: 'name\n', contentType: 'text/csv', status: 400, code: 'IMPORT_EMPTY' },
    { title: 'an empty JSON list', body: '[]', contentType: 'application/json', status: 400, code: 'IMPORT_EMPTY' },
    { title: 'too many rows', body: tooMany, contentType: 'text/csv', status: 413, code: 'IMPORT_TOO_MANY_ROWS' },
    {
      title: 'a JSON object',
      body: '{"name":"A"}',
      contentType: 'application/json',
      status: 400,
      code: 'REQUEST_VALIDATION_FAILED',
    },
    {
      title: 'a list of strings',
      body: '["A"]',
      contentType: 'application/json',
      status: 400,
      code: 'REQUEST_VALIDATION_FAILED',
    },
    { title: 'malformed JSON', body: '[{', contentType: 'application/json', status: 400, code: 'REQUEST_INVALID_JSON' },
    {
      title: 'plain text',
      body: 'name\nA',
      contentType: 'text/plain',
      status: 415,
      code: 'REQUEST_UNSUPPORTED_MEDIA_TYPE',
    },
  ];
  for (const testCase of cases) {
    it(`answers ${testCase.status} ${testCase.code} for ${testCase.title}`, async () => {
      const firm = await createTenant(stack.app, 'Import Bad');
      const response = await postImport(firm, testCase.body, testCase.contentType);
      expect(response.statusCode).toBe(testCase.status);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code: testCase.code });
      expect(await jobCount(firm)).toBe(0);
    });
  }

  it('refuses an Idempotency-Key reused with another body', async () => {
    const headers = { 'idempotency-key': 'reused-import' };
    expect((await postImport(firmA, 'name\nFir LLC', 'text/csv', headers)).statusCode).toBe(202);
    const reused = await postImport(firmA, 'name\nPine LLC', 'text/csv', headers);
    expect(reused.statusCode).toBe(409);
    expect(reused.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });
});

describe('jobs API', () => {
  it('lists jobs newest first, filters by status, and pages with a cursor', async () => {
    const firm = await createTenant(stack.app, 'Jobs List');
    const ids = [await submitIdle(firm), await submitIdle(firm), await submitIdle(firm)];
    const cancelled = await stack.app.inject({ method: 'POST', url: `/v1/jobs/${ids[0]}/cancel`, headers: firm.auth });
    expect(cancelled.json()).toMatchObject({ status: 'cancelled', cancelRequested: true });

    const first = await stack.app.inject({ method: 'GET', url: '/v1/jobs?limit=2', headers: firm.auth });
    const page = first.json<{ items: Array<{ id: string }>; nextCursor: string }>();
    expect(page.items.map((item) => item.id)).toEqual([ids[2], ids[1]]);
    const second = await stack.app.inject({
      method: 'GET',
      url: `/v1/jobs?limit=2&cursor=${page.nextCursor}`,
      headers: firm.auth,
    });
    expect(second.json<{ items: Array<{ id: string }>; nextCursor: null }>()).toMatchObject({
      items: [{ id: ids[0] }],
      nextCursor: null,
    });
    const queued = await stack.app.inject({ method: 'GET', url: '/v1/jobs?status=queued', headers: firm.auth });
    expect(queued.json<{ items: Array<{ id: string }> }>().items.map((item) => item.id)).toEqual([ids[2], ids[1]]);
    const badCursor = await stack.app.inject({ method: 'GET', url: '/v1/jobs?cursor=bm9wZQ', headers: firm.auth });
    expect(badCursor.json()).toMatchObject({ code: 'PAGINATION_CURSOR_INVALID' });
  });

  it('cancels a queued job at once, repeats harmlessly, and refuses to cancel a finished one', async () => {
    const jobId = await submitIdle(firmA);
    const first = await stack.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: firmA.auth });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ id: jobId, status: 'cancelled' });
    const again = await stack.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: firmA.auth });
    expect(again.statusCode).toBe(200);

    const done = await postImport(firmA, 'name\nFinished Co', 'text/csv');
    const finishedId = done.json<{ jobId: string }>().jobId;
    await waitForJob<JobBody>(stack, firmA, finishedId);
    const late = await stack.app.inject({ method: 'POST', url: `/v1/jobs/${finishedId}/cancel`, headers: firmA.auth });
    expect(late.statusCode).toBe(409);
    expect(late.json()).toMatchObject({ code: 'JOB_ALREADY_FINISHED' });
  });

  it('answers 404 for malformed ids and ids of another kind', async () => {
    for (const id of ['nope', `ent_${'0'.repeat(32)}`, `job_${'0'.repeat(32)}`]) {
      for (const [method, url] of [
        ['GET', `/v1/jobs/${id}`],
        ['GET', `/v1/jobs/${id}/events`],
        ['POST', `/v1/jobs/${id}/cancel`],
      ] as const) {
        const response = await stack.app.inject({ method, url, headers: firmA.auth });
        expect(response.statusCode, `${method} ${url}`).toBe(404);
        expect(response.json()).toMatchObject({ code: 'JOB_NOT_FOUND' });
      }
    }
  });

  it('requires a tenant token on every job route', async () => {
    for (const [method, url] of [
      ['GET', '/v1/jobs'],
      ['GET', `/v1/jobs/job_${'0'.repeat(32)}`],
      ['POST', '/v1/entities/imports'],
    ] as const) {
      const response = await stack.app.inject({ method, url });
      expect(response.statusCode).toBe(401);
    }
  });
});

describe('cross-tenant', () => {
  it("hides firm A's job from firm B: read, events and cancel are 404, the list omits it, and it still runs", async () => {
    const jobId = await submitIdle(firmA);
    for (const [method, url] of [
      ['GET', `/v1/jobs/${jobId}`],
      ['GET', `/v1/jobs/${jobId}/events`],
      ['POST', `/v1/jobs/${jobId}/cancel`],
    ] as const) {
      const response = await stack.app.inject({ method, url, headers: firmB.auth });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
      expect(response.json()).toMatchObject({ code: 'JOB_NOT_FOUND' });
    }
    const list = await stack.app.inject({ method: 'GET', url: '/v1/jobs?limit=200', headers: firmB.auth });
    expect(list.json<{ items: Array<{ id: string }> }>().items.map((item) => item.id)).not.toContain(jobId);
    const stillQueued = await stack.app.inject({ method: 'GET', url: `/v1/jobs/${jobId}`, headers: firmA.auth });
    expect(stillQueued.json()).toMatchObject({ status: 'queued', cancelRequested: false });
  });

  it('imports into the submitting firm only', async () => {
    const accepted = await postImport(firmB, 'name\nOnly In B', 'text/csv');
    await waitForJob<JobBody>(stack, firmB, accepted.json<{ jobId: string }>().jobId);
    expect(await entityNames(firmB)).toContain('Only In B');
    expect(await entityNames(firmA)).not.toContain('Only In B');
  });
});

describe('operator view', () => {
  it('counts queued and running jobs per tenant, for the operator key only', async () => {
    const firm = await createTenant(stack.app, 'Jobs Admin');
    await submitIdle(firm);
    await submitIdle(firm);
    const denied = await stack.app.inject({ method: 'GET', url: '/v1/admin/jobs', headers: firm.auth });
    expect(denied.statusCode).toBe(401);
    const response = await stack.app.inject({
      method: 'GET',
      url: '/v1/admin/jobs',
      headers: { authorization: `Bearer ${operatorKey}` },
    });
    expect(response.statusCode).toBe(200);
    const body = response.json<{
      totals: { queued: number };
      tenants: Array<{ tenantId: string; queued: number; running: number; concurrencyCap: number }>;
    }>();
    expect(body.tenants.find((row) => row.tenantId === firm.id)).toEqual({
      tenantId: firm.id,
      tier: 'starter',
      queued: 2,
      running: 0,
      dead: 0,
      concurrencyCap: 1,
    });
    expect(body.totals.queued).toBeGreaterThanOrEqual(2);
  });

  it('shows the same queued and running counts in the limits view, from the queue table', async () => {
    const firm = await createTenant(stack.app, 'Jobs Limits');
    await submitIdle(firm);
    await submitIdle(firm);
    await submitIdle(firm);
    const response = await stack.app.inject({
      method: 'GET',
      url: '/v1/admin/limits',
      headers: { authorization: `Bearer ${operatorKey}` },
    });
    expect(response.statusCode).toBe(200);
    const row = response
      .json<{ tenants: Array<{ tenantId: string; jobs: unknown }> }>()
      .tenants.find((tenant) => tenant.tenantId === firm.id);
    expect(row?.jobs).toEqual({ queued: 3, running: 0 });
  });
});

describe('metering', () => {
  it("records each attempt's wall time as job_us for the job's tenant", async () => {
    const firm = await createTenant(stack.app, 'Jobs Usage');
    const seen: UsageEvent[] = [];
    stack.platform.metering.recorder.addObserver({
      observe: (event) => {
        if (event.metric === 'job_us') seen.push(event);
      },
    });
    const response = await postImport(firm, 'name,baseCurrency,fiscalYearEnd\nUsage Co,USD,12-31\n', 'text/csv');
    expect(response.statusCode).toBe(202);
    const job = await waitForJob<JobBody>(stack, firm, response.json<{ jobId: string }>().jobId);
    expect(job.status).toBe('succeeded');
    const tenantUuid = parseId('tenant', firm.id);
    const mine = seen.filter((event) => event.tenantId === tenantUuid);
    expect(mine).toHaveLength(1);
    expect(mine[0]?.quantity).toBeGreaterThan(0);
    expect(mine[0]?.properties).toEqual({ kind: entityImportKind, outcome: 'succeeded' });
  });
});

import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, startTestStack, type TestStack, type TestTenant } from '../../test/harness.ts';
import { parseId } from '../platform/ids.ts';
import { writeCheckpoint } from './jobs.store.ts';
import {
  catalogueWith,
  contextOf,
  eventually,
  sleepUnlessAborted,
  type TestQueue,
  testQueue,
  uniqueKind,
} from './jobs.test-support.ts';
import { type JobKind, PermanentJobError } from './jobs.types.ts';

/**
 * The scheduler, proven on the database: fairness under a 1,000-job backlog, per-tenant caps
 * counted from the attempts' own timestamps, weights by tier, retries with backoff, the dead
 * letters, cooperative cancellation and timeouts. Every measure comes from timestamps the
 * database wrote (job_attempts, jobs), never from how fast this machine is.
 */
let stack: TestStack;
const queues: TestQueue[] = [];

beforeAll(async () => {
  stack = await startTestStack();
});

afterEach(async () => {
  await Promise.all(queues.splice(0).map((queue) => queue.stopWorkers()));
});

afterAll(async () => {
  await stack?.close();
});

function sleepKind(durationMs: number): JobKind<unknown> {
  return {
    kind: uniqueKind('sleep'),
    parsePayload: (payload) => payload,
    run: async ({ signal }) => {
      await sleepUnlessAborted(durationMs, signal);
      return null;
    },
  };
}

function uuidOf(tenant: TestTenant): string {
  const uuid = parseId('tenant', tenant.id);
  if (!uuid) throw new Error('bad tenant id');
  return uuid;
}

interface AttemptRow {
  tenant_id: string;
  job_id: string;
  attempt: number;
  started_at: Date;
  ended_at: Date | null;
  outcome: string | null;
  error: string | null;
}

async function attemptsOf(tenantIds: string[]): Promise<AttemptRow[]> {
  const { rows } = await stack.platform.ownerPool.query<AttemptRow>(
    `select tenant_id, job_id, attempt, started_at, ended_at, outcome, error from job_attempts
      where tenant_id = any($1::uuid[]) order by started_at`,
    [tenantIds],
  );
  return rows;
}

async function statusCounts(tenantId: string): Promise<Record<string, number>> {
  const { rows } = await stack.platform.ownerPool.query<{ status: string; count: number }>(
    'select status, count(*)::integer as count from jobs where tenant_id = $1 group by status',
    [tenantId],
  );
  return Object.fromEntries(rows.map((row) => [row.status, row.count]));
}

/** Control-pool statements starting with `statement` that wait for a lock, seen from a connection of its own. */
async function lockWaiters(statement: string): Promise<number> {
  const client = new pg.Client({ connectionString: stack.platform.ownerPool.options.connectionString });
  await client.connect();
  try {
    const { rows } = await client.query<{ waiting: number }>(
      `select count(*)::integer as waiting from pg_stat_activity
        where wait_event_type = 'Lock' and starts_with(query, $1)`,
      [statement],
    );
    return rows[0]?.waiting ?? 0;
  } finally {
    await client.end();
  }
}

/** Cancels what a test leaves queued, so the operator counts of other tests stay meaningful. */
async function cancelQueued(tenantId: string): Promise<void> {
  await stack.platform.ownerPool.query(
    `update jobs set status = 'cancelled', finished_at = now(), updated_at = now()
      where tenant_id = $1 and status = 'queued'`,
    [tenantId],
  );
}

describe('fair scheduling', () => {
  it("starts each of B's 5 jobs within one job-duration while A holds 1,000 queued jobs", async () => {
    // Ten worker slots (two workers of five), A alone fills them all and has 1,000 jobs queued.
    // B submits 5: the claim prefers the tenant with fewer running jobs per weight, so B takes
    // the next five slots that free up, all within one job-duration of its submission. Proven
    // from the database's timestamps, and ordinally: between B's commit and B's last start,
    // A starts at most one job per worker (a claim already in flight when B's jobs committed,
    // which could not see them); a scheduler that merely alternated would start four.
    // Durations vary (300–480 ms) so A's slots free up at staggered times, as real jobs do,
    // rather than in lock-step; B's submission then falls at an arbitrary point of A's cycle.
    const kind: JobKind<unknown> = {
      kind: uniqueKind('varied'),
      parsePayload: (payload) => payload,
      run: async ({ payload, signal }) => {
        await sleepUnlessAborted((payload as { ms: number }).ms, signal);
        return null;
      },
    };
    const queue = testQueue(stack, catalogueWith(stack, { jobConcurrency: 10 }), [kind]);
    queues.push(queue);
    const [firmA, firmB] = await Promise.all([createTenant(stack.app, 'Fair A'), createTenant(stack.app, 'Fair B')]);
    const [a, b] = [uuidOf(firmA), uuidOf(firmB)];
    await queue.jobs.submit(
      await contextOf(stack, firmA),
      Array.from({ length: 1_000 }, (_, index) => ({ kind: kind.kind, payload: { ms: 300 + (index % 7) * 30 } })),
    );
    const workerCount = queue.startWorkers(2, { slots: 5 }).length;
    // A is in its steady state: all ten slots busy, and a couple of rounds done.
    await eventually(async () => {
      const counts = await statusCounts(a);
      return counts.running === 10 && (counts.succeeded ?? 0) >= 20 ? true : undefined;
    });

    const submitted = await queue.jobs.submit(
      await contextOf(stack, firmB),
      Array.from({ length: 5 }, () => ({ kind: kind.kind, payload: { ms: 300 } })),
    );
    // B's jobs are visible to claims from their commit, which on a loaded machine can come well
    // after their created_at; A's claims before it are fair, so count A's starts from here.
    const bCommittedMs = Date.now();
    await eventually(async () => ((await statusCounts(b)).succeeded === 5 ? true : undefined));
    await queue.stopWorkers();

    const attempts = await attemptsOf([a, b]);
    const ofA = attempts.filter((row) => row.tenant_id === a);
    const ofB = attempts.filter((row) => row.tenant_id === b);
    const finishedA = ofA.filter((row) => row.outcome === 'succeeded' && row.ended_at);
    expect(finishedA.length).toBeGreaterThanOrEqual(5);
    const jobDurationMs = Math.max(
      ...finishedA.map((row) => (row.ended_at?.getTime() ?? 0) - row.started_at.getTime()),
    );
    expect(ofB).toHaveLength(5);
    const submittedAt = new Map(submitted.map((job) => [job.id, job.createdAt.getTime()]));
    for (const attempt of ofB) {
      const waitedMs = attempt.started_at.getTime() - (submittedAt.get(attempt.job_id) ?? Number.NaN);
      expect(waitedMs).toBeGreaterThanOrEqual(0);
      expect(waitedMs, `B waited ${waitedMs} ms; a job lasts ${jobDurationMs} ms`).toBeLessThan(jobDurationMs);
    }
    const bLastStartMs = Math.max(...ofB.map((row) => row.started_at.getTime()));
    const aStartsBetween = ofA.filter(
      (row) => row.started_at.getTime() > bCommittedMs && row.started_at.getTime() < bLastStartMs,
    );
    expect(aStartsBetween.length).toBeLessThanOrEqual(workerCount);
    // A kept working all along: it is slowed to its fair share, not stopped.
    expect(ofA.length).toBeGreaterThan(10);
    await cancelQueued(a);
  });

  it('shares starts by tier weight when tenants compete for one slot', async () => {
    // One worker slot, caps of 1: P's tier weighs 3, Q's weighs 1. Of the first 20 starts, the
    // stride pass gives P three for every one of Q's (15 ± 1).
    const kind = sleepKind(5);
    const tiers = catalogueWith(
      stack,
      { jobConcurrency: 1, jobWeight: 1 },
      { heavy: { jobConcurrency: 1, jobWeight: 3 } },
    );
    const queue = testQueue(stack, tiers, [kind]);
    queues.push(queue);
    const [firmP, firmQ] = await Promise.all([
      createTenant(stack.app, 'Weight P'),
      createTenant(stack.app, 'Weight Q'),
    ]);
    const [p, q] = [uuidOf(firmP), uuidOf(firmQ)];
    // The platform's catalogue has no "heavy" tier; this queue's catalogue does.
    await stack.platform.ownerPool.query(`update tenants set tier = 'heavy' where id = $1`, [p]);
    for (const firm of [firmP, firmQ]) {
      await queue.jobs.submit(
        await contextOf(stack, firm),
        Array.from({ length: 30 }, () => ({ kind: kind.kind, payload: null })),
      );
    }
    queue.startWorkers(1, { slots: 1 });
    await eventually(async () => ((await attemptsOf([p, q])).length >= 20 ? true : undefined));
    await queue.stopWorkers();
    const first20 = (await attemptsOf([p, q])).slice(0, 20);
    const startsOfP = first20.filter((row) => row.tenant_id === p).length;
    expect(startsOfP).toBeGreaterThanOrEqual(14);
    expect(startsOfP).toBeLessThanOrEqual(16);
    await stack.platform.ownerPool.query(`update tenants set tier = 'starter' where id = $1`, [p]);
    await Promise.all([cancelQueued(p), cancelQueued(q)]);
  });
});

describe('priorities', () => {
  it("runs a tenant's higher-priority jobs first, in submission order within a priority", async () => {
    const kind = sleepKind(1);
    const queue = testQueue(stack, catalogueWith(stack, { jobConcurrency: 1 }), [kind]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Priority');
    const submitted = await queue.jobs.submit(
      await contextOf(stack, firm),
      [0, -5, 10, 0, 10].map((priority, index) => ({ kind: kind.kind, payload: { index }, priority })),
    );
    queue.startWorkers(1, { slots: 1 });
    const tenantId = uuidOf(firm);
    await eventually(async () => ((await statusCounts(tenantId)).succeeded === 5 ? true : undefined));
    const order = (await attemptsOf([tenantId])).map((row) => submitted.findIndex((job) => job.id === row.job_id));
    expect(order).toEqual([2, 4, 0, 3, 1]);
  });
});

describe('the dispatcher is the owner role only', () => {
  it('refuses the claim function to the runtime role, and its policy does not apply to it', async () => {
    // The runtime role (every tenant request) may not call jobs_claim, and with no tenant set
    // it sees no job at all, although the owner-only policy dispatcher_all exists.
    await expect(
      stack.platform.runtimePool.query(`select * from jobs_claim('x', array['any'], '{}'::jsonb, 1000, 10)`),
    ).rejects.toMatchObject({ code: '42501' });
    const { rows } = await stack.platform.runtimePool.query('select count(*)::integer as count from jobs');
    expect(rows[0]).toEqual({ count: 0 });
    const owner = await stack.platform.ownerPool.query<{ count: number }>(
      'select count(*)::integer as count from jobs',
    );
    expect(owner.rows[0]?.count).toBeGreaterThan(0);
  });
});

describe('a broken row', () => {
  it("does not stop the queue for other tenants when one tenant's claim fails", async () => {
    // A stray attempt row makes claiming X's job fail (duplicate attempt number). The claim
    // undoes that tenant's try, reports it, and serves Y; X's job stays queued, untouched.
    const kind = sleepKind(1);
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    // Made one after the other: tenant ids are time-ordered, so X sorts (and is tried) first.
    const firmX = await createTenant(stack.app, 'Broken X');
    const firmY = await createTenant(stack.app, 'Fine Y');
    const [x, y] = [uuidOf(firmX), uuidOf(firmY)];
    expect(x < y).toBe(true);
    const [poisoned] = await queue.jobs.submit(await contextOf(stack, firmX), [{ kind: kind.kind, payload: null }]);
    await stack.platform.ownerPool.query(
      `insert into job_attempts (tenant_id, job_id, attempt, worker, started_at) values ($1, $2, 1, 'stray', now())`,
      [x, poisoned?.id],
    );
    await queue.jobs.submit(await contextOf(stack, firmY), [{ kind: kind.kind, payload: null }]);
    queue.startWorkers(1, { slots: 1 });
    await eventually(async () => ((await statusCounts(y)).succeeded === 1 ? true : undefined));
    expect(await statusCounts(x)).toEqual({ queued: 1 });
    await cancelQueued(x);
  });
});

describe('per-tenant caps', () => {
  it('never runs more of one tenant’s jobs at once than its tier allows, across two workers', async () => {
    // Eight slots over two workers, two tenants capped at 3 with 20 jobs each. The peak is
    // computed in SQL from every attempt's start and end: for each start, how many attempts
    // of that tenant were running at that instant. It must reach the cap and never pass it.
    const kind = sleepKind(150);
    const queue = testQueue(stack, catalogueWith(stack, { jobConcurrency: 3 }), [kind]);
    queues.push(queue);
    const [firmX, firmY] = await Promise.all([createTenant(stack.app, 'Cap X'), createTenant(stack.app, 'Cap Y')]);
    const tenantIds = [uuidOf(firmX), uuidOf(firmY)];
    for (const firm of [firmX, firmY]) {
      await queue.jobs.submit(
        await contextOf(stack, firm),
        Array.from({ length: 20 }, () => ({ kind: kind.kind, payload: null })),
      );
    }
    queue.startWorkers(2, { slots: 4 });
    await eventually(async () => {
      const counts = await Promise.all(tenantIds.map((id) => statusCounts(id)));
      return counts.every((count) => count.succeeded === 20) ? true : undefined;
    }, 60_000);
    const { rows } = await stack.platform.ownerPool.query<{ tenant_id: string; peak: number }>(
      `select a.tenant_id,
              max((select count(*) from job_attempts b
                    where b.tenant_id = a.tenant_id and b.started_at <= a.started_at
                      and (b.ended_at is null or b.ended_at > a.started_at)))::integer as peak
         from job_attempts a where a.tenant_id = any($1::uuid[]) group by a.tenant_id`,
      [tenantIds],
    );
    expect(rows.map((row) => row.peak)).toEqual([3, 3]);
  });
});

describe('retries, backoff and the dead letters', () => {
  it('returns each submitted job with the payload it was given, which its handler then reads from the queue', async () => {
    const received = new Map<string, unknown>();
    const kind: JobKind<unknown> = {
      kind: uniqueKind('payload'),
      parsePayload: (payload) => payload,
      run: async ({ job, payload }) => {
        received.set(job.id, payload);
        return null;
      },
    };
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Payloads');
    const payloads = [{ rows: [{ name: 'Alder' }], n: 1 }, { rows: [], n: 2 }, null];
    const submitted = await queue.jobs.submit(
      await contextOf(stack, firm),
      payloads.map((payload) => ({ kind: kind.kind, payload })),
    );
    expect(submitted.map((job) => job.payload)).toEqual(payloads);
    queue.startWorkers(1);
    await eventually(async () => (received.size === payloads.length ? true : undefined));
    expect(submitted.map((job) => received.get(job.id))).toEqual(payloads);
  });

  it("meters an attempt's own time as job_us, without the time its transactions waited to start", async () => {
    // Each transaction waits 150 ms before it starts (as for batch work's turn beside other
    // firms' requests); the handler itself takes about 50 ms beyond its two transactions.
    const kind: JobKind<unknown> = {
      kind: uniqueKind('metered'),
      parsePayload: (payload) => payload,
      run: async ({ tenant, scopes, signal }) => {
        await scopes.run(tenant, (db) => db.query('select 1'));
        await sleepUnlessAborted(50, signal);
        await scopes.run(tenant, (db) => db.query('select 1'));
        return null;
      },
    };
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Metered');
    await queue.jobs.submit(await contextOf(stack, firm), [{ kind: kind.kind, payload: null }]);
    const metered: number[] = [];
    queue.startWorkers(1, {
      scopes: {
        run: async (tenant, work) => {
          await new Promise((resolve) => setTimeout(resolve, 150));
          return await stack.platform.scopes.run(tenant, work);
        },
      },
      usage: { recordUsage: (event) => metered.push(event.quantity) },
    });
    await eventually(async () => ((await statusCounts(uuidOf(firm))).succeeded === 1 ? true : undefined));
    expect(metered).toHaveLength(1);
    const micros = metered[0] ?? 0;
    expect(micros).toBeGreaterThanOrEqual(45_000);
    // Two waits of 150 ms are left out; counted, they would put it above 350 ms.
    expect(micros).toBeLessThan(250_000);
  });

  it('retries a failing job with exponential backoff until it succeeds', async () => {
    // Fails twice, then succeeds. The gaps between an attempt's end and the next start are at
    // least the nominal backoff (100 ms, then 200 ms): run_after holds the job back.
    const failures = new Map<string, number>();
    const kind: JobKind<unknown> = {
      kind: uniqueKind('flaky'),
      parsePayload: (payload) => payload,
      maxAttempts: 4,
      run: async ({ job }) => {
        if (job.attempts <= 2) {
          failures.set(job.id, job.attempts);
          throw new Error(`boom ${job.attempts}`);
        }
        return { fine: true };
      },
    };
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Retry');
    const [job] = await queue.jobs.submit(await contextOf(stack, firm), [{ kind: kind.kind, payload: null }]);
    queue.startWorkers(1, { backoffBaseMs: 100 });
    const tenantId = uuidOf(firm);
    await eventually(async () => ((await statusCounts(tenantId)).succeeded === 1 ? true : undefined));
    const detail = await queue.jobs.get(await contextOf(stack, firm), job?.id ?? '');
    expect(detail.job).toMatchObject({
      status: 'succeeded',
      attempts: 3,
      result: { fine: true },
      lastError: 'Error: boom 2',
    });
    expect(detail.attempts.map((attempt) => [attempt.outcome, attempt.error])).toEqual([
      ['failed', 'Error: boom 1'],
      ['failed', 'Error: boom 2'],
      ['succeeded', null],
    ]);
    const [first, second, third] = detail.attempts;
    const gap = (before: typeof first, after: typeof first) =>
      (after?.startedAt.getTime() ?? 0) - (before?.endedAt?.getTime() ?? Number.POSITIVE_INFINITY);
    expect(gap(first, second)).toBeGreaterThanOrEqual(100);
    expect(gap(second, third)).toBeGreaterThanOrEqual(200);
  });

  it('dead-letters a job after its last attempt, and at once for a permanent error or a bad payload', async () => {
    const always: JobKind<unknown> = {
      kind: uniqueKind('always'),
      parsePayload: (payload) => payload,
      maxAttempts: 3,
      run: async () => {
        throw new Error('still broken');
      },
    };
    const permanent: JobKind<unknown> = {
      kind: uniqueKind('permanent'),
      parsePayload: (payload) => payload,
      run: async () => {
        throw new PermanentJobError('the input can never work');
      },
    };
    const picky: JobKind<unknown> = {
      kind: uniqueKind('picky'),
      parsePayload: (payload) => {
        if (payload !== 'ok') throw new Error('payload must be "ok"');
        return payload;
      },
      run: async () => null,
    };
    const queue = testQueue(stack, catalogueWith(stack, { jobConcurrency: 3 }), [always, permanent, picky]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Dead');
    const tenant = await contextOf(stack, firm);
    const submitted = await queue.jobs.submit(tenant, [
      { kind: always.kind, payload: null },
      { kind: permanent.kind, payload: null },
      { kind: picky.kind, payload: 'not ok' },
    ]);
    queue.startWorkers(1, { slots: 3, backoffBaseMs: 20 });
    const tenantId = uuidOf(firm);
    await eventually(async () => ((await statusCounts(tenantId)).dead === 3 ? true : undefined));
    const [alwaysJob, permanentJob, pickyJob] = await Promise.all(
      submitted.map(async (job) => await queue.jobs.get(tenant, job.id)),
    );
    expect(alwaysJob?.job).toMatchObject({ status: 'dead', attempts: 3, lastError: 'Error: still broken' });
    expect(alwaysJob?.job.finishedAt).toBeInstanceOf(Date);
    expect(alwaysJob?.attempts.map((attempt) => attempt.outcome)).toEqual(['failed', 'failed', 'failed']);
    expect(permanentJob?.job).toMatchObject({ status: 'dead', attempts: 1 });
    expect(permanentJob?.job.lastError).toMatch(/PermanentJobError: the input can never work/);
    expect(pickyJob?.job).toMatchObject({ status: 'dead', attempts: 1 });
    expect(pickyJob?.job.lastError).toMatch(/invalid payload: .*must be "ok"/);
  });
});

describe('cancellation, progress and timeouts', () => {
  it('cancels a running job cooperatively: the handler sees its signal abort', async () => {
    // The handler reports progress, then waits on its signal. The firm sees the progress over
    // HTTP, cancels over HTTP, and the worker's next heartbeat aborts the signal.
    const aborted = new Set<string>();
    const kind: JobKind<unknown> = {
      kind: uniqueKind('patient'),
      parsePayload: (payload) => payload,
      run: async ({ job, signal, progress }) => {
        progress(10, 'waiting for a cancel');
        await sleepUnlessAborted(60_000, signal).catch((error: unknown) => {
          aborted.add(job.id);
          throw error;
        });
        return null;
      },
    };
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Cancel');
    const [job] = await queue.jobs.submit(await contextOf(stack, firm), [{ kind: kind.kind, payload: null }]);
    queue.startWorkers(1);
    const publicId = `job_${job?.id.replaceAll('-', '')}`;
    const read = async () =>
      (await stack.app.inject({ method: 'GET', url: `/v1/jobs/${publicId}`, headers: firm.auth })).json<{
        status: string;
        progress: { percent: number; message: string };
        history: Array<{ outcome: string | null }>;
      }>();
    await eventually(async () => ((await read()).progress.percent === 10 ? true : undefined));
    expect(await read()).toMatchObject({
      status: 'running',
      progress: { percent: 10, message: 'waiting for a cancel' },
    });

    const cancel = await stack.app.inject({ method: 'POST', url: `/v1/jobs/${publicId}/cancel`, headers: firm.auth });
    expect(cancel.statusCode).toBe(200);
    expect(cancel.json()).toMatchObject({ status: 'running', cancelRequested: true });
    const final = await eventually(async () => {
      const current = await read();
      return current.status === 'cancelled' ? current : undefined;
    });
    expect(aborted.has(job?.id ?? '')).toBe(true);
    expect(final.history.map((attempt) => attempt.outcome)).toEqual(['cancelled']);
  });

  it("skips progress while the job's own transaction holds its row, and writes it once that ends", async () => {
    // A pooled firm's checkpoint locks its job row until the handler's transaction ends; a
    // progress write on the control pool must not wait for it, but must not be lost either.
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    let probe: string | undefined;
    let renewalsWaiting = -1;
    const kind: JobKind<unknown> = {
      kind: uniqueKind('chunky'),
      parsePayload: (payload) => payload,
      run: async ({ job, tenant, scopes, saveCheckpoint, progress }) => {
        await scopes.run(tenant, async (db) => {
          await saveCheckpoint(db, { chunk: 1 });
          progress(40, 'inside a long chunk');
          probe = await Promise.race([
            queue.dispatcher.writeProgress(job, 30, 'probe'),
            pause(5_000).then(() => 'waited'),
          ]);
          // Longer than the flush interval and several heartbeats, so both meet the locked row.
          await pause(700);
          renewalsWaiting = await lockWaiters('with renewable as');
        });
        return null;
      },
    };
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Chunky');
    const [job] = await queue.jobs.submit(await contextOf(stack, firm), [{ kind: kind.kind, payload: null }]);
    queue.startWorkers(1);
    const final = await eventually(async () => {
      const { rows } = await stack.platform.ownerPool.query<{ status: string; progress_message: string | null }>(
        'select status, progress_message from jobs where id = $1',
        [job?.id],
      );
      return rows[0]?.status === 'succeeded' ? rows[0] : undefined;
    });
    expect(probe).toBe('busy');
    expect(final.progress_message).toBe('inside a long chunk');
    // Seven heartbeat ticks passed while the row was locked; none waited for it.
    expect(renewalsWaiting).toBe(0);
  });

  it('leaves a job whose transaction holds its row to that transaction, whose checkpoint renews the lease', async () => {
    const kind = sleepKind(60_000);
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Held Row');
    const context = await contextOf(stack, firm);
    const [submitted] = await queue.jobs.submit(context, [{ kind: kind.kind, payload: null }]);
    const claimed = await queue.dispatcher.claim('test-worker', [kind.kind], 2_000);
    expect(claimed?.id).toBe(submitted?.id);
    if (!claimed) throw new Error('not claimed');
    const expire = () =>
      stack.platform.ownerPool.query(
        "update jobs set lease_expires_at = clock_timestamp() - interval '1 second' where id = $1",
        [claimed.id],
      );
    const state = async () =>
      (
        await stack.platform.ownerPool.query<{ status: string; left_ms: number | null }>(
          `select status, (extract(epoch from lease_expires_at - clock_timestamp()) * 1000)::float8 as left_ms
             from jobs where id = $1`,
          [claimed.id],
        )
      ).rows[0];
    await expire();
    await stack.platform.scopes.run(context, async (db) => {
      expect(await writeCheckpoint(db, claimed.id, claimed.attempts, { chunk: 1 }, 60_000)).toBe(true);
      // The sweep meets the row while this transaction holds it: it skips it rather than wait.
      await queue.dispatcher.recoverExpired();
      expect((await state())?.status).toBe('running');
    });
    const renewed = await state();
    expect(renewed?.status).toBe('running');
    expect(renewed?.left_ms).toBeGreaterThan(50_000);
    // Once nobody holds it and the lease has run out, the sweep recovers it.
    await expire();
    await queue.dispatcher.recoverExpired();
    expect((await state())?.status).toBe('queued');
  });

  it("renews a worker's other jobs and sees their cancel while one job's transaction holds its row", async () => {
    // Firm A's job holds its row (checkpoint written) inside a chunk of 1.5 s, shorter than the
    // 2-s lease; firm B's job, on the same worker, is cancelled meanwhile. The heartbeat must
    // not wait on A's row: B sees its abort while A's chunk is still open, and A, its lease
    // renewed by its checkpoint, finishes on its first attempt.
    let holding = false;
    let release = () => {};
    let abortedWhileHeld: boolean | null = null;
    const kind: JobKind<unknown> = {
      kind: uniqueKind('holder'),
      parsePayload: (payload) => payload,
      run: async ({ payload, tenant, scopes, saveCheckpoint, signal }) => {
        if (payload === 'hold') {
          await scopes.run(tenant, async (db) => {
            await saveCheckpoint(db, { chunk: 1 });
            holding = true;
            await new Promise<void>((resolve) => {
              release = resolve;
              setTimeout(resolve, 1_500);
            });
            holding = false;
          });
          return null;
        }
        await sleepUnlessAborted(60_000, signal).catch((error: unknown) => {
          abortedWhileHeld = holding;
          release();
          throw error;
        });
        return null;
      },
    };
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    const [holder, waiter] = [await createTenant(stack.app, 'Holder'), await createTenant(stack.app, 'Waiter')];
    const [held] = await queue.jobs.submit(await contextOf(stack, holder), [{ kind: kind.kind, payload: 'hold' }]);
    const waiterContext = await contextOf(stack, waiter);
    const [waiting] = await queue.jobs.submit(waiterContext, [{ kind: kind.kind, payload: 'wait' }]);
    queue.startWorkers(1);
    await eventually(async () => {
      const counts = await statusCounts(uuidOf(waiter));
      return holding && counts.running === 1 ? true : undefined;
    });
    await queue.jobs.cancel(waiterContext, waiting?.id ?? '');
    await eventually(async () => (abortedWhileHeld === null ? undefined : true));
    expect(abortedWhileHeld).toBe(true);
    await eventually(async () => ((await statusCounts(uuidOf(holder))).succeeded === 1 ? true : undefined));
    expect((await attemptsOf([uuidOf(holder)])).map((attempt) => [attempt.job_id, attempt.outcome])).toEqual([
      [held?.id, 'succeeded'],
    ]);
  });

  it('aborts a handler that runs past its time limit and counts the attempt as failed', async () => {
    const kind: JobKind<unknown> = {
      kind: uniqueKind('slow'),
      parsePayload: (payload) => payload,
      timeoutMs: 100,
      maxAttempts: 1,
      run: async ({ signal }) => {
        await sleepUnlessAborted(60_000, signal);
        return null;
      },
    };
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Timeout');
    const tenant = await contextOf(stack, firm);
    const [job] = await queue.jobs.submit(tenant, [{ kind: kind.kind, payload: null }]);
    queue.startWorkers(1);
    await eventually(async () => ((await statusCounts(uuidOf(firm))).dead === 1 ? true : undefined));
    const detail = await queue.jobs.get(tenant, job?.id ?? '');
    expect(detail.job.lastError).toBe('the handler ran past its time limit');
  });

  it('puts running jobs back in the queue when a worker shuts down, and the next worker runs them', async () => {
    // The first attempt waits until the shutdown aborts it; it is recorded as released and the
    // job gets that attempt back (maxAttempts grows by one). A new worker then runs attempt 2.
    const kind: JobKind<unknown> = {
      kind: uniqueKind('interrupted'),
      parsePayload: (payload) => payload,
      maxAttempts: 2,
      run: async ({ job, signal }) => {
        if (job.attempts === 1) await sleepUnlessAborted(60_000, signal);
        return { attempt: job.attempts };
      },
    };
    const queue = testQueue(stack, catalogueWith(stack, {}), [kind]);
    queues.push(queue);
    const firm = await createTenant(stack.app, 'Shutdown');
    const tenant = await contextOf(stack, firm);
    const [job] = await queue.jobs.submit(tenant, [{ kind: kind.kind, payload: null }]);
    queue.startWorkers(1);
    const tenantId = uuidOf(firm);
    await eventually(async () => ((await statusCounts(tenantId)).running === 1 ? true : undefined));
    await queue.stopWorkers();
    const released = await queue.jobs.get(tenant, job?.id ?? '');
    expect(released.job).toMatchObject({ status: 'queued', attempts: 1, maxAttempts: 3 });
    expect(released.attempts.map((attempt) => attempt.outcome)).toEqual(['released']);

    queue.startWorkers(1);
    await eventually(async () => ((await statusCounts(tenantId)).succeeded === 1 ? true : undefined));
    const done = await queue.jobs.get(tenant, job?.id ?? '');
    expect(done.job).toMatchObject({ status: 'succeeded', attempts: 2, result: { attempt: 2 } });
    expect(done.attempts.map((attempt) => attempt.outcome)).toEqual(['released', 'succeeded']);
  });
});

/**
 * The batch-job queue under load, on the embedded default (or DATABASE_URL if set):
 *   (1) throughput — no-op jobs from several tenants through two workers, submission to the
 *       last job done, in jobs per second (claim + tenant context + handler + outcome);
 *   (2) fairness  — tenant A keeps 10 worker slots busy with a backlog of 1,000 jobs of
 *       300–480 ms; tenant B then submits 5 jobs, several rounds. B's wait (start − submission,
 *       both database timestamps) is printed per job, against the longest A job and against
 *       what a first-in-first-out queue would make B wait (A's backlog ahead of it).
 *
 *   npx tsx bench/jobs.bench.ts [--tenants 4] [--jobs-per-tenant 500] [--rounds 3]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { JobDispatcher } from '../apps/server/src/jobs/jobs.dispatcher.ts';
import { JobRegistry } from '../apps/server/src/jobs/jobs.registry.ts';
import { JobsService } from '../apps/server/src/jobs/jobs.service.ts';
import type { JobKind } from '../apps/server/src/jobs/jobs.types.ts';
import { JobWorker } from '../apps/server/src/jobs/jobs.worker.ts';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { bootstrapOwnerDatabase } from '../apps/server/src/platform/database/database-setup.ts';
import { type EmbeddedCluster, startEmbeddedCluster } from '../apps/server/src/platform/database/embedded-cluster.ts';
import type { TenantContext } from '../apps/server/src/platform/database/tenant-scope.ts';
import { randomToken } from '../apps/server/src/platform/local-secrets.ts';
import { openPlatform, type Platform } from '../apps/server/src/platform/platform.ts';
import { tenantContextOf } from '../apps/server/src/tenancy/tenancy.service.ts';
import { TierCatalogue, type TierDefinition } from '../apps/server/src/tenancy/tiers.ts';
import { intFlag } from './bench-flags.ts';

const { values: flags } = parseArgs({
  options: {
    tenants: { type: 'string', default: '4' },
    'jobs-per-tenant': { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3' },
  },
});
const tenantCount = intFlag(flags, 'tenants', 1, 50);
const jobsPerTenant = intFlag(flags, 'jobs-per-tenant', 1, 5_000);
const rounds = intFlag(flags, 'rounds', 1, 20);

const log = pino({ level: 'warn' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

async function openBenchPlatform(home: string): Promise<{ platform: Platform; cluster: EmbeddedCluster | null }> {
  let ownerUrl = process.env.DATABASE_URL;
  let cluster: EmbeddedCluster | null = null;
  if (!ownerUrl) {
    // When we run as root, PostgreSQL runs as the `postgres` OS user and must reach the folder.
    const clusterHome = path.join(home, 'cluster');
    await fs.mkdir(clusterHome, { mode: 0o755 });
    await fs.chmod(home, 0o755);
    cluster = await startEmbeddedCluster({ home: clusterHome, log });
    ownerUrl = await bootstrapOwnerDatabase(cluster.superuserUrl, 'countinghouse_bench', randomToken(24));
  }
  const config = {
    ...loadConfig({}),
    home,
    databaseUrl: ownerUrl,
    operatorKey: `chop_bench_${randomToken(32)}`,
    runtimePoolMax: 20,
  };
  return { platform: await openPlatform(config, log), cluster };
}

async function newTenant(platform: Platform, label: string): Promise<TenantContext> {
  const record = await platform.tenancy.createTenant({
    name: `${label} ${randomToken(6)}`,
    tier: 'starter',
    admin: {
      email: `bench-${randomToken(6)
        .toLowerCase()
        .replace(/[^a-z0-9]/g, 'x')}@bench.test`,
      password: randomToken(16),
    },
  });
  return tenantContextOf(record);
}

function queueFor(platform: Platform, jobConcurrency: number, kinds: Array<JobKind<unknown>>) {
  const starter = platform.tiers.find('starter');
  if (!starter) throw new Error('no starter tier');
  const { name: _name, ...definition } = starter;
  const tiers: Record<string, TierDefinition> = {
    starter: { ...definition, limits: { ...definition.limits, jobConcurrency } },
  };
  const registry = new JobRegistry();
  for (const kind of kinds) registry.register(kind);
  const dispatcher = new JobDispatcher(platform.ownerPool, new TierCatalogue(tiers));
  const jobs = new JobsService(platform.scopes, registry, dispatcher);
  const workers = [0, 1].map(
    () =>
      new JobWorker({
        dispatcher,
        registry,
        scopes: platform.scopes,
        log,
        slots: 5,
        pollMs: 20,
        async tenantContext(tenantId) {
          const record = await platform.tenancy.getTenant(tenantId);
          return record ? tenantContextOf(record) : null;
        },
      }),
  );
  for (const worker of workers) jobs.onSubmitted(() => worker.wake());
  return { jobs, workers };
}

async function countStatus(platform: Platform, tenantIds: string[], status: string): Promise<number> {
  const { rows } = await platform.ownerPool.query<{ count: number }>(
    'select count(*)::integer as count from jobs where tenant_id = any($1::uuid[]) and status = $2',
    [tenantIds, status],
  );
  return rows[0]?.count ?? 0;
}

async function throughput(platform: Platform): Promise<void> {
  const kind: JobKind<unknown> = {
    kind: `bench.noop.${randomToken(4).toLowerCase()}`,
    parsePayload: (p) => p,
    run: async () => null,
  };
  const { jobs, workers } = queueFor(platform, 5, [kind]);
  const tenants = await Promise.all(
    Array.from({ length: tenantCount }, (_, index) => newTenant(platform, `Busy ${index}`)),
  );
  const ids = tenants.map((tenant) => tenant.tenantId);
  const total = tenantCount * jobsPerTenant;
  for (const tenant of tenants) {
    await jobs.submit(
      tenant,
      Array.from({ length: jobsPerTenant }, () => ({ kind: kind.kind, payload: null })),
    );
  }
  const startedMs = performance.now();
  for (const worker of workers) worker.start();
  while ((await countStatus(platform, ids, 'succeeded')) < total) await sleep(50);
  const elapsedS = (performance.now() - startedMs) / 1_000;
  await Promise.all(workers.map((worker) => worker.stop()));
  console.log(
    `throughput: ${total} no-op jobs from ${tenantCount} tenants, 2 workers × 5 slots, caps 5: ${(total / elapsedS).toFixed(0)} jobs/s (${elapsedS.toFixed(2)} s)`,
  );
}

async function fairness(platform: Platform): Promise<void> {
  const kind: JobKind<unknown> = {
    kind: `bench.sleep.${randomToken(4).toLowerCase()}`,
    parsePayload: (p) => p,
    run: async ({ payload, signal }) => {
      await sleepUnlessAborted((payload as { ms: number }).ms, signal);
      return null;
    },
  };
  const { jobs, workers } = queueFor(platform, 10, [kind]);
  const [tenantA, tenantB] = [await newTenant(platform, 'Noisy A'), await newTenant(platform, 'Quiet B')];
  await jobs.submit(
    tenantA,
    Array.from({ length: 1_000 }, (_, index) => ({ kind: kind.kind, payload: { ms: 300 + (index % 7) * 30 } })),
  );
  for (const worker of workers) worker.start();
  while ((await countStatus(platform, [tenantA.tenantId], 'succeeded')) < 20) await sleep(25);
  const waitsMs: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const queuedA = await countStatus(platform, [tenantA.tenantId], 'queued');
    const submitted = await jobs.submit(
      tenantB,
      Array.from({ length: 5 }, () => ({ kind: kind.kind, payload: { ms: 300 } })),
    );
    while ((await countStatus(platform, [tenantB.tenantId], 'succeeded')) < round * 5) await sleep(25);
    const { rows } = await platform.ownerPool.query<{ wait_ms: number }>(
      `select extract(epoch from (started_at - created_at)) * 1000 as wait_ms from jobs
        where tenant_id = $1 and id = any($2::uuid[]) order by started_at`,
      [tenantB.tenantId, submitted.map((job) => job.id)],
    );
    const waits = rows.map((row) => Number(row.wait_ms));
    waitsMs.push(...waits);
    console.log(
      `fairness round ${round}: A had ${queuedA} queued; B's 5 jobs waited ${waits.map((ms) => ms.toFixed(0)).join(', ')} ms (FIFO would be ≈ ${((queuedA / 10) * 390).toFixed(0)} ms)`,
    );
  }
  const { rows } = await platform.ownerPool.query<{ duration_ms: number }>(
    `select max(extract(epoch from (ended_at - started_at)) * 1000) as duration_ms from job_attempts
      where tenant_id = $1 and outcome = 'succeeded'`,
    [tenantA.tenantId],
  );
  const jobMs = Number(rows[0]?.duration_ms ?? 0);
  await Promise.all(workers.map((worker) => worker.stop()));
  const worst = Math.max(...waitsMs);
  const sorted = [...waitsMs].sort((x, y) => x - y);
  console.log(
    `fairness: B's wait under A's 1,000-job backlog: median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} ms, max ${worst.toFixed(0)} ms = ${(worst / jobMs).toFixed(2)} × the longest A job (${jobMs.toFixed(0)} ms); goal ≤ 1 job-duration`,
  );
}

async function main(): Promise<void> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-bench-jobs-'));
  console.log(
    `jobs benchmark: ${os.cpus().length} CPU(s), load average ${(os.loadavg()[0] ?? 0).toFixed(2)}, node ${process.version}, ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}`,
  );
  const { platform, cluster } = await openBenchPlatform(home);
  try {
    await throughput(platform);
    await fairness(platform);
  } finally {
    await platform.close();
    await cluster?.stop();
    await fs.rm(home, { recursive: true, force: true });
  }
}

await main();

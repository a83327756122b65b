/**
 * The noisy-neighbour harness. One server (`countinghouse start`, embedded PostgreSQL, or
 * DATABASE_URL / REDIS_URL when set) on loopback; several quiet tenants run a steady
 * workload of reads (one entity), list pages (100 entities) and trial balances (of an entity
 * with --entries posted journal entries on the US chart); then a noisy tenant on the
 * same plan floods list pages at 20 × its plan rate while its large entity imports run as
 * batch jobs (--imports of 5,000 rows each, queued as the flood starts), and with --packs N, N
 * report packs of its books (trial balance, income statement and balance sheet as PDF, XLSX and
 * CSV; batch jobs that render files) queued beside them. Prints each quiet
 * tenant's p50 and p99 alone and under the flood, the p99 ratio (goal ≤ 1.25), and the
 * noisy tenant's accepted rate against its plan (goal within ±5 %). Bounded: setup, a
 * warm-up, two phases of --seconds each, and a hard deadline.
 *
 * The flood comes from a child process, so that it does not delay the quiet tenants' own
 * clock; it still shares the machine's cores with the server, which a real noisy client
 * would not. Also printed: the server process's CPU in each phase (Linux), to tell a
 * starved server (a busy machine) from a slow one, and per phase the server's event-loop
 * delay, GC pauses and PostgreSQL's non-idle backends by wait event (noisy-neighbour.diagnostics.ts).
 *
 *   npx tsx bench/noisy-neighbour.bench.ts [--seconds 20] [--quiet 3] [--quiet-rps 10] [--imports 4] [--packs 0] [--entries 200] [--rounds 3] [--worker-process]
 *
 * --worker-process runs the jobs the scaled-out way: the server with no in-process worker
 * (COUNTINGHOUSE_JOB_WORKERS=0) and a `countinghouse worker` process of its own beside it, which
 * paces its jobs by what the server announces (limits/interactive-signal.ts). A worker process
 * needs DATABASE_URL (a PostgreSQL server both reach); both get the same fresh master key.
 *
 * --rounds N repeats the pair of phases (alone, then flood with fresh imports) N times, waiting
 * between rounds until the imports are done, and judges the goal on every round's requests
 * pooled: a p99 of 200 requests is the third-slowest, so one round's ratio moves by about
 * ±0.3; each round's own ratio is printed too.
 *
 * Diagnostics: BENCH_DEBUG=1 prints each quiet request slower than 200 ms (BENCH_DEBUG_SLOW_MS), the 100-ms
 * intervals in which the server's event loop was blocked over 50 ms (BENCH_DEBUG_STALL_MS; with PostgreSQL beside
 * them) and the server's output; BENCH_SERVER_LOG=<file> with BENCH_SERVER_LOG_LEVEL=info
 * keeps the server's log; BENCH_SERVER_CPU_PROFILE=<folder> writes the server's V8 CPU profile
 * there when it stops (node --cpu-prof); BENCH_SERVER_NODE_FLAGS="--single-threaded-gc …" starts the server's
 * node with those flags, to compare runtime settings.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { intFlag } from './bench-flags.ts';
import { Diagnostics, probeModule, type Window } from './noisy-neighbour.diagnostics.ts';
import { processCpuSeconds } from './process-cpu.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const binary = path.join(repoRoot, 'apps', 'server', 'bin', 'countinghouse.mjs');
const operatorKey = `chop_bench_${'n'.repeat(40)}`;
const password = 'correct horse battery staple';
const startTimeoutMs = 180_000;
const entitiesPerTenant = 100;
const floodMultiplier = 20;
const floodOutstandingMax = 256;
const warmupMs = 3_000;
/** The flood's first moments spend the bucket's burst; the steady rate is measured after. */
const burstSettleMs = 2_000;

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    quiet: { type: 'string', default: '3' },
    'quiet-rps': { type: 'string', default: '10' },
    imports: { type: 'string', default: '4' },
    packs: { type: 'string', default: '0' },
    entries: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
    'worker-process': { type: 'boolean', default: false },
    // Internal: the flood runs in its own process so that it cannot slow the quiet tenants' clock.
    'flood-worker': { type: 'string' },
  },
});
const phaseMs = Number(flags.seconds) * 1_000;
const quietCount = intFlag(flags, 'quiet', 1, 10);
const quietRps = Number(flags['quiet-rps']);
const importCount = intFlag(flags, 'imports', 0, 20);
const packCount = intFlag(flags, 'packs', 0, 200);
// One journal batch at most.
const ledgerEntries = intFlag(flags, 'entries', 1, 1_000);
if (!(phaseMs >= 5_000 && phaseMs <= 120_000)) throw new Error('--seconds must be 5..120');
if (!(quietRps > 0 && quietRps <= 20)) throw new Error('--quiet-rps must be within the plan (1..20)');
const importRows = 5_000;
const rounds = intFlag(flags, 'rounds', 1, 10);
/** Between rounds, the noisy tenant's imports get this long to finish before the next quiet-alone phase. */
const settleMsMax = 180_000;
const workerProcess = flags['worker-process'] === true;
if (workerProcess && !process.env.DATABASE_URL) throw new Error('--worker-process needs DATABASE_URL');
/** A worker process and the server must unseal the same keys. */
const sharedEnv: NodeJS.ProcessEnv = workerProcess
  ? { COUNTINGHOUSE_MASTER_KEY: process.env.COUNTINGHOUSE_MASTER_KEY ?? randomBytes(32).toString('hex') }
  : {};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

interface Reply {
  status: number;
  ms: number;
  body: string;
}

class Client {
  readonly #agent: http.Agent;
  readonly #port: number;

  constructor(port: number, socketsMax: number) {
    this.#port = port;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: socketsMax });
  }

  request(
    method: string,
    url: string,
    token: string | null,
    body?: object | object[],
    extraHeaders: Record<string, string> = {},
  ): Promise<Reply> {
    const started = performance.now();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: '127.0.0.1',
          port: this.#port,
          method,
          path: url,
          agent: this.#agent,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(payload ? { 'content-type': 'application/json' } : {}),
            ...extraHeaders,
          },
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, ms: performance.now() - started, body: text }),
          );
        },
      );
      request.on('error', reject);
      request.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? Number.NaN;
}

interface Server {
  child: ChildProcess;
  port: number;
  home: string;
  probeFile: string;
  output: () => string;
}

async function startServer(): Promise<Server> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-noisy-'));
  await fs.chmod(home, 0o755);
  const port = await freePort();
  const probeFile = path.join(home, 'probe.jsonl');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BENCH_PROBE_FILE: probeFile,
    COUNTINGHOUSE_HOME: home,
    PORT: String(port),
    COUNTINGHOUSE_OPERATOR_KEY: operatorKey,
    LOG_LEVEL: process.env.BENCH_SERVER_LOG_LEVEL ?? 'warn',
    ...sharedEnv,
    ...(workerProcess ? { COUNTINGHOUSE_JOB_WORKERS: '0' } : {}),
  };
  const profileDir = process.env.BENCH_SERVER_CPU_PROFILE;
  const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const extraFlags = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...extraFlags, ...profile, '--import', pathToFileURL(probeModule).href, binary, 'start'],
    {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const logFile = process.env.BENCH_SERVER_LOG;
  child.stdout?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
    if (logFile) void fs.appendFile(logFile, chunk);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
  });
  const deadline = performance.now() + startTimeoutMs;
  const probe = new Client(port, 1);
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited: ${output}`);
      const ready = await probe.request('GET', '/readyz', null).catch(() => null);
      if (ready?.status === 200) break;
      if (performance.now() > deadline) throw new Error(`server not ready in time: ${output}`);
      await sleep(100);
    }
  } finally {
    probe.close();
  }
  return { child, port, home, probeFile, output: () => output };
}

/** `countinghouse worker` on the same database, started (and migrated) before the server. */
async function startWorker(): Promise<{ child: ChildProcess; home: string }> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-noisy-worker-'));
  const child = spawn(process.execPath, [binary, 'worker'], {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...sharedEnv,
      COUNTINGHOUSE_HOME: home,
      COUNTINGHOUSE_OPERATOR_KEY: operatorKey,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker not running in time: ${output}`)), startTimeoutMs);
    const read = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8_000);
      if (output.includes('is running')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`worker exited: ${output}`));
    });
  });
  return { child, home };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

interface Tenant {
  id: string;
  token: string;
  entityIds: string[];
  /** The entity with a chart and posted entries, whose trial balance the quiet tenant reads. */
  booksEntityId: string;
}

/** Dated within 2025, so the trial balance as of the year end covers them all. */
const booksAsOf = '2025-12-31';

/** An entity on the US chart with `ledgerEntries` posted entries (one all-or-nothing batch). */
async function seedBooks(client: Client, name: string, token: string): Promise<string> {
  const entity = await client.request('POST', '/v1/entities', token, {
    name: `${name} books`,
    chartTemplate: 'us-small-business',
  });
  if (entity.status !== 201) throw new Error(`seeding books failed: ${entity.body}`);
  const entityId = (JSON.parse(entity.body) as { id: string }).id;
  const chart = await client.request('GET', `/v1/entities/${entityId}/accounts?limit=100`, token);
  const accounts = (JSON.parse(chart.body) as { items: Array<{ id: string; type: string }> }).items;
  const debit = accounts.filter((account) => account.type === 'expense' || account.type === 'asset');
  const credit = accounts.filter((account) => account.type === 'revenue' || account.type === 'liability');
  if (debit.length === 0 || credit.length === 0) throw new Error(`unexpected chart: ${chart.body}`);
  const entries = Array.from({ length: ledgerEntries }, (_, index) => {
    const amountMinor = 1_000 + ((index * 7_919) % 100_000);
    const month = String(1 + (index % 12)).padStart(2, '0');
    const day = String(1 + (index % 28)).padStart(2, '0');
    return {
      date: `2025-${month}-${day}`,
      memo: `Bench entry ${index}`,
      lines: [
        { accountId: debit[index % debit.length]?.id, side: 'debit', amountMinor, currency: 'USD', exponent: 2 },
        { accountId: credit[index % credit.length]?.id, side: 'credit', amountMinor, currency: 'USD', exponent: 2 },
      ],
    };
  });
  const posted = await client.request(
    'POST',
    `/v1/entities/${entityId}/journal-entries/batch`,
    token,
    { entries },
    {
      'idempotency-key': `bench-books-${entityId}`,
    },
  );
  if (posted.status !== 201) throw new Error(`posting the books failed: ${posted.body}`);
  return entityId;
}

async function onboard(client: Client, name: string): Promise<Tenant> {
  const email = `owner@${name.toLowerCase().replace(/[^a-z0-9]/g, '')}.test`;
  const created = await client.request('POST', '/v1/tenants', operatorKey, {
    name,
    tier: 'starter',
    admin: { email, password },
  });
  if (created.status !== 201) throw new Error(`onboarding failed: ${created.body}`);
  const id = (JSON.parse(created.body) as { id: string }).id;
  const signedIn = await client.request('POST', '/v1/auth/token', null, { tenantId: id, email, password });
  if (signedIn.status !== 200) throw new Error(`sign-in failed: ${signedIn.body}`);
  const token = (JSON.parse(signedIn.body) as { access_token: string }).access_token;
  // Seed at a raised plan, then return the tenant to its tier's plan for the measurement.
  await client.request('PUT', `/v1/tenants/${id}/plan`, operatorKey, {
    usagePlan: { ratePerSecond: 1000, burst: 1000 },
  });
  const booksEntityId = await seedBooks(client, name, token);
  const entityIds: string[] = [];
  for (let index = 0; index < entitiesPerTenant; index += 1) {
    const entity = await client.request('POST', '/v1/entities', token, { name: `${name} client ${index}` });
    if (entity.status !== 201) throw new Error(`seeding failed: ${entity.body}`);
    entityIds.push((JSON.parse(entity.body) as { id: string }).id);
  }
  await client.request('PUT', `/v1/tenants/${id}/plan`, operatorKey, {});
  return { id, token, entityIds, booksEntityId };
}

/** The quiet tenant's request number `index`: reads on even numbers, list pages and trial balances in turn between. */
function quietUrl(tenant: Tenant, index: number): string {
  if (index % 2 === 0) return `/v1/entities/${tenant.entityIds[index % tenant.entityIds.length]}`;
  if (index % 4 === 1) return '/v1/entities?limit=100';
  return `/v1/entities/${tenant.booksEntityId}/reports/trial-balance?asOf=${booksAsOf}`;
}

/** BENCH_DEBUG prints quiet requests slower than this (BENCH_DEBUG_SLOW_MS, default 200). */
const debugSlowMs = Number(process.env.BENCH_DEBUG_SLOW_MS ?? 200);

/** A quiet tenant: open-loop, evenly spaced; half one-entity reads, a quarter list pages, a quarter trial balances. */
async function quietLoad(
  client: Client,
  tenant: Tenant,
  durationMs: number,
  latencies: number[],
  errors: Map<number, number>,
) {
  const intervalMs = 1_000 / quietRps;
  const started = performance.now();
  const pending: Array<Promise<void>> = [];
  for (let index = 0; ; index += 1) {
    const dueMs = started + index * intervalMs;
    if (dueMs - started >= durationMs) break;
    const waitMs = dueMs - performance.now();
    if (waitMs > 0) await sleep(waitMs);
    const url = quietUrl(tenant, index);
    pending.push(
      client.request('GET', url, tenant.token).then((reply) => {
        if (process.env.BENCH_DEBUG && reply.ms > debugSlowMs)
          console.log(`slow at ${(dueMs - started).toFixed(0)} ms: ${reply.ms.toFixed(0)} ms ${url.split('?')[0]}`);
        if (reply.status === 200) latencies.push(reply.ms);
        else errors.set(reply.status, (errors.get(reply.status) ?? 0) + 1);
      }),
    );
  }
  await Promise.all(pending);
}

interface FloodResult {
  sent: number;
  skipped: number;
  statuses: Record<string, number>;
  acceptedAfterBurst: number;
  importsAccepted: number;
  packsAccepted: number;
  /** The flood process's own CPU over its run (user + system), in milliseconds. */
  cpuMs: number;
}

/** The noisy tenant: open-loop list pages at 20 × plan rate, at most floodOutstandingMax in flight. */
async function flood(
  client: Client,
  tenant: Tenant,
  ratePerSecond: number,
  durationMs: number,
  imports: number,
  packs: number,
  round: number,
): Promise<FloodResult> {
  const result: FloodResult = {
    sent: 0,
    skipped: 0,
    statuses: {},
    acceptedAfterBurst: 0,
    importsAccepted: 0,
    packsAccepted: 0,
    cpuMs: 0,
  };
  // The historical import: several maximum-size entity imports queued at once as batch jobs.
  for (let batch = 0; batch < imports; batch += 1) {
    // Names new in every round: a repeated name would be reported as a duplicate, not imported.
    const rows = Array.from({ length: importRows }, (_, row) => ({ name: `Imported ${round}-${batch}-${row}` }));
    const submitted = await client.request('POST', '/v1/entities/imports', tenant.token, rows);
    if (submitted.status === 202) result.importsAccepted += 1;
  }
  // Month-end packages: each renders three statements in three formats on the server.
  for (let pack = 0; pack < packs; pack += 1) {
    const submitted = await client.request(
      'POST',
      `/v1/entities/${tenant.booksEntityId}/report-packs`,
      tenant.token,
      { to: booksAsOf },
      { 'idempotency-key': `pack-${round}-${pack}-${process.pid}` },
    );
    if (submitted.status === 202) result.packsAccepted += 1;
  }
  const tickMs = 10;
  const perTick = (ratePerSecond * tickMs) / 1_000;
  const started = performance.now();
  let outstanding = 0;
  let owed = 0;
  const pending: Array<Promise<void>> = [];
  for (let tick = 0; tick * tickMs < durationMs; tick += 1) {
    const waitMs = started + tick * tickMs - performance.now();
    if (waitMs > 0) await sleep(waitMs);
    owed += perTick;
    for (; owed >= 1; owed -= 1) {
      if (outstanding >= floodOutstandingMax) {
        result.skipped += 1;
        continue;
      }
      const sentAtMs = performance.now() - started;
      outstanding += 1;
      result.sent += 1;
      pending.push(
        client.request('GET', '/v1/entities?limit=100', tenant.token).then(
          (reply) => {
            outstanding -= 1;
            result.statuses[reply.status] = (result.statuses[reply.status] ?? 0) + 1;
            if (reply.status === 200 && sentAtMs >= burstSettleMs) result.acceptedAfterBurst += 1;
          },
          () => {
            outstanding -= 1;
            result.statuses.failed = (result.statuses.failed ?? 0) + 1;
          },
        ),
      );
    }
  }
  await Promise.all(pending);
  return result;
}

interface FloodOrder {
  port: number;
  token: string;
  ratePerSecond: number;
  durationMs: number;
  imports: number;
  packs: number;
  booksEntityId: string;
  round: number;
}

/**
 * Starts the flood in a child process (same tsx loader) and waits until it is loaded, so
 * its start-up costs no CPU inside the measured phase; `go` starts it, `done` reports.
 */
async function spawnFlood(order: FloodOrder): Promise<{ go: () => Promise<FloodResult> }> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, self, '--flood-worker', JSON.stringify(order)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let output = '';
  let announced = () => {};
  const ready = new Promise<void>((resolve) => {
    announced = resolve;
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (output.startsWith('ready\n')) announced();
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await Promise.race([ready, exited]);
  return {
    go: async () => {
      child.stdin?.end('go\n');
      const code = await exited;
      if (code !== 0) throw new Error(`flood worker failed (${String(code)})`);
      return JSON.parse(output.slice('ready\n'.length)) as FloodResult;
    },
  };
}

async function phase(
  client: Client,
  quiet: Tenant[],
  durationMs: number,
  noisy: { go: () => Promise<FloodResult> } | null,
) {
  const latencies = quiet.map(() => [] as number[]);
  const errors = quiet.map(() => new Map<number, number>());
  const [floodResult] = await Promise.all([
    noisy ? noisy.go() : Promise.resolve(null),
    ...quiet.map((tenant, index) =>
      quietLoad(client, tenant, durationMs, latencies[index] ?? [], errors[index] ?? new Map()),
    ),
  ]);
  return { latencies, errors, floodResult };
}

async function measured<T>(
  pid: number | undefined,
  work: () => Promise<T>,
): Promise<{ result: T; cpuPercent: number | null; window: Window }> {
  const cpuBefore = await processCpuSeconds(pid);
  const started = performance.now();
  const startMs = Date.now();
  const monotonicStartUs = process.hrtime.bigint() / 1_000n;
  const result = await work();
  const monotonicEndUs = process.hrtime.bigint() / 1_000n;
  const cpuAfter = await processCpuSeconds(pid);
  const seconds = (performance.now() - started) / 1000;
  return {
    result,
    cpuPercent: cpuBefore === null || cpuAfter === null ? null : ((cpuAfter - cpuBefore) / seconds) * 100,
    window: { startMs, endMs: Date.now(), monotonicStartUs, monotonicEndUs },
  };
}

const ms = (value: number) => `${value.toFixed(1)} ms`.padStart(10);

interface ListedJob {
  status: string;
  progress: { percent: number };
  startedAt: string | null;
  finishedAt: string | null;
}

/**
 * The noisy tenant's jobs, newest first, once its flood's 429s are waited out (the flood has
 * just spent its bucket); `states` describes the newest `latest` of them.
 */
async function noisyJobs(
  client: Client,
  token: string,
  latest = importCount,
): Promise<{ items: ListedJob[]; states: string }> {
  let reply = await client.request('GET', '/v1/jobs?limit=100', token);
  for (let tries = 0; reply.status === 429 && tries < 20; tries += 1) {
    await sleep(500);
    reply = await client.request('GET', '/v1/jobs?limit=100', token);
  }
  const items = reply.status === 200 ? ((JSON.parse(reply.body) as { items?: ListedJob[] }).items ?? []) : [];
  // How long each ran: the window in which the quiet tenants shared the machine with it.
  const ranFor = (job: ListedJob) =>
    job.startedAt && job.finishedAt
      ? ` in ${((Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000).toFixed(1)} s`
      : '';
  const states = items
    .slice(0, latest)
    .map((job) => `${job.status} ${job.progress.percent}%${ranFor(job)}`)
    .join(', ');
  return { items, states: states || `none listed (HTTP ${reply.status})` };
}

/** Waits until none of the noisy tenant's jobs is queued or running (bounded). */
async function settleJobs(client: Client, token: string): Promise<void> {
  const deadline = performance.now() + settleMsMax;
  while (performance.now() < deadline) {
    const { items } = await noisyJobs(client, token);
    if (items.every((job) => job.status !== 'queued' && job.status !== 'running')) return;
    await sleep(1_000);
  }
  throw new Error(`the noisy tenant's imports did not finish within ${settleMsMax / 1000} s`);
}

async function main(): Promise<void> {
  const hardDeadline = setTimeout(
    () => {
      console.error('noisy-neighbour: hard deadline reached');
      process.exit(2);
    },
    startTimeoutMs + rounds * (4 * phaseMs + settleMsMax) + 300_000,
  );
  hardDeadline.unref();
  const worker = workerProcess ? await startWorker() : null;
  const server = await startServer().catch(async (error: unknown) => {
    if (worker) await stopChild(worker.child);
    throw error;
  });
  const setup = new Client(server.port, 4);
  const quietClient = new Client(server.port, 32);
  const diagnostics = new Diagnostics(server.probeFile);
  try {
    await diagnostics.start(server.home);
    const suffix = Math.random().toString(36).slice(2, 8);
    const quiet: Tenant[] = [];
    for (let index = 0; index < quietCount; index += 1) quiet.push(await onboard(setup, `Quiet ${index} ${suffix}`));
    const noisy = await onboard(setup, `Noisy ${suffix}`);
    const plan = JSON.parse((await setup.request('GET', `/v1/tenants/${noisy.id}/plan`, operatorKey)).body) as {
      effective: { usagePlan: { ratePerSecond: number; burst: number } };
    };
    const planRate = plan.effective.usagePlan.ratePerSecond;
    const floodRate = planRate * floodMultiplier;

    await phase(quietClient, quiet, warmupMs, null);
    const pid = server.child.pid;
    const cpu = (value: number | null) => (value === null ? 'n/a' : `${value.toFixed(0)} %`);
    console.log(
      `noisy-neighbour: ${quietCount} quiet tenants × ${quietRps} req/s (one-entity read, 100-entity list page, trial balance of ${ledgerEntries} entries), ` +
        `noisy tenant floods list pages at ${floodRate} req/s (${floodMultiplier} × plan ${planRate}/s, burst ${plan.effective.usagePlan.burst}); ` +
        `${phaseMs / 1000} s per phase, ${rounds} round(s) of alone then flood; ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(2)}; ` +
        `${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}, ${process.env.REDIS_URL ? 'Redis' : 'in-process'} limiter, ` +
        `jobs ${workerProcess ? 'in a separate worker process' : 'in the server process'}`,
    );
    // Every round's samples are pooled per tenant and phase: a p99 over more requests, and
    // alternating phases, so neither phase always runs on a colder server.
    const aloneLatencies = quiet.map(() => [] as number[]);
    const floodLatencies = quiet.map(() => [] as number[]);
    const failures = quiet.map(() => new Map<number, number>());
    const roundRatios: number[] = [];
    let acceptedAfterBurst = 0;
    for (let round = 1; round <= rounds; round += 1) {
      const label = rounds > 1 ? `round ${round}: ` : '';
      const aloneRun = await measured(pid, () => phase(quietClient, quiet, phaseMs, null));
      const flooder = await spawnFlood({
        port: server.port,
        token: noisy.token,
        ratePerSecond: floodRate,
        durationMs: phaseMs,
        imports: importCount,
        packs: packCount,
        booksEntityId: noisy.booksEntityId,
        round,
      });
      const loudRun = await measured(pid, () => phase(quietClient, quiet, phaseMs, flooder));
      const floodResult = loudRun.result.floodResult;
      if (!floodResult) throw new Error('no flood result');
      acceptedAfterBurst += floodResult.acceptedAfterBurst;
      quiet.forEach((_, index) => {
        aloneLatencies[index]?.push(...(aloneRun.result.latencies[index] ?? []));
        floodLatencies[index]?.push(...(loudRun.result.latencies[index] ?? []));
        for (const run of [aloneRun, loudRun]) {
          for (const [status, count] of run.result.errors[index] ?? new Map<number, number>()) {
            failures[index]?.set(status, (failures[index]?.get(status) ?? 0) + count);
          }
        }
      });
      const ratio = Math.max(
        ...quiet.map(
          (_, index) =>
            percentile(loudRun.result.latencies[index] ?? [], 0.99) /
            percentile(aloneRun.result.latencies[index] ?? [], 0.99),
        ),
      );
      roundRatios.push(ratio);
      console.log(
        `${label}server process CPU: alone ${cpu(aloneRun.cpuPercent)}, under the flood ${cpu(loudRun.cpuPercent)} (of one core); ` +
          `the flood client itself ${cpu((floodResult.cpuMs / phaseMs) * 100)} on the same cores`,
      );
      console.log(`${label}server alone: ${await diagnostics.serverLine(aloneRun.window)}`);
      console.log(`${label}server under the flood: ${await diagnostics.serverLine(loudRun.window)}`);
      console.log(`${label}postgres alone: ${diagnostics.databaseLine(aloneRun.window)}`);
      console.log(`${label}postgres under the flood: ${diagnostics.databaseLine(loudRun.window)}`);
      console.log(`${label}postgres under the flood, ${diagnostics.statementsLine(loudRun.window)}`);
      if (process.env.BENCH_DEBUG) {
        for (const [name, run] of [
          ['alone', aloneRun],
          ['under the flood', loudRun],
        ] as const) {
          const { monotonicStartUs, monotonicEndUs } = run.window;
          // CPU profiles (BENCH_SERVER_CPU_PROFILE) time their samples on the same monotonic clock.
          console.log(`${label}phase ${name}: monotonic ${monotonicStartUs}..${monotonicEndUs} µs`);
          console.log(`${label}event loop blocked > 50 ms ${name}:`);
          for (const line of await diagnostics.stalls(run.window, Number(process.env.BENCH_DEBUG_STALL_MS ?? 50)))
            console.log(line);
        }
      }
      const statuses = Object.entries(floodResult.statuses)
        .map(([status, count]) => `${status}×${count}`)
        .join(' ');
      console.log(
        `${label}noisy tenant: sent ${floodResult.sent} (${(floodResult.sent / (phaseMs / 1000)).toFixed(0)}/s, ${floodResult.skipped} not sent at ${floodOutstandingMax} outstanding), ${statuses}`,
      );
      const jobs = await noisyJobs(setup, noisy.token, importCount + packCount);
      console.log(
        `${label}noisy tenant's imports (${importRows} entities each): ${floodResult.importsAccepted} of ${importCount} accepted` +
          (packCount > 0 ? `, report packs: ${floodResult.packsAccepted} of ${packCount} accepted` : '') +
          `; newest jobs at the end of the phase: ${jobs.states}`,
      );
      console.log(`${label}worst quiet p99 ratio ${ratio.toFixed(2)}`);
      // The next quiet-alone phase starts once this round's imports are done.
      if (round < rounds) await settleJobs(setup, noisy.token);
    }
    console.log(
      `${'quiet tenant'.padEnd(14)}${'p50 alone'.padStart(10)}${'p99 alone'.padStart(10)}${'p50 flood'.padStart(10)}${'p99 flood'.padStart(10)}  p99 ratio  non-200`,
    );
    let worstRatio = 0;
    quiet.forEach((_, index) => {
      const before = aloneLatencies[index] ?? [];
      const during = floodLatencies[index] ?? [];
      const ratio = percentile(during, 0.99) / percentile(before, 0.99);
      worstRatio = Math.max(worstRatio, ratio);
      const failed = [...(failures[index] ?? new Map<number, number>()).entries()];
      console.log(
        `${`quiet ${index}`.padEnd(14)}${ms(percentile(before, 0.5))}${ms(percentile(before, 0.99))}${ms(percentile(during, 0.5))}${ms(percentile(during, 0.99))}  ${ratio.toFixed(2).padStart(9)}  ${failed.length === 0 ? 'none' : failed.map(([status, count]) => `${status}×${count}`).join(' ')}`,
      );
    });
    const steadySeconds = (rounds * (phaseMs - burstSettleMs)) / 1_000;
    const acceptedRate = acceptedAfterBurst / steadySeconds;
    const deviation = (acceptedRate / planRate - 1) * 100;
    console.log(
      `noisy tenant: accepted after the burst ${acceptedRate.toFixed(2)}/s vs plan ${planRate}/s (${deviation >= 0 ? '+' : ''}${deviation.toFixed(1)} %)`,
    );
    if (rounds > 1) {
      const sorted = [...roundRatios].sort((a, b) => a - b);
      console.log(
        `per round, worst quiet p99 ratio: ${roundRatios.map((ratio) => ratio.toFixed(2)).join(', ')} (median ${percentile(sorted, 0.5).toFixed(2)}); the goal below is over all rounds' requests pooled`,
      );
    }
    console.log(
      `goals: worst quiet p99 ratio ${worstRatio.toFixed(2)} (≤ 1.25: ${worstRatio <= 1.25 ? 'met' : 'NOT met'}); ` +
        `noisy accepted rate ${deviation.toFixed(1)} % from plan (±5 %: ${Math.abs(deviation) <= 5 ? 'met' : 'NOT met'})`,
    );
    if (process.env.BENCH_DEBUG) console.log(server.output());
  } finally {
    await diagnostics.stop();
    setup.close();
    quietClient.close();
    await stopChild(server.child);
    await fs.rm(server.home, { recursive: true, force: true });
    if (worker) {
      await stopChild(worker.child);
      await fs.rm(worker.home, { recursive: true, force: true });
    }
  }
}

if (flags['flood-worker'] !== undefined) {
  const order = JSON.parse(flags['flood-worker']) as FloodOrder;
  const client = new Client(order.port, floodOutstandingMax);
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  const cpuBefore = process.cpuUsage();
  const result = await flood(
    client,
    { id: '', token: order.token, entityIds: [], booksEntityId: order.booksEntityId },
    order.ratePerSecond,
    order.durationMs,
    order.imports,
    order.packs,
    order.round,
  );
  client.close();
  const cpu = process.cpuUsage(cpuBefore);
  result.cpuMs = (cpu.user + cpu.system) / 1_000;
  process.stdout.write(JSON.stringify(result));
} else {
  await main();
}

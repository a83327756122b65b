/**
 * Ledger benchmarks on this machine, each printing its figure:
 *   1. HTTP posting throughput of 2-line entries, single (one entry per request) and batched
 *      (1,000 entries per request), for one tenant and for 50 tenants at once;
 *   2. trial-balance latency for an entity with --lines journal lines (default 1,000,000),
 *      against a plain GROUP BY over the same lines, as a ratio;
 *   3. posting throughput onto one hot account (every entry debits operating cash), posted by
 *      --users people of the firm at once (one user's concurrent posts commit together, so
 *      they never contend for a balance row; different users' posts do), with one
 *      balance row and with --shards write-shards, as a ratio.
 * The server runs in this process on the embedded PostgreSQL (or DATABASE_URL), listening on
 * a local port; the posting load comes from a child process of keep-alive node:http loops at
 * --concurrency (bench/ledger-load.ts), so the clients' work is not the server's.
 *
 *   npx tsx bench/ledger.bench.ts [--seconds 10] [--lines 1000000] [--concurrency 32] [--shards 16] [--users 8]
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import pg from 'pg';
import pino from 'pino';
import { insertUser } from '../apps/server/src/identity/users.store.ts';
import { balancesFromJournal } from '../apps/server/src/ledger/reports/reports.store.ts';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { buildHttpApp } from '../apps/server/src/platform/http/http-app.ts';
import { newUuid, parseId } from '../apps/server/src/platform/ids.ts';
import { openPlatform } from '../apps/server/src/platform/platform.ts';
import { tenantContextOf } from '../apps/server/src/tenancy/tenancy.service.ts';
import { intFlag } from './bench-flags.ts';
import { type Books, batchSize, entry, hotCreditNumbers, type LoadOrder, randomDate, runLoad } from './ledger-load.ts';
import { processCpuSeconds } from './process-cpu.ts';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    lines: { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '32' },
    shards: { type: 'string', default: '16' },
    tenants: { type: 'string', default: '50' },
    samples: { type: 'string', default: '50' },
    users: { type: 'string', default: '8' },
  },
});
const durationMs = intFlag(flags, 'seconds', 1, 3_600) * 1_000;
const linesTarget = intFlag(flags, 'lines', 1, 100_000_000);
const concurrency = intFlag(flags, 'concurrency', 1, 1_000);
const shards = intFlag(flags, 'shards', 1, 1_000);
const tenantCount = intFlag(flags, 'tenants', 1, 100_000);
const samples = intFlag(flags, 'samples', 1, 100_000);
const users = intFlag(flags, 'users', 1, 1_000);
const warmupMs = 2_000;

const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-bench-'));
await fs.chmod(home, 0o755);
const operatorKey = `chop_bench_${randomBytes(24).toString('hex')}`;
const config = {
  ...loadConfig(process.env),
  home,
  operatorKey,
  masterKey: randomBytes(32).toString('hex'),
  runtimePoolMax: 40,
};
const log = pino({ level: 'warn' });
const platform = await openPlatform(config, log);
const app = await buildHttpApp(platform, log);
const base = await app.listen({ host: '127.0.0.1', port: 0 });
const floorDatabaseUrl = (platform.ownerPool.options as { connectionString?: string }).connectionString;

async function call(method: string, url: string, auth: object, body?: unknown, key?: string) {
  const response = await fetch(`${base}${url}`, {
    method,
    headers: {
      ...auth,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(key ? { 'idempotency-key': key } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${url} → ${response.status} ${text.slice(0, 300)}`);
  return text.length > 0 ? JSON.parse(text) : null;
}

async function newBooks(label: string): Promise<Books> {
  const email = `owner-${randomUUID()}@bench.test`;
  const password = 'correct horse battery staple';
  const tenant = await call(
    'POST',
    '/v1/tenants',
    { authorization: `Bearer ${operatorKey}` },
    {
      name: `${label} ${randomUUID()}`,
      tier: 'starter',
      admin: { email, password },
    },
  );
  // The bench measures the ledger, not the starter plan's request rate and in-flight caps.
  await call(
    'PUT',
    `/v1/tenants/${tenant.id}/plan`,
    { authorization: `Bearer ${operatorKey}` },
    {
      usagePlan: { ratePerSecond: 100_000, burst: 1_000_000, quota: { limit: 1_000_000_000 } },
      limits: { inFlightRequestsMax: 10_000, databaseConnectionsMax: 200, statementTimeoutMs: 600_000 },
    },
  );
  const token = await call('POST', '/v1/auth/token', {}, { tenantId: tenant.id, email, password });
  const auth = { authorization: `Bearer ${token.access_token}` };
  const entity = await call('POST', '/v1/entities', auth, {
    name: `Client of ${label}`,
    chartTemplate: 'us-small-business',
  });
  const chart = await call('GET', `/v1/entities/${entity.id}/accounts`, auth);
  const accounts = Object.fromEntries(
    chart.items.map((account: { number: string; id: string }) => [account.number, account.id]),
  );
  return { auth, tenantId: tenant.id, entityId: entity.id, accounts };
}

/** Partners of the same firm, each with a token of their own, posting to the same books. */
async function colleagues(books: Books, count: number): Promise<Books[]> {
  const tenantId = parseId('tenant', books.tenantId) ?? '';
  const record = await platform.tenancy.getTenant(tenantId);
  if (!record) throw new Error('bench tenant missing');
  const people: Books[] = [];
  for (let index = 0; index < count; index++) {
    const userId = newUuid();
    await platform.scopes.run(tenantContextOf(record), (db) =>
      insertUser(db, {
        id: userId,
        tenantId,
        email: `partner-${userId}@bench.test`,
        passwordHash: 'x',
        roles: ['partner'],
      }),
    );
    const token = await platform.tokens.issue({
      userId,
      tenantId,
      tier: record.tier,
      roles: ['partner'],
      entityIds: null,
    });
    people.push({ ...books, auth: { authorization: `Bearer ${token.accessToken}` } });
  }
  return people;
}

/**
 * CPU seconds the embedded PostgreSQL's processes have used so far (Linux /proc; their working
 * directory is the data folder), or null for an external server, whose processes are not ours.
 */
async function postgresCpuSeconds(): Promise<number | null> {
  if (config.databaseUrl || process.platform !== 'linux') return null;
  const dataDir = path.join(home, 'pg');
  let seconds = 0;
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cwd = await fs.readlink(`/proc/${pid}/cwd`).catch(() => '');
    if (cwd === dataDir) seconds += (await processCpuSeconds(pid)) ?? 0;
  }
  return seconds;
}

/**
 * Runs a load order in the load process and reports the rate and its CPU cost per unit: the
 * server (this process), PostgreSQL and the clients apart. CPU per unit hardly depends on
 * what else the machine runs, so it gives the rate these cores could reach serving the load:
 * cores / (server + PostgreSQL) per unit, and with the clients on the same cores. A short
 * unmeasured run first warms the connection pool.
 */
async function measureLoad(order: Omit<LoadOrder, 'base' | 'durationMs'>, unit: string, target = base) {
  // Warm-up, not measured: the pool opens its connections and each compiles its plans, as
  // they long have on a server that has been running.
  await runLoad({ ...order, base: target, durationMs: warmupMs });
  const nodeBefore = process.cpuUsage();
  const postgresBefore = await postgresCpuSeconds();
  const result = await runLoad({ ...order, base: target, durationMs });
  const node = process.cpuUsage(nodeBefore);
  const postgresAfter = await postgresCpuSeconds();
  const failed = Object.entries(result.failures);
  if (failed.length > 0) throw new Error(`${order.kind} posting failed: ${JSON.stringify(result.failures)}`);
  const perSecond = result.units / result.seconds;
  const serverUs = (node.user + node.system) / result.units;
  const clientUs = result.clientCpuUs / result.units;
  const postgresUs =
    postgresBefore === null || postgresAfter === null ? null : ((postgresAfter - postgresBefore) * 1e6) / result.units;
  const cores = os.cpus().length;
  const cost =
    `CPU per ${unit}: server ${format(serverUs)} µs, ` +
    (postgresUs === null ? '' : `PostgreSQL ${format(postgresUs)} µs, `) +
    `clients ${format(clientUs)} µs` +
    (postgresUs === null
      ? ''
      : `; ${cores} cores cap the server at ${format((cores * 1e6) / (serverUs + postgresUs))}/s ` +
        `(${format((cores * 1e6) / (serverUs + postgresUs + clientUs))}/s with the clients beside it)`);
  return { perSecond, cost };
}

/**
 * This machine's floor for a single post: a bare Fastify route (no authentication, limits,
 * metering or logging) that parses the same JSON body and makes a lone post's four PostgreSQL
 * round trips (open the transaction, two trivial statements, commit) and nothing else. What it
 * reaches bounds what any posting route could reach here.
 */
async function startFloor(): Promise<{ base: string; close: () => Promise<void> }> {
  const pool = new pg.Pool({ connectionString: floorDatabaseUrl, max: concurrency });
  const floor = Fastify();
  floor.post('/floor', async (request, reply) => {
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query('select $1::text as posted', [JSON.stringify(request.body)]);
      await client.query('select 1');
      await client.query('commit');
    } finally {
      client.release();
    }
    return reply.code(201).send({ ok: true });
  });
  const floorBase = await floor.listen({ host: '127.0.0.1', port: 0 });
  return {
    base: floorBase,
    close: async () => {
      await floor.close();
      await pool.end();
    },
  };
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

const format = (value: number) => Math.round(value).toLocaleString('en-US');

try {
  console.log(
    `load average: ${os
      .loadavg()
      .map((load) => load.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `ledger bench: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}, ` +
      `${config.databaseUrl ? 'external PostgreSQL' : 'embedded PostgreSQL'}, ${durationMs / 1000}s per run, concurrency ${concurrency}`,
  );

  // 1. Posting throughput -------------------------------------------------------------
  const one = await newBooks('Bench One');
  const many: Books[] = [];
  for (let index = 0; index < tenantCount; index++) many.push(await newBooks(`Bench Many ${index}`));
  const postSingle = async (books: Books) => {
    await call(
      'POST',
      `/v1/entities/${books.entityId}/journal-entries`,
      books.auth,
      entry(books, randomDate()),
      randomUUID(),
    );
    return 1;
  };
  const postBatch = async (books: Books) => {
    const entries = Array.from({ length: batchSize }, () => entry(books, randomDate()));
    await call('POST', `/v1/entities/${books.entityId}/journal-entries/batch`, books.auth, { entries }, randomUUID());
    return batchSize * 2;
  };
  // Round trips: every query any pooled client sends while posting one entry at a time.
  const clientQuery = pg.Client.prototype.query;
  let queries = 0;
  pg.Client.prototype.query = function countedQuery(this: pg.Client, ...args: unknown[]) {
    queries += 1;
    return (clientQuery as (...rest: unknown[]) => unknown).apply(this, args);
  } as typeof clientQuery;
  const probePosts = 50;
  for (let index = 0; index < probePosts; index++) await postSingle(one);
  pg.Client.prototype.query = clientQuery;
  console.log(`round trips per single post: ${(queries / probePosts).toFixed(1)} (every query of the request)`);
  const floor = await startFloor();
  const floorRun = await measureLoad({ kind: 'floor', books: [one], concurrency }, 'request', floor.base);
  await floor.close();
  console.log(
    `floor, bare Fastify + a lone post's 4 round trips: ${format(floorRun.perSecond)} requests/s; ${floorRun.cost}`,
  );
  const singleOne = await measureLoad({ kind: 'single', books: [one], concurrency }, 'entry');
  console.log(
    `posting, single, 1 tenant:    ${format(singleOne.perSecond)} entries/s (${format(singleOne.perSecond * 2)} lines/s); ${singleOne.cost}`,
  );
  const singleMany = await measureLoad({ kind: 'single', books: many, concurrency }, 'entry');
  console.log(
    `posting, single, ${tenantCount} tenants:  ${format(singleMany.perSecond)} entries/s (${format(singleMany.perSecond * 2)} lines/s); ${singleMany.cost}`,
  );
  const batchWorkers = 4;
  const batchOne = await measureLoad({ kind: 'batch', books: [one], concurrency: batchWorkers }, 'line');
  console.log(
    `posting, batched ${batchSize}, 1 tenant:   ${format(batchOne.perSecond)} lines/s (${format(batchOne.perSecond / 2)} entries/s); ${batchOne.cost}`,
  );
  const batchMany = await measureLoad({ kind: 'batch', books: many, concurrency: batchWorkers }, 'line');
  console.log(
    `posting, batched ${batchSize}, ${tenantCount} tenants: ${format(batchMany.perSecond)} lines/s (${format(batchMany.perSecond / 2)} entries/s); ${batchMany.cost}`,
  );

  // 2. Trial balance at scale ---------------------------------------------------------
  const big = await newBooks('Bench Big');
  const seedStarted = performance.now();
  let seeded = 0;
  await Promise.all(
    Array.from({ length: batchWorkers }, async () => {
      while (seeded < linesTarget) {
        seeded += batchSize * 2;
        await postBatch(big);
      }
    }),
  );
  console.log(
    `seeded ${format(seeded)} journal lines over 24 months in ${((performance.now() - seedStarted) / 1000).toFixed(1)}s`,
  );
  const record = await platform.tenancy.getTenant(parseId('tenant', big.tenantId) ?? '');
  if (!record) throw new Error('bench tenant missing');
  const context = tenantContextOf(record);
  const bigEntity = parseId('entity', big.entityId) ?? '';
  // A settled database: the seeding's dead tuples vacuumed and statistics fresh, so autovacuum
  // does not start on the million new lines in the middle of the timings.
  await platform.ownerPool.query(
    'vacuum (analyze) journal_lines, journal_entries, account_balances, account_daily_balances',
  );
  const timeIt = async (work: () => Promise<unknown>) => {
    await work(); // warm-up: the first read of a date loads its pages
    const times: number[] = [];
    for (let index = 0; index < samples; index++) {
      const started = performance.now();
      await work();
      times.push(performance.now() - started);
    }
    return { p50: percentile(times, 0.5), p95: percentile(times, 0.95) };
  };
  for (const asOf of ['2026-12-31', '2026-06-10', '2026-06-20']) {
    const service = await timeIt(() =>
      platform.ledger.reports.trialBalance(context, bigEntity, { asOf, basis: 'pre-closing', verify: false }),
    );
    const http = await timeIt(() =>
      call('GET', `/v1/entities/${big.entityId}/reports/trial-balance?asOf=${asOf}`, big.auth),
    );
    const groupBy = await timeIt(() => platform.scopes.run(context, (db) => balancesFromJournal(db, bigEntity, asOf)));
    console.log(
      `trial balance as of ${asOf}: service p50 ${service.p50.toFixed(1)} ms (p95 ${service.p95.toFixed(1)}), ` +
        `HTTP p50 ${http.p50.toFixed(1)} ms; plain GROUP BY over lines p50 ${groupBy.p50.toFixed(1)} ms; ` +
        `ratio ${(groupBy.p50 / service.p50).toFixed(0)}x`,
    );
  }

  // 3. Hot account ---------------------------------------------------------------------
  const hot = await newBooks('Bench Hot');
  const hotPosters = [hot, ...(await colleagues(hot, users - 1))];
  const setShards = async (count: number) => {
    for (const number of ['1010', ...hotCreditNumbers]) {
      await call('PATCH', `/v1/entities/${hot.entityId}/accounts/${hot.accounts[number]}`, hot.auth, {
        balanceShards: count,
      });
    }
  };
  await setShards(1);
  const unsharded = await measureLoad({ kind: 'hot', books: hotPosters, concurrency }, 'entry');
  await setShards(shards);
  const sharded = await measureLoad({ kind: 'hot', books: hotPosters, concurrency }, 'entry');
  console.log(
    `hot account (every entry debits 1010, ${users} users posting): 1 shard ${format(unsharded.perSecond)} entries/s, ` +
      `${shards} shards ${format(sharded.perSecond)} entries/s; ratio ${(sharded.perSecond / unsharded.perSecond).toFixed(2)}x`,
  );
  const check = await platform.ledger.reports.trialBalance(context, bigEntity, {
    asOf: '2026-12-31',
    basis: 'pre-closing',
    verify: true,
  });
  console.log(
    `check: big entity trial balance balanced=${check.checks.balanced} tiesToJournal=${check.checks.tiesToJournal}`,
  );
  console.log(
    `load average at the end: ${os
      .loadavg()
      .map((load) => load.toFixed(2))
      .join(' ')}`,
  );
} finally {
  await app.close();
  await platform.close();
  await fs.rm(home, { recursive: true, force: true });
}

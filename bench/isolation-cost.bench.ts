/**
 * The cost of tenant isolation on the hottest path there is: one entity looked up by primary key.
 *
 *   (a) scoped + RLS    platform.scopes.run(ctx, db => db.query('select … where id = $1')) on the
 *                       runtime role: begin + set_config + select + commit, row-level security on.
 *   (b) direct, no RLS  one statement, `select … where tenant_id = $1 and id = $2`, autocommit, on a
 *                       role that bypasses RLS (the embedded superuser; with DATABASE_URL, that role).
 *   (c) tx, no RLS      the same TenantScopes wrapper as (a) (begin + set_config + select + commit) on
 *                       the bypassing pool with the explicit-tenant query of (b).
 *
 * a/b is what isolation costs in total; a/c separates RLS itself from the transaction wrapper.
 * Seeds tenants through the real onboarding service, checks with EXPLAIN that (a) uses the
 * primary key index, then runs the same seeded-random sequence of lookups through each variant,
 * in rounds whose order rotates, at a fixed concurrency. Embedded by default (fresh temp home,
 * stopped and removed at the end); with DATABASE_URL it uses a scratch database
 * `countinghouse_bench_isolation` on that server (dropped at the end) and needs a role that is
 * superuser or BYPASSRLS and may create databases and roles.
 *
 *   npx tsx bench/isolation-cost.bench.ts [--tenants 50] [--entities 200] [--lookups 20000]
 *     [--concurrency 8] [--warmup 2000] [--rounds 10] [--seed 42]
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { bootstrapOwnerDatabase } from '../apps/server/src/platform/database/database-setup.ts';
import { type EmbeddedCluster, startEmbeddedCluster } from '../apps/server/src/platform/database/embedded-cluster.ts';
import { type TenantContext, TenantScopes } from '../apps/server/src/platform/database/tenant-scope.ts';
import { newUuid } from '../apps/server/src/platform/ids.ts';
import { randomToken } from '../apps/server/src/platform/local-secrets.ts';
import { openPlatform, type Platform } from '../apps/server/src/platform/platform.ts';
import { tenantContextOf } from '../apps/server/src/tenancy/tenancy.service.ts';
import { intFlag } from './bench-flags.ts';

const { values: flags } = parseArgs({
  options: {
    tenants: { type: 'string', default: '50' },
    entities: { type: 'string', default: '200' },
    lookups: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '10' },
    seed: { type: 'string', default: '42' },
  },
});

const tenantCount = intFlag(flags, 'tenants', 1, 1_000);
const entitiesPerTenant = intFlag(flags, 'entities', 1, 10_000);
const lookups = intFlag(flags, 'lookups', 1, 1_000_000);
const concurrency = intFlag(flags, 'concurrency', 1, 100);
const warmupLookups = intFlag(flags, 'warmup', 0, 100_000);
const rounds = intFlag(flags, 'rounds', 1, 100);
const randomSeed = intFlag(flags, 'seed', 0, 2 ** 31);

const externalDatabaseName = 'countinghouse_bench_isolation';
const embeddedDatabaseName = 'countinghouse';
const columns = 'id, name, entity_type, base_currency, fiscal_year_end, status, created_by, created_at, updated_at';
const scopedSql = `select ${columns} from entities where id = $1`;
const explicitSql = `select ${columns} from entities where tenant_id = $1 and id = $2`;

const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });
let aborted = false;

// ---------------------------------------------------------------------------------------------
// Stack: embedded cluster (default) or a scratch database on DATABASE_URL.

interface Stack {
  platform: Platform;
  /** A pool whose role bypasses row-level security. */
  bypassPool: pg.Pool;
  describe: string;
  close(): Promise<void>;
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function startStack(): Promise<Stack> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-bench-isolation-'));
  // When we run as root, PostgreSQL runs as the `postgres` OS user and must reach the folder.
  await fs.chmod(home, 0o755);
  const cleanups: Array<() => Promise<unknown>> = [() => fs.rm(home, { recursive: true, force: true })];
  const runCleanups = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) => console.error('cleanup failed:', error));
    }
  };
  try {
    const external = process.env.DATABASE_URL;
    let ownerUrl: string;
    let bypassUrl: string;
    let describe: string;
    if (external) {
      const adminUrl = withDatabase(external, 'postgres');
      const runtimeRole = `${externalDatabaseName}_runtime`;
      const dropScratch = () =>
        withClient(adminUrl, async (client) => {
          await client.query(`drop database if exists ${quoteIdentifier(externalDatabaseName)} with (force)`);
          await client.query(`drop role if exists ${quoteIdentifier(runtimeRole)}`);
        });
      await dropScratch();
      await withClient(adminUrl, (client) => client.query(`create database ${quoteIdentifier(externalDatabaseName)}`));
      cleanups.push(dropScratch);
      ownerUrl = withDatabase(external, externalDatabaseName);
      bypassUrl = ownerUrl;
      describe = `external PostgreSQL (DATABASE_URL), scratch database ${externalDatabaseName}`;
    } else {
      const cluster: EmbeddedCluster = await startEmbeddedCluster({ home, log });
      cleanups.push(() => cluster.stop());
      ownerUrl = await bootstrapOwnerDatabase(cluster.superuserUrl, embeddedDatabaseName, randomToken(24));
      bypassUrl = withDatabase(cluster.superuserUrl, embeddedDatabaseName);
      describe = `embedded PostgreSQL in ${home}`;
    }
    const platform = await openPlatform(
      {
        ...loadConfig({}),
        home,
        databaseUrl: ownerUrl,
        masterKey: randomBytes(32).toString('hex'),
        operatorKey: `chop_bench_${randomToken(32)}`,
        runtimePoolMax: concurrency,
      },
      log,
    );
    cleanups.push(() => platform.close());
    const bypassPool = new pg.Pool({ connectionString: bypassUrl, max: concurrency, application_name: 'bench-bypass' });
    bypassPool.on('error', (error) => log.warn({ err: error }, 'idle bypass connection failed'));
    cleanups.push(() => bypassPool.end());
    const { rows } = await bypassPool.query<{ role: string; bypasses: boolean }>(
      'select current_user as role, rolsuper or rolbypassrls as bypasses from pg_roles where rolname = current_user',
    );
    if (!rows[0]?.bypasses) {
      throw new Error(
        `the baseline role ${rows[0]?.role ?? '?'} does not bypass row-level security; ` +
          'use a superuser or BYPASSRLS DATABASE_URL, or unset it to use the embedded cluster',
      );
    }
    return { platform, bypassPool, describe: `${describe}; baseline role ${rows[0].role}`, close: runCleanups };
  } catch (error) {
    await runCleanups();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Seed

interface Target {
  ctx: TenantContext;
  entityIds: string[];
}

async function seedTenants(platform: Platform): Promise<Target[]> {
  const targets: Target[] = [];
  const password = 'bench password, long enough';
  for (let t = 0; t < tenantCount; t++) {
    if (aborted) throw new Error('aborted');
    const record = await platform.tenancy.createTenant({
      name: `Bench firm ${t} ${randomToken(4)}`,
      tier: 'starter',
      admin: { email: `owner${t}@bench.test`, password },
    });
    const ctx = tenantContextOf(record);
    const entityIds = Array.from({ length: entitiesPerTenant }, () => newUuid());
    const names = entityIds.map((_, index) => `Client ${t}-${index}`);
    await platform.scopes.run(ctx, async (db) => {
      const { rows } = await db.query<{ id: string }>('select id from users limit 1');
      const createdBy = rows[0]?.id;
      if (!createdBy) throw new Error('the onboarded tenant has no user');
      // Through the runtime role, so the policy's WITH CHECK applies to the seed too.
      await db.query(
        `insert into entities (tenant_id, id, name, base_currency, fiscal_year_end, created_by)
         select $1, unnest($2::uuid[]), unnest($3::text[]), 'USD', '12-31', $4`,
        [db.tenantId, entityIds, names, createdBy],
      );
    });
    targets.push({ ctx, entityIds });
  }
  await platform.ownerPool.query('analyze entities');
  return targets;
}

// ---------------------------------------------------------------------------------------------
// Plans and a correctness check

async function checkPlans(platform: Platform, bypassPool: pg.Pool, targets: Target[]): Promise<void> {
  const [first, second] = targets;
  const entityId = first?.entityIds[0];
  if (!first || !entityId) throw new Error('nothing seeded');
  const scopedPlan = await platform.scopes.run(first.ctx, (db) =>
    db.query<{ 'QUERY PLAN': string }>(`explain ${scopedSql}`, [entityId]),
  );
  const directPlan = await bypassPool.query<{ 'QUERY PLAN': string }>(`explain ${explicitSql}`, [
    first.ctx.tenantId,
    entityId,
  ]);
  const planText = (result: pg.QueryResult<{ 'QUERY PLAN': string }>) =>
    result.rows.map((row) => `    ${row['QUERY PLAN']}`).join('\n');
  console.log(`plan (a) scoped + RLS, "${scopedSql.replace(columns, '…')}":\n${planText(scopedPlan)}`);
  console.log(`plan (b/c) no RLS, "${explicitSql.replace(columns, '…')}":\n${planText(directPlan)}`);
  const usesPk = scopedPlan.rows.some((row) => /Index Scan using entities_pkey/.test(row['QUERY PLAN']));
  console.log(
    usesPk
      ? 'plan check: the RLS lookup uses the primary key index (entities_pkey)'
      : 'plan check: WARNING — the RLS lookup does NOT use entities_pkey; the figures below are not a PK lookup',
  );
  if (second) {
    const crossTenant = await platform.scopes.run(second.ctx, (db) => db.query(scopedSql, [entityId]));
    if (crossTenant.rowCount !== 0) throw new Error('RLS is not in effect: another tenant saw the row');
    console.log('sanity: a lookup of tenant 1’s entity from tenant 2’s scope returns 0 rows');
  }
}

// ---------------------------------------------------------------------------------------------
// Workload

/** mulberry32: a small seeded PRNG, so every variant sees the same lookup sequence. */
function prng(state: number): () => number {
  let a = state >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Lookup {
  ctx: TenantContext;
  entityId: string;
}

function lookupSequence(targets: Target[], count: number, random: () => number): Lookup[] {
  return Array.from({ length: count }, () => {
    const target = targets[Math.floor(random() * targets.length)] as Target;
    return { ctx: target.ctx, entityId: target.entityIds[Math.floor(random() * target.entityIds.length)] as string };
  });
}

type LookupFn = (lookup: Lookup) => Promise<pg.QueryResult>;

interface Variant {
  key: 'a' | 'b' | 'c';
  label: string;
  run: LookupFn;
  latenciesMs: number[];
  wallMs: number;
}

/** Runs `sequence` through `run` with `concurrency` workers; returns per-lookup latencies and wall time. */
async function drive(run: LookupFn, sequence: Lookup[]): Promise<{ latenciesMs: number[]; wallMs: number }> {
  const latenciesMs = new Array<number>(sequence.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      if (aborted) throw new Error('aborted');
      const index = next++;
      const lookup = sequence[index];
      if (!lookup) return;
      const started = performance.now();
      const result = await run(lookup);
      latenciesMs[index] = performance.now() - started;
      if (result.rowCount !== 1) throw new Error(`lookup ${index} returned ${result.rowCount} rows, expected 1`);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latenciesMs, wallMs: performance.now() - started };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

interface Stats {
  throughput: number;
  p50: number;
  p99: number;
}

function statsOf(variant: Variant): Stats {
  const sorted = [...variant.latenciesMs].sort((x, y) => x - y);
  return {
    throughput: (variant.latenciesMs.length / variant.wallMs) * 1_000,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  };
}

/** The 1-minute load average: other work on the machine skews these figures. */
function loadAverage(): string {
  return (os.loadavg()[0] ?? 0).toFixed(2);
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  console.log(
    `isolation-cost benchmark: ${tenantCount} tenants × ${entitiesPerTenant} entities, ${lookups} lookups per variant ` +
      `in ${rounds} round(s), concurrency ${concurrency}, warm-up ${warmupLookups} per variant, seed ${randomSeed}; ` +
      `${os.cpus().length} CPU(s), load average ${loadAverage()}, node ${process.version}`,
  );
  const stack = await startStack();
  try {
    const { platform, bypassPool } = stack;
    const version = await bypassPool.query<{ server_version: string }>('show server_version');
    console.log(`database: ${stack.describe}; PostgreSQL ${version.rows[0]?.server_version ?? '?'}`);

    const seedStarted = performance.now();
    const targets = await seedTenants(platform);
    console.log(
      `seeded ${targets.length * entitiesPerTenant} entities in ${((performance.now() - seedStarted) / 1_000).toFixed(1)} s`,
    );
    await checkPlans(platform, bypassPool, targets);

    const bypassScopes = new TenantScopes({ poolFor: () => bypassPool });
    const variants: Variant[] = [
      {
        key: 'a',
        label: '(a) scoped + RLS (runtime role, tx)',
        run: ({ ctx, entityId }) => platform.scopes.run(ctx, (db) => db.query(scopedSql, [entityId])),
        latenciesMs: [],
        wallMs: 0,
      },
      {
        key: 'b',
        label: '(b) direct, no RLS (1 statement)',
        run: ({ ctx, entityId }) => bypassPool.query(explicitSql, [ctx.tenantId, entityId]),
        latenciesMs: [],
        wallMs: 0,
      },
      {
        key: 'c',
        label: '(c) same tx shape, no RLS',
        run: ({ ctx, entityId }) => bypassScopes.run(ctx, (db) => db.query(explicitSql, [ctx.tenantId, entityId])),
        latenciesMs: [],
        wallMs: 0,
      },
    ];

    const random = prng(randomSeed);
    const warmup = lookupSequence(targets, warmupLookups, random);
    for (const variant of variants) await drive(variant.run, warmup);

    // The same sequence for every variant; rounds rotate the order so drift hits all alike.
    const sequence = lookupSequence(targets, lookups, random);
    const roundSize = Math.ceil(lookups / rounds);
    for (let round = 0; round < rounds; round++) {
      const slice = sequence.slice(round * roundSize, (round + 1) * roundSize);
      if (slice.length === 0) break;
      const order = variants.map((_, index) => variants[(index + round) % variants.length] as Variant);
      for (const variant of order) {
        const { latenciesMs, wallMs } = await drive(variant.run, slice);
        variant.latenciesMs.push(...latenciesMs);
        variant.wallMs += wallMs;
      }
      console.log(`round ${round + 1}/${rounds} done (order ${order.map((variant) => variant.key).join(' ')})`);
    }

    const stats = new Map(variants.map((variant) => [variant.key, statsOf(variant)]));
    console.log('');
    console.log(`${'variant'.padEnd(38)}${'lookups/s'.padStart(11)}${'p50 ms'.padStart(10)}${'p99 ms'.padStart(10)}`);
    for (const variant of variants) {
      const s = stats.get(variant.key) as Stats;
      console.log(
        `${variant.label.padEnd(38)}${s.throughput.toFixed(0).padStart(11)}${s.p50.toFixed(3).padStart(10)}${s.p99.toFixed(3).padStart(10)}`,
      );
    }
    const a = stats.get('a') as Stats;
    const b = stats.get('b') as Stats;
    const c = stats.get('c') as Stats;
    const x = (value: number) => `${value.toFixed(2)}x`;
    console.log('');
    console.log(
      `ratios (latency p50 / p99, throughput): a/b ${x(a.p50 / b.p50)} / ${x(a.p99 / b.p99)}, ${x(b.throughput / a.throughput)} fewer lookups/s; ` +
        `a/c ${x(a.p50 / c.p50)} / ${x(a.p99 / c.p99)}, ${x(c.throughput / a.throughput)}; ` +
        `c/b (transaction wrapper alone) ${x(c.p50 / b.p50)} / ${x(c.p99 / b.p99)}, ${x(b.throughput / c.throughput)}`,
    );
    console.log(
      `total time ${((performance.now() - startedAt) / 1_000).toFixed(1)} s (including setup); ` +
        `load average now ${loadAverage()} (includes this benchmark's own load)`,
    );
    console.log(
      `isolation cost: scoped-with-RLS / direct-without-RLS = ${x(a.p50 / b.p50)} latency (p50); ` +
        `RLS alone (same transaction shape) = ${x(a.p50 / c.p50)}`,
    );
  } finally {
    await stack.close();
  }
}

// Ctrl-C stops the workers; main's finally then closes pools, stops PostgreSQL (or drops the
// scratch database) and removes the folder. Repeated signals (a terminal's and tsx's relay) are ignored.
process.on('SIGINT', () => {
  aborted = true;
});

await main().catch((error: unknown) => {
  if (!aborted) throw error;
  console.error('interrupted: stopped PostgreSQL and removed the temporary folder');
  process.exitCode = 130;
});

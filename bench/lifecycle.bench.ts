/**
 * Onboarding latency (issue 3, item 9): the wall time of `TenancyService.createTenant` — the
 * whole provisioning plan (registry row, database, roles, migrations, usage plan, admin user
 * with its argon2id hash, metering account, activation) — for pooled tenants and for
 * dedicated ones (bridge: own database on the shared server; silo: own database on the silo
 * cluster). Goals: pool p50/p95 ≤ 50 ms, dedicated ≤ 1 s.
 *
 * Each tier is warmed up with one onboarding first, which builds the cluster's template
 * database (and, for silo, starts the embedded silo PostgreSQL); that one-off cost is printed
 * separately and not counted. Then `--onboard` tenants per tier are onboarded one after the
 * other. Embedded by default (fresh temporary home, stopped and removed at the end); with
 * DATABASE_URL it uses a scratch database `countinghouse_bench_lifecycle` on that server and
 * drops it and every database it made (named `countinghouse_bench_life_…`, the deployment's
 * prefix; on the silo clusters too) at the end, also when the run fails or is interrupted
 * (silo tenants need COUNTINGHOUSE_SILO_CLUSTERS then, else they are skipped).
 *
 *   npx tsx bench/lifecycle.bench.ts [--onboard 20]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { tenantDatabasePrefix } from '../apps/server/src/platform/database/clusters.ts';
import { randomToken } from '../apps/server/src/platform/local-secrets.ts';
import { openPlatform, type Platform } from '../apps/server/src/platform/platform.ts';
import { intFlag } from './bench-flags.ts';

const { values: flags } = parseArgs({ options: { onboard: { type: 'string', default: '20' } } });
const onboardCount = intFlag(flags, 'onboard', 1, 1_000);

const scratchDatabase = 'countinghouse_bench_lifecycle';
const external = process.env.DATABASE_URL;

function percentile(sortedMs: readonly number[], fraction: number): number {
  const index = Math.min(sortedMs.length - 1, Math.ceil(fraction * sortedMs.length) - 1);
  return sortedMs[Math.max(0, index)] ?? Number.NaN;
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function withServer<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function prepareExternal(url: string): Promise<string> {
  await withServer(url, async (client) => {
    const found = await client.query('select 1 from pg_database where datname = $1', [scratchDatabase]);
    if (found.rowCount === 0) await client.query(`create database ${quoteIdentifier(scratchDatabase)}`);
  });
  const scratch = new URL(url);
  scratch.pathname = `/${scratchDatabase}`;
  return scratch.toString();
}

/** `text` as a LIKE pattern matching itself (`_` and `%` are wildcards otherwise). */
function likeLiteral(text: string): string {
  return text.replace(/[\\_%]/g, (character) => `\\${character}`);
}

/**
 * Drops the scratch database and every database the deployment made on this server: the
 * bridge and silo tenant databases and the templates, named with the prefix the cluster
 * directory derives from the scratch database's name (clusters.ts), not with its full name.
 */
async function dropBenchDatabases(url: string, withScratch: boolean): Promise<string[]> {
  const prefix = likeLiteral(tenantDatabasePrefix(scratchDatabase));
  return await withServer(url, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `select datname::text as datname from pg_database
        where datname like $1 or datname like $2 or datname like $3 or ($4 and datname = $5)`,
      [`${prefix}\\_b\\_%`, `${prefix}\\_s\\_%`, `${prefix}\\_tpl\\_%`, withScratch, scratchDatabase],
    );
    for (const row of rows) await client.query(`drop database if exists ${quoteIdentifier(row.datname)} with (force)`);
    return rows.map((row) => row.datname);
  });
}

async function onboard(platform: Platform, tier: string, index: number): Promise<number> {
  const startedMs = performance.now();
  await platform.tenancy.createTenant({
    name: `Bench ${tier} ${index} ${randomToken(6)}`,
    tier,
    admin: { email: `owner${index}@bench.test`, password: 'correct horse battery staple' },
  });
  return performance.now() - startedMs;
}

/** Closes the platform and drops every database the run made, here and on the silo clusters. */
async function cleanup(platform: Platform | null, home: string, siloUrls: readonly string[]): Promise<void> {
  await platform?.close().catch((error: unknown) => console.error('closing the platform failed', error));
  if (external) {
    const dropped = [
      ...(await dropBenchDatabases(external, true)),
      // A silo server that cannot be reached (perhaps why the run failed) holds nothing of ours.
      ...(
        await Promise.all(
          siloUrls.map((url) =>
            dropBenchDatabases(url, false).catch((error: unknown) => {
              console.error(`could not clean up silo cluster ${new URL(url).host}: ${String(error)}`);
              return [];
            }),
          ),
        )
      ).flat(),
    ];
    console.log(`dropped ${dropped.length} bench databases`);
  }
  await fs.rm(home, { recursive: true, force: true });
}

async function main(): Promise<void> {
  console.log(`cpus ${os.cpus().length}, load average (1 min) ${os.loadavg()[0]?.toFixed(2)}, node ${process.version}`);
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-bench-lifecycle-'));
  // The postgres OS user (when running as root) must reach the embedded data folders.
  await fs.chmod(home, 0o755);
  const settings = loadConfig(process.env);
  const siloUrls = settings.siloClusters.flatMap((silo) => (silo.url === null ? [] : [silo.url]));
  // Ctrl-C or a kill stops the run after the onboarding in flight, which may be making a
  // database right then; the cleanup below then finds everything the run made.
  const stop = new AbortController();
  const interrupted = (signal: NodeJS.Signals) => {
    console.error(`${signal}: stopping after the onboarding in flight, then cleaning up`);
    stop.abort(new Error(`interrupted by ${signal}`));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  let platform: Platform | null = null;
  const figures: string[] = [];
  try {
    const ownerUrl = external ? await prepareExternal(external) : undefined;
    const config = { ...settings, home, databaseUrl: ownerUrl, storageSampleMinutes: 0, jobWorkerSlots: 0 };
    platform = await openPlatform(config, pino({ level: 'warn' }));
    for (const tier of ['starter', 'professional', 'enterprise']) {
      const isolation = platform.tiers.find(tier)?.isolation;
      if (isolation === 'silo' && platform.clusters.siloClusters().length === 0) {
        console.log(`${tier}: skipped (no silo cluster: set COUNTINGHOUSE_SILO_CLUSTERS)`);
        continue;
      }
      stop.signal.throwIfAborted();
      const firstMs = await onboard(platform, tier, 0);
      console.log(`${tier} (${isolation}): first onboarding ${firstMs.toFixed(0)} ms (template build / cluster start)`);
      const samples: number[] = [];
      for (let index = 1; index <= onboardCount; index++) {
        stop.signal.throwIfAborted();
        samples.push(await onboard(platform, tier, index));
      }
      samples.sort((a, b) => a - b);
      const p50 = percentile(samples, 0.5);
      const p95 = percentile(samples, 0.95);
      const goalMs = isolation === 'pool' ? 50 : 1_000;
      const met = p95 <= goalMs ? 'met' : 'missed';
      figures.push(
        `onboarding ${isolation}: p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms over ${onboardCount} tenants (goal p95 ≤ ${goalMs} ms: ${met})`,
      );
    }
  } finally {
    await cleanup(platform, home, siloUrls);
  }
  console.log(`load average (1 min) at the end ${os.loadavg()[0]?.toFixed(2)}`);
  for (const line of figures) console.log(line);
}

await main();

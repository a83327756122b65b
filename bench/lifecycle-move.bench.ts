/**
 * A live tier change's data move of a tenant holding ~1,000,000 rows, between two databases of
 * the embedded cluster (or of DATABASE_URL's server): the shared pool database and a dedicated
 * database migrated for the run, the bridge model's shape. While it runs, one client writes
 * continuously (an insert per transaction through the tenant scope, RLS and all); the registry
 * flip is simulated by switching that client's runtime pool to the target, as the placement
 * layer does. Printed: seeding, each phase's start, the move's total time to the switch and
 * with the source purge, the freeze, and the longest pause between two acknowledged writes.
 * Every acknowledged write is then checked on the target.
 *
 *   npx tsx bench/lifecycle-move.bench.ts [--rows 1000000] [--writers 1]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { bootstrapOwnerDatabase, prepareDatabase } from '../apps/server/src/platform/database/database-setup.ts';
import { type EmbeddedCluster, startEmbeddedCluster } from '../apps/server/src/platform/database/embedded-cluster.ts';
import { TenantScopes } from '../apps/server/src/platform/database/tenant-scope.ts';
import { buildHttpApp } from '../apps/server/src/platform/http/http-app.ts';
import { newUuid, parseId } from '../apps/server/src/platform/ids.ts';
import { randomToken } from '../apps/server/src/platform/local-secrets.ts';
import { openPlatform } from '../apps/server/src/platform/platform.ts';
import { tenantContextOf } from '../apps/server/src/tenancy/tenancy.service.ts';
import { inTenantMaintenance } from '../apps/server/src/tenant-data/maintenance.ts';
import { moveTenantRows } from '../apps/server/src/tenant-data/move-engine.ts';
import { countTenantRows } from '../apps/server/src/tenant-data/purge.ts';
import type { MovePhase } from '../apps/server/src/tenant-data/tenant-data.types.ts';
import { discoverTenantTables, placementTables } from '../apps/server/src/tenant-data/tenant-tables.ts';
import { intFlag } from './bench-flags.ts';

const { values: flags } = parseArgs({
  options: { rows: { type: 'string', default: '1000000' }, writers: { type: 'string', default: '1' } },
});
const rowsTarget = intFlag(flags, 'rows', 1_000, 5_000_000);
const writerCount = intFlag(flags, 'writers', 1, 8);

const log = pino({ level: 'warn' });
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const format = (value: number) => value.toLocaleString('en-US');

console.log(
  `lifecycle-move benchmark: ${os.cpus().length} CPU(s), load average ${(os.loadavg()[0] ?? 0).toFixed(2)}, node ${process.version}, ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}`,
);

const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-move-bench-'));
let cluster: EmbeddedCluster | null = null;
const pools: pg.Pool[] = [];
let targetName = '';
let ownerUrl = process.env.DATABASE_URL;
let closePlatform: (() => Promise<void>) | null = null;

async function cleanUp(): Promise<void> {
  await Promise.all(pools.map((pool) => pool.end().catch(() => {})));
  if (closePlatform) await closePlatform().catch(() => {});
  if (targetName && ownerUrl) {
    const admin = new pg.Client({ connectionString: ownerUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${targetName} with (force)`).catch(() => {});
    await admin.end();
  }
  await cluster?.stop();
  await fs.rm(home, { recursive: true, force: true });
}
process.once('SIGINT', () => {
  cleanUp().finally(() => process.exit(130));
});

try {
  if (!ownerUrl) {
    const clusterHome = path.join(home, 'cluster');
    await fs.mkdir(clusterHome, { mode: 0o755 });
    await fs.chmod(home, 0o755);
    cluster = await startEmbeddedCluster({ home: clusterHome, log });
    ownerUrl = await bootstrapOwnerDatabase(cluster.superuserUrl, 'countinghouse_bench', randomToken(24));
  }
  const operatorKey = `chop_bench_${randomToken(32)}`;
  const platform = await openPlatform(
    { ...loadConfig({}), home, databaseUrl: ownerUrl, operatorKey, runtimePoolMax: 10 },
    log,
  );
  closePlatform = () => platform.close();
  const app = await buildHttpApp(platform, log);
  const operator = { authorization: `Bearer ${operatorKey}` };

  // A firm with an entity, its chart and one posted entry (the template the seed clones).
  const email = `bench-${randomToken(6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x')}@move.test`;
  const password = 'correct horse battery staple';
  const created = await app.inject({
    method: 'POST',
    url: '/v1/tenants',
    headers: operator,
    payload: { name: `Move bench ${randomToken(6)}`, tier: 'starter', admin: { email, password } },
  });
  const tenantPublicId = created.json<{ id: string }>().id;
  const tenantId = parseId('tenant', tenantPublicId) ?? '';
  await app.inject({
    method: 'PUT',
    url: `/v1/tenants/${tenantPublicId}/plan`,
    headers: operator,
    payload: {
      usagePlan: { ratePerSecond: 100_000, burst: 1_000_000, quota: { limit: 1_000_000_000 } },
      limits: { inFlightRequestsMax: 10_000, databaseConnectionsMax: 200, statementTimeoutMs: 600_000 },
    },
  });
  const token = (
    await app.inject({ method: 'POST', url: '/v1/auth/token', payload: { tenantId: tenantPublicId, email, password } })
  ).json<{ access_token: string }>().access_token;
  const auth = { authorization: `Bearer ${token}` };
  const entity = await app.inject({
    method: 'POST',
    url: '/v1/entities',
    headers: auth,
    payload: { name: 'Bench client', entityType: 's_corporation' },
  });
  const entityPublicId = entity.json<{ id: string }>().id;
  const chart = await app.inject({
    method: 'POST',
    url: `/v1/entities/${entityPublicId}/accounts/from-template`,
    headers: auth,
    payload: { template: 'us-small-business' },
  });
  const accounts = new Map(
    chart.json<{ items: Array<{ id: string; number: string }> }>().items.map((item) => [item.number, item.id]),
  );
  const line = (number: string, side: string) => ({
    accountId: accounts.get(number),
    side,
    amountMinor: 12_345,
    currency: 'USD',
    exponent: 2,
  });
  const posted = await app.inject({
    method: 'POST',
    url: `/v1/entities/${entityPublicId}/journal-entries`,
    headers: { ...auth, 'idempotency-key': randomToken(12) },
    payload: { date: '2026-03-15', memo: 'template', lines: [line('1000', 'debit'), line('4000', 'credit')] },
  });
  if (posted.statusCode !== 201) throw new Error(`template post failed: ${posted.body}`);
  const templateId = parseId('journalEntry', posted.json<{ id: string }>().id) ?? '';

  // Seed: clones of the template entry with their two lines (3 rows per entry), in batches
  // (LATERAL, so jsonb_populate_record runs once per row, not once per column as `(f()).*` would).
  const seedStarted = performance.now();
  const entriesWanted = Math.ceil(rowsTarget / 3);
  const batch = 50_000;
  for (let done = 0; done < entriesWanted; done += batch) {
    const count = Math.min(batch, entriesWanted - done);
    await inTenantMaintenance(platform.ownerPool, tenantId, { replica: true }, async (client) => {
      await client.query(
        `create temporary table new_entries on commit drop as
           select gen_random_uuid() as id, g from generate_series(1, $1) g`,
        [count],
      );
      await client.query(
        `insert into journal_entries
           select r.* from journal_entries e cross join new_entries n
             cross join lateral jsonb_populate_record(null::journal_entries, to_jsonb(e) || jsonb_build_object('id', n.id,
                     'entry_date', (date '2025-01-01' + (n.g % 700))::text)) r
            where e.tenant_id = $1 and e.id = $2`,
        [tenantId, templateId],
      );
      await client.query(
        `insert into journal_lines
           select r.* from journal_lines l cross join new_entries n
             cross join lateral jsonb_populate_record(null::journal_lines, to_jsonb(l) || jsonb_build_object('entry_id', n.id,
                     'entry_date', (date '2025-01-01' + (n.g % 700))::text)) r
            where l.tenant_id = $1 and l.entry_id = $2`,
        [tenantId, templateId],
      );
    });
  }
  const tables = placementTables(await discoverTenantTables(platform.ownerPool));
  const seededRows = Object.values(await countTenantRows(platform.ownerPool, tenantId, tables)).reduce(
    (a, b) => a + b,
    0,
  );
  console.log(`seeded ${format(seededRows)} rows of the tenant in ${seconds(performance.now() - seedStarted)}`);
  await platform.ownerPool.query('vacuum analyze journal_entries, journal_lines');

  // The target: a dedicated database on the same server, migrated like every placement.
  targetName = `countinghouse_bench_target_${randomToken(6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x')}`;
  await platform.ownerPool.query(`create database ${targetName}`);
  const targetUrl = new URL(ownerUrl);
  targetUrl.pathname = `/${targetName}`;
  const prepared = await prepareDatabase(targetUrl.toString(), log);
  const targetOwner = new pg.Pool({ connectionString: targetUrl.toString(), max: 6 });
  const targetRuntime = new pg.Pool({ connectionString: prepared.runtimeUrl, max: 4 });
  pools.push(targetOwner, targetRuntime);

  // Continuous writers through a tenant scope whose pool follows the (simulated) registry.
  let current: pg.Pool = platform.runtimePool;
  const scopes = new TenantScopes({ poolFor: () => current });
  const record = await platform.tenancy.getTenant(tenantId);
  if (!record) throw new Error('tenant vanished');
  const context = tenantContextOf(record);
  const ownerUserId = (
    await inTenantMaintenance(platform.ownerPool, tenantId, { replica: false }, (client) =>
      client.query<{ id: string }>('select id from users where tenant_id = $1 limit 1', [tenantId]),
    )
  ).rows[0]?.id;
  const until = { stop: false };
  const acknowledged: string[] = [];
  let longestPauseMs = 0;
  let refusals = 0;
  async function writer(index: number): Promise<void> {
    let lastAckMs = performance.now();
    let sequence = 0;
    while (!until.stop) {
      const id = newUuid();
      sequence += 1;
      try {
        await scopes.run(context, (db) =>
          db.query(
            `insert into entities (tenant_id, id, name, base_currency, fiscal_year_end, created_by)
             values ($1, $2, $3, 'USD', '12-31', $4)`,
            [tenantId, id, `Writer ${index} #${sequence} ${id}`, ownerUserId],
          ),
        );
        const nowMs = performance.now();
        longestPauseMs = Math.max(longestPauseMs, nowMs - lastAckMs);
        lastAckMs = nowMs;
        acknowledged.push(id);
      } catch (error) {
        if ((error as { code?: string }).code !== 'TENANT_MOVING') throw error;
        refusals += 1;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
  const writers = Array.from({ length: writerCount }, (_, index) => writer(index));

  const phaseTimes: Array<[MovePhase, number]> = [];
  const moveStarted = performance.now();
  let switchedAtMs = 0;
  const result = await moveTenantRows({
    tenantId,
    changeId: newUuid(),
    source: platform.ownerPool,
    target: targetOwner,
    flip: async () => {
      current = targetRuntime;
      switchedAtMs = performance.now();
    },
    onPhase: async (phase) => {
      phaseTimes.push([phase, performance.now() - moveStarted]);
      console.log(`  ${seconds(performance.now() - moveStarted).padStart(7)}  ${phase}`);
    },
    onProgress: () => {},
    signal: new AbortController().signal,
    log,
  }).finally(() => {
    until.stop = true;
  });
  const totalMs = performance.now() - moveStarted;
  await Promise.all(writers);

  const onTarget = await inTenantMaintenance(
    targetOwner,
    tenantId,
    { replica: false, readOnly: true },
    async (client) => {
      const { rows } = await client.query<{ id: string }>('select id::text from entities where tenant_id = $1', [
        tenantId,
      ]);
      return new Set(rows.map((row) => row.id));
    },
  );
  const lost = acknowledged.filter((id) => !onTarget.has(id)).length;
  const leftOnSource = Object.values(await countTenantRows(platform.ownerPool, tenantId, tables)).reduce(
    (a, b) => a + b,
    0,
  );
  console.log(
    `writes acknowledged ${format(acknowledged.length)}, lost ${lost}, refused with 503 and retried ${refusals}; rows left on the source ${leftOnSource}`,
  );
  if (lost > 0 || leftOnSource > 0) throw new Error('the move lost writes or left rows behind');
  console.log(
    `lifecycle-move: ${format(result.rowsCopied)} rows, to switch ${seconds(switchedAtMs - moveStarted)} (goal <= 60 s), total with source purge ${seconds(totalMs)}, freeze ${result.freezeMs} ms, longest write pause ${Math.round(longestPauseMs)} ms (goal <= 1000 ms)`,
  );
} finally {
  await cleanUp();
}

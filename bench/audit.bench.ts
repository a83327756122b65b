/**
 * What the tamper-evident audit log costs, on the embedded default (or DATABASE_URL if set).
 * Each variant runs for --seconds at --concurrency writers, every call one tenant transaction:
 *   (a) empty scope       begin + set_config + `select 1` + commit — the floor of any call;
 *   (w) write scope       the same scope inserting one small row (an idempotency record), so
 *                         its commit flushes WAL like a mutation's: the fair baseline;
 *   (b) audit, 1 tenant   the same scope appending one audit event (recordAuditEvent): every
 *                         writer competes for the same chain head, the worst case;
 *   (c) audit, N tenants  the same, each call on a random one of --tenants tenants.
 * (c) against (w) is what an audited mutation pays when tenants do not collide; (b) against
 * (c) is the cost of the per-tenant head lock, held from the append to the end of commit. Then the one tenant's chain is verified end to end (events/s), and
 * the chain is checked to be intact and gap-free. Scopes bypass the limits gate (no bulkhead)
 * so the database cost is what is measured.
 *
 *   npx tsx bench/audit.bench.ts [--seconds 5] [--concurrency 8] [--tenants 50]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { recordAuditEvent } from '../apps/server/src/audit/audit.service.ts';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { bootstrapOwnerDatabase } from '../apps/server/src/platform/database/database-setup.ts';
import { type EmbeddedCluster, startEmbeddedCluster } from '../apps/server/src/platform/database/embedded-cluster.ts';
import { type TenantContext, TenantScopes } from '../apps/server/src/platform/database/tenant-scope.ts';
import { randomToken } from '../apps/server/src/platform/local-secrets.ts';
import { openPlatform, type Platform } from '../apps/server/src/platform/platform.ts';
import { tenantContextOf } from '../apps/server/src/tenancy/tenancy.service.ts';
import { intFlag } from './bench-flags.ts';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '8' },
    tenants: { type: 'string', default: '50' },
  },
});

const seconds = intFlag(flags, 'seconds', 1, 600);
const concurrency = intFlag(flags, 'concurrency', 1, 64);
const tenantCount = intFlag(flags, 'tenants', 2, 1_000);
const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });

async function openBenchPlatform(home: string): Promise<{ platform: Platform; cluster: EmbeddedCluster | null }> {
  let ownerUrl = process.env.DATABASE_URL;
  let cluster: EmbeddedCluster | null = null;
  if (!ownerUrl) {
    // When we run as root, PostgreSQL runs as the `postgres` OS user and must reach the folder.
    const clusterHome = path.join(home, 'cluster');
    await fs.mkdir(clusterHome, { mode: 0o755 });
    await fs.chmod(home, 0o755);
    cluster = await startEmbeddedCluster({ home: clusterHome, log });
    ownerUrl = await bootstrapOwnerDatabase(cluster.superuserUrl, 'countinghouse_bench_audit', randomToken(24));
  }
  const config = {
    ...loadConfig({}),
    home,
    databaseUrl: ownerUrl,
    operatorKey: `chop_bench_${randomToken(32)}`,
    runtimePoolMax: concurrency + 2,
  };
  return { platform: await openPlatform(config, log), cluster };
}

interface Figures {
  calls: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Runs `call` from `concurrency` loops for the given time; every latency is kept. */
async function drive(call: () => Promise<unknown>): Promise<Figures> {
  const latenciesMs: number[] = [];
  const startedMs = performance.now();
  const endMs = startedMs + seconds * 1_000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < endMs) {
        const callStartedMs = performance.now();
        await call();
        latenciesMs.push(performance.now() - callStartedMs);
      }
    }),
  );
  const elapsedS = (performance.now() - startedMs) / 1_000;
  latenciesMs.sort((left, right) => left - right);
  const at = (fraction: number) =>
    latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(latenciesMs.length * fraction))] ?? 0;
  return { calls: latenciesMs.length, perSecond: latenciesMs.length / elapsedS, p50Ms: at(0.5), p99Ms: at(0.99) };
}

function describe(label: string, figures: Figures): string {
  return `${label}: ${figures.perSecond.toFixed(0)}/s, p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms (${figures.calls} calls)`;
}

async function main(): Promise<void> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-bench-audit-'));
  console.log(
    `audit benchmark: ${os.cpus().length} CPU(s), load average ${(os.loadavg()[0] ?? 0).toFixed(2)}, node ${process.version}, ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}; ${seconds} s per variant, concurrency ${concurrency}, ${tenantCount} tenants`,
  );
  const { platform, cluster } = await openBenchPlatform(home);
  const stop = async () => {
    await platform.close();
    await cluster?.stop();
    await fs.rm(home, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stop().finally(() => process.exit(130)));
  try {
    const tenants: TenantContext[] = [];
    for (let index = 0; index < tenantCount; index += 1) {
      const record = await platform.tenancy.createTenant({
        name: `Audit bench ${index} ${randomToken(4)}`,
        tier: 'starter',
        admin: { email: `owner${index}@bench.test`, password: 'correct horse battery staple' },
      });
      tenants.push(tenantContextOf(record));
    }
    const scopes = new TenantScopes({ poolFor: () => platform.runtimePool });
    const [hot] = tenants;
    if (hot === undefined) throw new Error('no tenant');
    const event = { action: 'bench.write', resource: { type: 'bench', id: 'b1' }, after: { n: 1 }, summary: { n: 1 } };

    const empty = await drive(() => scopes.run(hot, (db) => db.query('select 1')));
    console.log(describe('(a) empty scope', empty));
    const write = await drive(() =>
      scopes.run(hot, (db) =>
        db.query(
          `insert into idempotency_keys (tenant_id, key, route, request_hash, response_status, response_body)
           values ($1, gen_random_uuid()::text, 'bench', 'x', 200, '{}')`,
          [hot.tenantId],
        ),
      ),
    );
    console.log(describe('(w) write scope', write));
    const oneTenant = await drive(() => scopes.run(hot, (db) => recordAuditEvent(db, event)));
    console.log(describe('(b) audit, 1 tenant', oneTenant));
    const spread = await drive(() =>
      scopes.run(tenants[Math.floor(Math.random() * tenants.length)] ?? hot, (db) => recordAuditEvent(db, event)),
    );
    console.log(describe(`(c) audit, ${tenantCount} tenants`, spread));

    const verifyStartedMs = performance.now();
    const verification = await platform.audit.verify(hot);
    const verifyS = (performance.now() - verifyStartedMs) / 1_000;
    const linked = verification.heads.reduce((total, head) => total + head.seq, 0n);
    if (!verification.ok || linked !== BigInt(verification.eventsChecked)) {
      throw new Error(
        `the chain under concurrent writers is broken: ${JSON.stringify(verification, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`,
      );
    }
    console.log(
      `verify: ${verification.eventsChecked} events in ${verifyS.toFixed(2)} s = ${(verification.eventsChecked / verifyS).toFixed(0)} events/s, chain intact and gap-free`,
    );
    console.log(
      `audit: ${spread.perSecond.toFixed(0)} audited transactions/s across ${tenantCount} tenants (plain write ${write.perSecond.toFixed(0)}/s), ${oneTenant.perSecond.toFixed(0)}/s on one tenant's chain; p50 ${spread.p50Ms.toFixed(2)} vs ${write.p50Ms.toFixed(2)} ms; verify ${(verification.eventsChecked / verifyS).toFixed(0)} events/s (load ${(os.loadavg()[0] ?? 0).toFixed(2)})`,
    );
  } finally {
    await stop();
  }
}

await main();

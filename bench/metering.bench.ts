/**
 * Metering benchmarks, on the embedded default (or DATABASE_URL when set):
 *   (1) request-path overhead: p50 latency of GET /v1/entities (auth + one tenant-scope
 *       query) through app.inject, with metering (the request hook, CPU apportioning, the
 *       database-time observer) and without it (same platform, a scope with no observer and
 *       a no-op hook), interleaved in rounds so drift hits both alike; prints the ratio
 *       (goal ≤ 1.05);
 *   (2) usage-event ingestion: events of 1,000 tenants within one minute (as live traffic
 *       arrives) recorded through UsageRecorder.recordUsage in chunks of 20,000, each written
 *       by one flush (one transaction: COPY into usage_events, then one upsert per hour,
 *       day and month rollup row) into PostgreSQL; prints events per second (goal ≥ 50,000)
 *       and the cost of one recordUsage call.
 *
 *   npx tsx bench/metering.bench.ts [--requests 2000] [--rounds 5] [--events 200000]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { EntitiesService } from '../apps/server/src/entities/entities.service.ts';
import { Metering } from '../apps/server/src/metering/metering.runtime.ts';
import { UsageRecorder } from '../apps/server/src/metering/usage-recorder.ts';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { TenantScopes } from '../apps/server/src/platform/database/tenant-scope.ts';
import { buildHttpApp } from '../apps/server/src/platform/http/http-app.ts';
import type { App } from '../apps/server/src/platform/http/http-types.ts';
import { newUuid } from '../apps/server/src/platform/ids.ts';
import { createLogger } from '../apps/server/src/platform/logger.ts';
import { openPlatform } from '../apps/server/src/platform/platform.ts';
import { intFlag } from './bench-flags.ts';

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    events: { type: 'string', default: '200000' },
  },
});
const requestsPerRound = intFlag(flags, 'requests', 1, 10_000_000);
const rounds = intFlag(flags, 'rounds', 1, 10_000_000);
const eventCount = intFlag(flags, 'events', 1, 10_000_000);

const operatorKey = `chop_bench_${'k'.repeat(40)}`;
const log = createLogger('silent');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function timeRequests(app: App, auth: { authorization: string }, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let index = 0; index < count; index++) {
    const started = performance.now();
    const response = await app.inject({ method: 'GET', url: '/v1/entities?limit=10', headers: auth });
    latencies.push(performance.now() - started);
    if (response.statusCode !== 200) throw new Error(`request failed: ${response.statusCode} ${response.body}`);
  }
  return latencies;
}

async function main(): Promise<void> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-bench-metering-'));
  await fs.chmod(home, 0o755);
  const config = { ...loadConfig(process.env), home, operatorKey, runtimePoolMax: 5, storageSampleMinutes: 0 };
  const platform = await openPlatform(config, log);
  try {
    console.log(
      `metering benchmark: ${os.cpus().length} CPU(s), load average ${(os.loadavg()[0] ?? 0).toFixed(2)}, node ${process.version}, ${config.databaseUrl ? 'DATABASE_URL' : 'embedded PostgreSQL'}`,
    );
    const metered = await buildHttpApp(platform, log);
    // The same platform without metering: a scope with no observer, and a hook with nothing to do.
    const unobservedScopes = new TenantScopes({ poolFor: () => platform.runtimePool });
    const idle = new Metering(platform.usageStore, log, {
      metricsTopTenants: 1,
      emf: false,
      storageSampleIntervalMs: 0,
    });
    const noopMetering = Object.assign(Object.create(idle) as Metering, {
      recordRequest: () => undefined,
      metrics: Object.assign(Object.create(idle.metrics), { observeRequest: () => undefined }),
    });
    const plain = await buildHttpApp(
      {
        ...platform,
        entities: new EntitiesService(unobservedScopes, platform.sealer, platform.ledger.charts),
        metering: noopMetering,
      },
      log,
    );
    const created = await metered.inject({
      method: 'POST',
      url: '/v1/tenants',
      headers: { authorization: `Bearer ${operatorKey}` },
      payload: {
        name: `Bench ${newUuid()}`,
        tier: 'starter',
        admin: { email: 'bench@bench.test', password: 'correct horse battery' },
      },
    });
    const tenantId = created.json<{ id: string }>().id;
    // The bench measures metering, not the starter plan's 20 requests per second.
    const unthrottled = await metered.inject({
      method: 'PUT',
      url: `/v1/tenants/${tenantId}/plan`,
      headers: { authorization: `Bearer ${operatorKey}` },
      payload: {
        usagePlan: { ratePerSecond: 100_000, burst: 1_000_000, quota: { limit: 1_000_000_000 } },
        limits: { inFlightRequestsMax: 10_000 },
      },
    });
    if (unthrottled.statusCode !== 200) throw new Error(`plan override failed: ${unthrottled.body}`);
    const token = await metered.inject({
      method: 'POST',
      url: '/v1/auth/token',
      payload: { tenantId, email: 'bench@bench.test', password: 'correct horse battery' },
    });
    const auth = { authorization: `Bearer ${token.json<{ access_token: string }>().access_token}` };
    await timeRequests(metered, auth, 200); // warm up both paths
    await timeRequests(plain, auth, 200);
    // Interleaved request by request, alternating which goes first, so load changes on a
    // shared machine hit both paths alike.
    const withMetering: number[] = [];
    const withoutMetering: number[] = [];
    for (let index = 0; index < rounds * requestsPerRound; index++) {
      const order: Array<[App, number[]]> = [
        [plain, withoutMetering],
        [metered, withMetering],
      ];
      if (index % 2 === 1) order.reverse();
      for (const [app, latencies] of order) latencies.push(...(await timeRequests(app, auth, 1)));
    }
    const p50With = median(withMetering);
    const p50Without = median(withoutMetering);
    console.log(
      `request path (${rounds} × ${requestsPerRound} GET /v1/entities each way, interleaved): p50 without metering ${p50Without.toFixed(3)} ms, with ${p50With.toFixed(3)} ms, ratio ${(p50With / p50Without).toFixed(3)} (goal ≤ 1.05)`,
    );
    await plain.close();
    await metered.close();
    await idle.close();

    // Ingestion as it happens live: 1,000 tenants, events of one minute (a flush covers about
    // a second of traffic, so its rollup rows are few: one hour, day and month bucket each).
    const recorder = new UsageRecorder(platform.usageStore, log, {
      bufferEventsMax: 100_000,
      flushEarlyAtEvents: 50_000,
    });
    const tenants = Array.from({ length: 1_000 }, () => newUuid());
    const dayStart = Date.UTC(2020, 0, 1, 12, 0, 0);
    const started = performance.now();
    let recordMs = 0;
    for (let sent = 0; sent < eventCount; ) {
      const chunk = Math.min(20_000, eventCount - sent);
      const recordStarted = performance.now();
      for (let index = 0; index < chunk; index++) {
        const n = sent + index;
        recorder.recordUsage({
          tenantId: tenants[n % tenants.length] ?? '',
          tier: 'starter',
          metric: n % 3 === 0 ? 'database_us' : 'requests',
          quantity: 1 + (n % 17),
          occurredAt: new Date(dayStart + (n % 60) * 1_000),
        });
      }
      recordMs += performance.now() - recordStarted;
      sent += chunk;
      await recorder.flush();
    }
    const elapsedS = (performance.now() - started) / 1_000;
    const stats = recorder.stats();
    if (stats.flushedEvents !== eventCount) throw new Error(`flushed ${stats.flushedEvents} of ${eventCount}`);
    console.log(
      `ingestion: ${eventCount} events in ${elapsedS.toFixed(2)} s = ${Math.round(eventCount / elapsedS)} events/s (goal ≥ 50,000); recordUsage ${((recordMs * 1e6) / eventCount).toFixed(0)} ns/event`,
    );
    await recorder.close();
  } finally {
    await platform.close();
    await fs.rm(home, { recursive: true, force: true });
  }
}

await main();

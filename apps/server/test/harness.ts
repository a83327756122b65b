import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DestinationStream } from 'pino';
import { inject } from 'vitest';
import { type Config, loadConfig } from '../src/platform/config.ts';
import { buildHttpApp } from '../src/platform/http/http-app.ts';
import type { App } from '../src/platform/http/http-types.ts';
import { parseId } from '../src/platform/ids.ts';
import { randomToken } from '../src/platform/local-secrets.ts';
import { createLogger } from '../src/platform/logger.ts';
import { openPlatform, type Platform, type PlatformOptions } from '../src/platform/platform.ts';

/**
 * The test harness: a real platform (PostgreSQL, roles, migrations, services) and the real
 * HTTP app, driven through `app.inject`. Tenants made here have unique names, so test files
 * can share one database and run in parallel.
 */
export const operatorKey = `chop_test_${'k'.repeat(40)}`;
export const adminPassword = 'correct horse battery staple';

export interface TestStack {
  platform: Platform;
  app: App;
  config: Config;
  close(): Promise<void>;
}

export interface TestStackOptions extends PlatformOptions {
  /** Settings over the test defaults, e.g. `redisUrl` or the shedding budget. */
  config?: Partial<Config>;
  /** Where log lines go; when set, the level is `info` so tests can read request logs. */
  logDestination?: DestinationStream;
}

/**
 * A notification channel of its own (interactive-signal.ts): test files share one database but
 * are not one deployment, so a stack hears only the stacks a test gives the same channel.
 */
export function uniqueInteractiveChannel(): string {
  return `test_interactive_${randomBytes(6).toString('hex')}`;
}

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-stack-'));
  const config: Config = {
    ...loadConfig({}),
    home,
    databaseUrl: inject('ownerUrl'),
    masterKey: inject('masterKey'),
    operatorKey,
    runtimePoolMax: 5,
    dedicatedPoolMax: 5,
    // Tests hold many scopes of two firms open at once; the share itself is tested in
    // limits.service.test.ts and by the noisy-neighbour bench.
    connectionShareBudget: 64,
    // Silo tenants go to a "second cluster" that is the test server itself, reached by URL:
    // the external-cluster path. Tests of the embedded silo cluster set their own.
    siloClusters: [{ name: 'silo-1', url: inject('ownerUrl') }],
    ...options.config,
  };
  const level = options.logDestination ? 'info' : (process.env.TEST_LOG_LEVEL ?? 'silent');
  const log = createLogger(level, options.logDestination);
  const platform = await openPlatform(config, log, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.provisioningFaults ? { provisioningFaults: options.provisioningFaults } : {}),
    interactiveChannel: options.interactiveChannel ?? uniqueInteractiveChannel(),
  });
  const app = await buildHttpApp(platform, log);
  return {
    platform,
    app,
    config,
    async close() {
      await app.close();
      await platform.close();
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}

export function uniqueName(prefix: string): string {
  return `${prefix} ${randomToken(6)}`;
}

export interface TestTenant {
  id: string;
  name: string;
  email: string;
  token: string;
  auth: { authorization: string };
}

/** Onboards a firm through the operator API and signs its admin in. */
export async function createTenant(app: App, prefix = 'Firm', tier = 'starter'): Promise<TestTenant> {
  const name = uniqueName(prefix);
  const email = `owner@${randomToken(6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x')}.test`;
  const created = await app.inject({
    method: 'POST',
    url: '/v1/tenants',
    headers: { authorization: `Bearer ${operatorKey}` },
    payload: { name, tier, admin: { email, password: adminPassword } },
  });
  if (created.statusCode !== 201) throw new Error(`tenant creation failed: ${created.body}`);
  const id = created.json<{ id: string }>().id;
  const signedIn = await app.inject({
    method: 'POST',
    url: '/v1/auth/token',
    payload: { tenantId: id, email, password: adminPassword },
  });
  if (signedIn.statusCode !== 200) throw new Error(`sign-in failed: ${signedIn.body}`);
  const token = signedIn.json<{ access_token: string }>().access_token;
  return { id, name, email, token, auth: { authorization: `Bearer ${token}` } };
}

/**
 * A firm whose usage plan lets a test drive hundreds of requests a second (ledger property
 * tests, report checks). Limits tests use `createTenant`, which keeps the tier's plan.
 */
export async function createUnthrottledTenant(app: App, prefix = 'Firm'): Promise<TestTenant> {
  const tenant = await createTenant(app, prefix);
  await unthrottle(app, tenant.id);
  return tenant;
}

/** Lifts a tenant's usage plan far above what a test sends (tests about content, not limits). */
export async function unthrottle(app: App, tenantId: string): Promise<void> {
  const response = await app.inject({
    method: 'PUT',
    url: `/v1/tenants/${tenantId}/plan`,
    headers: { authorization: `Bearer ${operatorKey}` },
    payload: {
      usagePlan: { ratePerSecond: 100_000, burst: 1_000_000, quota: { limit: 1_000_000_000 } },
      limits: { inFlightRequestsMax: 10_000, databaseConnectionsMax: 200, statementTimeoutMs: 600_000 },
    },
  });
  if (response.statusCode !== 200) throw new Error(`plan override failed: ${response.body}`);
}

/**
 * Drops the dedicated databases of test tenants and marks them offboarded, so runs against a
 * long-lived external server do not pile up databases (they are named `<db>_b_…`/`<db>_s_…`).
 */
export async function dropTenantDatabases(platform: Platform, tenantIds: readonly string[]): Promise<void> {
  for (const publicId of tenantIds) {
    const id = parseId('tenant', publicId) ?? publicId;
    const record = await platform.tenancy.getTenant(id);
    if (!record || record.placement.model === 'pool') continue;
    await platform.placementPools.closePlacement(record.placement);
    await platform.clusters.dropDatabase(record.placement);
    await platform.ownerPool.query(`update tenants set status = 'offboarded' where id = $1`, [id]);
  }
}

/** A clock for the rate limiter that moves only when a test says so. */
export class ManualClock {
  nowMs: number;

  constructor(startMs = Date.UTC(2026, 0, 15, 12)) {
    this.nowMs = startMs;
  }

  readonly read = (): number => this.nowMs;

  advance(ms: number): void {
    this.nowMs += ms;
  }
}

/** Asserts a problem+json response with the given status and code. */
export function problemOf(response: { statusCode: number; headers: Record<string, unknown>; json: <T>() => T }) {
  const contentType = String(response.headers['content-type'] ?? '');
  return {
    status: response.statusCode,
    contentType,
    body: response.json<{ code: string; status: number; requestId: string }>(),
  };
}

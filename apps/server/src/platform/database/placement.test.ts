import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenant,
  dropTenantDatabases,
  startTestStack,
  type TestStack,
  type TestTenant,
  uniqueName,
} from '../../../test/harness.ts';
import { tenantContextOf } from '../../tenancy/tenancy.service.ts';
import { parseId } from '../ids.ts';
import { ClusterDirectory, sharedClusterName } from './clusters.ts';
import { PlacementPools } from './placement-pools.ts';
import type { TenantContext, TenantScopes } from './tenant-scope.ts';

/**
 * Placement and routing: bridge tenants get their own database on the shared server, silo
 * tenants their own database on a second cluster — here both the configured-URL path (the
 * harness default) and the embedded second PostgreSQL the platform starts itself. Requests
 * are routed to the tenant's database; dedicated pools are bounded and closed when idle.
 */
async function contextOf(stack: TestStack, tenant: TestTenant): Promise<TenantContext> {
  const record = await stack.platform.tenancy.getTenant(parseId('tenant', tenant.id) ?? '');
  if (!record) throw new Error(`tenant ${tenant.id} is not registered`);
  return tenantContextOf(record);
}

async function serverOf(stack: TestStack, context: TenantContext) {
  return await stack.platform.scopes.run(context, async (db) => {
    const { rows } = await db.query<{ database: string; port: number; data: string }>(
      `select current_database()::text as database, current_setting('port')::int as port,
              current_setting('server_version_num') as data`,
    );
    return rows[0];
  });
}

async function createAndListEntity(stack: TestStack, tenant: TestTenant): Promise<string[]> {
  const created = await stack.app.inject({
    method: 'POST',
    url: '/v1/entities',
    headers: tenant.auth,
    payload: { name: uniqueName('Placed Client') },
  });
  expect(created.statusCode, created.body).toBe(201);
  const listed = await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: tenant.auth });
  expect(listed.statusCode).toBe(200);
  return listed.json<{ items: Array<{ name: string }> }>().items.map((entity) => entity.name);
}

describe('bridge and silo placement on a configured cluster URL', () => {
  let stack: TestStack;
  const created: string[] = [];

  beforeAll(async () => {
    stack = await startTestStack({ config: { dedicatedPoolsMax: 2, dedicatedPoolIdleMs: 200 } });
  });

  afterAll(async () => {
    await dropTenantDatabases(stack.platform, created);
    await stack.close();
  });

  it('serves each tier from its own placement and keeps their rows apart', async () => {
    // Proves routing: pool → shared db; professional → <db>_b_<id>; enterprise → <db>_s_<id> on
    // the silo cluster; each tenant's entity list holds only its own entity.
    const tenants = {
      starter: await createTenant(stack.app, 'Pool Firm', 'starter'),
      professional: await createTenant(stack.app, 'Bridge Firm', 'professional'),
      enterprise: await createTenant(stack.app, 'Silo Firm', 'enterprise'),
    };
    created.push(tenants.professional.id, tenants.enterprise.id);
    const shared = decodeURIComponent(new URL(stack.config.databaseUrl ?? '').pathname.slice(1));
    const placements = {
      starter: (await contextOf(stack, tenants.starter)).placement,
      professional: (await contextOf(stack, tenants.professional)).placement,
      enterprise: (await contextOf(stack, tenants.enterprise)).placement,
    };
    expect(placements.starter).toEqual({ model: 'pool', cluster: 'shared', database: 'shared' });
    expect(placements.professional).toMatchObject({ model: 'bridge', cluster: 'shared' });
    expect(placements.enterprise).toMatchObject({ model: 'silo', cluster: 'silo-1' });
    const names = new Map<string, string[]>();
    for (const [tier, tenant] of Object.entries(tenants)) {
      const context = await contextOf(stack, tenant);
      const server = await serverOf(stack, context);
      expect(server?.database).toBe(tier === 'starter' ? shared : context.placement.database);
      names.set(tier, await createAndListEntity(stack, tenant));
    }
    for (const list of names.values()) expect(list).toHaveLength(1);
    expect(new Set([...names.values()].flat()).size).toBe(3);

    // The metering storage sampler measures each tenant where it lives: one user and one entity each.
    const samples = await stack.platform.metering.sampler.sampleAll();
    for (const tenant of Object.values(tenants)) {
      const sample = samples.find((entry) => entry.tenantId === parseId('tenant', tenant.id));
      expect(sample, tenant.name).toMatchObject({ users: 1, entities: 1 });
      expect(sample?.storageBytes).toBeGreaterThan(0);
    }
  });

  it('refuses a new placement while every open pool has a connection out, and makes room the moment one is idle', async () => {
    // Two placements of this bound on pools of their own, both reaching the shared database.
    const runtimeUrl = stack.platform.runtimePool.options.connectionString ?? '';
    const pools = new PlacementPools(
      { pool: stack.platform.runtimePool, batch: null },
      { runtimeUrlFor: () => runtimeUrl, batchNiceFor: () => 0 },
      { poolMax: 1, poolsMax: 1, idleCloseMs: 60_000, connectionTimeoutMs: 5_000, batchPoolMax: 1 },
      pino({ level: 'silent' }),
    );
    const placement = (database: string) => ({ model: 'bridge' as const, cluster: sharedClusterName, database });
    try {
      const held = await pools.poolFor(placement('first')).connect();
      expect(() => pools.poolFor(placement('second'))).toThrow(
        expect.objectContaining({ code: 'DATABASE_POOLS_EXHAUSTED' }),
      );
      held.release();
      // Used a moment ago, but idle: closed to make room at once.
      const { rows } = await pools.poolFor(placement('second')).query<{ one: number }>('select 1 as one');
      expect(rows).toEqual([{ one: 1 }]);
      expect(pools.stats()).toMatchObject({ open: 1, openedTotal: 2 });
    } finally {
      await pools.close();
    }
  });

  it('gives batch work pools of their own on a server on this machine, whose backends run at the batch nice value', async () => {
    // The test server runs on this machine in every CI pass (and tests run as root, or as the
    // user of the embedded server), so its backends' priorities can be set and read here.
    const runtimeUrl = stack.platform.runtimePool.options.connectionString ?? '';
    let onThisMachine = true;
    const settings = { poolMax: 1, poolsMax: 2, idleCloseMs: 60_000, connectionTimeoutMs: 5_000, batchPoolMax: 2 };
    const sharedBatch = new pg.Pool({ connectionString: runtimeUrl, max: 1 });
    const pools = new PlacementPools(
      { pool: stack.platform.runtimePool, batch: sharedBatch },
      { runtimeUrlFor: () => runtimeUrl, batchNiceFor: () => (onThisMachine ? 7 : 0) },
      settings,
      pino({ level: 'silent' }),
    );
    const backendPid = async (pool: pg.Pool) =>
      (await pool.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid ?? 0;
    const bridge = { model: 'bridge' as const, cluster: sharedClusterName, database: 'batch-lane' };
    try {
      const interactive = pools.poolFor(bridge);
      const batch = pools.batch.poolFor(bridge);
      expect(batch).not.toBe(interactive);
      expect(os.getPriority(await backendPid(batch))).toBe(7);
      expect(os.getPriority(await backendPid(interactive))).not.toBe(7);
      // Both count as the placement's connections, and close with it.
      expect(pools.stats()).toMatchObject({ open: 1, connections: 2 });
      await pools.closePlacement(bridge);
      expect([interactive.ended, batch.ended]).toEqual([true, true]);
      // Pooled tenants' batch work goes to the shared database's batch pool.
      const pooled = { model: 'pool' as const, cluster: sharedClusterName, database: 'shared' };
      expect(pools.batch.poolFor(pooled)).toBe(sharedBatch);
      expect(pools.poolFor(pooled)).toBe(stack.platform.runtimePool);
      // A server elsewhere: batch work shares the placement's one pool.
      onThisMachine = false;
      const remote = { ...bridge, database: 'batch-lane-remote' };
      expect(pools.batch.poolFor(remote)).toBe(pools.poolFor(remote));
    } finally {
      await pools.close();
      await sharedBatch.end();
    }
    // With the setting off, batch work shares the placement's pool wherever the server is.
    const unniced = new PlacementPools(
      { pool: stack.platform.runtimePool, batch: null },
      { runtimeUrlFor: () => runtimeUrl, batchNiceFor: () => 0 },
      settings,
      pino({ level: 'silent' }),
    );
    try {
      expect(unniced.batch.poolFor(bridge)).toBe(unniced.poolFor(bridge));
    } finally {
      await unniced.close();
    }
  });

  it('keeps at most the configured number of dedicated pools and closes idle ones', async () => {
    // Proves the bound (2 pools for 3 dedicated tenants, the least recently used one closed
    // as soon as it is idle, however recently it was used: the firms are created and read
    // back to back) and the sweeper (every pool closed after the idle time, reopened on the
    // next request).
    const bridges: TestTenant[] = [];
    for (const name of ['Pool Bound A', 'Pool Bound B', 'Pool Bound C']) {
      bridges.push(await createTenant(stack.app, name, 'professional'));
    }
    created.push(...bridges.map((tenant) => tenant.id));
    const pools = stack.platform.placementPools;
    for (const tenant of bridges) {
      const listed = await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: tenant.auth });
      expect(listed.statusCode).toBe(200);
      expect(pools.stats().open).toBeLessThanOrEqual(2);
    }
    expect(pools.sweep(Date.now() + 60_000)).toBeGreaterThan(0);
    expect(pools.stats().open).toBe(0);
    const again = await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: bridges[0]?.auth ?? {} });
    expect(again.statusCode).toBe(200);
    expect(pools.stats().open).toBe(1);
  });
});

describe('silo placement on an embedded second cluster', () => {
  let home: string;
  const settings = () => ({
    config: { home, siloClusters: [{ name: 'silo-local', url: null }] },
  });

  beforeAll(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-silo-'));
    // The postgres OS user (when tests run as root) must reach the silo's data folder.
    await fs.chmod(home, 0o755);
  });

  afterAll(async () => {
    await fs.rm(home, { recursive: true, force: true });
  });

  it('starts the silo cluster on demand and again on restart for the tenants living there', async () => {
    // Proves the embedded path: the enterprise tenant's database is on another PostgreSQL
    // (another port), it is served after a restart (the start-up pass reopens the cluster),
    // and its rows survive.
    let stack = await startTestStack(settings());
    let tenant: TestTenant;
    let sharedPort: number | undefined;
    try {
      tenant = await createTenant(stack.app, 'Embedded Silo Firm', 'enterprise');
      const context = await contextOf(stack, tenant);
      expect(context.placement).toMatchObject({ model: 'silo', cluster: 'silo-local' });
      const { rows } = await stack.platform.runtimePool.query<{ port: number }>(
        "select current_setting('port')::int as port",
      );
      sharedPort = rows[0]?.port;
      const silo = await serverOf(stack, context);
      expect(silo?.port).not.toBe(sharedPort);
      expect(silo?.database).toBe(context.placement.database);
      expect(await createAndListEntity(stack, tenant)).toHaveLength(1);
    } finally {
      await stack.close();
    }
    stack = await startTestStack(settings());
    try {
      const listed = await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: tenant.auth });
      expect(listed.statusCode, listed.body).toBe(200);
      expect(listed.json<{ items: unknown[] }>().items).toHaveLength(1);
      await dropTenantDatabases(stack.platform, [tenant.id]);
    } finally {
      await stack.close();
    }
    // An initdb and two platform starts: minutes on a loaded machine, not the default 30 s.
  }, 240_000);
});

describe('where batch work runs at lower priority', () => {
  it('is decided by the cluster directory: servers on this machine, when a nice value is set', () => {
    const directory = (sharedOnThisMachine: boolean, batchBackendNice: number) =>
      new ClusterDirectory({
        sharedOwnerUrl: 'postgres://owner@127.0.0.1:5432/countinghouse',
        sharedOnThisMachine,
        batchBackendNice,
        runtimeRole: 'runtime',
        runtimePassword: 'unused',
        silos: [
          { name: 'embedded-silo', url: null },
          { name: 'remote-silo', url: 'postgres://owner@db.internal:5432/postgres' },
        ],
        home: os.tmpdir(),
        log: pino({ level: 'silent' }),
      });
    const local = directory(true, 9);
    expect(['shared', 'embedded-silo', 'remote-silo', 'unknown'].map((name) => local.batchNiceFor(name))).toEqual([
      9, 9, 0, 0,
    ]);
    // The shared server elsewhere (RDS, another host): only embedded silos are ours.
    expect(directory(false, 9).batchNiceFor(sharedClusterName)).toBe(0);
    expect(directory(false, 9).batchNiceFor('embedded-silo')).toBe(9);
    // The setting off: nowhere.
    expect(directory(true, 0).batchNiceFor(sharedClusterName)).toBe(0);
    expect(directory(true, 0).batchNiceFor('embedded-silo')).toBe(0);
  });
});

describe('batch work on a server on this machine', () => {
  let stack: TestStack;
  const created: string[] = [];

  beforeAll(async () => {
    // The test server is on this machine; the setting says so, as a single-box install would.
    stack = await startTestStack({ config: { databaseLocal: true, batchBackendNice: 9 } });
  });

  afterAll(async () => {
    await dropTenantDatabases(stack.platform, created);
    await stack.close();
  });

  it("runs job handlers' transactions on backends of lower CPU priority, pooled and dedicated, and requests' at normal", async () => {
    const tenants = [
      await createTenant(stack.app, 'Batch Pool Firm', 'starter'),
      await createTenant(stack.app, 'Batch Bridge Firm', 'professional'),
    ];
    created.push(...tenants.map((tenant) => tenant.id));
    const backendOf = async (scopes: TenantScopes, context: TenantContext) =>
      await scopes.run(context, async (db) => {
        const { rows } = await db.query<{ pid: number; database: string }>(
          'select pg_backend_pid() as pid, current_database()::text as database',
        );
        return { priority: os.getPriority(rows[0]?.pid ?? 0), database: rows[0]?.database };
      });
    for (const tenant of tenants) {
      const context = await contextOf(stack, tenant);
      const batch = await backendOf(stack.platform.batchScopes, context);
      const interactive = await backendOf(stack.platform.scopes, context);
      expect(batch, tenant.name).toEqual({ priority: 9, database: interactive.database });
      expect(interactive.priority, tenant.name).not.toBe(9);
    }
  });

  it("reads a firm's export on owner connections of lower CPU priority, closed when the export ends", async () => {
    const tenants = [
      await createTenant(stack.app, 'Export Pool Firm', 'starter'),
      await createTenant(stack.app, 'Export Bridge Firm', 'professional'),
    ];
    created.push(...tenants.map((tenant) => tenant.id));
    for (const tenant of tenants) {
      const tenantId = parseId('tenant', tenant.id) ?? '';
      let read: pg.Pool[] = [];
      const seen = await stack.platform.tenantData.withExportSources(tenantId, async (sources) => {
        read = sources.map((source) => source.pool);
        return await Promise.all(
          sources.map(async (source) => {
            const { rows } = await source.pool.query<{ pid: number; database: string }>(
              'select pg_backend_pid() as pid, current_database()::text as database',
            );
            return { label: source.label, priority: os.getPriority(rows[0]?.pid ?? 0), database: rows[0]?.database };
          }),
        );
      });
      // The pooled firm's rows are all in the shared database; the bridge firm's export also
      // reads its own database.
      expect(seen.length, tenant.name).toBe(tenant.name.includes('Pool') ? 1 : 2);
      for (const source of seen) expect(source.priority, `${tenant.name} ${source.label}`).toBe(9);
      expect(new Set(seen.map((source) => source.database)).size).toBe(seen.length);
      // The export's own connections, not the shared owner pools, and ended with it.
      expect(read).not.toContain(stack.platform.tenantData.databases.control);
      for (const pool of read) await expect(pool.query('select 1')).rejects.toThrow(/after calling end/);
    }
  });
});

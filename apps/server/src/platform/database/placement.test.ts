import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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
import { sharedClusterName } from './clusters.ts';
import { PlacementPools } from './placement-pools.ts';
import type { TenantContext } from './tenant-scope.ts';

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
      stack.platform.runtimePool,
      { runtimeUrlFor: () => runtimeUrl },
      { poolMax: 1, poolsMax: 1, idleCloseMs: 60_000, connectionTimeoutMs: 5_000 },
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

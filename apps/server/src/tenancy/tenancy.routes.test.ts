import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminPassword,
  createTenant,
  dropTenantDatabases,
  operatorKey,
  problemOf,
  startTestStack,
  type TestStack,
  uniqueName,
} from '../../test/harness.ts';
import { formatId, newUuid, parseId } from '../platform/ids.ts';
import { tenantContextOf } from './tenancy.service.ts';

/**
 * The operator API: only the operator key may onboard or read tenants, onboarding returns
 * and stores the registry record, and every refused request writes nothing.
 */
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.close();
});

const operator = { authorization: `Bearer ${operatorKey}` };

function tenantBody(name: string, overrides: { tier?: string; email?: string; password?: string } = {}) {
  return {
    name,
    tier: overrides.tier ?? 'starter',
    admin: { email: overrides.email ?? 'admin@firm.test', password: overrides.password ?? adminPassword },
  };
}

async function postTenant(payload: object, headers: Record<string, string> = operator) {
  return await stack.app.inject({ method: 'POST', url: '/v1/tenants', headers, payload });
}

/** Tenants whose name equals `name` case-insensitively, read with the owner role. */
async function countTenantsNamed(name: string): Promise<number> {
  const { rows } = await stack.platform.ownerPool.query<{ count: string }>(
    'select count(*) from tenants where lower(name) = lower($1)',
    [name],
  );
  return Number(rows[0]?.count);
}

describe('operator authentication', () => {
  it('refuses onboarding without the operator key, with a wrong key, or with a tenant token, and creates nothing', async () => {
    const firm = await createTenant(stack.app, 'Tenancy Token Holder');
    const attempts: Array<{ title: string; headers: Record<string, string> }> = [
      { title: 'no Authorization', headers: {} },
      { title: 'a wrong key', headers: { authorization: `Bearer ${operatorKey}x` } },
      { title: 'a tenant access token', headers: firm.auth },
      { title: 'the key under another scheme', headers: { authorization: `Basic ${operatorKey}` } },
    ];
    for (const attempt of attempts) {
      const name = uniqueName('Tenancy Unauthorised');
      const problem = problemOf(await postTenant(tenantBody(name), attempt.headers));
      expect(problem.status, attempt.title).toBe(401);
      expect(problem.contentType, attempt.title).toMatch(/^application\/problem\+json/);
      expect(problem.body, attempt.title).toMatchObject({ code: 'OPERATOR_KEY_INVALID' });
      expect(await countTenantsNamed(name), attempt.title).toBe(0);
    }
  });

  it('refuses reading a tenant without the operator key', async () => {
    const created = await postTenant(tenantBody(uniqueName('Tenancy Read Guard')));
    const id = created.json<{ id: string }>().id;
    const response = await stack.app.inject({ method: 'GET', url: `/v1/tenants/${id}` });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ code: 'OPERATOR_KEY_INVALID' });
  });
});

describe('onboarding and the registry', () => {
  it('creates an active starter tenant in the pool and reads the same record back', async () => {
    const name = uniqueName('Tenancy Happy');
    const created = await postTenant(tenantBody(name));
    expect(created.statusCode).toBe(201);
    const tenant = created.json<Record<string, unknown>>();
    expect(tenant).toMatchObject({
      name,
      tier: 'starter',
      status: 'active',
      placement: { model: 'pool', cluster: 'shared', database: 'shared' },
    });
    expect(tenant.id).toMatch(/^ten_[0-9a-f]{32}$/);
    expect(created.headers.location).toBe(`/v1/tenants/${tenant.id}`);

    const read = await stack.app.inject({ method: 'GET', url: `/v1/tenants/${tenant.id}`, headers: operator });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(tenant);
    expect(await countTenantsNamed(name)).toBe(1);
  });

  it('trims the name it stores', async () => {
    const name = uniqueName('Tenancy Trimmed');
    const created = await postTenant(tenantBody(`  ${name}\t`));
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name });
  });

  it('answers 404 TENANT_NOT_FOUND for an unknown id and 400 for a malformed one', async () => {
    const unknown = await stack.app.inject({
      method: 'GET',
      url: `/v1/tenants/${formatId('tenant', newUuid())}`,
      headers: operator,
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(unknown.json()).toMatchObject({ code: 'TENANT_NOT_FOUND' });

    for (const id of ['nope', `ent_${'0'.repeat(32)}`, `ten_${'A'.repeat(32)}`]) {
      const malformed = await stack.app.inject({ method: 'GET', url: `/v1/tenants/${id}`, headers: operator });
      expect(malformed.statusCode, id).toBe(400);
      expect(malformed.json(), id).toMatchObject({ code: 'REQUEST_VALIDATION_FAILED' });
    }
  });

  it("stores the admin's password only as an argon2id hash", async () => {
    const created = await postTenant(tenantBody(uniqueName('Tenancy Hash')));
    expect(created.statusCode).toBe(201);
    const uuid = parseId('tenant', created.json<{ id: string }>().id);
    const record = uuid ? await stack.platform.tenancy.getTenant(uuid) : null;
    if (!record) throw new Error('the created tenant is not in the registry');
    const { rows } = await stack.platform.scopes.run(tenantContextOf(record), (db) =>
      db.query<{ password_hash: string }>('select password_hash from users'),
    );
    expect(rows).toHaveLength(1);
    const hash = rows[0]?.password_hash ?? '';
    expect(hash.startsWith('$argon2id$')).toBe(true);
    expect(hash).toContain('m=19456,t=2,p=1');
    expect(hash).not.toContain(adminPassword);
  });
});

describe('refused onboarding writes nothing', () => {
  const cases: Array<{ title: string; payload: (name: string) => object; status: number; code: string }> = [
    {
      title: 'an unknown tier',
      payload: (name) => tenantBody(name, { tier: 'platinum' }),
      status: 400,
      code: 'TENANT_UNKNOWN_TIER',
    },
    {
      title: 'an inherited property name as tier',
      payload: (name) => tenantBody(name, { tier: 'toString' }),
      status: 400,
      code: 'TENANT_UNKNOWN_TIER',
    },
    {
      title: 'a password of 11 characters',
      payload: (name) => tenantBody(name, { password: 'a'.repeat(11) }),
      status: 400,
      code: 'IDENTITY_PASSWORD_TOO_SHORT',
    },
    {
      title: 'an invalid email',
      payload: (name) => tenantBody(name, { email: 'not-an-email' }),
      status: 400,
      code: 'REQUEST_VALIDATION_FAILED',
    },
    {
      title: 'an unknown top-level field',
      payload: (name) => ({ ...tenantBody(name), region: 'eu' }),
      status: 400,
      code: 'REQUEST_VALIDATION_FAILED',
    },
    {
      title: 'an unknown admin field',
      payload: (name) => {
        const body = tenantBody(name);
        return { ...body, admin: { ...body.admin, roles: ['owner'] } };
      },
      status: 400,
      code: 'REQUEST_VALIDATION_FAILED',
    },
  ];

  for (const testCase of cases) {
    it(`answers ${testCase.status} ${testCase.code} for ${testCase.title}`, async () => {
      const name = uniqueName('Tenancy Refused');
      const problem = problemOf(await postTenant(testCase.payload(name)));
      expect(problem.status).toBe(testCase.status);
      expect(problem.contentType).toMatch(/^application\/problem\+json/);
      expect(problem.body).toMatchObject({ code: testCase.code, status: testCase.status });
      expect(await countTenantsNamed(name)).toBe(0);
    });
  }

  it('accepts a password of exactly 12 characters (the boundary)', async () => {
    const name = uniqueName('Tenancy Boundary');
    expect((await postTenant(tenantBody(name, { password: 'a'.repeat(12) }))).statusCode).toBe(201);
    expect(await countTenantsNamed(name)).toBe(1);
  });

  it('answers 409 TENANT_NAME_TAKEN for a name already used in another case, keeping the first tenant', async () => {
    const name = uniqueName('Tenancy Duplicate');
    const first = await postTenant(tenantBody(name));
    expect(first.statusCode).toBe(201);
    for (const variant of [name.toUpperCase(), name.toLowerCase(), ` ${name} `]) {
      const problem = problemOf(await postTenant(tenantBody(variant, { email: 'other@firm.test' })));
      expect(problem.status, variant).toBe(409);
      expect(problem.body, variant).toMatchObject({ code: 'TENANT_NAME_TAKEN' });
    }
    expect(await countTenantsNamed(name)).toBe(1);
    const read = await stack.app.inject({
      method: 'GET',
      url: `/v1/tenants/${first.json<{ id: string }>().id}`,
      headers: operator,
    });
    expect(read.json()).toMatchObject({ name, status: 'active' });
  });
});

describe('the registry list', () => {
  it('pages through every tenant oldest first with an opaque cursor, filtered by tier and status', async () => {
    // Proves the cursor: pages of 2 over the starter tier never repeat an id, ids rise, and the
    // three tenants made here all appear; a tampered cursor is a 400.
    const mine: string[] = [];
    for (let index = 0; index < 3; index++) {
      const created = await postTenant(tenantBody(uniqueName('Tenancy Listed')));
      mine.push(created.json<{ id: string }>().id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10_000; page++) {
      const query: string = `limit=200&tier=starter&status=active${cursor ? `&cursor=${cursor}` : ''}`;
      const response = await stack.app.inject({ method: 'GET', url: `/v1/tenants?${query}`, headers: operator });
      expect(response.statusCode).toBe(200);
      const body = response.json<{
        items: Array<{ id: string; tier: string; status: string }>;
        nextCursor: string | null;
      }>();
      for (const item of body.items) expect(item).toMatchObject({ tier: 'starter', status: 'active' });
      seen.push(...body.items.map((item) => item.id));
      cursor = body.nextCursor;
      if (cursor === null) break;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual(seen);
    expect(seen).toEqual(expect.arrayContaining(mine));
    const small = await stack.app.inject({ method: 'GET', url: '/v1/tenants?limit=2', headers: operator });
    expect(small.json<{ items: unknown[] }>().items).toHaveLength(2);
    const bad = problemOf(
      await stack.app.inject({ method: 'GET', url: '/v1/tenants?cursor=bm90LWEtY3Vyc29y', headers: operator }),
    );
    expect(bad.body).toMatchObject({ code: 'PAGINATION_CURSOR_INVALID', status: 400 });
  });

  it('shows the provisioning step log of a tenant', async () => {
    // Proves item 2's visibility: GET /v1/tenants/{id} carries all eight steps, done, with outcomes.
    const created = await postTenant(tenantBody(uniqueName('Tenancy Steps')));
    const read = await stack.app.inject({
      method: 'GET',
      url: `/v1/tenants/${created.json<{ id: string }>().id}`,
      headers: operator,
    });
    const steps = read.json<{ provisioning: { steps: Array<{ step: string; status: string; outcome: string }> } }>()
      .provisioning.steps;
    expect(steps.map((step) => step.step)).toEqual([
      'registry',
      'database',
      'roles',
      'migrations',
      'usage-plan',
      'admin-user',
      'metering-account',
      'activate',
    ]);
    expect(steps.every((step) => step.status === 'done' && step.outcome.length > 0)).toBe(true);
  });
});

describe('suspend and resume', () => {
  async function listEntities(tenant: { auth: Record<string, string> }) {
    return await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: tenant.auth });
  }

  for (const tier of ['starter', 'professional']) {
    it(`refuses a suspended ${tier} tenant at once with TENANT_SUSPENDED and keeps its data`, async () => {
      // Proves the local cache invalidation (a request just before the suspension cached the
      // active record) and that resuming brings back the same rows.
      const firm = await createTenant(stack.app, 'Tenancy Suspended', tier);
      const made = await stack.app.inject({
        method: 'POST',
        url: '/v1/entities',
        headers: firm.auth,
        payload: { name: uniqueName('Kept Client') },
      });
      expect(made.statusCode).toBe(201);
      const before = await listEntities(firm);
      expect(before.statusCode).toBe(200);

      const suspended = await stack.app.inject({
        method: 'POST',
        url: `/v1/tenants/${firm.id}/suspend`,
        headers: operator,
        payload: { reason: 'unpaid invoice' },
      });
      expect(suspended.statusCode, suspended.body).toBe(200);
      expect(suspended.json()).toMatchObject({ status: 'suspended', statusReason: 'unpaid invoice' });
      const refused = problemOf(await listEntities(firm));
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'TENANT_SUSPENDED' });

      const resumed = await stack.app.inject({
        method: 'POST',
        url: `/v1/tenants/${firm.id}/resume`,
        headers: operator,
      });
      expect(resumed.json()).toMatchObject({ status: 'active', statusReason: null });
      const after = await listEntities(firm);
      expect(after.statusCode).toBe(200);
      expect(after.json()).toEqual(before.json());
      if (tier !== 'starter') await dropTenantDatabases(stack.platform, [firm.id]);
    });
  }

  it('is idempotent, refuses impossible moves and unknown tenants', async () => {
    // Proves the state rules: suspending twice and resuming an active tenant answer 200 with the
    // state unchanged; a provisioning tenant cannot be suspended (409); an unknown id is 404.
    const firm = await createTenant(stack.app, 'Tenancy Idempotent');
    const suspend = () =>
      stack.app.inject({ method: 'POST', url: `/v1/tenants/${firm.id}/suspend`, headers: operator, payload: {} });
    expect((await suspend()).json()).toMatchObject({ status: 'suspended' });
    expect((await suspend()).json()).toMatchObject({ status: 'suspended' });
    const resume = () => stack.app.inject({ method: 'POST', url: `/v1/tenants/${firm.id}/resume`, headers: operator });
    expect((await resume()).json()).toMatchObject({ status: 'active' });
    expect((await resume()).json()).toMatchObject({ status: 'active' });

    await stack.platform.ownerPool.query(`update tenants set status = 'provisioning' where id = $1`, [
      parseId('tenant', firm.id),
    ]);
    const conflict = problemOf(await suspend());
    expect(conflict.body).toMatchObject({ code: 'TENANT_STATUS_CONFLICT', status: 409 });
    const unknown = problemOf(
      await stack.app.inject({
        method: 'POST',
        url: `/v1/tenants/${formatId('tenant', newUuid())}/suspend`,
        headers: operator,
        payload: {},
      }),
    );
    expect(unknown.body).toMatchObject({ code: 'TENANT_NOT_FOUND', status: 404 });
  });
});

describe('the hot-tenant report', () => {
  it("flags tenants holding a large share of the shared cluster's database time", async () => {
    // Proves the report reads the metering rollups: two firms given overwhelming database time in
    // the current hour are flagged (pool → bridge, bridge → silo); a quiet firm is not; bad input is a 400.
    const heavy = await createTenant(stack.app, 'Tenancy Heavy');
    const heavyBridge = await createTenant(stack.app, 'Tenancy Heavy Bridge', 'professional');
    const quiet = await createTenant(stack.app, 'Tenancy Quiet');
    const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000);
    for (const [tenant, databaseUs] of [
      [heavy, 10n ** 15n],
      [heavyBridge, 10n ** 15n],
      [quiet, 1n],
    ] as const) {
      await stack.platform.ownerPool.query(
        `insert into usage_rollups (tenant, metric, granularity, bucket_start, quantity_sum, quantity_max, event_count)
         values ($1, 'database_us', 'hour', $2, $3, 0, 1)
         on conflict (tenant, granularity, bucket_start, metric)
           do update set quantity_sum = usage_rollups.quantity_sum + excluded.quantity_sum`,
        [parseId('tenant', tenant.id), hour, databaseUs.toString()],
      );
    }
    const response = await stack.app.inject({
      method: 'GET',
      url: '/v1/admin/hot-tenants?hours=1&sharePercent=5',
      headers: operator,
    });
    expect(response.statusCode, response.body).toBe(200);
    const flagged = response.json<{ tenants: Array<{ tenantId: string; suggestedTier: string }> }>().tenants;
    const byId = new Map(flagged.map((tenant) => [tenant.tenantId, tenant.suggestedTier]));
    expect(byId.get(heavy.id)).toBe('professional');
    expect(byId.get(heavyBridge.id)).toBe('enterprise');
    expect(byId.has(quiet.id)).toBe(false);
    const bad = problemOf(
      await stack.app.inject({ method: 'GET', url: '/v1/admin/hot-tenants?sharePercent=0', headers: operator }),
    );
    expect(bad.body).toMatchObject({ code: 'REQUEST_VALIDATION_FAILED' });
    await dropTenantDatabases(stack.platform, [heavyBridge.id]);
  });
});

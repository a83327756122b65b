import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminPassword,
  createTenant,
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

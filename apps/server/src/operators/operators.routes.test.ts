import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminPassword,
  createTenant,
  operatorKey,
  startTestStack,
  type TestStack,
  uniqueName,
} from '../../test/harness.ts';
import { type CliConnection, runOperatorCommand } from '../metering/cli/operator-cli.ts';
import { parseId } from '../platform/ids.ts';

/**
 * Named operators: the bootstrap key creates and revokes them, each key is shown once and
 * works until revoked, and what a named operator does to a tenant lands in that tenant's
 * audit log under the operator's own id. The CLI reaches the same routes, and its
 * `audit verify` exits 1 when the chain is broken. A refused operator action records nothing.
 */
let stack: TestStack;
let connection: CliConnection;
const bootstrap = { authorization: `Bearer ${operatorKey}` };

beforeAll(async () => {
  stack = await startTestStack();
  const address = await stack.app.listen({ host: '127.0.0.1', port: 0 });
  connection = { baseUrl: address, operatorKey };
});

afterAll(async () => {
  await stack?.close();
});

async function createOperator(name: string) {
  const response = await stack.app.inject({
    method: 'POST',
    url: '/v1/admin/operators',
    headers: bootstrap,
    payload: { name },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ operator: { id: string; name: string; keyPrefix: string }; key: string }>();
}

async function tenantEvents(tenantId: string) {
  const uuid = parseId('tenant', tenantId);
  const record = uuid === null ? null : await stack.platform.tenancy.getTenant(uuid);
  if (record === null) throw new Error('no tenant');
  const page = await stack.platform.audit.list(
    { tenantId: record.id, tier: record.tier, placement: record.placement, entityScope: { kind: 'all' } },
    {},
    null,
    100,
  );
  return page.items;
}

async function run(argv: string[], using = connection) {
  let stdout = '';
  let stderr = '';
  const [command, ...rest] = argv as [Parameters<typeof runOperatorCommand>[0], ...string[]];
  const code = await runOperatorCommand(command, rest, using, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

describe('named operators', () => {
  it('act under their own id, and what they do to a tenant is in its audit log', async () => {
    const alice = await createOperator(uniqueName('alice'));
    expect(alice.key).toMatch(/^chopk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(alice.key.slice(6, 18)).toBe(alice.operator.keyPrefix);
    const asAlice = { authorization: `Bearer ${alice.key}` };
    const listed = await stack.app.inject({ method: 'GET', url: '/v1/admin/operators', headers: asAlice });
    expect(JSON.stringify(listed.json())).not.toContain(alice.key);
    expect(listed.json<{ items: Array<{ id: string }> }>().items.map((item) => item.id)).toContain(alice.operator.id);

    const onboarded = await stack.app.inject({
      method: 'POST',
      url: '/v1/tenants',
      headers: asAlice,
      payload: {
        name: uniqueName('Operated'),
        tier: 'starter',
        admin: { email: 'o@operated.test', password: adminPassword },
      },
    });
    expect(onboarded.statusCode, onboarded.body).toBe(201);
    const tenantId = onboarded.json<{ id: string }>().id;
    const plan = await stack.app.inject({
      method: 'PUT',
      url: `/v1/tenants/${tenantId}/plan`,
      headers: asAlice,
      payload: { usagePlan: { ratePerSecond: 50, burst: 100 } },
    });
    expect(plan.statusCode, plan.body).toBe(200);
    const hold = await stack.app.inject({
      method: 'PUT',
      url: `/v1/tenants/${tenantId}/legal-hold`,
      headers: asAlice,
      payload: { reason: 'Subpoena 2026-17' },
    });
    expect(hold.statusCode, hold.body).toBe(200);
    const refused = await stack.app.inject({ method: 'DELETE', url: `/v1/tenants/${tenantId}`, headers: asAlice });
    expect(refused.statusCode).toBeGreaterThanOrEqual(400);
    const events = await tenantEvents(tenantId);
    expect(events.map((event) => [event.action, event.actor])).toEqual([
      ['tenant.create', { kind: 'operator', id: alice.operator.id }],
      ['plan.override', { kind: 'operator', id: alice.operator.id }],
      ['tenant.legal_hold.set', { kind: 'operator', id: alice.operator.id }],
    ]);
    // The refused offboarding (legal hold) changed nothing and recorded nothing.
    expect(events[2]?.summary).toEqual({ reason: 'Subpoena 2026-17' });
  });

  it('are managed by the bootstrap operator only, and a revoked key stops working', async () => {
    const bob = await createOperator(uniqueName('bob'));
    const asBob = { authorization: `Bearer ${bob.key}` };
    const byBob = await stack.app.inject({
      method: 'POST',
      url: '/v1/admin/operators',
      headers: asBob,
      payload: { name: 'x' },
    });
    expect(byBob.statusCode).toBe(403);
    expect(byBob.json()).toMatchObject({ code: 'OPERATOR_BOOTSTRAP_ONLY' });
    const again = await stack.app.inject({
      method: 'POST',
      url: '/v1/admin/operators',
      headers: bootstrap,
      payload: { name: bob.operator.name.toUpperCase() },
    });
    expect(again.json()).toMatchObject({ code: 'OPERATOR_NAME_TAKEN' });

    const revoked = await stack.app.inject({
      method: 'POST',
      url: `/v1/admin/operators/${bob.operator.id}/revoke`,
      headers: bootstrap,
    });
    expect(revoked.json()).toMatchObject({ id: bob.operator.id, revokedAt: expect.any(String) });
    const after = await stack.app.inject({ method: 'GET', url: '/v1/admin/operators', headers: asBob });
    expect(after.statusCode).toBe(401);
    expect(after.json()).toMatchObject({ code: 'OPERATOR_KEY_INVALID' });
  });

  it('refuses a forged key with a real prefix and a tenant token', async () => {
    const carol = await createOperator(uniqueName('carol'));
    const forged = `${carol.key.slice(0, 19)}${'A'.repeat(43)}`;
    const firm = await createTenant(stack.app, 'Not an operator');
    for (const headers of [{ authorization: `Bearer ${forged}` }, firm.auth, {}]) {
      const response = await stack.app.inject({ method: 'GET', url: '/v1/admin/operators', headers });
      expect(response.statusCode).toBe(401);
    }
  });
});

describe('countinghouse audit verify and operators', () => {
  it('reports an intact chain with exit 0 and a tampered one with exit 1, naming the event', async () => {
    const firm = await createTenant(stack.app, 'CLI audit');
    const intact = await run(['audit', 'verify', '--tenant', firm.id]);
    expect(intact.code, intact.stderr).toBe(0);
    expect(JSON.parse(intact.stdout)).toMatchObject({ ok: true });

    const tenantUuid = parseId('tenant', firm.id);
    const client = await stack.platform.ownerPool.connect();
    try {
      await client.query('begin');
      await client.query(`select set_config('app.tenant_id', $1, true)`, [tenantUuid]);
      await client.query('alter table audit_events disable trigger audit_events_append_only');
      await client.query(`update audit_events set summary = '{"tier": "enterprise"}' where tenant_id = $1`, [
        tenantUuid,
      ]);
      await client.query('alter table audit_events enable trigger audit_events_append_only');
      await client.query('commit');
    } finally {
      client.release();
    }
    const broken = await run(['audit', 'verify', '--tenant', firm.id]);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout)).toMatchObject({
      ok: false,
      brokenLink: { seq: 1, id: expect.stringMatching(/^aud_/), problem: 'altered' },
    });
    expect((await run(['audit', 'verify'])).code).toBe(2);
  });

  it('creates and lists operators', async () => {
    const name = uniqueName('dora');
    const created = await run(['operators', 'create', '--name', name]);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ operator: { name }, key: expect.stringMatching(/^chopk_/) });
    const listed = await run(['operators', 'list']);
    expect(JSON.parse(listed.stdout).items.map((item: { name: string }) => item.name)).toContain(name);
    expect((await run(['operators', 'create'])).code).toBe(2);
  });
});

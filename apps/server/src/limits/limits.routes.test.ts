import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenant,
  ManualClock,
  operatorKey,
  problemOf,
  startTestStack,
  type TestStack,
  type TestTenant,
} from '../../test/harness.ts';
import type { TenantContext } from '../platform/database/tenant-scope.ts';
import { parseId } from '../platform/ids.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';

/**
 * Usage plans, bulkheads and shedding over HTTP on the in-process store. The limiter's clock
 * is a ManualClock that moves only when a test says so, so the bucket is exact. Requests
 * are held in flight by holding the tenant's database connection slots from the test.
 * Each test makes its own tenants: what one tenant spends never shows at another.
 */
let stack: TestStack;
const clock = new ManualClock();
const operator = { authorization: `Bearer ${operatorKey}` };

beforeAll(async () => {
  stack = await startTestStack({ clock: clock.read, config: { requestsInFlightMax: 3 } });
});

afterAll(async () => {
  await stack?.close();
});

const list = (tenant: TestTenant) => stack.app.inject({ method: 'GET', url: '/v1/entities', headers: tenant.auth });

async function setPlan(tenant: TestTenant, overrides: object) {
  const response = await stack.app.inject({
    method: 'PUT',
    url: `/v1/tenants/${tenant.id}/plan`,
    headers: operator,
    payload: overrides,
  });
  expect(response.statusCode).toBe(200);
  return response;
}

function rateHeaders(response: { headers: Record<string, unknown> }) {
  return {
    limit: response.headers['ratelimit-limit'],
    remaining: response.headers['ratelimit-remaining'],
    reset: response.headers['ratelimit-reset'],
  };
}

async function contextOf(tenant: TestTenant): Promise<TenantContext> {
  const record = await stack.platform.tenancy.lookup(parseId('tenant', tenant.id) ?? '');
  if (!record) throw new Error('tenant not found');
  return tenantContextOf(record);
}

/** Holds one of the tenant's database connection slots until `release` is called. */
async function holdConnection(tenant: TestTenant): Promise<{ release: () => Promise<void> }> {
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let entered = () => {};
  const inside = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const done = stack.platform.scopes.run(await contextOf(tenant), async () => {
    entered();
    await held;
  });
  await inside;
  return {
    release: async () => {
      release();
      await done;
    },
  };
}

async function report() {
  const response = await stack.app.inject({ method: 'GET', url: '/v1/admin/limits', headers: operator });
  expect(response.statusCode).toBe(200);
  return response.json<{
    instance: { requestsInFlight: number; requestsInFlightMax: number };
    store: { kind: string; state: string };
    alerts: unknown[];
    tenants: Array<{
      tenantId: string;
      accepted: number;
      throttled: number;
      rateLimited: number;
      quotaExhausted: number;
      concurrencyLimited: number;
      connectionsBusy: number;
      shed: number;
      inFlight: number;
      jobs: unknown;
    }>;
  }>();
}

async function countsOf(tenant: TestTenant) {
  return (await report()).tenants.find((entry) => entry.tenantId === tenant.id);
}

async function waitUntil(condition: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('condition not reached');
}

describe('usage plan over HTTP', () => {
  it('puts the RateLimit headers on every tenant response, errors included', async () => {
    const firm = await createTenant(stack.app, 'Headers');
    const ok = await list(firm);
    expect(ok.statusCode).toBe(200);
    // starter: burst 40, 20/s; one read taken, full again in 50 ms → 1 s.
    expect(rateHeaders(ok)).toEqual({ limit: '40', remaining: '39', reset: '1' });
    const missing = await stack.app.inject({ method: 'GET', url: '/v1/entities/ent_0', headers: firm.auth });
    expect(missing.statusCode).toBe(404);
    expect(rateHeaders(missing)).toEqual({ limit: '40', remaining: '38', reset: '1' });
    const anonymous = await stack.app.inject({ method: 'GET', url: '/v1/entities' });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['ratelimit-limit']).toBeUndefined();
  });

  it('admits the burst, refuses with 429 RATE_LIMITED and Retry-After, then admits the rate', async () => {
    const firm = await createTenant(stack.app, 'Burst');
    await setPlan(firm, { usagePlan: { ratePerSecond: 1, burst: 3 } });
    for (let index = 0; index < 3; index += 1) expect((await list(firm)).statusCode).toBe(200);
    const refused = await list(firm);
    const problem = problemOf(refused);
    expect(problem.status).toBe(429);
    expect(problem.contentType).toContain('application/problem+json');
    expect(problem.body.code).toBe('RATE_LIMITED');
    expect(refused.headers['retry-after']).toBe('1');
    expect(rateHeaders(refused)).toEqual({ limit: '3', remaining: '0', reset: '3' });
    // The next one is answered from the penalty box, before the token is verified again: same answer.
    const again = await list(firm);
    const early = problemOf(again);
    expect(early.status).toBe(429);
    expect(early.contentType).toBe(problem.contentType);
    expect({ ...early.body, requestId: 'one' }).toEqual({ ...problem.body, requestId: 'one' });
    expect(early.body.requestId).toBe(again.headers['x-request-id']);
    expect(again.headers['retry-after']).toBe('1');
    expect(rateHeaders(again)).toEqual({ limit: '3', remaining: '0', reset: '3' });
    clock.advance(999);
    expect((await list(firm)).statusCode).toBe(429);
    clock.advance(1);
    expect((await list(firm)).statusCode).toBe(200);
    expect((await list(firm)).statusCode).toBe(429);
  });

  it('charges a route class its weight', async () => {
    const firm = await createTenant(stack.app, 'Weights');
    await setPlan(firm, { usagePlan: { ratePerSecond: 1, burst: 4, routeWeights: { write: 3 } } });
    const created = await stack.app.inject({
      method: 'POST',
      url: '/v1/entities',
      headers: firm.auth,
      payload: { name: 'Weighted LLC' },
    });
    expect(created.statusCode).toBe(201);
    expect(created.headers['ratelimit-remaining']).toBe('1');
    expect((await list(firm)).headers['ratelimit-remaining']).toBe('0');
    clock.advance(1_000);
    const again = await stack.app.inject({
      method: 'POST',
      url: '/v1/entities',
      headers: firm.auth,
      payload: { name: 'Refused LLC' },
    });
    expect(problemOf(again).body.code).toBe('RATE_LIMITED');
    expect(again.headers['retry-after']).toBe('2');
  });

  it('charges the ledger reports the report weight', async () => {
    const firm = await createTenant(stack.app, 'Report weight');
    await setPlan(firm, { usagePlan: { ratePerSecond: 1, burst: 20, routeWeights: { report: 5 } } });
    const created = await stack.app.inject({
      method: 'POST',
      url: '/v1/entities',
      headers: firm.auth,
      payload: { name: 'Reported LLC' },
    });
    expect(created.statusCode).toBe(201);
    const entityId = created.json<{ id: string }>().id;
    let remaining = Number(created.headers['ratelimit-remaining']);
    for (const report of [
      'trial-balance?asOf=2026-01-31',
      'income-statement?from=2026-01-01&to=2026-01-31',
      'balance-sheet?asOf=2026-01-31',
    ]) {
      const response = await stack.app.inject({
        method: 'GET',
        url: `/v1/entities/${entityId}/reports/${report}`,
        headers: firm.auth,
      });
      expect(response.statusCode, response.body).toBe(200);
      expect(Number(response.headers['ratelimit-remaining'])).toBe(remaining - 5);
      remaining -= 5;
    }
  });

  it('refuses with QUOTA_EXHAUSTED until the window rolls over', async () => {
    const firm = await createTenant(stack.app, 'Quota');
    await setPlan(firm, { usagePlan: { quota: { limit: 2, period: 'DAY', offsetDays: 0 } } });
    expect((await list(firm)).statusCode).toBe(200);
    const last = await list(firm);
    expect(rateHeaders(last).remaining).toBe('0');
    const refused = await list(firm);
    expect(problemOf(refused).body.code).toBe('QUOTA_EXHAUSTED');
    // Seconds until the next UTC midnight, when the DAY window rolls over.
    const expected = String(Math.ceil((86_400_000 - (clock.nowMs % 86_400_000)) / 1000));
    expect(refused.headers['retry-after']).toBe(expected);
    expect(rateHeaders(refused)).toEqual({ limit: '2', remaining: '0', reset: expected });
    const saved = clock.nowMs;
    clock.nowMs = saved - (saved % 86_400_000) + 86_400_000;
    expect((await list(firm)).statusCode).toBe(200);
    clock.nowMs = saved;
  });

  it("does not let one firm's exhausted limit touch another firm", async () => {
    const noisy = await createTenant(stack.app, 'Noisy');
    const quiet = await createTenant(stack.app, 'Quiet');
    await setPlan(noisy, { usagePlan: { ratePerSecond: 1, burst: 2 } });
    await list(noisy);
    await list(noisy);
    expect((await list(noisy)).statusCode).toBe(429);
    const calm = await list(quiet);
    expect(calm.statusCode).toBe(200);
    expect(rateHeaders(calm)).toEqual({ limit: '40', remaining: '39', reset: '1' });
  });

  it('counts accepted and throttled requests per tenant for the operator', async () => {
    const firm = await createTenant(stack.app, 'Counted');
    await setPlan(firm, { usagePlan: { ratePerSecond: 1, burst: 2 } });
    for (let index = 0; index < 5; index += 1) await list(firm);
    expect(await countsOf(firm)).toMatchObject({
      accepted: 2,
      rateLimited: 3,
      throttled: 3,
      quotaExhausted: 0,
      shed: 0,
      inFlight: 0,
      jobs: { queued: 0, running: 0 },
    });
    const full = await report();
    expect(full.store).toEqual({ kind: 'memory', state: 'healthy' });
    expect(full.alerts).toEqual([]);
  });
});

describe('plan overrides (operator)', () => {
  it('reads the tier plan, sets overrides and clears them', async () => {
    const firm = await createTenant(stack.app, 'Plan');
    const initial = await stack.app.inject({ method: 'GET', url: `/v1/tenants/${firm.id}/plan`, headers: operator });
    expect(initial.statusCode).toBe(200);
    expect(initial.json()).toMatchObject({
      tenantId: firm.id,
      tier: 'starter',
      overrides: {},
      effective: { usagePlan: { ratePerSecond: 20, burst: 40 }, limits: { inFlightRequestsMax: 8 } },
    });
    const set = await setPlan(firm, { usagePlan: { burst: 60 }, limits: { databaseConnectionsMax: 2 } });
    expect(set.json()).toMatchObject({
      overrides: { usagePlan: { burst: 60 }, limits: { databaseConnectionsMax: 2 } },
      effective: { usagePlan: { ratePerSecond: 20, burst: 60 }, limits: { databaseConnectionsMax: 2 } },
    });
    expect(rateHeaders(await list(firm)).limit).toBe('60');
    const cleared = await setPlan(firm, {});
    expect(cleared.json()).toMatchObject({ overrides: {}, effective: { usagePlan: { burst: 40 } } });
  });

  it('refuses overrides that break the plan or the schema, and writes nothing', async () => {
    const firm = await createTenant(stack.app, 'Bad Plan');
    const put = (payload: object) =>
      stack.app.inject({ method: 'PUT', url: `/v1/tenants/${firm.id}/plan`, headers: operator, payload });
    const broken = await put({ usagePlan: { ratePerSecond: 50, burst: 45 } });
    expect(problemOf(broken)).toMatchObject({ status: 400, body: { code: 'PLAN_OVERRIDES_INVALID' } });
    expect(broken.json<{ detail: string }>().detail).toContain('burst must be at least ratePerSecond');
    const weekly = await put({ usagePlan: { quota: { period: 'WEEK', offsetDays: 9 } } });
    expect(problemOf(weekly).body.code).toBe('PLAN_OVERRIDES_INVALID');
    for (const payload of [
      { usagePlan: { surprise: 1 } },
      { usagePlan: { burst: 0 } },
      { limits: { inFlightRequestsMax: 'many' } },
      { usagePlan: { routeWeights: { export: 2 } } },
    ]) {
      expect(problemOf(await put(payload)).body.code).toBe('REQUEST_VALIDATION_FAILED');
    }
    const after = await stack.app.inject({ method: 'GET', url: `/v1/tenants/${firm.id}/plan`, headers: operator });
    expect(after.json<{ overrides: object }>().overrides).toEqual({});
  });

  it('answers 404 for an unknown tenant and 401 without the operator key, even to a tenant', async () => {
    const firm = await createTenant(stack.app, 'Plan Security');
    const unknown = await stack.app.inject({
      method: 'PUT',
      url: '/v1/tenants/ten_0193aaaaaaaa7aaa8aaaaaaaaaaaaaaa/plan',
      headers: operator,
      payload: {},
    });
    expect(problemOf(unknown)).toMatchObject({ status: 404, body: { code: 'TENANT_NOT_FOUND' } });
    for (const headers of [{}, firm.auth]) {
      for (const [method, url] of [
        ['GET', `/v1/tenants/${firm.id}/plan`],
        ['PUT', `/v1/tenants/${firm.id}/plan`],
        ['GET', '/v1/admin/limits'],
      ] as const) {
        const response = await stack.app.inject({
          method,
          url,
          headers,
          payload: method === 'PUT' ? { usagePlan: { burst: 1000 } } : undefined,
        });
        expect(problemOf(response)).toMatchObject({ status: 401, body: { code: 'OPERATOR_KEY_INVALID' } });
      }
    }
    const plan = await stack.app.inject({ method: 'GET', url: `/v1/tenants/${firm.id}/plan`, headers: operator });
    expect(plan.json<{ overrides: object }>().overrides).toEqual({});
  });
});

describe('bulkheads', () => {
  it('applies the tier statement_timeout inside the tenant scope, and an override of it', async () => {
    const firm = await createTenant(stack.app, 'Timeout');
    const context = await contextOf(firm);
    const shown = await stack.platform.scopes.run(
      context,
      async (db) =>
        (await db.query<{ statement_timeout: string }>('show statement_timeout')).rows[0]?.statement_timeout,
    );
    expect(shown).toBe('5s');
    await setPlan(firm, { limits: { statementTimeoutMs: 50 } });
    await expect(stack.platform.scopes.run(context, (db) => db.query('select pg_sleep(2)'))).rejects.toMatchObject({
      code: '57014',
    });
    // The setting is transaction-local: a pooled connection never carries it to another scope.
    const other = await createTenant(stack.app, 'Timeout Other');
    const otherShown = await stack.platform.scopes.run(
      await contextOf(other),
      async (db) =>
        (await db.query<{ statement_timeout: string }>('show statement_timeout')).rows[0]?.statement_timeout,
    );
    expect(otherShown).toBe('5s');
  });

  it("caps the tenant's database connections: the next request waits, then gets 503 DATABASE_CONNECTIONS_BUSY", async () => {
    const firm = await createTenant(stack.app, 'Connections');
    const neighbour = await createTenant(stack.app, 'Connections Neighbour');
    await setPlan(firm, { limits: { databaseConnectionsMax: 1 } });
    const held = await holdConnection(firm);
    try {
      const busy = await list(firm);
      expect(problemOf(busy)).toMatchObject({ status: 503, body: { code: 'DATABASE_CONNECTIONS_BUSY' } });
      expect(busy.headers['retry-after']).toBe('1');
      expect((await list(neighbour)).statusCode).toBe(200);
      expect(await countsOf(firm)).toMatchObject({ connectionsBusy: 1 });
    } finally {
      await held.release();
    }
    expect((await list(firm)).statusCode).toBe(200);
  });

  it("caps the tenant's requests in flight with 429 TENANT_CONCURRENCY_LIMITED; a waiting request then completes", async () => {
    const firm = await createTenant(stack.app, 'In Flight');
    const neighbour = await createTenant(stack.app, 'In Flight Neighbour');
    await setPlan(firm, { limits: { inFlightRequestsMax: 1, databaseConnectionsMax: 1 } });
    const held = await holdConnection(firm);
    let waiting: ReturnType<typeof list> | undefined;
    try {
      waiting = list(firm);
      await waitUntil(async () => (await countsOf(firm))?.inFlight === 1);
      const refused = await list(firm);
      expect(problemOf(refused)).toMatchObject({ status: 429, body: { code: 'TENANT_CONCURRENCY_LIMITED' } });
      expect(refused.headers['retry-after']).toBe('1');
      expect(rateHeaders(refused).limit).toBe('40');
      expect((await list(neighbour)).statusCode).toBe(200);
    } finally {
      await held.release();
    }
    expect((await waiting)?.statusCode).toBe(200);
    expect(await countsOf(firm)).toMatchObject({ accepted: 1, concurrencyLimited: 1, inFlight: 0 });
  });
});

describe('load shedding', () => {
  it('sheds with 503 SERVICE_OVERLOADED and Retry-After once the instance budget is in flight', async () => {
    // The stack's budget is 3 requests in flight; a firm holding its only connection keeps three waiting.
    const firm = await createTenant(stack.app, 'Overload');
    const other = await createTenant(stack.app, 'Overload Other');
    await setPlan(firm, { limits: { databaseConnectionsMax: 1 } });
    const held = await holdConnection(firm);
    const waiting: Array<ReturnType<typeof list>> = [];
    try {
      for (let index = 0; index < 3; index += 1) waiting.push(list(firm));
      await waitUntil(async () => (await countsOf(firm))?.inFlight === 3);
      const shed = await list(other);
      expect(problemOf(shed)).toMatchObject({ status: 503, body: { code: 'SERVICE_OVERLOADED' } });
      expect(shed.headers['retry-after']).toBe('1');
      expect(rateHeaders(shed)).toEqual({ limit: '40', remaining: '40', reset: '0' });
      expect(await countsOf(other)).toMatchObject({ shed: 1, accepted: 0 });
      const probe = await stack.app.inject({ method: 'GET', url: '/healthz' });
      expect(probe.statusCode).toBe(200);
    } finally {
      await held.release();
    }
    for (const response of await Promise.all(waiting)) expect(response.statusCode).toBe(200);
    expect((await list(other)).statusCode).toBe(200);
  });
});

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTenant, operatorKey, startTestStack, type TestStack, type TestTenant } from '../../test/harness.ts';
import { newUuid, parseId } from '../platform/ids.ts';

/**
 * Metering over HTTP: tenant requests become usage events (requests, database time), the
 * storage sampler measures each firm from the database, the operator reads any firm's
 * series (JSON or CSV) and /metrics, a firm reads only its own usage, and tenant tokens are
 * refused on every operator route.
 */
let stack: TestStack;
let firmA: TestTenant;
let firmB: TestTenant;
const operator = { authorization: `Bearer ${operatorKey}` };

beforeAll(async () => {
  stack = await startTestStack();
  firmA = await createTenant(stack.app, 'Metered A');
  firmB = await createTenant(stack.app, 'Metered B');
});

afterAll(async () => {
  await stack?.close();
});

function today() {
  const from = new Date();
  from.setUTCHours(0, 0, 0, 0);
  return { from: from.toISOString(), to: new Date(from.getTime() + 86_400_000).toISOString() };
}

interface UsageBody {
  tenantId: string;
  series: Array<{
    metric: string;
    kind: string;
    points: Array<{ bucketStart: string; value: number; events: number }>;
  }>;
}

async function usageOf(tenant: TestTenant, granularity = 'day'): Promise<UsageBody> {
  const { from, to } = today();
  const response = await stack.app.inject({
    method: 'GET',
    url: `/v1/admin/tenants/${tenant.id}/usage?from=${from}&to=${to}&granularity=${granularity}`,
    headers: operator,
  });
  expect(response.statusCode).toBe(200);
  return response.json<UsageBody>();
}

const totalOf = (body: UsageBody, metric: string) =>
  body.series.find((series) => series.metric === metric)?.points.reduce((sum, point) => sum + point.value, 0) ?? 0;

describe('request metering', () => {
  it('records each authenticated request with database time, readable by the operator', async () => {
    const firm = await createTenant(stack.app, 'Metered Requests');
    for (let index = 0; index < 3; index++) {
      const response = await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: firm.auth });
      expect(response.statusCode).toBe(200);
    }
    // onResponse runs as the response finishes; poll until the three events are flushed.
    await vi.waitFor(
      async () => {
        await stack.platform.metering.recorder.flush();
        expect(totalOf(await usageOf(firm), 'requests')).toBe(3);
      },
      { timeout: 5_000, interval: 50 },
    );
    const usage = await usageOf(firm, 'hour');
    expect(usage.tenantId).toBe(firm.id);
    expect(totalOf(usage, 'database_us')).toBeGreaterThan(0);
    // The tenant's rows in the raw table carry the route class and status.
    const tenantUuid = parseId('tenant', firm.id);
    const { rows } = await stack.platform.ownerPool.query<{ properties: Record<string, unknown> }>(
      `select properties from usage_events where tenant = $1 and metric = 'requests'`,
      [tenantUuid],
    );
    expect(rows.map((row) => row.properties)).toEqual(
      Array(3).fill(expect.objectContaining({ routeClass: 'read', status: 200, durationUs: expect.any(Number) })),
    );
  });

  it('measures storage, users and entities from the database', async () => {
    const firm = await createTenant(stack.app, 'Metered Storage');
    for (const name of ['North LLC', 'South LLC']) {
      const created = await stack.app.inject({
        method: 'POST',
        url: '/v1/entities',
        headers: firm.auth,
        payload: { name },
      });
      expect(created.statusCode).toBe(201);
    }
    const samples = await stack.platform.metering.sampler.sampleAll();
    const sample = samples.find((candidate) => candidate.tenantId === parseId('tenant', firm.id));
    expect(sample).toMatchObject({ users: 1, entities: 2 });
    const emptier = samples.find((candidate) => candidate.tenantId === parseId('tenant', firmB.id));
    expect(emptier?.entities).toBe(0);
    expect(sample?.storageBytes).toBeGreaterThan(emptier?.storageBytes ?? Number.MAX_SAFE_INTEGER);
    await stack.platform.metering.recorder.flush();
    const usage = await usageOf(firm);
    expect(totalOf(usage, 'entities')).toBe(2);
    expect(totalOf(usage, 'users')).toBe(1);
    expect(totalOf(usage, 'storage_bytes')).toBe(sample?.storageBytes);
  });
});

describe('usage API', () => {
  it('exports the series as CSV', async () => {
    stack.platform.metering.recordUsage({
      tenantId: parseId('tenant', firmA.id) ?? '',
      tier: 'starter',
      metric: 'job_us',
      quantity: 1234,
    });
    await stack.platform.metering.recorder.flush();
    const { from, to } = today();
    const response = await stack.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${firmA.id}/usage?from=${from}&to=${to}&granularity=day&format=csv`,
      headers: operator,
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/csv/);
    const lines = response.body.trim().split('\r\n');
    expect(lines[0]).toBe('tenant_id,metric,unit,granularity,bucket_start,value,events');
    expect(lines).toContain(`${firmA.id},job_us,microseconds,day,${from},1234,1`);
  });

  it.each([
    ['to before from', 'from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z&granularity=day', 'METERING_RANGE_INVALID'],
    ['too many hours', 'from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&granularity=hour', 'METERING_RANGE_INVALID'],
    [
      'a bad granularity',
      'from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z&granularity=week',
      'REQUEST_VALIDATION_FAILED',
    ],
    ['a missing from', 'to=2026-10-02T00:00:00Z', 'REQUEST_VALIDATION_FAILED'],
    ['an unknown parameter', 'from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z&tenant=x', 'REQUEST_VALIDATION_FAILED'],
  ])('answers 400 for %s', async (_title, query, code) => {
    const response = await stack.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${firmA.id}/usage?${query}`,
      headers: operator,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code });
  });

  it('answers 404 for a tenant that does not exist', async () => {
    const { from, to } = today();
    for (const id of [`ten_${newUuid().replaceAll('-', '')}`, 'nope']) {
      const response = await stack.app.inject({
        method: 'GET',
        url: `/v1/admin/tenants/${id}/usage?from=${from}&to=${to}`,
        headers: operator,
      });
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ code: 'TENANT_NOT_FOUND' });
    }
  });

  it('shows a firm its own usage only', async () => {
    const { from, to } = today();
    await stack.app.inject({ method: 'GET', url: '/v1/entities', headers: firmB.auth });
    await vi.waitFor(
      async () => {
        await stack.platform.metering.recorder.flush();
        const own = await stack.app.inject({
          method: 'GET',
          url: `/v1/usage?from=${from}&to=${to}`,
          headers: firmB.auth,
        });
        expect(own.statusCode).toBe(200);
        expect(own.json<UsageBody>().tenantId).toBe(firmB.id);
        expect(totalOf(own.json<UsageBody>(), 'requests')).toBeGreaterThan(0);
      },
      { timeout: 5_000, interval: 50 },
    );
    // There is no way to name another firm: the tenant comes from the token.
    const named = await stack.app.inject({
      method: 'GET',
      url: `/v1/usage?from=${from}&to=${to}&tenantId=${firmA.id}`,
      headers: firmB.auth,
    });
    expect(named.statusCode).toBe(400);
    const aSeries = await stack.app.inject({
      method: 'GET',
      url: `/v1/usage?from=${from}&to=${to}`,
      headers: firmA.auth,
    });
    expect(aSeries.json<UsageBody>().tenantId).toBe(firmA.id);
    expect(totalOf(aSeries.json<UsageBody>(), 'job_us')).toBe(totalOf(await usageOf(firmA), 'job_us'));
  });
});

describe('operator-only routes', () => {
  const { from, to } = today();
  const routes = [
    '/metrics',
    '/v1/admin/alerts',
    `/v1/admin/tenants/TENANT/usage?from=${from}&to=${to}`,
    '/v1/admin/costs?month=2026-10',
    '/v1/admin/invoices?month=2026-10',
    '/v1/admin/tenants/TENANT/invoices/2026-10',
    '/v1/admin/margins?month=2026-10',
    '/v1/admin/plan-fit?month=2026-10',
  ];
  it.each(routes)('refuses a tenant token and no credentials on GET %s', async (route) => {
    const url = route.replace('TENANT', firmA.id);
    for (const headers of [firmA.auth, {}]) {
      const response = await stack.app.inject({ method: 'GET', url, headers });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ code: 'OPERATOR_KEY_INVALID' });
    }
  });

  it('refuses a tenant token on the CUR import', async () => {
    const response = await stack.app.inject({
      method: 'POST',
      url: '/v1/admin/cost-imports',
      headers: { ...firmA.auth, 'content-type': 'text/csv' },
      payload:
        'lineItem/UsageStartDate,lineItem/ProductCode,lineItem/UnblendedCost\n2026-10-01T00:00:00Z,AmazonEC2,1\n',
    });
    expect(response.statusCode).toBe(401);
  });

  it('refuses the operator key on the tenant usage route', async () => {
    const response = await stack.app.inject({
      method: 'GET',
      url: `/v1/usage?from=${from}&to=${to}`,
      headers: operator,
    });
    expect(response.statusCode).toBe(401);
  });
});

describe('GET /metrics', () => {
  it('serves Prometheus text with tier and per-tenant series and recorder health', async () => {
    const response = await stack.app.inject({ method: 'GET', url: '/metrics', headers: operator });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.body).toMatch(/countinghouse_tier_usage\{metric="requests",tier="starter"\} \d+/);
    expect(response.body).toMatch(/countinghouse_tenant_usage\{metric="requests",tenant="ten_[0-9a-f]{32}"\} \d+/);
    expect(response.body).toContain('countinghouse_usage_dropped_events 0');
    expect(response.body).toMatch(
      /countinghouse_http_request_duration_seconds_bucket\{tier="starter",route_class="read",status_class="2xx",le="0.005"\}/,
    );
  });

  it('lists noisy-neighbour alerts for the operator', async () => {
    const response = await stack.app.inject({ method: 'GET', url: '/v1/admin/alerts', headers: operator });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ items: expect.any(Array) });
  });
});

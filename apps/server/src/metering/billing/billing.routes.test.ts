import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operatorKey, startTestStack, type TestStack } from '../../../test/harness.ts';
import { formatId } from '../../platform/ids.ts';
import type { MetricCode } from '../metering.types.ts';
import { sampleCurFile, sampleTenants } from './cur-import.test.ts';

/**
 * Cost-to-serve, the CUR import, invoices, margin and plan fit over the operator API, on
 * fixed firms (the ids tagged in the sample CUR; C is a silo) and fixed usage recorded with
 * deterministic event ids, so every figure below was computed by hand and a re-run on a
 * kept database changes nothing. October 2026 uses the sample CUR; September 2026 the cost
 * model. The expected cents follow docs/metering-and-billing.md: each pool rounded half-even,
 * shares by largest remainder.
 */
let stack: TestStack;
const operator = { authorization: `Bearer ${operatorKey}` };
const { a, b, c } = sampleTenants;

/** A uuid derived from a name, so recording the same fixture twice is idempotent. */
function fixedUuid(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function record(tenantId: string, metric: MetricCode, quantity: number, at: string, key: string) {
  stack.platform.metering.recordUsage({
    id: fixedUuid(`billing-fixture:${tenantId}:${metric}:${at}:${key}`),
    tenantId,
    tier: 'starter',
    metric,
    quantity,
    occurredAt: new Date(at),
  });
}

beforeAll(async () => {
  stack = await startTestStack();
  const firms: Array<[string, string, string]> = [
    [a, 'CUR Sample Firm A', 'pool'],
    [b, 'CUR Sample Firm B', 'pool'],
    [c, 'CUR Sample Firm C', 'silo'],
  ];
  for (const [id, name, model] of firms) {
    await stack.platform.ownerPool.query(
      `insert into tenants (id, name, tier, status, placement_model, placement_cluster, placement_database, created_at)
       values ($1, $2, 'starter', 'active', $3, $4, $4, '2026-01-01Z') on conflict do nothing`,
      [id, name, model, model === 'silo' ? 'silo-c' : 'shared'],
    );
  }
  // October 2026 (priced against the sample CUR).
  record(a, 'requests', 250_000, '2026-10-05T10:00:00Z', '1');
  record(b, 'requests', 1_000, '2026-10-05T10:00:00Z', '1');
  record(c, 'requests', 500, '2026-10-05T10:00:00Z', '1');
  record(a, 'compute_us', 1_000_000_000, '2026-10-06T10:00:00Z', '1');
  record(b, 'compute_us', 16_000_000_000, '2026-10-06T10:00:00Z', '1');
  record(c, 'compute_us', 1_000_000_000, '2026-10-06T10:00:00Z', '1');
  record(a, 'database_us', 1_000_000_000, '2026-10-07T10:00:00Z', '1');
  record(b, 'database_us', 19_000_000_000, '2026-10-07T10:00:00Z', '1');
  record(c, 'database_us', 4_000_000_000, '2026-10-07T10:00:00Z', '1');
  for (let day = 1; day <= 31; day++) {
    const at = `2026-10-${String(day).padStart(2, '0')}T03:00:00Z`;
    record(a, 'storage_bytes', 5_000_000_000, at, 'morning');
    record(a, 'storage_bytes', 4_000_000_000, at.replace('T03', 'T15'), 'afternoon'); // the day's peak counts
  }
  // September 2026 (the cost model): only B works, and works the database hard.
  record(b, 'database_us', 10_000_000_000, '2026-09-10T10:00:00Z', '1');
  record(b, 'compute_us', 5_000_000_000, '2026-09-10T10:00:00Z', '1');
  record(b, 'requests', 2_000, '2026-09-10T10:00:00Z', '1');
  await stack.platform.metering.recorder.flush();
});

afterAll(async () => {
  await stack?.close();
});

interface CostBody {
  source: string;
  currency: string;
  totalMinor: number;
  attributedMinor: number;
  unattributedMinor: number;
  notes: string[];
  pools: Array<{ name: string; totalMinor: number; attributedMinor: number; unattributedMinor: number }>;
  tenants: Array<{ tenantId: string; totalMinor: number; lines: Array<{ pool: string; amountMinor: number }> }>;
}

const tenantTotal = (body: CostBody, id: string) =>
  body.tenants.find((tenant) => tenant.tenantId === formatId('tenant', id))?.totalMinor;

async function importSample() {
  return await stack.app.inject({
    method: 'POST',
    url: '/v1/admin/cost-imports?fileName=cur-2026-10-sample.csv',
    headers: { ...operator, 'content-type': 'text/csv' },
    payload: fs.readFileSync(sampleCurFile, 'utf8'),
  });
}

describe('AWS CUR import', () => {
  it('attributes tagged cost directly and apportions shared cost by consumption, to the cent', async () => {
    const first = await importSample();
    expect([200, 201]).toContain(first.statusCode); // 200 when a kept database has it already
    const body = first.json<{ month: string; lineCount: number; unreadableTags: string[]; report: CostBody }>();
    expect(body).toMatchObject({ month: '2026-10', lineCount: 49, unreadableTags: ['legacy-client'] });
    const report = body.report;
    expect(report.source).toBe('cur-import');
    expect(report.totalMinor).toBe(13_929);
    expect(report.unattributedMinor).toBe(0);
    expect(report.attributedMinor).toBe(13_929);
    expect(tenantTotal(report, a)).toBe(852);
    expect(tenantTotal(report, b)).toBe(8_834);
    expect(tenantTotal(report, c)).toBe(4_243);
    const lines = (id: string) => report.tenants.find((tenant) => tenant.tenantId === formatId('tenant', id))?.lines;
    expect(lines(c)).toEqual([
      { pool: 'aws:AmazonRDS:tagged', kind: 'tagged', amountMinor: 4_032 },
      { pool: 'aws:AmazonEC2:shared', kind: 'shared', amountMinor: 211 },
    ]);
    expect(report.pools.find((pool) => pool.name === 'aws:AmazonRDS:shared')).toMatchObject({ totalMinor: 5_736 });
    expect(report.notes).toEqual(
      expect.arrayContaining([
        expect.stringContaining('unknown tenant 0195a3c0-0000-7000-8000-00000000ffff'),
        expect.stringContaining('differs from the file total rounded once by 1 minor unit'),
      ]),
    );
  });

  it('imports the same file once', async () => {
    const again = await importSample();
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ created: false });
    const { rows } = await stack.platform.ownerPool.query(
      `select count(*)::int as count from cost_imports where month = '2026-10-01'`,
    );
    expect(rows[0]).toEqual({ count: 1 });
  });

  it.each([
    ['not a CUR', 'hello,world\n1,2\n', 'COST_IMPORT_INVALID'],
    [
      'two months',
      'lineItem/UsageStartDate,lineItem/ProductCode,lineItem/UnblendedCost\n2026-01-01T00:00:00Z,AmazonEC2,1\n2026-02-01T00:00:00Z,AmazonEC2,1\n',
      'COST_IMPORT_MIXED_MONTHS',
    ],
    [
      'another currency',
      'lineItem/UsageStartDate,lineItem/ProductCode,lineItem/UnblendedCost,lineItem/CurrencyCode\n2026-01-01T00:00:00Z,AmazonEC2,1,EUR\n',
      'COST_IMPORT_INVALID',
    ],
  ])('refuses %s and stores nothing', async (_title, payload, code) => {
    const before = await stack.platform.ownerPool.query<{ count: number }>(
      'select count(*)::int as count from cost_imports',
    );
    const response = await stack.app.inject({
      method: 'POST',
      url: '/v1/admin/cost-imports',
      headers: { ...operator, 'content-type': 'text/csv' },
      payload,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code });
    const after = await stack.platform.ownerPool.query<{ count: number }>(
      'select count(*)::int as count from cost_imports',
    );
    expect(after.rows[0]?.count).toBe(before.rows[0]?.count);
  });

  it('exports the cost report as CSV whose rows add up to the total', async () => {
    await importSample();
    const response = await stack.app.inject({
      method: 'GET',
      url: '/v1/admin/costs?month=2026-10&format=csv',
      headers: operator,
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/csv/);
    const rows = response.body
      .trim()
      .split('\r\n')
      .map((line) => line.split(','));
    expect(rows[0]).toEqual([
      'month',
      'tenant_id',
      'tenant_name',
      'tier',
      'placement',
      'pool',
      'kind',
      'amount_minor_USD',
    ]);
    const total = rows.find((row) => row[2] === '(total)');
    const lineSum = rows
      .slice(1)
      .filter((row) => row[2] !== '(total)')
      .reduce((sum, row) => sum + Number(row[7]), 0);
    expect(Number(total?.[7])).toBe(13_929);
    expect(lineSum).toBe(13_929);
  });
});

describe('the cost model month', () => {
  it('apportions shared pools by consumption and charges the silo its dedicated resources', async () => {
    const response = await stack.app.inject({ method: 'GET', url: '/v1/admin/costs?month=2026-09', headers: operator });
    expect(response.statusCode).toBe(200);
    const report = response.json<CostBody>();
    expect(report.source).toBe('cost-model');
    // B alone consumed: 40 (database seconds) + 7 (compute seconds) + 0 (2,000 requests = 0.2 cents) + 36,500 + 14,600 + 5,000.
    expect(tenantTotal(report, b)).toBe(56_147);
    expect(tenantTotal(report, c)).toBe(9_000 + 26_000);
    expect(report.attributedMinor + report.unattributedMinor).toBe(report.totalMinor);
    for (const pool of report.pools) expect(pool.attributedMinor + pool.unattributedMinor).toBe(pool.totalMinor);
  });
});

describe('invoices, margin and plan fit', () => {
  it('invoices usage above the included quantities from the tier prices', async () => {
    const response = await stack.app.inject({
      method: 'GET',
      url: `/v1/admin/tenants/${formatId('tenant', a)}/invoices/2026-10`,
      headers: operator,
    });
    expect(response.statusCode).toBe(200);
    const invoice = response.json<{
      totalMinor: number;
      lines: Array<{ code: string; quantity: string; amountMinor: number }>;
    }>();
    // 150,000 requests over at 200 µ$ = $30.00; 5 GB-months (daily peak) − 2 included = 3 × $0.25.
    expect(invoice.lines.map((line) => [line.code, line.quantity, line.amountMinor])).toEqual([
      ['base_fee', '1', 9_900],
      ['requests', '250000', 3_000],
      ['storage_gb_months', '5', 75],
    ]);
    expect(invoice.totalMinor).toBe(12_975);
  });

  it('reproduces the invoice from the raw events: same usage from a rebuilt rollup gives the same hash', async () => {
    const url = `/v1/admin/tenants/${formatId('tenant', a)}/invoices/2026-10`;
    const first = (await stack.app.inject({ method: 'GET', url, headers: operator })).json<{ contentHash: string }>();
    const raw = await stack.platform.usageStore.rawSums(a, new Date('2026-10-01Z'), new Date('2026-11-01Z'));
    expect(raw.get('requests')).toBe(250_000n);
    // Re-sending every fixture event changes nothing: ids make them duplicates.
    record(a, 'requests', 250_000, '2026-10-05T10:00:00Z', '1');
    await stack.platform.metering.recorder.flush();
    const second = (await stack.app.inject({ method: 'GET', url, headers: operator })).json<{ contentHash: string }>();
    expect(second.contentHash).toBe(first.contentHash);
  });

  it('lists invoices of every firm, as JSON and CSV', async () => {
    const json = await stack.app.inject({ method: 'GET', url: '/v1/admin/invoices?month=2026-10', headers: operator });
    const items = json.json<{ items: Array<{ tenantId: string; totalMinor: number }> }>().items;
    expect(items.find((item) => item.tenantId === formatId('tenant', c))?.totalMinor).toBe(9_900);
    const csv = await stack.app.inject({
      method: 'GET',
      url: '/v1/admin/invoices?month=2026-10&format=csv',
      headers: operator,
    });
    expect(csv.body).toContain(
      `,${formatId('tenant', a)},CUR Sample Firm A,starter,USD,requests,250000,100000,3000,12975`,
    );
  });

  it('computes margin as revenue minus cost-to-serve', async () => {
    const response = await stack.app.inject({
      method: 'GET',
      url: '/v1/admin/margins?month=2026-10',
      headers: operator,
    });
    const items = response.json<{
      items: Array<{ tenantId: string; revenueMinor: number; costMinor: number; marginMinor: number }>;
    }>().items;
    const of = (id: string) => items.find((item) => item.tenantId === formatId('tenant', id));
    expect(of(a)).toMatchObject({ revenueMinor: 12_975, costMinor: 852, marginMinor: 12_123 });
    expect(of(b)).toMatchObject({ revenueMinor: 9_900, costMinor: 8_834, marginMinor: 1_066 });
    const csv = await stack.app.inject({
      method: 'GET',
      url: '/v1/admin/margins?month=2026-10&format=csv',
      headers: operator,
    });
    expect(csv.body).toContain(`2026-10,${formatId('tenant', b)},CUR Sample Firm B,starter,9900,8834,1066`);
  });

  it('names firms that cost more than they pay in the plan-fit report', async () => {
    const response = await stack.app.inject({
      method: 'GET',
      url: '/v1/admin/plan-fit?month=2026-09',
      headers: operator,
    });
    expect(response.statusCode).toBe(200);
    const items = response.json<{ items: Array<{ tenantId: string; fit: string; costMinor: number }> }>().items;
    const of = (id: string) => items.find((item) => item.tenantId === formatId('tenant', id));
    // The shipped catalogue's higher tiers: B's cost is covered only by enterprise's base fee, C's by professional's.
    expect(of(b)).toMatchObject({ fit: 'move_up', recommendedTier: 'enterprise', costMinor: 56_147 });
    expect(of(c)).toMatchObject({ fit: 'move_up', recommendedTier: 'professional', costMinor: 35_000 });
    expect(of(a)).toMatchObject({ fit: 'ok' });
  });

  it.each([
    ['/v1/admin/invoices?month=2026-13', 400, 'REQUEST_VALIDATION_FAILED'],
    [`/v1/admin/tenants/${formatId('tenant', a)}/invoices/October`, 400, 'METERING_MONTH_INVALID'],
    ['/v1/admin/tenants/ten_00000000000000000000000000000000/invoices/2026-10', 404, 'TENANT_NOT_FOUND'],
    ['/v1/admin/tenants/nope/invoices/2026-10', 404, 'TENANT_NOT_FOUND'],
    ['/v1/admin/costs', 400, 'REQUEST_VALIDATION_FAILED'],
  ])('answers GET %s with %i %s', async (url, status, code) => {
    const response = await stack.app.inject({ method: 'GET', url, headers: operator });
    expect(response.statusCode).toBe(status);
    expect(response.json()).toMatchObject({ code });
  });
});

describe('issuing a month', () => {
  // A firm of its own that joined in 2019, so issuing March 2019 touches no other test's data.
  const firm = fixedUuid(`issue-firm:${Date.now()}:${Math.random()}`);
  // A second firm of that time, with late usage of its own (the cross-tenant check).
  const neighbour = fixedUuid(`issue-neighbour:${Date.now()}:${Math.random()}`);
  const invoiceUrl = `/v1/admin/tenants/${formatId('tenant', firm)}/invoices/2019-03`;
  const issue = (month: string) =>
    stack.app.inject({ method: 'POST', url: '/v1/admin/invoices/issue', headers: operator, payload: { month } });

  beforeAll(async () => {
    await stack.platform.ownerPool.query(
      `insert into tenants (id, name, tier, status, placement_model, placement_cluster, placement_database, created_at)
       values ($1, $2, 'starter', 'active', 'pool', 'shared', 'shared', '2019-01-01Z'),
              ($3, $4, 'starter', 'active', 'pool', 'shared', 'shared', '2019-01-01Z')`,
      [firm, `Issue Firm ${firm}`, neighbour, `Issue Neighbour ${neighbour}`],
    );
    // 150,000 requests: 50,000 above the 100,000 included, at 200 µ$ each = $10.00.
    record(firm, 'requests', 150_000, '2019-03-10T10:00:00Z', '1');
    record(neighbour, 'requests', 100_000, '2019-03-10T10:00:00Z', '1');
    await stack.platform.metering.recorder.flush();
  });

  it('freezes the invoice: late usage changes the draft it was issued from, never the issued invoice', async () => {
    const draft = await stack.app.inject({ method: 'GET', url: invoiceUrl, headers: operator });
    expect(draft.json()).toMatchObject({ status: 'draft', issuedAt: null, totalMinor: 9_900 + 1_000 });

    const issued = await issue('2019-03');
    expect(issued.statusCode).toBe(200);
    const body = issued.json<{ newlyIssued: number; items: Array<{ tenantId: string; status: string }> }>();
    expect(body.newlyIssued).toBeGreaterThanOrEqual(1);
    expect(body.items.find((item) => item.tenantId === formatId('tenant', firm))?.status).toBe('issued');

    record(firm, 'requests', 10_000, '2019-03-20T10:00:00Z', 'late');
    await stack.platform.metering.recorder.flush();
    const after = (await stack.app.inject({ method: 'GET', url: invoiceUrl, headers: operator })).json<{
      status: string;
      totalMinor: number;
      contentHash: string;
      usageChangedSinceIssue: boolean;
    }>();
    expect(after).toMatchObject({ status: 'issued', totalMinor: 10_900, usageChangedSinceIssue: true });
    expect(after.contentHash).toBe(draft.json<{ contentHash: string }>().contentHash);

    // Issuing again adds nothing for this firm and changes nothing.
    const again = await issue('2019-03');
    expect(again.statusCode).toBe(200);
    expect(again.json<{ items: Array<{ tenantId: string; totalMinor: number }> }>().items).toContainEqual(
      expect.objectContaining({ tenantId: formatId('tenant', firm), totalMinor: 10_900 }),
    );
  });

  it('bills late usage once, as an adjustment on the next issued invoice, to its own firm only', async () => {
    // After the test above: March issued at $109.00 and 10,000 late requests (= $2.00) since.
    await issue('2019-03');
    record(neighbour, 'requests', 20_000, '2019-03-25T10:00:00Z', 'late');
    await stack.platform.metering.recorder.flush();
    const invoiceOf = async (tenantId: string, month: string) =>
      (
        await stack.app.inject({
          method: 'GET',
          url: `/v1/admin/tenants/${formatId('tenant', tenantId)}/invoices/${month}`,
          headers: operator,
        })
      ).json<{
        status: string;
        totalMinor: number;
        usageChangedSinceIssue: boolean | null;
        lines: Array<{ code: string; amountMinor: number }>;
      }>();
    const lateLines = (invoice: { lines: Array<{ code: string; amountMinor: number }> }) =>
      invoice.lines.filter((line) => line.code.startsWith('late_usage:'));

    const april = await issue('2019-04');
    expect(april.statusCode).toBe(200);
    const aprilOf = (tenantId: string) =>
      april
        .json<{
          items: Array<{ tenantId: string; totalMinor: number; lines: Array<{ code: string; amountMinor: number }> }>;
        }>()
        .items.find((item) => item.tenantId === formatId('tenant', tenantId));
    expect(lateLines(aprilOf(firm) ?? { lines: [] })).toEqual([
      expect.objectContaining({ code: 'late_usage:2019-03', amountMinor: 200 }),
    ]);
    expect(aprilOf(firm)?.totalMinor).toBe(9_900 + 200);
    // The neighbour's 20,000 late requests (all within its included 100,000 until now: $4.00) are its own.
    expect(lateLines(aprilOf(neighbour) ?? { lines: [] })).toEqual([
      expect.objectContaining({ code: 'late_usage:2019-03', amountMinor: 400 }),
    ]);

    // Reissuing April, and replaying the late events (same ids), bill nothing again.
    record(firm, 'requests', 10_000, '2019-03-20T10:00:00Z', 'late');
    await stack.platform.metering.recorder.flush();
    const again = await issue('2019-04');
    expect(again.json<{ newlyIssued: Array<{ tenantId: string }> }>().newlyIssued).not.toContainEqual(
      expect.objectContaining({ tenantId: formatId('tenant', firm) }),
    );
    expect(await invoiceOf(firm, '2019-04')).toMatchObject({
      status: 'issued',
      totalMinor: 10_100,
      usageChangedSinceIssue: false,
    });
    const may = await invoiceOf(firm, '2019-05');
    expect(may).toMatchObject({ status: 'draft', totalMinor: 9_900 });
    expect(lateLines(may)).toEqual([]);

    // Usage arriving after April was issued goes on May, only the new part: 5,000 requests = $1.00.
    record(firm, 'requests', 5_000, '2019-03-28T10:00:00Z', 'later');
    await stack.platform.metering.recorder.flush();
    const mayAfter = await invoiceOf(firm, '2019-05');
    expect(lateLines(mayAfter)).toEqual([expect.objectContaining({ code: 'late_usage:2019-03', amountMinor: 100 })]);
    expect(mayAfter.totalMinor).toBe(10_000);
    expect(lateLines(await invoiceOf(neighbour, '2019-05'))).toEqual([]);
    // March itself is still what was issued.
    expect(await invoiceOf(firm, '2019-03')).toMatchObject({ status: 'issued', totalMinor: 10_900 });
  });

  it('refuses to change or delete an issued invoice, even for the owner role', async () => {
    await issue('2019-03');
    await expect(
      stack.platform.ownerPool.query('update issued_invoices set total_minor = 0 where tenant = $1', [firm]),
    ).rejects.toThrow(/immutable/);
    await expect(
      stack.platform.ownerPool.query('delete from issued_invoices where tenant = $1', [firm]),
    ).rejects.toThrow(/immutable/);
  });

  it('refuses a month that has not ended, and a malformed month, writing nothing', async () => {
    const now = new Date();
    const current = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    const open = await issue(current);
    expect(open.statusCode).toBe(409);
    expect(open.json()).toMatchObject({ code: 'METERING_MONTH_OPEN' });
    const { rows } = await stack.platform.ownerPool.query(
      "select 1 from issued_invoices where month = ($1 || '-01')::date",
      [current],
    );
    expect(rows).toEqual([]);
    expect((await issue('2019-13')).statusCode).toBe(400);
    const needsOperator = await stack.app.inject({ method: 'POST', url: '/v1/admin/invoices/issue', payload: {} });
    expect(needsOperator.statusCode).toBe(401);
  });
});

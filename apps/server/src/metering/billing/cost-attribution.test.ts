import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type MonthUsage, zeroUsage } from './billing.types.ts';
import { buildCostReport, type CostedTenant, modelPools } from './cost-attribution.ts';
import { loadCostModel } from './cost-model.ts';
import { monthOf } from './pricing.ts';

/**
 * Cost-to-serve from the shipped cost model: dedicated costs land on their bridge or silo
 * tenant directly, shared pools are apportioned by measured consumption, and — checked as a
 * property over random tenants and usage — every pool's cents are attributed or shown as
 * unattributed, so the report adds up to its total exactly.
 */
const model = loadCostModel();
const month = monthOf('2026-10');
if (!month) throw new Error('fixture month');

const id = (n: number) => `0195a3c0-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;

function report(tenants: CostedTenant[], usage: Map<string, MonthUsage>) {
  if (!month) throw new Error('fixture month');
  return buildCostReport(
    { month: month.label, currency: 'USD', source: 'cost-model', importId: null, notes: [] },
    tenants,
    modelPools(model, tenants, usage, month),
  );
}

describe('the cost model', () => {
  it('puts dedicated databases and clusters on bridge and silo tenants directly', () => {
    const tenants: CostedTenant[] = [
      { id: id(1), name: 'Pool', tier: 'starter', placement: 'pool' },
      { id: id(2), name: 'Bridge', tier: 'starter', placement: 'bridge' },
      { id: id(3), name: 'Silo', tier: 'starter', placement: 'silo' },
    ];
    const result = report(tenants, new Map());
    const lines = (tenantId: string) => result.tenants.find((tenant) => tenant.tenantId === tenantId)?.lines;
    expect(lines(id(1))).toEqual([]);
    expect(lines(id(2))).toEqual([{ pool: 'dedicated-database', kind: 'dedicated', amountMinor: 4500 }]);
    expect(lines(id(3))).toEqual([
      { pool: 'dedicated-database', kind: 'dedicated', amountMinor: 9000 },
      { pool: 'dedicated-cluster', kind: 'dedicated', amountMinor: 26000 },
    ]);
    // With no consumption at all, the shared fixed pools are platform overhead, shown as unattributed.
    expect(result.unattributedMinor).toBe(36500 + 14600 + 5000);
    expect(result.totalMinor).toBe(result.attributedMinor + result.unattributedMinor);
  });

  it('apportions the shared database cluster by database time, pool and bridge only', () => {
    const tenants: CostedTenant[] = [
      { id: id(1), name: 'A', tier: 'starter', placement: 'pool' },
      { id: id(2), name: 'B', tier: 'starter', placement: 'pool' },
      { id: id(3), name: 'Silo', tier: 'starter', placement: 'silo' },
    ];
    const usage = new Map<string, MonthUsage>([
      [id(1), { ...zeroUsage, databaseUs: 1_000_000n }],
      [id(2), { ...zeroUsage, databaseUs: 2_000_000n }],
      [id(3), { ...zeroUsage, databaseUs: 9_000_000n }],
    ]);
    const result = report(tenants, usage);
    const share = (tenantId: string, pool: string) =>
      result.tenants.find((tenant) => tenant.tenantId === tenantId)?.lines.find((line) => line.pool === pool)
        ?.amountMinor;
    // 36500 split 1:2 → 12166.67 / 24333.33 → 12167 + 24333 (largest remainder), the silo nothing.
    expect(share(id(1), 'shared-database-cluster')).toBe(12167);
    expect(share(id(2), 'shared-database-cluster')).toBe(24333);
    expect(share(id(3), 'shared-database-cluster')).toBeUndefined();
    const pool = result.pools.find((candidate) => candidate.name === 'shared-database-cluster');
    expect(pool).toMatchObject({ totalMinor: 36500, attributedMinor: 36500, unattributedMinor: 0 });
  });

  it('adds up to the cent for any tenants and usage (property)', () => {
    const usageArbitrary = fc.record({
      requests: fc.bigInt({ min: 0n, max: 10n ** 8n }),
      computeUs: fc.bigInt({ min: 0n, max: 10n ** 13n }),
      databaseUs: fc.bigInt({ min: 0n, max: 10n ** 13n }),
      jobUs: fc.constant(0n),
      storageByteDays: fc.bigInt({ min: 0n, max: 10n ** 14n }),
      usersMax: fc.constant(0n),
      entitiesMax: fc.constant(0n),
    });
    const tenantArbitrary = fc.record({
      placement: fc.constantFrom('pool' as const, 'bridge' as const, 'silo' as const),
      usage: usageArbitrary,
    });
    fc.assert(
      fc.property(fc.array(tenantArbitrary, { minLength: 1, maxLength: 40 }), (drafts) => {
        const tenants = drafts.map((draft, index) => ({
          id: id(index + 1),
          name: `T${index}`,
          tier: 't',
          placement: draft.placement,
        }));
        const usage = new Map(drafts.map((draft, index) => [id(index + 1), draft.usage]));
        const result = report(tenants, usage);
        const tenantSum = result.tenants.reduce((sum, tenant) => sum + tenant.totalMinor, 0);
        const perPoolOk = result.pools.every(
          (pool) => pool.attributedMinor + pool.unattributedMinor === pool.totalMinor,
        );
        const linesOk = result.tenants.every(
          (tenant) => tenant.lines.reduce((sum, line) => sum + line.amountMinor, 0) === tenant.totalMinor,
        );
        return perPoolOk && linesOk && tenantSum + result.unattributedMinor === result.totalMinor;
      }),
      { numRuns: 200 },
    );
  });
});

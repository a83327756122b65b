import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { TierCatalogue, type TierDefinition } from '../../tenancy/tiers.ts';
import type { MeteredTenant, UsageStore } from '../metering.store.ts';
import type { UsageBucket } from '../metering.types.ts';
import { BillingService } from './billing.service.ts';
import type { BillingStore } from './billing.store.ts';
import { loadCostModel } from './cost-model.ts';
import { tierPricedAt } from './test-tiers.ts';

/**
 * Plan fit with a three-tier catalogue (starter $99, growth $499, scale $1,999) and the
 * shipped cost model, on stores held in memory: a firm whose cost-to-serve exceeds its
 * starter invoice is sent to the cheapest higher tier that covers the cost; a firm that
 * pays its way is left alone.
 */
const tierWithFee = (baseFeeMinor: number): TierDefinition =>
  tierPricedAt({
    currency: 'USD',
    baseFeeMinor,
    metrics: { requests: { included: 0, tiers: [{ upTo: null, unitPriceMicros: 100 }] } },
  });
const tiers = new TierCatalogue({
  starter: tierWithFee(9_900),
  growth: tierWithFee(49_900),
  scale: tierWithFee(199_900),
});

const heavy = '0195a3c0-0000-7000-8000-000000000001';
const light = '0195a3c0-0000-7000-8000-000000000002';
const tenants: MeteredTenant[] = [heavy, light].map((id, index) => ({
  id,
  name: `Firm ${index}`,
  tier: 'starter',
  status: 'active',
  placement: { model: 'pool', cluster: 'shared', database: 'shared' },
  createdAt: new Date('2026-01-01Z'),
}));

function bucket(tenantId: string, metric: UsageBucket['metric'], sum: bigint): UsageBucket & { tenantId: string } {
  return { tenantId, metric, bucketStart: new Date('2026-10-01Z'), quantitySum: sum, quantityMax: sum, eventCount: 1n };
}

const usageStore: UsageStore = {
  insertEvents: async () => 0,
  buckets: async () => [],
  monthBuckets: async () => [
    bucket(heavy, 'database_us', 10_000_000_000n),
    bucket(heavy, 'requests', 1_000n),
    bucket(light, 'requests', 1_000n),
  ],
  gaugeDaySums: async () => new Map(),
  rawSums: async () => new Map(),
  listTenants: async () => tenants,
  findTenant: async (id) => tenants.find((tenant) => tenant.id === id) ?? null,
};
const billingStore: BillingStore = {
  saveImport: async () => ({ created: false, id: '' }),
  latestImport: async () => null,
  issueInvoices: async () => [],
  drainInvoiceAudits: async () => [],
  issuedInvoices: async () => [],
  issuedInvoicesFrom: async () => [],
};

describe('plan fit', () => {
  it('recommends the cheapest higher tier whose charge covers the cost-to-serve', async () => {
    const service = new BillingService(usageStore, billingStore, tiers, loadCostModel(), pino({ level: 'silent' }));
    const rows = await service.planFit('2026-10');
    const heavyRow = rows.find((row) => row.tenantId === heavy);
    // Cost: 400 (10,000 database-seconds at 40 µ$) → 40 cents, the whole 36,500 database cluster,
    // half of 5,000 observability by requests, nothing of compute (no CPU measured).
    expect(heavyRow).toMatchObject({
      costMinor: 40 + 36_500 + 2_500,
      revenueMinor: 9_900 + 10,
      fit: 'move_up',
      recommendedTier: 'growth',
    });
    expect(heavyRow?.higherTiers).toEqual([
      { tier: 'growth', chargeMinor: 49_910, coversCost: true },
      { tier: 'scale', chargeMinor: 199_910, coversCost: true },
    ]);
    expect(rows.find((row) => row.tenantId === light)).toMatchObject({
      fit: 'ok',
      recommendedTier: null,
      costMinor: 2_500,
    });
  });

  it('refuses a catalogue whose prices name a metric billing cannot measure', () => {
    const broken = tierWithFee(1);
    broken.prices.metrics.fax_pages = { included: 0, tiers: [{ upTo: null, unitPriceMicros: 1 }] };
    expect(
      () =>
        new BillingService(
          usageStore,
          billingStore,
          new TierCatalogue({ broken }),
          loadCostModel(),
          pino({ level: 'silent' }),
        ),
    ).toThrow(/broken\.prices\.metrics\.fax_pages/);
  });
});

describe('months before a firm joined', () => {
  it('neither bills nor costs a firm for a month that ended before it was created', async () => {
    const service = new BillingService(usageStore, billingStore, tiers, loadCostModel(), pino({ level: 'silent' }));
    expect(await service.invoices('2025-12')).toEqual([]);
    expect((await service.costReport('2025-12')).tenants).toEqual([]);
    expect((await service.invoices('2026-01')).map((invoice) => invoice.tenantId)).toEqual([heavy, light]);
  });
});

import { describe, expect, it } from 'vitest';
import { TierCatalogue } from '../../tenancy/tiers.ts';
import { zeroUsage } from './billing.types.ts';
import { formatScaled, monthOf, priceInvoice, scheduleOfInvoice, unknownPricedMetrics } from './pricing.ts';
import { tierPricedAt } from './test-tiers.ts';

/**
 * Invoice arithmetic on hand-computed cases: base fee, included quantities, rising bands,
 * fractional GB-months, and half-even rounding of each line to the cent.
 */
const catalogue = TierCatalogue.parse(
  {
    tiers: {
      starter: tierPricedAt({
        currency: 'USD',
        baseFeeMinor: 9900,
        metrics: {
          requests: {
            included: 100_000,
            tiers: [
              { upTo: 1_000_000, unitPriceMicros: 200 },
              { upTo: null, unitPriceMicros: 150 },
            ],
          },
          storage_gb_months: { included: 2, tiers: [{ upTo: null, unitPriceMicros: 250_000 }] },
        },
      }),
    },
  },
  'test',
);
const starter = catalogue.find('starter');
const october = monthOf('2026-10');
const tenant = { id: '0195a3c0-0000-7000-8000-000000000001', name: 'Test Firm' };

describe('priceInvoice', () => {
  it('charges only the base fee while usage stays within the included quantities', () => {
    if (!starter || !october) throw new Error('fixture');
    const invoice = priceInvoice(tenant, starter, october, { ...zeroUsage, requests: 100_000n }, 'inv');
    expect(invoice.lines.map((line) => [line.code, line.amountMinor])).toEqual([
      ['base_fee', 9900],
      ['requests', 0],
      ['storage_gb_months', 0],
    ]);
    expect(invoice.totalMinor).toBe(9900);
  });

  it('prices each band above the included quantity and sums the lines', () => {
    if (!starter || !october) throw new Error('fixture');
    // 1,500,000 requests: 100k free; 900k at 200 µ$ = $180.00; 500k at 150 µ$ = $75.00.
    const invoice = priceInvoice(tenant, starter, october, { ...zeroUsage, requests: 1_500_000n }, 'inv');
    const requests = invoice.lines.find((line) => line.code === 'requests');
    expect(requests?.bands.map((band) => band.quantity)).toEqual(['900000', '500000']);
    expect(requests?.amountMinor).toBe(25_500);
    expect(invoice.totalMinor).toBe(9900 + 25_500);
  });

  it('turns byte-days into fractional GB-months and rounds the line half-even', () => {
    if (!starter || !october) throw new Error('fixture');
    // 31 days at 3.5 GB = 3.5 GB-months; 1.5 over the allowance at $0.25 = 37.5 cents → 38 (half-even: 37.5 → 38).
    const byteDays = 3_500_000_000n * 31n;
    const invoice = priceInvoice(tenant, starter, october, { ...zeroUsage, storageByteDays: byteDays }, 'inv');
    const storage = invoice.lines.find((line) => line.code === 'storage_gb_months');
    expect(storage?.quantity).toBe('3.5');
    expect(storage?.amountMinor).toBe(38);
    // 2.5 GB over → 62.5 cents → 62 (half to even).
    const more = priceInvoice(tenant, starter, october, { ...zeroUsage, storageByteDays: 4_500_000_000n * 31n }, 'i');
    expect(more.lines.find((line) => line.code === 'storage_gb_months')?.amountMinor).toBe(62);
  });

  it('is reproducible: the same usage gives the same invoice and hash; other usage another hash', () => {
    if (!starter || !october) throw new Error('fixture');
    const usage = { ...zeroUsage, requests: 123_457n, storageByteDays: 99_000_000_000n };
    const first = priceInvoice(tenant, starter, october, usage, 'inv');
    const second = priceInvoice(tenant, starter, october, { ...usage }, 'inv');
    expect(second).toEqual(first);
    expect(priceInvoice(tenant, starter, october, { ...usage, requests: 123_458n }, 'inv').contentHash).not.toBe(
      first.contentHash,
    );
  });

  it('reads back the prices an invoice was issued with: re-pricing with them gives the same invoice', () => {
    if (!starter || !october) throw new Error('fixture');
    const usage = { ...zeroUsage, requests: 2_345_678n, storageByteDays: 99_000_000_000n };
    const issued = priceInvoice(tenant, starter, october, usage, 'inv');
    expect(priceInvoice(tenant, scheduleOfInvoice(issued), october, usage, 'inv')).toEqual(issued);
    // An adjustment line counts in the total and the hash, and is not read back as a price.
    const adjustment = {
      code: 'late_usage:2026-09',
      description: 'late',
      quantity: '1',
      included: 0,
      bands: [],
      amountMinor: 250,
    };
    const adjusted = priceInvoice(tenant, starter, october, usage, 'inv', [adjustment]);
    expect(adjusted.totalMinor).toBe(issued.totalMinor + 250);
    expect(adjusted.contentHash).not.toBe(issued.contentHash);
    expect(scheduleOfInvoice(adjusted)).toEqual(scheduleOfInvoice(issued));
  });

  it('names priced metrics that billing cannot measure', () => {
    expect(unknownPricedMetrics(catalogue.list())).toEqual([]);
    const broken = catalogue.list().map((tier) => ({
      ...tier,
      prices: {
        ...tier.prices,
        metrics: { ...tier.prices.metrics, fax_pages: { included: 0, tiers: [{ upTo: null, unitPriceMicros: 1 }] } },
      },
    }));
    expect(unknownPricedMetrics(broken)).toEqual(['starter.prices.metrics.fax_pages']);
  });
});

describe('months and quantities', () => {
  it('parses YYYY-MM into UTC bounds and day counts, and refuses anything else', () => {
    expect(monthOf('2028-02')).toMatchObject({ days: 29, start: new Date('2028-02-01T00:00:00Z') });
    expect(monthOf('2026-12')?.end).toEqual(new Date('2027-01-01T00:00:00Z'));
    for (const bad of ['2026-13', '2026-1', 'October', '2026-10-01']) expect(monthOf(bad)).toBeNull();
  });

  it('formats scaled quantities exactly', () => {
    expect(formatScaled(3n, 2n)).toBe('1.5');
    expect(formatScaled(10n, 1n)).toBe('10');
    expect(formatScaled(1n, 3n)).toBe('0.333333');
  });
});

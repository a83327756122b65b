import { describe, expect, it } from 'vitest';
import type { Invoice, InvoiceLine } from './billing.types.ts';
import { lateUsageCode, lateUsageLines, ownTotalMinor } from './late-usage.ts';

/**
 * The adjustment arithmetic on its own: a month's late usage is billed once, on whichever
 * later invoice is drafted next, whatever order months are issued in; what an issued
 * invoice already adjusted is subtracted; an invoice's own adjustments never count as its
 * own charges. `repriced` stands for today's usage priced with the issued prices.
 */
function invoiceOf(month: string, ownMinor: number, adjustments: Array<[string, number]> = []): Invoice {
  const lines: InvoiceLine[] = [
    { code: 'base_fee', description: 'base', quantity: '1', included: 0, bands: [], amountMinor: ownMinor },
    ...adjustments.map(([adjusted, amountMinor]) => ({
      code: lateUsageCode(adjusted),
      description: 'late',
      quantity: '1',
      included: 0,
      bands: [],
      amountMinor,
    })),
  ];
  const totalMinor = lines.reduce((sum, line) => sum + line.amountMinor, 0);
  return {
    id: `inv_${month}`,
    tenantId: 't',
    tenantName: 'T',
    tier: 'starter',
    month,
    currency: 'USD',
    lines,
    totalMinor,
    rounding: 'half-even-per-line',
    contentHash: '0'.repeat(64),
  };
}

const amounts = (lines: InvoiceLine[]) => lines.map((line) => [line.code, line.amountMinor]);

describe('late usage adjustments', () => {
  it('bills nothing while usage still prices as issued', () => {
    const march = invoiceOf('2019-03', 10_900);
    expect(lateUsageLines('2019-04', [march], () => 10_900)).toEqual([]);
  });

  it('bills the difference on the next invoice, and nothing more once that invoice is issued', () => {
    const march = invoiceOf('2019-03', 10_900);
    // March's usage now prices $2.00 higher; every other month as issued.
    const marchRepricedAt = (minor: number) => (invoice: Invoice) =>
      invoice.month === '2019-03' ? minor : ownTotalMinor(invoice);
    const repriced = marchRepricedAt(11_100);
    expect(amounts(lateUsageLines('2019-04', [march], repriced))).toEqual([['late_usage:2019-03', 200]]);
    const april = invoiceOf('2019-04', 9_900, [['2019-03', 200]]);
    expect(ownTotalMinor(april)).toBe(9_900);
    // April's own draft (recomputed while April is issued) is not reduced by its own line.
    expect(amounts(lateUsageLines('2019-04', [march, april], repriced))).toEqual([['late_usage:2019-03', 200]]);
    expect(lateUsageLines('2019-05', [march, april], repriced)).toEqual([]);
    // More late usage after April was issued: only the new part.
    expect(amounts(lateUsageLines('2019-05', [march, april], marchRepricedAt(11_200)))).toEqual([
      ['late_usage:2019-03', 100],
    ]);
  });

  it('bills each month once when later months are issued out of order', () => {
    const march = invoiceOf('2019-03', 10_900);
    const may = invoiceOf('2019-05', 9_900, [['2019-03', 200]]);
    // April drafted after May was issued: May already billed March's late usage.
    expect(lateUsageLines('2019-04', [march, may], () => 11_100)).toEqual([]);
  });

  it('adjusts only earlier months, oldest first', () => {
    const february = invoiceOf('2019-02', 9_900);
    const march = invoiceOf('2019-03', 9_900);
    const june = invoiceOf('2019-06', 9_900);
    const repriced = (invoice: Invoice) => ownTotalMinor(invoice) + 50;
    expect(amounts(lateUsageLines('2019-04', [june, march, february], repriced))).toEqual([
      ['late_usage:2019-02', 50],
      ['late_usage:2019-03', 50],
    ]);
  });
});

import type { Invoice, InvoiceLine } from './billing.types.ts';

/**
 * Late usage: events of a month that arrive after its invoice was issued. Issued invoices never
 * change, so the difference is billed on the tenant's next invoice as one adjustment line per
 * earlier month, `late_usage:YYYY-MM`:
 *
 *   adjustment = what the month's usage prices at now (with the prices its invoice was issued with)
 *              − the month's own charges on its issued invoice
 *              − adjustments for that month already on any other issued invoice.
 *
 * Everything on the right comes from the events (through the rollups) and from issued invoices,
 * which are immutable, so a draft is reproducible, reissuing adds nothing, and once an invoice
 * carrying an adjustment is issued the next one subtracts it: each late event is billed once.
 */
const lateUsagePrefix = 'late_usage:';

export function lateUsageCode(month: string): string {
  return `${lateUsagePrefix}${month}`;
}

/** The month a line adjusts, or null for the invoice's own charges. */
export function adjustedMonthOf(line: InvoiceLine): string | null {
  return line.code.startsWith(lateUsagePrefix) ? line.code.slice(lateUsagePrefix.length) : null;
}

/** The invoice's own lines: base fee and usage of its month, without adjustments for others. */
export function ownLines(invoice: Invoice): InvoiceLine[] {
  return invoice.lines.filter((line) => adjustedMonthOf(line) === null);
}

export function ownTotalMinor(invoice: Invoice): number {
  return ownLines(invoice).reduce((sum, line) => sum + line.amountMinor, 0);
}

/**
 * The adjustment lines of one tenant's invoice for `month` (YYYY-MM), oldest month first.
 * `issued` holds the tenant's issued invoices (any month); `repricedOwnTotalMinor` prices an
 * issued invoice's month again from today's usage with that invoice's own prices.
 */
export function lateUsageLines(
  month: string,
  issued: readonly Invoice[],
  repricedOwnTotalMinor: (invoice: Invoice) => number,
): InvoiceLine[] {
  const adjustedBefore = new Map<string, number>();
  for (const invoice of issued) {
    if (invoice.month === month) continue;
    for (const line of invoice.lines) {
      const adjusted = adjustedMonthOf(line);
      if (adjusted !== null) adjustedBefore.set(adjusted, (adjustedBefore.get(adjusted) ?? 0) + line.amountMinor);
    }
  }
  const earlier = issued.filter((invoice) => invoice.month < month).sort((a, b) => (a.month < b.month ? -1 : 1));
  const lines: InvoiceLine[] = [];
  for (const invoice of earlier) {
    const billedMinor = ownTotalMinor(invoice) + (adjustedBefore.get(invoice.month) ?? 0);
    const amountMinor = repricedOwnTotalMinor(invoice) - billedMinor;
    if (amountMinor === 0) continue;
    lines.push({
      code: lateUsageCode(invoice.month),
      description: `Usage of ${invoice.month} recorded after invoice ${invoice.id} was issued`,
      quantity: '1',
      included: 0,
      bands: [],
      amountMinor,
    });
  }
  return lines;
}

import { createHash } from 'node:crypto';
import { assert } from '../../platform/assert.ts';
import type { Tier } from '../../tenancy/tiers.ts';
import { divideRounded } from './allocation.ts';
import type { BillingMonth, Invoice, InvoiceBand, InvoiceLine, MonthUsage } from './billing.types.ts';
import { currencyExponent } from './cost-model.ts';

/**
 * Usage-based prices of a tier (tiers.json `prices`) applied to a month of usage. Quantities
 * are exact: each billable metric is an integer in a fine unit plus a scale (requests 1:1;
 * storage in byte-days, 10^9 × days-in-month of them make one GB-month; seconds in
 * microseconds). `included` units are free; the bands (`upTo` counted in total units of the
 * month, the last band unbounded) price the rest. Each line is rounded half-even to the minor
 * unit once; the invoice total is the base fee plus the rounded lines.
 */
interface BillableMetric {
  description: string;
  quantity(usage: MonthUsage): bigint;
  scale(month: BillingMonth): bigint;
}

const bytesPerGb = 1_000_000_000n;
const microsPerSecond = 1_000_000n;

export const billableMetrics: Record<string, BillableMetric> = {
  requests: { description: 'API requests', quantity: (usage) => usage.requests, scale: () => 1n },
  storage_gb_months: {
    description: 'Storage (GB-months, 1 GB = 10^9 bytes, daily peak averaged over the month)',
    quantity: (usage) => usage.storageByteDays,
    scale: (month) => bytesPerGb * BigInt(month.days),
  },
  compute_seconds: {
    description: 'Compute (CPU seconds)',
    quantity: (usage) => usage.computeUs,
    scale: () => microsPerSecond,
  },
  database_seconds: {
    description: 'Database time (seconds)',
    quantity: (usage) => usage.databaseUs,
    scale: () => microsPerSecond,
  },
  job_seconds: {
    description: 'Background jobs (seconds)',
    quantity: (usage) => usage.jobUs,
    scale: () => microsPerSecond,
  },
  entities: { description: 'Client entities (monthly peak)', quantity: (usage) => usage.entitiesMax, scale: () => 1n },
  users: { description: 'Users (monthly peak)', quantity: (usage) => usage.usersMax, scale: () => 1n },
};

/** Names the priced metrics a tier uses that billing cannot measure (empty when all are known). */
export function unknownPricedMetrics(tiers: readonly Tier[]): string[] {
  return tiers.flatMap((tier) =>
    Object.keys(tier.prices.metrics)
      .filter((metric) => !Object.hasOwn(billableMetrics, metric))
      .map((metric) => `${tier.name}.prices.metrics.${metric}`),
  );
}

/** An exact decimal string of `value / scale` with up to 6 decimals (rounded half-even past that). */
export function formatScaled(value: bigint, scale: bigint): string {
  const millionths = divideRounded(value * 1_000_000n, scale, 'half-even');
  const whole = millionths / 1_000_000n;
  const fraction = (millionths % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return fraction.length > 0 ? `${whole}.${fraction}` : `${whole}`;
}

function priceLine(
  code: string,
  price: Tier['prices']['metrics'][string],
  usage: MonthUsage,
  month: BillingMonth,
  minorPerMicro: bigint,
): InvoiceLine {
  const metric = billableMetrics[code];
  assert(metric !== undefined, `priced metric ${code} is not billable`);
  const quantity = metric.quantity(usage);
  const scale = metric.scale(month);
  let lower = BigInt(price.included) * scale;
  let amountScaledMicros = 0n;
  const bands: InvoiceBand[] = [];
  for (const band of price.tiers) {
    const bandTop = band.upTo === null ? quantity : BigInt(band.upTo) * scale;
    const upper = bandTop < quantity ? bandTop : quantity;
    const inBand = upper > lower ? upper - lower : 0n;
    amountScaledMicros += inBand * BigInt(band.unitPriceMicros);
    bands.push({ upTo: band.upTo, unitPriceMicros: band.unitPriceMicros, quantity: formatScaled(inBand, scale) });
    if (bandTop > lower) lower = bandTop;
  }
  return {
    code,
    description: metric.description,
    quantity: formatScaled(quantity, scale),
    included: price.included,
    bands,
    amountMinor: Number(divideRounded(amountScaledMicros, scale * minorPerMicro, 'half-even')),
  };
}

/**
 * The prices an invoice was priced with, read back from its own lines: the base fee and, per
 * metric line, the included units and the bands. Re-pricing a month with them changes only
 * what usage changed, whatever the tier catalogue says today.
 */
export function scheduleOfInvoice(invoice: Invoice): PriceSchedule {
  const metrics: Tier['prices']['metrics'] = {};
  let baseFeeMinor = 0;
  for (const line of invoice.lines) {
    if (line.code === 'base_fee') baseFeeMinor = line.amountMinor;
    if (!Object.hasOwn(billableMetrics, line.code)) continue;
    metrics[line.code] = {
      included: line.included,
      tiers: line.bands.map((band) => ({ upTo: band.upTo, unitPriceMicros: band.unitPriceMicros })),
    };
  }
  return { name: invoice.tier, prices: { currency: invoice.currency, baseFeeMinor, metrics } };
}

export function monthOf(label: string): BillingMonth | null {
  const match = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(label);
  if (!match) return null;
  const year = Number(match[1]);
  const monthIndex = Number(match[2]) - 1;
  const start = new Date(Date.UTC(year, monthIndex, 1));
  const end = new Date(Date.UTC(year, monthIndex + 1, 1));
  return { label, start, end, days: Math.round((end.getTime() - start.getTime()) / 86_400_000) };
}

/** What pricing needs of a tier: its name (for the base-fee line) and its prices. */
export type PriceSchedule = Pick<Tier, 'name' | 'prices'>;

/**
 * The invoice of one tenant for one month under a tier's prices; pure and deterministic.
 * `adjustments` (late usage of earlier months, see late-usage.ts) follow the usage lines and
 * count in the total and the content hash.
 */
export function priceInvoice(
  tenant: { id: string; name: string },
  tier: PriceSchedule,
  month: BillingMonth,
  usage: MonthUsage,
  invoiceId: string,
  adjustments: readonly InvoiceLine[] = [],
): Invoice {
  const exponent = currencyExponent(tier.prices.currency);
  const minorPerMicro = 10n ** BigInt(6 - exponent);
  const lines: InvoiceLine[] = [
    {
      code: 'base_fee',
      description: `${tier.name} plan, monthly base fee`,
      quantity: '1',
      included: 0,
      bands: [],
      amountMinor: tier.prices.baseFeeMinor,
    },
  ];
  for (const code of Object.keys(tier.prices.metrics).sort()) {
    const price = tier.prices.metrics[code];
    assert(price !== undefined, 'price of a listed metric');
    lines.push(priceLine(code, price, usage, month, minorPerMicro));
  }
  lines.push(...adjustments);
  const totalMinor = lines.reduce((sum, line) => sum + line.amountMinor, 0);
  assert(Number.isSafeInteger(totalMinor), 'invoice total out of range');
  const body = {
    tenantId: tenant.id,
    tier: tier.name,
    month: month.label,
    currency: tier.prices.currency,
    lines,
    totalMinor,
  };
  return {
    id: invoiceId,
    tenantId: tenant.id,
    tenantName: tenant.name,
    tier: tier.name,
    month: month.label,
    currency: tier.prices.currency,
    lines,
    totalMinor,
    rounding: 'half-even-per-line',
    contentHash: createHash('sha256').update(JSON.stringify(body)).digest('hex'),
  };
}

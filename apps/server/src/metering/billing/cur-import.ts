import { createHash } from 'node:crypto';
import { AppError } from '../../platform/errors.ts';
import { parseId } from '../../platform/ids.ts';

/**
 * AWS Cost and Usage Report (CUR, legacy CSV layout) import. The columns read are the
 * standard ones: `lineItem/UsageStartDate`, `lineItem/UnblendedCost`, `lineItem/ProductCode`
 * and the cost-allocation tag `resourceTags/user:TenantId` (a `ten_…` id or a uuid); any other
 * column is ignored. Amounts are parsed from their decimal text exactly, to nano-units
 * (10^-9) of the currency with half-even rounding past the ninth decimal; no floating point.
 * Lines are summed per product and tenant tag; untagged cost is shared cost.
 */
export const curLimits = {
  bytesMax: 50 * 1024 * 1024,
  linesMax: 1_000_000,
  fileNameLengthMax: 200,
} as const;

export const curColumns = {
  usageStart: 'lineItem/UsageStartDate',
  cost: 'lineItem/UnblendedCost',
  product: 'lineItem/ProductCode',
  tenantTag: 'resourceTags/user:TenantId',
  currency: 'lineItem/CurrencyCode',
} as const;

export interface CurSummaryLine {
  productCode: string;
  /** The tenant uuid of the tag, or null for untagged (shared) cost. */
  tenantId: string | null;
  amountNanos: bigint;
}

export interface ParsedCur {
  month: string;
  sha256: string;
  lineCount: number;
  totalNanos: bigint;
  currency: string;
  lines: CurSummaryLine[];
}

const decimalPattern = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** Parses a decimal string (optionally with an exponent) to nano-units, rounding half-even. */
export function decimalToNanos(text: string): bigint | null {
  const match = decimalPattern.exec(text.trim());
  if (!match) return null;
  const [, sign, whole = '0', fraction = '', exponentText] = match;
  const exponent = Number(exponentText ?? '0');
  if (!Number.isInteger(exponent) || Math.abs(exponent) > 30) return null;
  const digits = BigInt(`${whole}${fraction}`);
  // value = digits × 10^(exponent − fraction.length); in nanos: × 10^9.
  const shift = exponent - fraction.length + 9;
  let nanos: bigint;
  if (shift >= 0) nanos = digits * 10n ** BigInt(shift);
  else {
    const divisor = 10n ** BigInt(-shift);
    const quotient = digits / divisor;
    const twice = (digits % divisor) * 2n;
    nanos = twice > divisor || (twice === divisor && quotient % 2n === 1n) ? quotient + 1n : quotient;
  }
  return sign === '-' ? -nanos : nanos;
}

function tenantOfTag(tag: string): string | null {
  const trimmed = tag.trim();
  if (trimmed === '') return null;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(trimmed)) return trimmed.toLowerCase();
  return parseId('tenant', trimmed);
}

function invalid(detail: string): AppError {
  return new AppError('COST_IMPORT_INVALID', detail);
}

/** Errors: COST_IMPORT_INVALID, COST_IMPORT_MIXED_MONTHS. Unknown-format tenant tags count as untagged, and are returned. */
export async function parseCur(text: string): Promise<ParsedCur & { unreadableTags: string[] }> {
  // Loaded on first use: only operators importing a CUR pay for the parser at all.
  const { parse } = await import('csv-parse/sync');
  if (Buffer.byteLength(text) > curLimits.bytesMax)
    throw invalid(`The file is larger than ${curLimits.bytesMax} bytes.`);
  let records: Record<string, string>[];
  try {
    records = parse(text, { columns: true, skip_empty_lines: true, bom: true, relax_column_count: false });
  } catch (error) {
    throw invalid(`The CSV cannot be parsed: ${(error as Error).message}`);
  }
  if (records.length === 0) throw invalid('The file has no line items.');
  if (records.length > curLimits.linesMax) throw invalid(`The file has more than ${curLimits.linesMax} line items.`);
  const header = Object.keys(records[0] ?? {});
  for (const column of [curColumns.usageStart, curColumns.cost, curColumns.product]) {
    if (!header.includes(column)) throw invalid(`The column ${column} is missing.`);
  }
  const sums = new Map<string, CurSummaryLine>();
  const months = new Set<string>();
  const currencies = new Set<string>();
  const unreadableTags = new Set<string>();
  let totalNanos = 0n;
  records.forEach((record, index) => {
    const row = index + 2;
    const start = new Date(record[curColumns.usageStart] ?? '');
    if (Number.isNaN(start.getTime())) throw invalid(`Line ${row}: ${curColumns.usageStart} is not a date.`);
    months.add(start.toISOString().slice(0, 7));
    const nanos = decimalToNanos(record[curColumns.cost] ?? '');
    if (nanos === null) throw invalid(`Line ${row}: ${curColumns.cost} is not a decimal number.`);
    const productCode = (record[curColumns.product] ?? '').trim();
    if (!/^[A-Za-z0-9]{1,64}$/.test(productCode))
      throw invalid(`Line ${row}: ${curColumns.product} is not a product code.`);
    currencies.add((record[curColumns.currency] ?? 'USD').trim() || 'USD');
    const tag = record[curColumns.tenantTag] ?? '';
    const tenantId = tenantOfTag(tag);
    if (tenantId === null && tag.trim() !== '') unreadableTags.add(tag.trim());
    const key = `${productCode}\u0000${tenantId ?? ''}`;
    const line = sums.get(key) ?? { productCode, tenantId, amountNanos: 0n };
    line.amountNanos += nanos;
    sums.set(key, line);
    totalNanos += nanos;
  });
  if (months.size !== 1)
    throw new AppError('COST_IMPORT_MIXED_MONTHS', `The file covers ${[...months].sort().join(', ')}.`);
  if (currencies.size !== 1) throw invalid(`The file mixes currencies: ${[...currencies].join(', ')}.`);
  const lines = [...sums.values()].sort((a, b) =>
    a.productCode === b.productCode
      ? (a.tenantId ?? '') < (b.tenantId ?? '')
        ? -1
        : 1
      : a.productCode < b.productCode
        ? -1
        : 1,
  );
  return {
    month: [...months][0] ?? '',
    sha256: createHash('sha256').update(text).digest('hex'),
    lineCount: records.length,
    totalNanos,
    currency: [...currencies][0] ?? 'USD',
    lines,
    unreadableTags: [...unreadableTags].sort(),
  };
}

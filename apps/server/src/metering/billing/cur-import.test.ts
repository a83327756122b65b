import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { decimalToNanos, parseCur } from './cur-import.ts';

/**
 * Parsing the shipped sample CUR (fixtures/cur-2026-10-sample.csv: 49 line items of October
 * 2026 — shared EC2 and RDS, a silo tenant's tagged RDS, tagged S3 and Lambda, a credit, tax,
 * a scientific-notation amount, a tag naming an unknown tenant and an unreadable tag).
 * Expected figures were summed by hand (Python decimal) from the file.
 */
export const sampleCurFile = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'fixtures',
  'cur-2026-10-sample.csv',
);
export const sampleTenants = {
  a: '0195a3c0-0000-7000-8000-00000000000a',
  b: '0195a3c0-0000-7000-8000-00000000000b',
  c: '0195a3c0-0000-7000-8000-00000000000c',
} as const;

describe('decimalToNanos', () => {
  it('parses plain, negative, exponent and over-precise decimals exactly', () => {
    expect(decimalToNanos('1.9584')).toBe(1_958_400_000n);
    expect(decimalToNanos('-2.50')).toBe(-2_500_000_000n);
    expect(decimalToNanos('1.55E-4')).toBe(155_000n);
    expect(decimalToNanos('0.0000000015')).toBe(2n); // 1.5 nanos → 2 (half to even)
    expect(decimalToNanos('0.0000000025')).toBe(2n); // 2.5 nanos → 2 (half to even)
    expect(decimalToNanos('12')).toBe(12_000_000_000n);
    for (const bad of ['', 'abc', '1,5', '0x10', '1.2.3']) expect(decimalToNanos(bad)).toBeNull();
  });
});

describe('parseCur on the sample file', () => {
  let parsed: Awaited<ReturnType<typeof parseCur>>;
  beforeAll(async () => {
    parsed = await parseCur(fs.readFileSync(sampleCurFile, 'utf8'));
  });

  it('reads the month, line count and exact total', () => {
    expect(parsed.month).toBe('2026-10');
    expect(parsed.lineCount).toBe(49);
    expect(parsed.currency).toBe('USD');
    // 139.2846670000023 with the 10th+ decimals rounded per line at the nano.
    expect(parsed.totalNanos).toBe(139_284_667_000n);
    expect(parsed.lines.reduce((sum, line) => sum + line.amountNanos, 0n)).toBe(parsed.totalNanos);
  });

  it('sums per product and tenant tag; untagged and unreadable tags are shared (tenant null)', () => {
    const key = (line: { productCode: string; tenantId: string | null }) =>
      `${line.productCode}/${line.tenantId ?? '-'}`;
    const byKey = Object.fromEntries(parsed.lines.map((line) => [key(line), line.amountNanos]));
    expect(byKey).toEqual({
      'AWSLambda/0195a3c0-0000-7000-8000-00000000000b': 66_667_000n,
      'AmazonApiGateway/-': 412_345_000n,
      'AmazonCloudWatch/-': 1_000_000_000n,
      'AmazonEC2/-': 37_898_000_000n,
      'AmazonEC2/0195a3c0-0000-7000-8000-00000000ffff': 100_000_000n,
      'AmazonRDS/-': 57_360_000_000n,
      'AmazonRDS/0195a3c0-0000-7000-8000-00000000000c': 40_320_000_000n,
      'AmazonS3/-': 1_840_155_000n,
      'AmazonS3/0195a3c0-0000-7000-8000-00000000000a': 287_500_000n,
    });
    expect(parsed.unreadableTags).toEqual(['legacy-client']);
  });

  it('gives the same file the same sha256', async () => {
    expect((await parseCur(fs.readFileSync(sampleCurFile, 'utf8'))).sha256).toBe(parsed.sha256);
  });
});

describe('parseCur refusals', () => {
  const header = 'lineItem/UsageStartDate,lineItem/ProductCode,lineItem/UnblendedCost\n';
  it.each([
    [
      'a missing cost column',
      'lineItem/UsageStartDate,lineItem/ProductCode\n2026-10-01T00:00:00Z,AmazonEC2\n',
      'COST_IMPORT_INVALID',
    ],
    ['no line items', header, 'COST_IMPORT_INVALID'],
    ['a cost that is not a number', `${header}2026-10-01T00:00:00Z,AmazonEC2,12USD\n`, 'COST_IMPORT_INVALID'],
    ['a date that is not a date', `${header}yesterday,AmazonEC2,1\n`, 'COST_IMPORT_INVALID'],
    ['a ragged row', `${header}2026-10-01T00:00:00Z,AmazonEC2\n`, 'COST_IMPORT_INVALID'],
    [
      'two months',
      `${header}2026-10-01T00:00:00Z,AmazonEC2,1\n2026-11-01T00:00:00Z,AmazonEC2,1\n`,
      'COST_IMPORT_MIXED_MONTHS',
    ],
  ])('refuses %s', async (_title, text, code) => {
    await expect(parseCur(text)).rejects.toThrow(expect.objectContaining({ code }));
  });
});

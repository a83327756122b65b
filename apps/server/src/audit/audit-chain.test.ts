import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './audit-chain.ts';

/**
 * canonicalJson builds its key-sorted copy by assignment instead of Object.fromEntries over a
 * sorted entries list. Digests already stored were made the old way, so this proves on random
 * values (nested records with any keys, integer-like ones and __proto__ included, arrays with
 * holes and undefined, bigints, dates, buffers) that the text is byte for byte the old text.
 */
function copyBasedCanonicalValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (Array.isArray(value)) return value.map(copyBasedCanonicalValue);
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
    return Object.fromEntries(entries.map(([key, item]) => [key, copyBasedCanonicalValue(item)]));
  }
  return value;
}

const leaf = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array({ maxLength: 8 }).map((bytes) => Buffer.from(bytes)),
);
const key = fc.oneof(
  fc.string(),
  fc.constantFrom('0', '1', '2', '10', '01', '-1', '4294967294', '4294967295', '1e3', '__proto__', 'a', 'B'),
);
const { value } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('record')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  record: fc.dictionary(key, tie('value'), { maxKeys: 6 }),
}));

describe('canonicalJson', () => {
  it('writes the same text as the copy made by Object.fromEntries over sorted entries', () => {
    fc.assert(
      fc.property(value, (sample) => {
        expect(canonicalJson(sample)).toBe(JSON.stringify(copyBasedCanonicalValue(sample)));
      }),
      { numRuns: 2_000 },
    );
  });

  it('writes holes and undefined in arrays as null, and an own __proto__ key as a key', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the case under test
    const sparse = [1, , undefined, { skipped: undefined, kept: 2n }];
    expect(canonicalJson(sparse)).toBe(JSON.stringify(copyBasedCanonicalValue(sparse)));
    expect(canonicalJson(sparse)).toBe('[1,null,null,{"kept":"2"}]');
    const ownProto = JSON.parse('{"b":1,"__proto__":{"z":1,"10":2,"2":3}}');
    expect(canonicalJson(ownProto)).toBe(JSON.stringify(copyBasedCanonicalValue(ownProto)));
    expect(canonicalJson(ownProto)).toBe('{"__proto__":{"2":3,"10":2,"z":1},"b":1}');
  });

  it('writes a posted entry as before', () => {
    const entry = {
      id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
      date: '2026-03-15',
      memo: 'Rent "March"\n',
      reversesId: null,
      postedAt: new Date('2026-03-15T10:00:00.000Z'),
      lines: [{ lineNo: 1, amountMinor: 12_345n, exchangeRate: null, memo: undefined }],
    };
    expect(canonicalJson(entry)).toBe(
      '{"date":"2026-03-15","id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",' +
        '"lines":[{"amountMinor":"12345","exchangeRate":null,"lineNo":1}],' +
        '"memo":"Rent \\"March\\"\\n","postedAt":"2026-03-15T10:00:00.000Z","reversesId":null}',
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocateLargestRemainder, divideRounded } from './allocation.ts';

/**
 * Largest-remainder apportionment and named rounding, as properties over random totals and
 * weights (fast-check): shares add up to the total exactly, each share is the floor or the
 * ceiling of its exact quota, and a larger weight never gets less.
 */
const weightsArbitrary = fc.array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { minLength: 1, maxLength: 60 });

describe('allocateLargestRemainder', () => {
  it('allocates every unit: the shares sum to the total', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), weightsArbitrary, (total, weights) => {
        const shares = allocateLargestRemainder(total, weights);
        if (weights.every((weight) => weight === 0n)) return shares === null;
        return shares !== null && shares.reduce((sum, share) => sum + share, 0n) === total;
      }),
      { numRuns: 500 },
    );
  });

  it('gives each share the floor or the ceiling of its exact quota, and is monotone in the weight', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 9n }), weightsArbitrary, (total, weights) => {
        const shares = allocateLargestRemainder(total, weights);
        if (shares === null) return true;
        const weightSum = weights.reduce((sum, weight) => sum + weight, 0n);
        return weights.every((weight, index) => {
          const floor = (total * weight) / weightSum;
          const share = shares[index] ?? -1n;
          const withinQuota = share === floor || share === floor + 1n;
          const monotone = weights.every((other, j) => other >= weight || (shares[j] ?? 0n) <= share);
          return withinQuota && monotone;
        });
      }),
      { numRuns: 300 },
    );
  });

  it('splits 100 cents three ways as 34/33/33 and breaks ties by position', () => {
    expect(allocateLargestRemainder(100n, [1n, 1n, 1n])).toEqual([34n, 33n, 33n]);
    expect(allocateLargestRemainder(10n, [0n, 5n, 5n])).toEqual([0n, 5n, 5n]);
    expect(allocateLargestRemainder(7n, [0n, 0n])).toBeNull();
  });
});

describe('divideRounded', () => {
  it('rounds half to even and floors when asked', () => {
    expect(divideRounded(25n, 10n, 'half-even')).toBe(2n);
    expect(divideRounded(35n, 10n, 'half-even')).toBe(4n);
    expect(divideRounded(36n, 10n, 'half-even')).toBe(4n);
    expect(divideRounded(34n, 10n, 'half-even')).toBe(3n);
    expect(divideRounded(39n, 10n, 'floor')).toBe(3n);
  });
});

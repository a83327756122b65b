import { assert } from '../../platform/assert.ts';

/**
 * Exact apportionment of an integer total (cents, micro-units, microseconds) by integer
 * weights with the largest-remainder (Hamilton) method: each share gets the floor of its
 * exact quota, and the units left over go one each to the largest fractional remainders,
 * ties broken by position (the caller sorts by a stable key, e.g. tenant id). The shares
 * always add up to the total exactly. All weights zero: nothing is apportioned and the
 * caller reports the total as unattributed.
 */
export function allocateLargestRemainder(total: bigint, weights: readonly bigint[]): bigint[] | null {
  assert(total >= 0n, 'apportioned total must be non-negative');
  for (const weight of weights) assert(weight >= 0n, 'apportionment weights must be non-negative');
  const weightSum = weights.reduce((sum, weight) => sum + weight, 0n);
  if (weightSum === 0n) return null;
  const shares = weights.map((weight) => (total * weight) / weightSum);
  const remainders = weights.map((weight, index) => ({ index, remainder: (total * weight) % weightSum }));
  let leftover = total - shares.reduce((sum, share) => sum + share, 0n);
  assert(leftover >= 0n && leftover < BigInt(Math.max(weights.length, 1)), 'largest remainder leftover out of range');
  remainders.sort((a, b) => (a.remainder === b.remainder ? a.index - b.index : a.remainder > b.remainder ? -1 : 1));
  for (const { index } of remainders) {
    if (leftover === 0n) break;
    shares[index] = (shares[index] ?? 0n) + 1n;
    leftover--;
  }
  assert(
    shares.reduce((sum, share) => sum + share, 0n) === total,
    'largest remainder shares do not add up to the total',
  );
  return shares;
}

/**
 * Integer division with the rounding named: `half-even` (banker's rounding, the default for
 * invoices and cost totals) or `floor`. Both operands non-negative.
 */
export type Rounding = 'half-even' | 'floor';

export function divideRounded(numerator: bigint, denominator: bigint, rounding: Rounding): bigint {
  assert(denominator > 0n && numerator >= 0n, 'divideRounded takes a non-negative numerator and a positive divisor');
  const quotient = numerator / denominator;
  const remainder = numerator % denominator;
  if (rounding === 'floor' || remainder === 0n) return quotient;
  const twice = remainder * 2n;
  if (twice > denominator) return quotient + 1n;
  if (twice < denominator) return quotient;
  return quotient % 2n === 0n ? quotient : quotient + 1n;
}

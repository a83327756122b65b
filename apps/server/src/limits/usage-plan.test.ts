import { describe, expect, it } from 'vitest';
import { TierCatalogue } from '../tenancy/tiers.ts';
import { type BucketState, costOf, effectivePlanOf, planProblems, quotaWindow, stepBucket } from './usage-plan.ts';

/**
 * The usage-plan rules without I/O: the token bucket steps exactly as API Gateway describes
 * (full at first, `burst` at once, then `ratePerSecond` refilled continuously, never above
 * `burst`), quota windows start at their offset and roll over, and overrides merge over the
 * tier and are checked. Time is a number the test moves; nothing sleeps.
 */
const t0 = Date.UTC(2026, 0, 15, 12, 0, 0);

function run(
  steps: Array<{ atMs: number; cost?: number }>,
  plan = { ratePerSecond: 10, burst: 20, quotaLimit: 1_000_000 },
) {
  let bucket: BucketState | null = null;
  let quotaUsed = 0;
  return steps.map(({ atMs, cost = 1 }) => {
    const result = stepBucket(bucket, { ...plan, cost, quotaUsed, nowMs: t0 + atMs });
    bucket = result.bucket;
    quotaUsed = result.quotaUsed;
    return result.outcome;
  });
}

const times = (count: number, atMs: number, cost = 1) => Array.from({ length: count }, () => ({ atMs, cost }));

describe('token bucket', () => {
  it('admits exactly burst requests at one instant, then refuses', () => {
    const outcomes = run(times(21, 0));
    expect(outcomes.slice(0, 20)).toEqual(Array(20).fill('accepted'));
    expect(outcomes[20]).toBe('rate_limited');
  });

  it('then admits ratePerSecond per second: one token every 1/rate seconds, not before', () => {
    const outcomes = run([...times(20, 0), { atMs: 99 }, { atMs: 100 }, { atMs: 100 }, ...times(11, 1_100)]);
    expect(outcomes.slice(20)).toEqual([
      'rate_limited', // at 99 ms the bucket holds 0.99 tokens
      'accepted', // at 100 ms one token
      'rate_limited',
      ...Array(10).fill('accepted'), // one second later, ten more tokens
      'rate_limited',
    ]);
  });

  it('sustains exactly the rate over a long steady run', () => {
    // 20 at once, then one request every 50 ms (20/s) for 10 s against a rate of 10/s.
    const steady = Array.from({ length: 200 }, (_, index) => ({ atMs: (index + 1) * 50 }));
    const outcomes = run([...times(20, 0), ...steady]);
    const accepted = outcomes.slice(20).filter((outcome) => outcome === 'accepted').length;
    expect(accepted).toBe(100);
  });

  it('never refills above burst, however long the pause', () => {
    const outcomes = run([...times(20, 0), ...times(21, 3_600_000)]);
    expect(outcomes.slice(20, 40)).toEqual(Array(20).fill('accepted'));
    expect(outcomes[40]).toBe('rate_limited');
  });

  it('charges weighted requests their cost and refuses without taking tokens', () => {
    const outcomes = run([
      { atMs: 0, cost: 15 },
      { atMs: 0, cost: 10 },
      { atMs: 0, cost: 5 },
      { atMs: 0, cost: 1 },
    ]);
    expect(outcomes).toEqual(['accepted', 'rate_limited', 'accepted', 'rate_limited']);
  });

  it('refills nothing when the clock goes backwards', () => {
    const outcomes = run([...times(20, 1_000), { atMs: 0 }, { atMs: 1_100 }]);
    expect(outcomes.slice(20)).toEqual(['rate_limited', 'accepted']);
  });

  it('refuses a request over quota as quota_exhausted, taking neither tokens nor quota', () => {
    const outcomes = run([...times(3, 0), { atMs: 0, cost: 2 }, { atMs: 0 }], {
      ratePerSecond: 10,
      burst: 20,
      quotaLimit: 4,
    });
    expect(outcomes).toEqual(['accepted', 'accepted', 'accepted', 'quota_exhausted', 'accepted']);
  });

  it('reads the state without changing it at cost 0', () => {
    const outcomes = run([...times(20, 0), { atMs: 0, cost: 0 }, { atMs: 0 }]);
    expect(outcomes.slice(20)).toEqual(['accepted', 'rate_limited']);
  });
});

describe('quota windows', () => {
  const at = (iso: string) => Date.parse(iso);
  const window = (period: 'DAY' | 'WEEK' | 'MONTH', offsetDays: number, iso: string) => {
    const { startMs, endMs } = quotaWindow(period, offsetDays, at(iso));
    return [new Date(startMs).toISOString(), new Date(endMs).toISOString()];
  };

  it('DAY runs from UTC midnight to midnight', () => {
    expect(window('DAY', 0, '2026-03-10T23:59:59.999Z')).toEqual([
      '2026-03-10T00:00:00.000Z',
      '2026-03-11T00:00:00.000Z',
    ]);
    expect(window('DAY', 0, '2026-03-11T00:00:00.000Z')).toEqual([
      '2026-03-11T00:00:00.000Z',
      '2026-03-12T00:00:00.000Z',
    ]);
  });

  it('WEEK starts on Sunday plus the offset (2026-03-10 is a Tuesday)', () => {
    expect(window('WEEK', 0, '2026-03-10T12:00:00Z')).toEqual(['2026-03-08T00:00:00.000Z', '2026-03-15T00:00:00.000Z']);
    expect(window('WEEK', 1, '2026-03-10T12:00:00Z')).toEqual(['2026-03-09T00:00:00.000Z', '2026-03-16T00:00:00.000Z']);
    expect(window('WEEK', 3, '2026-03-10T12:00:00Z')).toEqual(['2026-03-04T00:00:00.000Z', '2026-03-11T00:00:00.000Z']);
    expect(window('WEEK', 2, '2026-03-10T00:00:00Z')).toEqual(['2026-03-10T00:00:00.000Z', '2026-03-17T00:00:00.000Z']);
  });

  it('MONTH starts on day 1 + offset and rolls over across months and years', () => {
    expect(window('MONTH', 0, '2026-03-31T23:59:59Z')).toEqual([
      '2026-03-01T00:00:00.000Z',
      '2026-04-01T00:00:00.000Z',
    ]);
    expect(window('MONTH', 14, '2026-03-14T23:59:59Z')).toEqual([
      '2026-02-15T00:00:00.000Z',
      '2026-03-15T00:00:00.000Z',
    ]);
    expect(window('MONTH', 14, '2026-03-15T00:00:00Z')).toEqual([
      '2026-03-15T00:00:00.000Z',
      '2026-04-15T00:00:00.000Z',
    ]);
    expect(window('MONTH', 27, '2026-01-05T00:00:00Z')).toEqual([
      '2025-12-28T00:00:00.000Z',
      '2026-01-28T00:00:00.000Z',
    ]);
    expect(window('MONTH', 27, '2026-02-28T00:00:00Z')).toEqual([
      '2026-02-28T00:00:00.000Z',
      '2026-03-28T00:00:00.000Z',
    ]);
  });
});

describe('effective plans', () => {
  const tier = TierCatalogue.load().find('starter');
  if (!tier) throw new Error('the default catalogue has starter');

  it('merges overrides field by field over the tier', () => {
    const plan = effectivePlanOf(tier, {
      usagePlan: { burst: 100, quota: { limit: 7 }, routeWeights: { report: 9 } },
      limits: { inFlightRequestsMax: 2 },
    });
    expect(plan.usagePlan).toEqual({
      ratePerSecond: tier.usagePlan.ratePerSecond,
      burst: 100,
      quota: { ...tier.usagePlan.quota, limit: 7 },
      routeWeights: { ...tier.usagePlan.routeWeights, report: 9 },
    });
    expect(plan.bounds).toEqual({
      statementTimeoutMs: tier.limits.statementTimeoutMs,
      inFlightRequestsMax: 2,
      databaseConnectionsMax: tier.limits.databaseConnectionsMax,
    });
    expect(planProblems(plan)).toEqual([]);
  });

  it('names each broken relation', () => {
    const plan = effectivePlanOf(tier, {
      usagePlan: {
        ratePerSecond: 50,
        burst: 10,
        quota: { period: 'DAY', offsetDays: 3 },
        routeWeights: { report: 11 },
      },
    });
    expect(planProblems(plan)).toEqual([
      'usagePlan.burst must be at least ratePerSecond',
      'usagePlan.quota.offsetDays must be 0 for DAY',
    ]);
    expect(planProblems(effectivePlanOf(tier, { usagePlan: { quota: { period: 'WEEK', offsetDays: 7 } } }))).toEqual([
      'usagePlan.quota.offsetDays must be at most 6 for WEEK',
    ]);
  });

  it('costs a class by its weight, an unnamed class at 1, and never more than burst', () => {
    expect(costOf(tier.usagePlan, 'report')).toBe(tier.usagePlan.routeWeights.report);
    expect(costOf(tier.usagePlan, 'batch')).toBe(1);
    expect(costOf({ ...tier.usagePlan, burst: 3 }, 'report')).toBe(3);
  });
});

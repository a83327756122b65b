import { describe, expect, it } from 'vitest';
import type { RateDecision } from './limits.types.ts';
import { PenaltyBox } from './penalty-box.ts';

/**
 * The penalty box remembers only refusals that prove the next requests will be refused
 * too (less than one token left, or the whole quota used), for no longer than that and
 * than its hold bound, and ages the decision it replays. Time is passed in.
 */
const refused: RateDecision = {
  outcome: 'rate_limited',
  bucketRemaining: 0,
  bucketFullInMs: 2_000,
  nextTokenInMs: 300,
  quotaUsed: 10,
  quotaLimit: 100,
  quotaResetInMs: 60_000,
  retryAfterMs: 300,
};

describe('penalty box', () => {
  it('refuses a rate-limited caller until its next token, with the decision aged', () => {
    const box = new PenaltyBox(10, 5_000);
    box.record('token-a', 'tenant-a', 40, refused, 1_000);
    expect(box.find('token-b', 1_000)).toBeNull();
    expect(box.find('token-a', 1_100)).toMatchObject({
      tenantId: 'tenant-a',
      burst: 40,
      decision: { bucketFullInMs: 1_900, nextTokenInMs: 200, retryAfterMs: 200, quotaResetInMs: 59_900 },
    });
    expect(box.find('token-a', 1_300)).toBeNull();
  });

  it('ignores refusals a cheaper request could pass, and accepted decisions', () => {
    const box = new PenaltyBox(10, 5_000);
    box.record('heavy', 't', 40, { ...refused, nextTokenInMs: 0, retryAfterMs: 250 }, 0);
    box.record('partial-quota', 't', 40, { ...refused, outcome: 'quota_exhausted', quotaUsed: 98 }, 0);
    box.record('accepted', 't', 40, { ...refused, outcome: 'accepted' }, 0);
    expect([box.find('heavy', 1), box.find('partial-quota', 1), box.find('accepted', 1)]).toEqual([null, null, null]);
  });

  it('holds an exhausted quota no longer than its bound, and forgets a tenant on demand', () => {
    const box = new PenaltyBox(10, 5_000);
    const exhausted: RateDecision = { ...refused, outcome: 'quota_exhausted', quotaUsed: 100, retryAfterMs: 60_000 };
    box.record('q', 'tenant-q', 40, exhausted, 0);
    box.record('r', 'tenant-r', 40, refused, 0);
    expect(box.find('q', 4_999)?.outcome).toBe('quota_exhausted');
    expect(box.find('q', 5_000)).toBeNull();
    box.record('q', 'tenant-q', 40, exhausted, 10_000);
    box.forgetTenant('tenant-q');
    expect(box.find('q', 10_001)).toBeNull();
    expect(box.find('r', 1)).not.toBeNull();
  });

  it('stays within its bound on entries', () => {
    const box = new PenaltyBox(3, 5_000);
    for (let index = 0; index < 10; index += 1) box.record(`k${index}`, 't', 40, refused, 0);
    const kept = Array.from({ length: 10 }, (_, index) => box.find(`k${index}`, 1)).filter((entry) => entry !== null);
    expect(kept.length).toBeLessThanOrEqual(3);
    expect(box.find('k9', 1)).not.toBeNull();
  });
});

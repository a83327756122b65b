import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { newUuid } from '../platform/ids.ts';
import { RedisRateLimitStore } from './rate-limit.redis.ts';
import type { RateLimitRequest, RateLimitStore } from './rate-limit.store.ts';
import { MemoryRateLimitStore } from './rate-limit.store.ts';

/**
 * One contract, every store: the same sequence of requests at the same instants gets the
 * same decisions from the in-process store and from Redis (burst, then the steady rate,
 * the quota and its rollover, the values behind the RateLimit headers). The Redis half
 * runs when REDIS_URL is set (CI sets redis://127.0.0.1:6379); time is passed in, not slept.
 */
const plan = {
  ratePerSecond: 5,
  burst: 10,
  quota: { limit: 25, period: 'DAY' as const, offsetDays: 0 },
};
const t0 = Date.UTC(2026, 2, 10, 23, 59, 50);

function contract(name: string, open: () => Promise<RateLimitStore>) {
  describe(`${name} store`, () => {
    let store: RateLimitStore;
    afterAll(async () => {
      await store?.close();
    });
    const consume = (tenantId: string, atMs: number, cost = 1, usagePlan = plan) =>
      store.consume({ tenantId, usagePlan, cost, nowMs: t0 + atMs } satisfies RateLimitRequest);

    it('admits the burst, then exactly the rate, and reports the state', async () => {
      store = await open();
      const tenant = newUuid();
      const first = await consume(tenant, 0);
      expect(first).toEqual({
        outcome: 'accepted',
        bucketRemaining: 9,
        bucketFullInMs: 200,
        nextTokenInMs: 0,
        quotaUsed: 1,
        quotaLimit: 25,
        quotaResetInMs: 10_000,
        retryAfterMs: 0,
      });
      for (let index = 1; index < 10; index += 1) expect((await consume(tenant, 0)).outcome).toBe('accepted');
      const refused = await consume(tenant, 0);
      expect(refused).toMatchObject({ outcome: 'rate_limited', bucketRemaining: 0, retryAfterMs: 200, quotaUsed: 10 });
      expect((await consume(tenant, 199)).outcome).toBe('rate_limited');
      expect((await consume(tenant, 200)).outcome).toBe('accepted');
      expect((await consume(tenant, 200)).outcome).toBe('rate_limited');
      const outcomes = [];
      for (let index = 0; index < 6; index += 1) outcomes.push((await consume(tenant, 1_200)).outcome);
      expect(outcomes).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'rate_limited']);
    });

    it('exhausts the quota, refuses with time to rollover, and starts afresh in the next window', async () => {
      const tenant = newUuid();
      let used = 0;
      for (let second = 0; used < 25; second += 2) {
        const decision = await consume(tenant, second * 1000, 5);
        expect(decision.outcome).toBe('accepted');
        used = decision.quotaUsed;
      }
      const exhausted = await consume(tenant, 9_000);
      expect(exhausted).toMatchObject({
        outcome: 'quota_exhausted',
        quotaUsed: 25,
        retryAfterMs: 1_000,
        quotaResetInMs: 1_000,
      });
      // t0 + 10 s is midnight UTC: a new DAY window.
      const rolled = await consume(tenant, 10_000);
      expect(rolled).toMatchObject({ outcome: 'accepted', quotaUsed: 1, quotaResetInMs: 86_400_000 });
    });

    it('keeps tenants independent', async () => {
      const noisy = newUuid();
      const quiet = newUuid();
      for (let index = 0; index < 12; index += 1) await consume(noisy, 0);
      expect((await consume(noisy, 0)).outcome).toBe('rate_limited');
      expect(await consume(quiet, 0)).toMatchObject({ outcome: 'accepted', bucketRemaining: 9 });
    });

    it('reads without taking at cost 0 and applies a changed plan to the existing bucket', async () => {
      const tenant = newUuid();
      await consume(tenant, 0, 4);
      expect(await consume(tenant, 0, 0)).toMatchObject({ outcome: 'accepted', bucketRemaining: 6, quotaUsed: 4 });
      const smaller = { ...plan, burst: 3, ratePerSecond: 1 };
      expect(await consume(tenant, 0, 1, smaller)).toMatchObject({ outcome: 'accepted', bucketRemaining: 2 });
    });
  });
}

contract('in-process', async () => new MemoryRateLimitStore());

describe.runIf(process.env.REDIS_URL)('with Redis', () => {
  contract('Redis', async () => {
    const store = new RedisRateLimitStore({
      url: process.env.REDIS_URL ?? '',
      fallbackPercent: 50,
      log: pino({ level: 'silent' }),
    });
    await store.waitUntilReady();
    expect(store.status().state).toBe('healthy');
    return store;
  });
});

describe('a Redis store that cannot reach Redis', () => {
  it('falls back to its share of the plan on this instance and raises the alert', async () => {
    // Port 1 on loopback refuses connections: this needs no Redis and runs everywhere.
    const store = new RedisRateLimitStore({
      url: 'redis://127.0.0.1:1',
      fallbackPercent: 50,
      log: pino({ level: 'silent' }),
    });
    try {
      await store.waitUntilReady();
      const status = store.status();
      expect(status.state).toBe('degraded');
      expect(status.alerts.map((alert) => alert.code)).toEqual(['RATE_LIMIT_STORE_UNREACHABLE']);
      const tenantId = newUuid();
      const outcomes = [];
      for (let index = 0; index < 6; index += 1) {
        outcomes.push((await store.consume({ tenantId, usagePlan: plan, cost: 1, nowMs: t0 })).outcome);
      }
      // Half of burst 10 and of rate 5: five at once, then two per second.
      expect(outcomes).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted', 'rate_limited']);
      const later = await store.consume({ tenantId, usagePlan: plan, cost: 1, nowMs: t0 + 500 });
      expect(later).toMatchObject({ outcome: 'accepted', bucketRemaining: 0 });
    } finally {
      await store.close();
    }
  });
});

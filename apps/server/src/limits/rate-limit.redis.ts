import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { assert } from '../platform/assert.ts';
import { limitsLimits } from './limits.limits.ts';
import type { LimitsAlert, RateDecision, RateOutcome } from './limits.types.ts';
import {
  MemoryRateLimitStore,
  type RateLimitRequest,
  type RateLimitStore,
  type RateLimitStoreStatus,
} from './rate-limit.store.ts';
import { decisionOf, quotaWindow } from './usage-plan.ts';

/**
 * The Redis store: one Lua script takes tokens and quota atomically, so any number of
 * instances sharing Redis enforce one combined limit exactly. The script mirrors
 * `stepBucket` (usage-plan.ts) in integer milli-tokens. Instances pass their own clock;
 * a clock behind the stored one refills nothing, so small skews only delay refill.
 *
 * When Redis cannot be reached the store never fails open and never fails the request: it
 * falls back to an in-process bucket holding `fallbackPercent` of the plan (so N instances
 * together stay near the plan when fallbackPercent ≈ 100 / N), logs the transition once, and
 * raises the RATE_LIMIT_STORE_UNREACHABLE alert until Redis answers again.
 */
const script = `
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3]) * 1000
local cost = tonumber(ARGV[4])
local quotaLimit = tonumber(ARGV[5])
local quotaTtlMs = tonumber(ARGV[6])
local state = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens = capacity
local updated = now
if state[1] then
  tokens = tonumber(state[1])
  updated = tonumber(state[2])
end
if now > updated then
  tokens = math.min(capacity, tokens + (now - updated) * rate)
  updated = now
end
tokens = math.min(capacity, tokens)
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local outcome = 0
if used + cost > quotaLimit then
  outcome = 2
elseif tokens < cost * 1000 then
  outcome = 1
else
  tokens = tokens - cost * 1000
  if cost > 0 then
    used = redis.call('INCRBY', KEYS[2], cost)
    redis.call('PEXPIRE', KEYS[2], quotaTtlMs)
  end
end
redis.call('HSET', KEYS[1], 't', string.format('%.0f', tokens), 'u', string.format('%.0f', updated))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 1000)
return {outcome, tokens, used}
`;
const scriptSha = createHash('sha1').update(script).digest('hex');
const outcomes: readonly RateOutcome[] = ['accepted', 'rate_limited', 'quota_exhausted'];
/** Quota keys outlive their window by this much, so a late instance still finds the count. */
const quotaKeyGraceMs = 86_400_000;

export interface RedisStoreOptions {
  url: string;
  /** Share of the plan (1..100) each instance enforces on its own while Redis is unreachable. */
  fallbackPercent: number;
  log: Logger;
}

function scaled(value: number, percent: number): number {
  return Math.max(1, Math.floor((value * percent) / 100));
}

export class RedisRateLimitStore implements RateLimitStore {
  readonly #redis: Redis;
  readonly #fallback = new MemoryRateLimitStore();
  readonly #fallbackPercent: number;
  readonly #log: Logger;
  #unreachable: LimitsAlert | null = null;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    assert(options.fallbackPercent >= 1 && options.fallbackPercent <= 100, 'fallbackPercent is 1..100');
    this.#fallbackPercent = options.fallbackPercent;
    this.#log = options.log.child({ component: 'rate-limit-store' });
    this.#redis = new Redis(options.url, {
      connectTimeout: limitsLimits.redisConnectTimeoutMs,
      commandTimeout: limitsLimits.redisCommandTimeoutMs,
      // Fail fast while disconnected (the fallback answers) instead of queueing requests.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => limitsLimits.redisReconnectIntervalMs,
      lazyConnect: false,
    });
    this.#redis.on('ready', () => this.#markReachable());
    this.#redis.on('error', (error: Error) => this.#markUnreachable(error));
    this.#redis.on('close', () => this.#markUnreachable(new Error('connection closed')));
  }

  /**
   * Waits up to the connect timeout for the first connection, so a starting instance does
   * not raise the alert needlessly; starts in fallback (alert raised) when Redis is not there.
   */
  async waitUntilReady(): Promise<void> {
    if (this.#redis.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#redis.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, limitsLimits.redisConnectTimeoutMs);
      this.#redis.once('ready', done);
    });
    const status: string = this.#redis.status;
    if (status !== 'ready') this.#markUnreachable(new Error(`redis is ${status} at start`));
  }

  async consume(request: RateLimitRequest): Promise<RateDecision> {
    if (this.#redis.status !== 'ready') {
      this.#markUnreachable(new Error(`redis is ${this.#redis.status}`));
      return this.#consumeFallback(request);
    }
    try {
      return await this.#consumeShared(request);
    } catch (error) {
      this.#markUnreachable(error instanceof Error ? error : new Error(String(error)));
      return this.#consumeFallback(request);
    }
  }

  async #consumeShared(request: RateLimitRequest): Promise<RateDecision> {
    const { tenantId, usagePlan, cost, nowMs } = request;
    const window = quotaWindow(usagePlan.quota.period, usagePlan.quota.offsetDays, nowMs);
    // The hash tag keeps a tenant's keys in one slot on Redis Cluster.
    const keys = [`ch:rl:{${tenantId}}:bucket`, `ch:rl:{${tenantId}}:quota:${window.startMs}`];
    const args = [
      nowMs,
      usagePlan.ratePerSecond,
      usagePlan.burst,
      cost,
      usagePlan.quota.limit,
      window.endMs - nowMs + quotaKeyGraceMs,
    ];
    const reply = await this.#redis.evalsha(scriptSha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
        return this.#redis.eval(script, keys.length, ...keys, ...args);
      }
      throw error;
    });
    assert(Array.isArray(reply) && reply.length === 3, 'rate-limit script returns three numbers');
    const [outcomeIndex, milliTokens, quotaUsed] = reply.map(Number);
    const outcome = outcomes[outcomeIndex ?? -1];
    assert(outcome !== undefined && milliTokens !== undefined && quotaUsed !== undefined, 'known script reply');
    return decisionOf(
      { ...usagePlan, cost, quotaLimit: usagePlan.quota.limit, quotaEndMs: window.endMs, nowMs },
      { outcome, milliTokens, quotaUsed },
    );
  }

  #consumeFallback(request: RateLimitRequest): RateDecision {
    const percent = this.#fallbackPercent;
    const burst = scaled(request.usagePlan.burst, percent);
    return this.#fallback.consumeNow({
      ...request,
      cost: Math.min(request.cost, burst),
      usagePlan: {
        ratePerSecond: Math.min(burst, scaled(request.usagePlan.ratePerSecond, percent)),
        burst,
        quota: { ...request.usagePlan.quota, limit: scaled(request.usagePlan.quota.limit, percent) },
      },
    });
  }

  #markUnreachable(error: Error): void {
    if (this.#unreachable !== null || this.#closed) return;
    this.#unreachable = {
      code: 'RATE_LIMIT_STORE_UNREACHABLE',
      message: `Redis is unreachable (${error.message}); each instance enforces ${this.#fallbackPercent}% of every plan on its own.`,
      since: new Date(),
    };
    this.#log.error(
      { err: error, alert: this.#unreachable.code },
      'rate-limit store unreachable: per-instance fallback',
    );
  }

  #markReachable(): void {
    if (this.#unreachable === null) return;
    this.#log.warn({ since: this.#unreachable.since }, 'rate-limit store reachable again');
    this.#unreachable = null;
  }

  status(): RateLimitStoreStatus {
    return {
      kind: 'redis',
      state: this.#unreachable === null ? 'healthy' : 'degraded',
      alerts: this.#unreachable === null ? [] : [this.#unreachable],
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#redis.disconnect();
  }
}

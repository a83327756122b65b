import { limitsLimits } from './limits.limits.ts';
import type { LimitsAlert, RateDecision, StoreState, UsagePlan } from './limits.types.ts';
import { type BucketState, decisionOf, quotaWindow, stepBucket } from './usage-plan.ts';

/**
 * Where rate-limit state lives, behind one interface with one semantics (`stepBucket`):
 * in process for a single instance (the default), in Redis when several instances must
 * enforce one combined limit. Stores return outcomes as data; they throw only on a bug.
 */
export interface RateLimitRequest {
  tenantId: string;
  usagePlan: Pick<UsagePlan, 'ratePerSecond' | 'burst' | 'quota'>;
  /** Whole tokens and quota units; 0 reads the state without taking anything. */
  cost: number;
  nowMs: number;
}

export interface RateLimitStoreStatus {
  kind: 'memory' | 'redis';
  state: StoreState;
  alerts: LimitsAlert[];
}

export interface RateLimitStore {
  consume(request: RateLimitRequest): Promise<RateDecision>;
  status(): RateLimitStoreStatus;
  close(): Promise<void>;
}

interface QuotaEntry {
  startMs: number;
  endMs: number;
  used: number;
}

/** The in-process store: exact for one instance; state is lost on restart (buckets refill). */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly #buckets = new Map<string, BucketState & { fullAtMs: number }>();
  readonly #quotas = new Map<string, QuotaEntry>();
  readonly #entriesMax: number;

  constructor(entriesMax: number = limitsLimits.memoryStoreEntriesMax) {
    this.#entriesMax = entriesMax;
  }

  async consume(request: RateLimitRequest): Promise<RateDecision> {
    return this.consumeNow(request);
  }

  /** Synchronous form, used by the Redis store's fallback. */
  consumeNow(request: RateLimitRequest): RateDecision {
    const { tenantId, usagePlan, cost, nowMs } = request;
    const window = quotaWindow(usagePlan.quota.period, usagePlan.quota.offsetDays, nowMs);
    const quota = this.#quotas.get(tenantId);
    const quotaUsed = quota !== undefined && quota.startMs === window.startMs ? quota.used : 0;
    const result = stepBucket(this.#buckets.get(tenantId) ?? null, {
      ratePerSecond: usagePlan.ratePerSecond,
      burst: usagePlan.burst,
      cost,
      quotaLimit: usagePlan.quota.limit,
      quotaUsed,
      nowMs,
    });
    if (this.#buckets.size + this.#quotas.size >= this.#entriesMax) this.#sweep(nowMs);
    const fullAtMs = nowMs + Math.ceil((usagePlan.burst * 1000 - result.bucket.milliTokens) / usagePlan.ratePerSecond);
    this.#buckets.set(tenantId, { ...result.bucket, fullAtMs });
    this.#quotas.set(tenantId, { startMs: window.startMs, endMs: window.endMs, used: result.quotaUsed });
    return decisionOf(
      { ...usagePlan, cost, quotaLimit: usagePlan.quota.limit, quotaEndMs: window.endMs, nowMs },
      { outcome: result.outcome, milliTokens: result.bucket.milliTokens, quotaUsed: result.quotaUsed },
    );
  }

  /** Forgets only state that is the same as no state: full buckets and ended quota windows. */
  #sweep(nowMs: number): void {
    for (const [key, bucket] of this.#buckets) if (bucket.fullAtMs <= nowMs) this.#buckets.delete(key);
    for (const [key, quota] of this.#quotas) if (quota.endMs <= nowMs) this.#quotas.delete(key);
  }

  status(): RateLimitStoreStatus {
    return { kind: 'memory', state: 'healthy', alerts: [] };
  }

  async close(): Promise<void> {}
}

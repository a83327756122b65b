import { assert } from '../platform/assert.ts';
import type { Tier } from '../tenancy/tiers.ts';
import type {
  EffectivePlan,
  PlanOverrides,
  QuotaPeriod,
  RateDecision,
  RateOutcome,
  UsagePlan,
} from './limits.types.ts';

/**
 * The rules of a usage plan, pure and shared by every store: the effective plan of a tenant,
 * the quota window of an instant, and one step of the token bucket with its quota. The Redis
 * store's Lua script mirrors `stepBucket` line for line; the contract tests run both.
 */

const dayMs = 86_400_000;

/** Merges a tenant's overrides over its tier. */
export function effectivePlanOf(tier: Tier, overrides: PlanOverrides): EffectivePlan {
  const plan = overrides.usagePlan ?? {};
  return {
    usagePlan: {
      ratePerSecond: plan.ratePerSecond ?? tier.usagePlan.ratePerSecond,
      burst: plan.burst ?? tier.usagePlan.burst,
      quota: { ...tier.usagePlan.quota, ...plan.quota },
      routeWeights: { ...tier.usagePlan.routeWeights, ...plan.routeWeights },
    },
    bounds: {
      statementTimeoutMs: tier.limits.statementTimeoutMs,
      inFlightRequestsMax: tier.limits.inFlightRequestsMax,
      databaseConnectionsMax: tier.limits.databaseConnectionsMax,
      ...overrides.limits,
    },
  };
}

/** Relations a plan must keep; returns the problems found (empty when valid). */
export function planProblems(plan: EffectivePlan): string[] {
  const { usagePlan } = plan;
  const problems: string[] = [];
  if (usagePlan.burst < usagePlan.ratePerSecond) problems.push('usagePlan.burst must be at least ratePerSecond');
  const { period, offsetDays } = usagePlan.quota;
  if (period === 'DAY' && offsetDays !== 0) problems.push('usagePlan.quota.offsetDays must be 0 for DAY');
  if (period === 'WEEK' && offsetDays > 6) problems.push('usagePlan.quota.offsetDays must be at most 6 for WEEK');
  return problems;
}

/**
 * Cost of one request of a route class under a plan: its weight (1 when unnamed), and at
 * most `burst`, so that a heavy class is slow under a small plan but never impossible.
 */
export function costOf(usagePlan: UsagePlan, routeClass: string): number {
  return Math.min(usagePlan.routeWeights[routeClass] ?? 1, usagePlan.burst);
}

/**
 * The quota window containing `nowMs`, in UTC: DAY from midnight; WEEK from the weekday
 * `offsetDays` (0 = Sunday, as API Gateway); MONTH from day `1 + offsetDays` of the month.
 */
export function quotaWindow(
  period: QuotaPeriod,
  offsetDays: number,
  nowMs: number,
): { startMs: number; endMs: number } {
  const now = new Date(nowMs);
  const midnightMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  if (period === 'DAY') return { startMs: midnightMs, endMs: midnightMs + dayMs };
  if (period === 'WEEK') {
    const daysSinceStart = (now.getUTCDay() - offsetDays + 7) % 7;
    const startMs = midnightMs - daysSinceStart * dayMs;
    return { startMs, endMs: startMs + 7 * dayMs };
  }
  const startDay = 1 + offsetDays;
  const monthShift = now.getUTCDate() >= startDay ? 0 : -1;
  const startMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + monthShift, startDay);
  const endMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + monthShift + 1, startDay);
  return { startMs, endMs };
}

/** Bucket state in integer milli-tokens, so refill arithmetic is exact. */
export interface BucketState {
  milliTokens: number;
  updatedAtMs: number;
}

export interface StepInput {
  ratePerSecond: number;
  burst: number;
  /** Request cost in whole tokens (and quota units); 0 only reads the state. */
  cost: number;
  quotaLimit: number;
  quotaUsed: number;
  nowMs: number;
}

export interface StepResult {
  bucket: BucketState;
  quotaUsed: number;
  outcome: RateOutcome;
}

/**
 * One request against a token bucket and its quota. The bucket starts full (`burst`) and
 * refills continuously at `ratePerSecond`, never beyond `burst`; a request takes `cost`
 * tokens when there are enough, else it is refused and takes nothing. The quota is checked
 * first: a request that would pass the limit is refused as quota exhausted, also without
 * taking tokens. A clock that goes backwards refills nothing.
 */
export function stepBucket(previous: BucketState | null, input: StepInput): StepResult {
  const capacityMilli = input.burst * 1000;
  const costMilli = input.cost * 1000;
  let milliTokens = previous?.milliTokens ?? capacityMilli;
  let updatedAtMs = previous?.updatedAtMs ?? input.nowMs;
  if (input.nowMs > updatedAtMs) {
    // ratePerSecond tokens per second is exactly ratePerSecond milli-tokens per millisecond.
    milliTokens = Math.min(capacityMilli, milliTokens + (input.nowMs - updatedAtMs) * input.ratePerSecond);
    updatedAtMs = input.nowMs;
  }
  milliTokens = Math.min(capacityMilli, milliTokens);
  if (input.quotaUsed + input.cost > input.quotaLimit) {
    return { bucket: { milliTokens, updatedAtMs }, quotaUsed: input.quotaUsed, outcome: 'quota_exhausted' };
  }
  if (milliTokens < costMilli) {
    return { bucket: { milliTokens, updatedAtMs }, quotaUsed: input.quotaUsed, outcome: 'rate_limited' };
  }
  return {
    bucket: { milliTokens: milliTokens - costMilli, updatedAtMs },
    quotaUsed: input.quotaUsed + input.cost,
    outcome: 'accepted',
  };
}

/** Turns a store's raw state after a step into the decision the HTTP layer renders. */
export function decisionOf(
  input: { ratePerSecond: number; burst: number; cost: number; quotaLimit: number; quotaEndMs: number; nowMs: number },
  state: { outcome: RateOutcome; milliTokens: number; quotaUsed: number },
): RateDecision {
  assert(input.ratePerSecond > 0, 'a plan has a positive rate');
  const capacityMilli = input.burst * 1000;
  const quotaResetInMs = Math.max(0, input.quotaEndMs - input.nowMs);
  const bucketFullInMs = Math.ceil((capacityMilli - state.milliTokens) / input.ratePerSecond);
  let retryAfterMs = 0;
  if (state.outcome === 'rate_limited') {
    retryAfterMs = Math.ceil((input.cost * 1000 - state.milliTokens) / input.ratePerSecond);
  } else if (state.outcome === 'quota_exhausted') {
    retryAfterMs = quotaResetInMs;
  }
  return {
    outcome: state.outcome,
    bucketRemaining: Math.floor(state.milliTokens / 1000),
    bucketFullInMs,
    nextTokenInMs: Math.max(0, Math.ceil((1000 - state.milliTokens) / input.ratePerSecond)),
    quotaUsed: state.quotaUsed,
    quotaLimit: input.quotaLimit,
    quotaResetInMs,
    retryAfterMs,
  };
}

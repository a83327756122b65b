/**
 * Plain data of the limits domain: usage plans, their per-tenant overrides, the decisions a
 * rate-limit store returns, and the counts shown to the operator. No I/O here.
 */

/** How a route is costed and prioritised; declared in the route's `config.routeClass`. */
export type RouteClass = 'read' | 'write' | 'report' | 'batch';
export const routeClasses: readonly RouteClass[] = ['read', 'write', 'report', 'batch'];

export type QuotaPeriod = 'DAY' | 'WEEK' | 'MONTH';

export interface QuotaPlan {
  /** Weighted requests per period. */
  limit: number;
  period: QuotaPeriod;
  /** Days into the period at which it starts (WEEK: 0 = Sunday; MONTH: 0 = the 1st). */
  offsetDays: number;
}

/** API Gateway-style usage plan: a token bucket (rate + burst) and a quota. */
export interface UsagePlan {
  ratePerSecond: number;
  burst: number;
  quota: QuotaPlan;
  /** Cost of one request by route class; a class not named costs 1. */
  routeWeights: Record<string, number>;
}

/** Per-tenant bulkheads and the statement timeout of its scope. */
export interface TenantBounds {
  statementTimeoutMs: number;
  inFlightRequestsMax: number;
  databaseConnectionsMax: number;
}

/** What a tenant actually gets: its tier with its overrides applied. */
export interface EffectivePlan {
  usagePlan: UsagePlan;
  bounds: TenantBounds;
}

/** The operator's per-tenant overrides (`tenants.plan_overrides`); every field optional. */
export interface PlanOverrides {
  usagePlan?: {
    ratePerSecond?: number;
    burst?: number;
    quota?: Partial<QuotaPlan>;
    routeWeights?: Record<string, number>;
  };
  limits?: Partial<TenantBounds>;
}

export type RateOutcome = 'accepted' | 'rate_limited' | 'quota_exhausted';

/** The store's answer for one request: the outcome and the state after it. */
export interface RateDecision {
  outcome: RateOutcome;
  /** Whole tokens left in the bucket. */
  bucketRemaining: number;
  /** Milliseconds until the bucket is full again. */
  bucketFullInMs: number;
  /** Milliseconds until the bucket holds at least one whole token (0 when it does). */
  nextTokenInMs: number;
  quotaUsed: number;
  quotaLimit: number;
  /** Milliseconds until the quota window rolls over. */
  quotaResetInMs: number;
  /** When refused: milliseconds until the request could succeed. */
  retryAfterMs: number;
}

export type StoreState = 'healthy' | 'degraded';

/** An operator-visible alert raised by the limits domain. */
export interface LimitsAlert {
  code: 'RATE_LIMIT_STORE_UNREACHABLE' | 'INTERACTIVE_SIGNAL_LOST';
  message: string;
  since: Date;
}

/** Per-tenant counters of this instance since it started. */
export interface TenantLimitCounts {
  accepted: number;
  rateLimited: number;
  quotaExhausted: number;
  concurrencyLimited: number;
  connectionsBusy: number;
  shed: number;
  inFlight: number;
  databaseConnectionsHeld: number;
}

/** Queued and running batch work of a tenant; supplied by the jobs domain when present. */
export interface TenantJobCounts {
  queued: number;
  running: number;
}

/** The hook through which the jobs domain reports its per-tenant counts. */
export interface JobCountsSource {
  countsByTenant(): Promise<ReadonlyMap<string, TenantJobCounts>>;
}

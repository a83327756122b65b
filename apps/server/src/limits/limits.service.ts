import type { Logger } from 'pino';
import { assert } from '../platform/assert.ts';
import type { TenantContext, TenantScopeGate, TenantScopePass } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import type { TierCatalogue } from '../tenancy/tiers.ts';
import { BatchYield, type BatchYieldCounts } from './batch-yield.ts';
import { TenantSemaphores } from './bulkhead.ts';
import type { InteractiveSignal } from './interactive-signal.ts';
import { limitsLimits } from './limits.limits.ts';
import type { PlanStore } from './limits.store.ts';
import type {
  EffectivePlan,
  JobCountsSource,
  LimitsAlert,
  PlanOverrides,
  RateDecision,
  RouteClass,
  TenantJobCounts,
  TenantLimitCounts,
} from './limits.types.ts';
import { PenaltyBox } from './penalty-box.ts';
import { parseStoredOverrides } from './plan-overrides.schema.ts';
import type { RateLimitStore, RateLimitStoreStatus } from './rate-limit.store.ts';
import { costOf, effectivePlanOf, planProblems } from './usage-plan.ts';

/** Global load-shedding settings (configuration). */
export interface SheddingSettings {
  /** Requests in flight on this instance at once; interactive work is shed only at this level. */
  requestsInFlightMax: number;
  /** Report-class requests are shed once in-flight requests reach this share of the budget. */
  shedReportsAtPercent: number;
  /** Batch work is shed once in-flight requests reach this share of the budget. */
  shedBatchAtPercent: number;
  /**
   * Shared-database connections shared out among the pooled tenants active on this instance
   * in the last second or two, when there are several: each may hold at most
   * max(1, budget / active) at once, within its own cap (see `enterScope`).
   */
  connectionShareBudget: number;
  /** The share of the instance's time batch transactions may take while firms use it (batch-yield.ts). */
  batchSharePercent: number;
}

export type Clock = () => number;

export interface LimitsServiceOptions {
  tiers: TierCatalogue;
  plans: PlanStore;
  rates: RateLimitStore;
  shedding: SheddingSettings;
  log: Logger;
  /** The limiter's clock in milliseconds; tests inject one to step time exactly. */
  clock?: Clock;
  /** Interactive load across instances (interactive-signal.ts); without it, batch work sees this instance only. */
  signal?: Pick<InteractiveSignal, 'announce' | 'busyElsewhere' | 'alerts' | 'close'>;
}

/** The outcome of admitting one request: data, rendered by the HTTP layer. */
export type Admission =
  | { outcome: 'admitted'; decision: RateDecision | null; release: () => void }
  | { outcome: 'refused'; decision: RateDecision | null; error: AppError };

type Refusal = Extract<Admission, { outcome: 'refused' }>;
type TenantAdmission = { outcome: 'accepted'; decision: RateDecision } | Refusal;

export interface TenantPlanView {
  tenantId: string;
  tier: string;
  overrides: PlanOverrides;
  effective: EffectivePlan;
}

export interface LimitsSnapshot {
  instance: { requestsInFlight: number } & SheddingSettings & BatchYieldCounts;
  store: RateLimitStoreStatus;
  alerts: LimitsAlert[];
  tenants: Array<{ tenantId: string; counts: TenantLimitCounts; jobs: TenantJobCounts | null }>;
}

function zeroCounts(): TenantLimitCounts {
  return {
    accepted: 0,
    rateLimited: 0,
    quotaExhausted: 0,
    concurrencyLimited: 0,
    connectionsBusy: 0,
    shed: 0,
    inFlight: 0,
    databaseConnectionsHeld: 0,
  };
}

function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * Usage plans, bulkheads and load shedding. Request admission runs in this order, so a
 * refused request costs the tenant nothing it did not use: shed under global overload
 * (by route class), then the tenant's in-flight cap, then its token bucket and quota.
 * Counts are per instance since start.
 */
export class LimitsService implements TenantScopeGate {
  readonly #tiers: TierCatalogue;
  readonly #plans: PlanStore;
  readonly #rates: RateLimitStore;
  readonly #shedding: SheddingSettings;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #planCache = new Map<string, { plan: EffectivePlan; expiresAtMs: number }>();
  readonly #inFlight = new TenantSemaphores();
  readonly #connections = new TenantSemaphores();
  readonly #counts = new Map<string, TenantLimitCounts>();
  readonly #penalties = new PenaltyBox(limitsLimits.penaltyEntriesMax, limitsLimits.planCacheTtlMs);
  #requestsInFlight = 0;
  /** Admitted requests of every class but batch are what batch work gives way to. */
  readonly #batch: BatchYield;
  readonly #signal: LimitsServiceOptions['signal'];
  #jobCounts: JobCountsSource | null = null;
  readonly #active = new ActiveTenants(limitsLimits.activeTenantWindowMs);

  constructor(options: LimitsServiceOptions) {
    this.#tiers = options.tiers;
    this.#plans = options.plans;
    this.#rates = options.rates;
    this.#shedding = options.shedding;
    this.#log = options.log;
    this.#clock = options.clock ?? Date.now;
    this.#signal = options.signal;
    this.#batch = new BatchYield({
      batchSharePercent: options.shedding.batchSharePercent,
      busyWindowMs: limitsLimits.batchBusyWindowMs,
      paceWaitMsMax: limitsLimits.batchPaceWaitMsMax,
      busyElsewhere: (windowMs) => this.#signal?.busyElsewhere(windowMs) ?? false,
    });
    for (const tier of options.tiers.list()) {
      const problems = planProblems(effectivePlanOf(tier, {}));
      assert(problems.length === 0, `tier ${tier.name}: ${problems.join('; ')}`);
    }
  }

  /** The jobs domain registers here to add queued and running counts to the operator view. */
  setJobCountsSource(source: JobCountsSource): void {
    this.#jobCounts = source;
  }

  /**
   * Before authentication: the standing refusal of a caller (its bearer credential) that
   * was refused moments ago and is certain to be refused again; null when there is none.
   * Refusals: RATE_LIMITED, QUOTA_EXHAUSTED.
   */
  refuseEarly(callerKey: string): { error: AppError; decision: RateDecision; burst: number } | null {
    const penalty = this.#penalties.find(callerKey, this.#clock());
    if (penalty === null) return null;
    const counts = this.#countsOf(penalty.tenantId);
    const retry = { retryAfterSeconds: retryAfterSeconds(penalty.decision.retryAfterMs) };
    if (penalty.outcome === 'rate_limited') counts.rateLimited += 1;
    else counts.quotaExhausted += 1;
    const code = penalty.outcome === 'rate_limited' ? 'RATE_LIMITED' : 'QUOTA_EXHAUSTED';
    return { error: new AppError(code, undefined, retry), decision: penalty.decision, burst: penalty.burst };
  }

  /**
   * Admits or refuses one request. `tenant` is null for operator and anonymous routes,
   * which are only subject to shedding; `callerKey` (the verified credential) lets a
   * refusal answer that caller's next requests early (`refuseEarly`).
   * Refusals: SERVICE_OVERLOADED, TENANT_CONCURRENCY_LIMITED, RATE_LIMITED, QUOTA_EXHAUSTED.
   */
  async admit(tenant: TenantContext | null, routeClass: RouteClass, callerKey?: string): Promise<Admission> {
    if (this.#requestsInFlight >= this.#shedThreshold(routeClass)) {
      if (tenant) this.#countsOf(tenant.tenantId).shed += 1;
      return await this.#refuse(
        tenant,
        new AppError('SERVICE_OVERLOADED', `Shed ${routeClass} request.`, {
          retryAfterSeconds: limitsLimits.retryAfterSecondsOverloaded,
        }),
      );
    }
    this.#requestsInFlight += 1;
    const interactive = routeClass !== 'batch';
    if (tenant === null) return { outcome: 'admitted', decision: null, release: this.#releaser(null, interactive) };
    let result: TenantAdmission;
    try {
      result = await this.#admitTenant(tenant, routeClass, callerKey);
    } catch (error) {
      this.#requestsInFlight -= 1;
      throw error;
    }
    if (result.outcome === 'refused') {
      this.#requestsInFlight -= 1;
      return result;
    }
    return { outcome: 'admitted', decision: result.decision, release: this.#releaser(tenant.tenantId, interactive) };
  }

  /**
   * Batch work's turn on this instance, before each job transaction: at once when no firm is
   * using the instance; otherwise within the batch share and in a lull between interactive
   * requests (batch-yield.ts). Returns the turn's end, to call when the transaction is over.
   */
  async batchTurn(lullWaitMsMax: number): Promise<() => void> {
    return await this.#batch.turn(lullWaitMsMax);
  }

  /** The tenant's bulkhead, then its bucket and quota; holds an in-flight slot when accepted. */
  async #admitTenant(tenant: TenantContext, routeClass: RouteClass, callerKey?: string): Promise<TenantAdmission> {
    const { tenantId } = tenant;
    const plan = await this.planOf(tenant);
    const counts = this.#countsOf(tenantId);
    if (!this.#inFlight.tryAcquire(tenantId, plan.bounds.inFlightRequestsMax)) {
      counts.concurrencyLimited += 1;
      return await this.#refuse(
        tenant,
        new AppError('TENANT_CONCURRENCY_LIMITED', undefined, {
          retryAfterSeconds: limitsLimits.retryAfterSecondsOverloaded,
        }),
      );
    }
    const cost = costOf(plan.usagePlan, routeClass);
    let decision: RateDecision;
    const nowMs = this.#clock();
    try {
      decision = await this.#rates.consume({ tenantId, usagePlan: plan.usagePlan, cost, nowMs });
    } catch (error) {
      this.#inFlight.release(tenantId);
      throw error;
    }
    if (decision.outcome === 'accepted') {
      counts.accepted += 1;
      counts.inFlight += 1;
      return { outcome: 'accepted', decision };
    }
    this.#inFlight.release(tenantId);
    // A degraded store answers from a per-instance share; its refusals say nothing about the shared bucket.
    if (callerKey !== undefined && this.#rates.status().state === 'healthy') {
      this.#penalties.record(callerKey, tenantId, plan.usagePlan.burst, decision, nowMs);
    }
    const retry = { retryAfterSeconds: retryAfterSeconds(decision.retryAfterMs) };
    if (decision.outcome === 'rate_limited') {
      counts.rateLimited += 1;
      return { outcome: 'refused', decision, error: new AppError('RATE_LIMITED', undefined, retry) };
    }
    counts.quotaExhausted += 1;
    return { outcome: 'refused', decision, error: new AppError('QUOTA_EXHAUSTED', undefined, retry) };
  }

  /** A refusal before the bucket was consulted still reports the bucket, read at no cost. */
  async #refuse(tenant: TenantContext | null, error: AppError): Promise<Refusal> {
    if (tenant === null) return { outcome: 'refused', decision: null, error };
    const plan = await this.planOf(tenant);
    const decision = await this.#rates.consume({
      tenantId: tenant.tenantId,
      usagePlan: plan.usagePlan,
      cost: 0,
      nowMs: this.#clock(),
    });
    return { outcome: 'refused', decision, error };
  }

  #releaser(tenantId: string | null, interactive: boolean): () => void {
    let released = false;
    const interactiveEnded = interactive ? this.#batch.interactiveStarted() : null;
    if (interactive) this.#signal?.announce();
    return () => {
      if (released) return;
      released = true;
      this.#requestsInFlight -= 1;
      interactiveEnded?.();
      if (tenantId === null) return;
      this.#inFlight.release(tenantId);
      this.#countsOf(tenantId).inFlight -= 1;
    };
  }

  #shedThreshold(routeClass: RouteClass): number {
    const { requestsInFlightMax, shedReportsAtPercent, shedBatchAtPercent } = this.#shedding;
    if (routeClass === 'report') return Math.floor((requestsInFlightMax * shedReportsAtPercent) / 100);
    if (routeClass === 'batch') return Math.floor((requestsInFlightMax * shedBatchAtPercent) / 100);
    return requestsInFlightMax;
  }

  /**
   * The tenant scope's gate: a slot of the tenant's database connections (bounded wait) and
   * its statement timeout. Errors: DATABASE_CONNECTIONS_BUSY.
   */
  async enterScope(tenant: TenantContext): Promise<TenantScopePass> {
    const { tenantId } = tenant;
    const plan = await this.planOf(tenant);
    const granted = await this.#connections.acquire(
      tenantId,
      Math.min(plan.bounds.databaseConnectionsMax, this.#connectionShare(tenant)),
      limitsLimits.connectionWaitMsMax,
      limitsLimits.connectionWaitersMax,
    );
    const counts = this.#countsOf(tenantId);
    if (!granted) {
      counts.connectionsBusy += 1;
      throw new AppError('DATABASE_CONNECTIONS_BUSY', undefined, {
        retryAfterSeconds: limitsLimits.retryAfterSecondsOverloaded,
      });
    }
    counts.databaseConnectionsHeld += 1;
    let left = false;
    return {
      statementTimeoutMs: plan.bounds.statementTimeoutMs,
      leave: () => {
        assert(!left, 'a scope pass is returned once');
        left = true;
        counts.databaseConnectionsHeld -= 1;
        this.#connections.release(tenantId);
      },
    };
  }

  /**
   * How many shared-database connections a pooled tenant may hold now. Alone on the instance,
   * any number (its own cap applies). Beside other active pooled tenants, an even share of
   * the budget, and always one (a firm in its own database has its own pool and no share):
   * each concurrent query of one firm takes CPU from every other firm's queries, so a firm
   * whose burst held its whole cap slowed the others' requests several times over (the
   * noisy-neighbour harness: quiet p99 under the flood 70-87 ms with a cap of 4, 36-38 ms
   * at one), while a firm with the instance to itself loses nothing.
   */
  #connectionShare(tenant: TenantContext): number {
    if (tenant.placement.model !== 'pool') return Number.POSITIVE_INFINITY;
    const active = this.#active.touch(tenant.tenantId, this.#clock());
    if (active < 2) return Number.POSITIVE_INFINITY;
    return Math.max(1, Math.floor(this.#shedding.connectionShareBudget / active));
  }

  /** The tenant's effective plan, cached briefly; malformed stored overrides are ignored and logged. */
  async planOf(tenant: TenantContext): Promise<EffectivePlan> {
    const nowMs = Date.now();
    const cached = this.#planCache.get(tenant.tenantId);
    if (cached && cached.expiresAtMs > nowMs) return cached.plan;
    const stored = await this.#plans.find(tenant.tenantId);
    const plan = this.#resolve(tenant.tenantId, stored?.tier ?? tenant.tier, stored?.overrides ?? {});
    if (this.#planCache.size >= limitsLimits.planCacheEntriesMax) this.#planCache.clear();
    this.#planCache.set(tenant.tenantId, { plan, expiresAtMs: nowMs + limitsLimits.planCacheTtlMs });
    return plan;
  }

  #resolve(tenantId: string, tierName: string, stored: unknown): EffectivePlan {
    const tier = this.#tiers.find(tierName);
    assert(tier !== undefined, `tenant ${tenantId} is on tier ${tierName}, which the catalogue lacks`);
    const overrides = parseStoredOverrides(stored);
    const plan = effectivePlanOf(tier, overrides ?? {});
    const problems = overrides === null ? ['malformed'] : planProblems(plan);
    if (problems.length === 0) return plan;
    this.#log.warn({ tenantId, problems }, 'ignoring plan overrides that no longer give a valid plan');
    return effectivePlanOf(tier, {});
  }

  /** Operator view of a tenant's plan. Errors: TENANT_NOT_FOUND. */
  async getPlan(tenantId: string): Promise<TenantPlanView> {
    const stored = await this.#plans.find(tenantId);
    if (!stored) throw new AppError('TENANT_NOT_FOUND');
    return this.#view(tenantId, stored.tier, stored.overrides);
  }

  /**
   * Replaces a tenant's overrides (`{}` clears them); takes effect on this instance at once
   * and on others within the plan cache's lifetime. Errors: TENANT_NOT_FOUND, PLAN_OVERRIDES_INVALID.
   */
  async setOverrides(tenantId: string, overrides: PlanOverrides): Promise<TenantPlanView> {
    const current = await this.#plans.find(tenantId);
    if (!current) throw new AppError('TENANT_NOT_FOUND');
    const tier = this.#tiers.find(current.tier);
    assert(tier !== undefined, `tenant ${tenantId} is on tier ${current.tier}, which the catalogue lacks`);
    const problems = planProblems(effectivePlanOf(tier, overrides));
    if (problems.length > 0) throw new AppError('PLAN_OVERRIDES_INVALID', problems.join('; '), { problems });
    const stored = await this.#plans.setOverrides(tenantId, overrides);
    if (!stored) throw new AppError('TENANT_NOT_FOUND');
    this.#planCache.delete(tenantId);
    this.#penalties.forgetTenant(tenantId);
    this.#log.info({ tenantId, overrides }, 'plan overrides set');
    return this.#view(tenantId, stored.tier, stored.overrides);
  }

  #view(tenantId: string, tierName: string, stored: unknown): TenantPlanView {
    return {
      tenantId,
      tier: tierName,
      overrides: parseStoredOverrides(stored) ?? {},
      effective: this.#resolve(tenantId, tierName, stored),
    };
  }

  /** Counts of this instance for the operator, with the jobs domain's counts when it is wired. */
  async snapshot(): Promise<LimitsSnapshot> {
    const jobs = this.#jobCounts ? await this.#jobCounts.countsByTenant() : null;
    const tenantIds = new Set([...this.#counts.keys(), ...(jobs?.keys() ?? [])]);
    const store = this.#rates.status();
    return {
      instance: {
        requestsInFlight: this.#requestsInFlight,
        ...this.#shedding,
        ...this.#batch.counts(),
      },
      store,
      alerts: [...store.alerts, ...(this.#signal?.alerts() ?? [])],
      tenants: [...tenantIds].map((tenantId) => ({
        tenantId,
        counts: { ...(this.#counts.get(tenantId) ?? zeroCounts()) },
        jobs: jobs === null ? null : (jobs.get(tenantId) ?? { queued: 0, running: 0 }),
      })),
    };
  }

  #countsOf(tenantId: string): TenantLimitCounts {
    let counts = this.#counts.get(tenantId);
    if (counts === undefined) {
      counts = zeroCounts();
      this.#counts.set(tenantId, counts);
    }
    return counts;
  }

  async close(): Promise<void> {
    await this.#signal?.close();
    await this.#rates.close();
  }
}

/**
 * The tenants that entered a database scope within the last one or two windows, counted in
 * O(1) per call: tenants are kept in the current window's set and the previous one's.
 */
class ActiveTenants {
  readonly #windowMs: number;
  #window = Number.NEGATIVE_INFINITY;
  #current = new Set<string>();
  #previous = new Set<string>();
  #count = 0;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Marks the tenant active at `nowMs` and returns how many tenants are active. */
  touch(tenantId: string, nowMs: number): number {
    const window = Math.floor(nowMs / this.#windowMs);
    if (window !== this.#window) {
      this.#previous = window === this.#window + 1 ? this.#current : new Set();
      this.#current = new Set();
      this.#count = this.#previous.size;
      this.#window = window;
    }
    if (!this.#current.has(tenantId)) {
      this.#current.add(tenantId);
      if (!this.#previous.has(tenantId)) this.#count += 1;
    }
    return this.#count;
  }
}

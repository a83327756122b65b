import type { Logger } from 'pino';
import { systemOrigin } from '../audit/audit.service.ts';
import {
  allEntities,
  type EntityScope,
  type RequestOrigin,
  type TenantContext,
} from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { type ClusterLoad, type HotTenantReport, rankHotTenants } from './hot-tenants.ts';
import type { ProvisioningService } from './provisioning/provisioning.service.ts';
import type { ProvisioningPlan, StepLogEntry } from './provisioning/provisioning.types.ts';
import { tenancyLimits } from './tenancy.limits.ts';
import type { TenancyStore, TenantListFilter } from './tenancy.store.ts';
import type { NewTenant, TenantRecord } from './tenancy.types.ts';
import type { TierCatalogue } from './tiers.ts';

/** Where the hot-tenant report reads load from (the metering rollups). */
export interface LoadSource {
  loads(from: Date, to: Date): Promise<ClusterLoad[]>;
}

/** The scope for a tenant; the control plane and owners see every client entity. */
export function tenantContextOf(record: TenantRecord, entityScope: EntityScope = allEntities): TenantContext {
  return { tenantId: record.id, tier: record.tier, placement: record.placement, entityScope };
}

/** A status change asked of a tenant: the record after it, and whether it changed anything. */
export interface StatusChange {
  record: TenantRecord;
  changed: boolean;
}

export interface TenantPage {
  items: TenantRecord[];
  nextAfterId: string | null;
}

/** The control plane's tenant registry: onboarding (through provisioning plans), lookup, suspension. */
export class TenancyService {
  readonly #store: TenancyStore;
  readonly #provisioning: ProvisioningService;
  readonly #log: Logger;
  readonly #loads: LoadSource;
  readonly #tiers: TierCatalogue;
  readonly #cache = new Map<string, { record: TenantRecord; expiresAtMs: number }>();

  constructor(
    store: TenancyStore,
    provisioning: ProvisioningService,
    loads: LoadSource,
    tiers: TierCatalogue,
    log: Logger,
  ) {
    this.#store = store;
    this.#provisioning = provisioning;
    this.#loads = loads;
    this.#tiers = tiers;
    this.#log = log;
  }

  /** Tenants on shared clusters whose share of the load over the last `hours` suggests a dedicated database. */
  async hotTenants(hours: number, sharePercent: number, now: Date = new Date()): Promise<HotTenantReport> {
    const to = new Date(Math.ceil(now.getTime() / 3_600_000) * 3_600_000);
    const from = new Date(to.getTime() - hours * 3_600_000);
    const loads = await this.#loads.loads(from, to);
    return {
      from,
      to,
      sharePercent,
      tenants: rankHotTenants(loads, sharePercent, this.#tiers, tenancyLimits.hotTenantsMax),
    };
  }

  /**
   * Onboards a firm by applying its provisioning plan. Errors: TENANT_UNKNOWN_TIER,
   * IDENTITY_PASSWORD_TOO_SHORT, PLAN_OVERRIDES_INVALID, TENANT_NO_SILO_CLUSTER,
   * TENANT_NAME_TAKEN, TENANT_PROVISIONING_FAILED.
   */
  async createTenant(input: NewTenant, origin: RequestOrigin = systemOrigin): Promise<TenantRecord> {
    return await this.#provisioning.create(input, origin);
  }

  /** The plan `createTenant` would apply, with nothing written (plan mode). Errors: as createTenant's checks. */
  async planTenant(input: NewTenant): Promise<ProvisioningPlan> {
    return await this.#provisioning.plan(input);
  }

  /** Applies a tenant's provisioning plan again. Errors: TENANT_NOT_FOUND, TENANT_PROVISIONING_FAILED. */
  async applyProvisioning(id: string): Promise<TenantRecord> {
    const record = await this.#provisioning.apply(id);
    this.#cache.delete(id);
    return record;
  }

  async provisioningSteps(id: string): Promise<StepLogEntry[]> {
    return await this.#provisioning.steps(id);
  }

  async getTenant(id: string): Promise<TenantRecord | null> {
    return await this.#store.findById(id);
  }

  async listTenants(filter: TenantListFilter): Promise<TenantPage> {
    const items = await this.#store.list({ ...filter, limit: filter.limit + 1 });
    const page = items.slice(0, filter.limit);
    return { items: page, nextAfterId: items.length > filter.limit ? (page.at(-1)?.id ?? null) : null };
  }

  /**
   * Suspends an active tenant: its requests and jobs are refused with TENANT_SUSPENDED, its
   * data stays. Takes effect on this instance at once and on others within the registry
   * cache's lifetime. `changed` is false when the tenant was suspended already.
   * Errors: TENANT_NOT_FOUND, TENANT_STATUS_CONFLICT.
   */
  async suspend(id: string, reason: string | null): Promise<StatusChange> {
    const change = await this.#transition(id, ['active'], 'suspended', reason);
    if (change.changed) this.#log.warn({ tenantId: id, reason }, 'tenant suspended');
    return change;
  }

  /**
   * Resumes a suspended tenant; `changed` is false when it was active already.
   * Errors: TENANT_NOT_FOUND, TENANT_STATUS_CONFLICT.
   */
  async resume(id: string): Promise<StatusChange> {
    const change = await this.#transition(id, ['suspended'], 'active', null);
    if (change.changed) this.#log.info({ tenantId: id }, 'tenant resumed');
    return change;
  }

  async #transition(
    id: string,
    from: readonly TenantRecord['status'][],
    to: TenantRecord['status'],
    reason: string | null,
  ): Promise<StatusChange> {
    const moved = await this.#store.transition(id, from, to, reason);
    this.#cache.delete(id);
    if (moved) return { record: moved, changed: true };
    const current = await this.#store.findById(id);
    if (!current) throw new AppError('TENANT_NOT_FOUND');
    // Asking for the state the tenant is already in is not an error: the call is idempotent.
    if (current.status === to) return { record: current, changed: false };
    throw new AppError('TENANT_STATUS_CONFLICT', `The tenant is ${current.status}; it cannot become ${to}.`, {
      status: current.status,
    });
  }

  /** Drops the cached registry row, so this instance sees a placement or status change at once. */
  forget(id: string): void {
    this.#cache.delete(id);
  }

  /** Cached registry lookup for the request path. */
  async lookup(id: string): Promise<TenantRecord | null> {
    const nowMs = Date.now();
    const cached = this.#cache.get(id);
    if (cached && cached.expiresAtMs > nowMs) return cached.record;
    const record = await this.#store.findById(id);
    if (this.#cache.size >= tenancyLimits.directoryCacheEntriesMax) this.#cache.clear();
    if (record) this.#cache.set(id, { record, expiresAtMs: nowMs + tenancyLimits.directoryCacheTtlMs });
    return record;
  }
}

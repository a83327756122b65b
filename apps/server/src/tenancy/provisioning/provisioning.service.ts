import type { Logger } from 'pino';
import { systemOrigin } from '../../audit/audit.service.ts';
import { hashPassword, type PasswordPolicy } from '../../identity/passwords.ts';
import type { PlanOverrides } from '../../limits/limits.types.ts';
import { effectivePlanOf, planProblems } from '../../limits/usage-plan.ts';
import type { ClusterDirectory } from '../../platform/database/clusters.ts';
import type { RequestOrigin, TenantPlacement } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId, newUuid } from '../../platform/ids.ts';
import type { TenancyStore } from '../tenancy.store.ts';
import type { TenantRecord } from '../tenancy.types.ts';
import { sharedPoolPlacement, type Tier, type TierCatalogue } from '../tiers.ts';
import {
  planSteps,
  type StepContext,
  type StepDependencies,
  type StepEffect,
  stepEffects,
} from './provisioning.steps.ts';
import type { ProvisioningStore, StepResult } from './provisioning.store.ts';
import type {
  ProvisioningPlan,
  ProvisioningRequest,
  ProvisioningStepName,
  StepLogEntry,
} from './provisioning.types.ts';

/**
 * Onboarding as code (issue 3, item 2). `plan` validates a request and shows the steps
 * without writing anything; `create` validates, then applies the plan step by step; `apply`
 * applies a registered tenant's plan again — after a crash, a failed step or an operator's
 * repair — and finishes whatever is missing. Steps are idempotent, so applying twice equals
 * applying once, and two applies racing each other converge (the loser may fail and is
 * simply applied again).
 */

/** Test hook: throws to simulate a crash just before or just after a step's effect. */
export type FaultInjector = (step: ProvisioningStepName, phase: 'before' | 'after') => void;

export interface ProvisioningDependencies extends StepDependencies {
  tenants: TenancyStore;
  store: ProvisioningStore;
  clusters: ClusterDirectory;
  tiers: TierCatalogue;
  passwords: PasswordPolicy;
  log: Logger;
  faults?: FaultInjector;
}

interface Prepared {
  record: TenantRecord;
  context: StepContext;
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export class ProvisioningService {
  readonly #deps: ProvisioningDependencies;
  readonly #effects: Record<ProvisioningStepName, StepEffect>;

  constructor(deps: ProvisioningDependencies) {
    this.#deps = deps;
    this.#effects = stepEffects(deps);
  }

  /**
   * Validates an onboarding request and returns its plan without applying anything.
   * Errors: TENANT_UNKNOWN_TIER, IDENTITY_PASSWORD_TOO_SHORT, PLAN_OVERRIDES_INVALID,
   * TENANT_NO_SILO_CLUSTER, TENANT_NAME_TAKEN.
   */
  async plan(request: ProvisioningRequest): Promise<ProvisioningPlan> {
    const tier = this.#validate(request);
    const name = request.name.trim();
    if (await this.#deps.tenants.nameTaken(name)) {
      throw new AppError('TENANT_NAME_TAKEN', `A tenant named "${name}" already exists.`);
    }
    const tenantId = newUuid();
    const placement = await this.#placementFor(tier, tenantId);
    const record = this.#newRecord(request, tenantId, tier, placement);
    const steps = planSteps(record, tier, request.admin.email.toLowerCase(), request.plan ?? {});
    return { tenantId, name, tier: tier.name, placement, steps };
  }

  /**
   * Onboards a firm: validates everything first (a refused request writes nothing), then
   * applies the plan. Errors: those of `plan`, and TENANT_PROVISIONING_FAILED (the tenant is
   * registered but a later step failed: apply it again).
   */
  async create(request: ProvisioningRequest, origin: RequestOrigin = systemOrigin): Promise<TenantRecord> {
    const tier = this.#validate(request);
    const passwordHash = await hashPassword(request.admin.password);
    const tenantId = newUuid();
    const placement = await this.#placementFor(tier, tenantId);
    const record = this.#newRecord(request, tenantId, tier, placement);
    const context: StepContext = {
      record,
      tier,
      state: { adminEmail: request.admin.email.toLowerCase(), adminPasswordHash: passwordHash },
      overrides: (request.plan ?? {}) as Record<string, unknown>,
      origin,
    };
    return await this.#apply({ record, context });
  }

  /**
   * Applies a registered tenant's plan again; a finished plan changes nothing.
   * Errors: TENANT_NOT_FOUND, TENANT_PROVISIONING_FAILED.
   */
  async apply(tenantId: string): Promise<TenantRecord> {
    const record = await this.#deps.tenants.findById(tenantId);
    if (!record) throw new AppError('TENANT_NOT_FOUND');
    const state = await this.#deps.store.findState(tenantId);
    // A tenant onboarded before provisioning plans existed has nothing to apply.
    if (!state) return record;
    const tier = this.#deps.tiers.find(record.tier);
    if (!tier) throw new AppError('TENANT_UNKNOWN_TIER', `Tier "${record.tier}" is no longer in the catalogue.`);
    const overrides = await this.#deps.tenants.planOverrides(tenantId);
    return await this.#apply({ record, context: { record, tier, state, overrides, origin: systemOrigin } });
  }

  async steps(tenantId: string): Promise<StepLogEntry[]> {
    return await this.#deps.store.steps(tenantId);
  }

  #validate(request: ProvisioningRequest): Tier {
    const tier = this.#deps.tiers.find(request.tier);
    if (!tier) throw new AppError('TENANT_UNKNOWN_TIER', `There is no tier named "${request.tier}".`);
    const regulatoryTier = request.regulatoryTier ?? 'standard';
    if (!tier.regulatoryTiers.includes(regulatoryTier)) {
      throw new AppError(
        'TENANT_REGULATORY_TIER_NOT_ALLOWED',
        `Tier "${tier.name}" allows the regulatory tiers ${tier.regulatoryTiers.join(', ')}.`,
      );
    }
    this.#deps.passwords.check(request.admin.password);
    if (request.plan !== undefined) {
      const problems = planProblems(effectivePlanOf(tier, request.plan as PlanOverrides));
      if (problems.length > 0) throw new AppError('PLAN_OVERRIDES_INVALID', problems.join('; '), { problems });
    }
    if (tier.isolation === 'silo' && this.#deps.clusters.siloClusters().length === 0) {
      throw new AppError('TENANT_NO_SILO_CLUSTER', `Tier "${tier.name}" needs a silo cluster; none is configured.`);
    }
    return tier;
  }

  #newRecord(request: ProvisioningRequest, id: string, tier: Tier, placement: TenantPlacement): TenantRecord {
    const now = new Date();
    return {
      id,
      name: request.name.trim(),
      tier: tier.name,
      regulatoryTier: request.regulatoryTier ?? 'standard',
      status: 'provisioning',
      placement,
      createdAt: now,
      updatedAt: now,
    };
  }

  /**
   * Where a new tenant of this tier lives: the shared pool, its own database on the shared
   * server (bridge), or its own database on the silo cluster holding the fewest tenants.
   */
  async #placementFor(tier: Tier, tenantId: string): Promise<TenantPlacement> {
    const { clusters } = this.#deps;
    if (tier.isolation === 'pool') return sharedPoolPlacement;
    if (tier.isolation === 'bridge') {
      return { model: 'bridge', cluster: 'shared', database: clusters.databaseNameFor('bridge', tenantId) };
    }
    const silos = clusters.siloClusters();
    const counts = await this.#deps.tenants.countByCluster('silo');
    const cluster = silos.reduce((best, name) => ((counts.get(name) ?? 0) < (counts.get(best) ?? 0) ? name : best));
    return { model: 'silo', cluster, database: clusters.databaseNameFor('silo', tenantId) };
  }

  async #apply({ record, context }: Prepared): Promise<TenantRecord> {
    const { store, faults, log } = this.#deps;
    const steps = planSteps(record, context.tier, context.state.adminEmail, context.overrides);
    const results: StepResult[] = [];
    for (const planned of steps) {
      const startedAt = new Date();
      try {
        faults?.(planned.step, 'before');
        const outcome = await this.#effects[planned.step](context);
        faults?.(planned.step, 'after');
        results.push({
          position: planned.position,
          status: 'done',
          outcome,
          error: null,
          startedAt,
          finishedAt: new Date(),
        });
      } catch (error) {
        // Refusals of the registry step (a name taken) are the caller's answer, not a failed plan.
        if (planned.step === 'registry' && error instanceof AppError) throw error;
        results.push({
          position: planned.position,
          status: 'failed',
          outcome: null,
          error: errorText(error),
          startedAt,
          finishedAt: new Date(),
        });
        await store.recordSteps(record.id, results).catch((logError: unknown) => {
          log.warn({ err: logError, tenantId: record.id }, 'could not write the provisioning step log');
        });
        log.error({ err: error, tenantId: record.id, step: planned.step }, 'provisioning step failed');
        throw new AppError(
          'TENANT_PROVISIONING_FAILED',
          `Step "${planned.step}" failed; apply the plan again (POST /v1/tenants/${formatId('tenant', record.id)}/provisioning).`,
          { tenantId: formatId('tenant', record.id), step: planned.step },
        );
      }
    }
    await store.recordSteps(record.id, results);
    const stored = await this.#deps.tenants.findById(record.id);
    if (!stored) throw new AppError('TENANT_NOT_FOUND');
    log.info({ tenantId: record.id, tier: record.tier, placement: record.placement }, 'tenant provisioned');
    return stored;
  }
}

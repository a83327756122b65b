import { createHash } from 'node:crypto';
import { recordAuditEvent } from '../../audit/audit.service.ts';
import { insertUser } from '../../identity/users.store.ts';
import { effectivePlanOf, planProblems } from '../../limits/usage-plan.ts';
import type { UsageStore } from '../../metering/metering.store.ts';
import { assert } from '../../platform/assert.ts';
import type { ClusterDirectory } from '../../platform/database/clusters.ts';
import { allEntities, type RequestOrigin, type TenantScopes } from '../../platform/database/tenant-scope.ts';
import { AppError } from '../../platform/errors.ts';
import { formatId, newUuid } from '../../platform/ids.ts';
import type { TenantRecord } from '../tenancy.types.ts';
import type { Tier } from '../tiers.ts';
import type { ProvisioningStore } from './provisioning.store.ts';
import {
  type PlannedStep,
  type ProvisioningState,
  type ProvisioningStepName,
  provisioningSteps,
} from './provisioning.types.ts';

/**
 * The steps of a provisioning plan: what each one says it will do (the plan view) and the
 * idempotent effect that does it. Every effect first looks at what exists and only makes what
 * is missing, and answers with what it found or did — so the step log tells a first apply
 * (`created`) from a repair (`exists`).
 */
export interface StepContext {
  record: TenantRecord;
  tier: Tier;
  /** The onboarding's saved state: admin email and (until the admin exists) password hash. */
  state: Pick<ProvisioningState, 'adminEmail' | 'adminPasswordHash'>;
  /** Requested plan overrides, written with the registry row. */
  overrides: Record<string, unknown>;
  /** Who asked (the audit log's actor for the tenant's creation). */
  origin: RequestOrigin;
}

export interface StepDependencies {
  store: ProvisioningStore;
  clusters: ClusterDirectory;
  scopes: TenantScopes;
  usage: Pick<UsageStore, 'insertEvents'>;
}

function describePlacement(record: TenantRecord): string {
  const { placement } = record;
  return placement.model === 'pool' ? 'the shared database' : `${placement.cluster}/${placement.database}`;
}

/** What each step will do, in order: the plan mode's output. */
export function planSteps(record: TenantRecord, tier: Tier, adminEmail: string, overrides: object): PlannedStep[] {
  const { placement } = record;
  const dedicated = placement.model !== 'pool';
  const plan = tier.usagePlan;
  const overridden = Object.keys(overrides).length > 0 ? ' with per-tenant overrides' : '';
  const actions: Record<ProvisioningStepName, string> = {
    registry: `register ${formatId('tenant', record.id)} "${record.name}" on tier ${tier.name} (${tier.isolation}) in ${describePlacement(record)}`,
    database: dedicated
      ? `create database ${placement.database} on cluster ${placement.cluster} from the cluster's migrated template`
      : 'none: pooled tenants share the shared database, isolated by row-level security',
    roles: dedicated
      ? `ensure the runtime role on cluster ${placement.cluster} and verify it cannot bypass row-level security`
      : 'none: the shared runtime role is verified when the server starts',
    migrations: dedicated
      ? `apply any migration ${placement.database} lacks`
      : 'none: the shared database is migrated when the server starts',
    'usage-plan': `apply the ${tier.name} plan (${plan.ratePerSecond}/s, burst ${plan.burst}, ${plan.quota.limit} per ${plan.quota.period})${overridden}`,
    'admin-user': `create the owner user ${adminEmail}`,
    'metering-account': 'open the metering account with its first usage sample',
    activate: 'mark the tenant active',
  };
  return provisioningSteps.map((step, index) => ({ position: index + 1, step, action: actions[step] }));
}

/** A uuid fixed by the tenant, so the onboarding's usage event is written once however often it is applied. */
export function onboardingEventId(tenantId: string): string {
  const hex = createHash('sha256').update(`countinghouse:onboarding:${tenantId}`).digest('hex');
  // Version 8 (custom) and the RFC 9562 variant bits.
  const variant = ((Number.parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export type StepEffect = (context: StepContext) => Promise<string>;

export function stepEffects(deps: StepDependencies): Record<ProvisioningStepName, StepEffect> {
  const { store, clusters, scopes, usage } = deps;
  return {
    async registry({ record, tier, state, overrides }) {
      const steps = planSteps(record, tier, state.adminEmail, overrides);
      const outcome = await store.register(record, state, overrides, steps);
      if (outcome === 'name_taken') {
        throw new AppError('TENANT_NAME_TAKEN', `A tenant named "${record.name}" already exists.`);
      }
      if (outcome === 'exists') await store.startApply(record.id);
      return outcome === 'inserted' ? 'created' : 'exists';
    },
    async database({ record }) {
      if (record.placement.model === 'pool') return 'skipped: shared database';
      return await clusters.createDatabase(record.placement);
    },
    async roles({ record }) {
      if (record.placement.model === 'pool') return 'skipped: verified at start';
      await clusters.ready(record.placement.cluster);
      await clusters.verifyRuntimeRole(record.placement);
      return 'verified';
    },
    async migrations({ record }) {
      if (record.placement.model === 'pool') return 'skipped: migrated at start';
      const applied = await clusters.migrateDatabase(record.placement);
      await store.markSchema(record.id, await clusters.schemaVersion());
      return applied.length === 0 ? 'up to date' : `applied ${applied.join(', ')}`;
    },
    async 'usage-plan'({ tier, overrides }) {
      // The overrides were checked before the registry row was written; a tier catalogue
      // changed since then could still make the effective plan invalid.
      const problems = planProblems(effectivePlanOf(tier, overrides));
      if (problems.length > 0) throw new AppError('PLAN_OVERRIDES_INVALID', problems.join('; '), { problems });
      return Object.keys(overrides).length > 0 ? 'tier plan with overrides' : 'tier plan';
    },
    async 'admin-user'({ record, state, origin }) {
      const context = {
        tenantId: record.id,
        tier: record.tier,
        placement: record.placement,
        entityScope: allEntities,
        origin,
      };
      return await scopes.run(context, async (db) => {
        const found = await db.query('select 1 from users where email = $1', [state.adminEmail]);
        if (found.rowCount !== 0) return 'exists';
        assert(
          state.adminPasswordHash !== null,
          `tenant ${record.id} lost its admin password hash before the admin existed`,
        );
        const adminId = newUuid();
        await insertUser(db, {
          id: adminId,
          tenantId: record.id,
          email: state.adminEmail,
          passwordHash: state.adminPasswordHash,
          roles: ['owner'],
        });
        // The tenant's audit log opens with its creation, in the admin's transaction: once.
        await recordAuditEvent(db, {
          action: 'tenant.create',
          resource: { type: 'tenant', id: formatId('tenant', record.id) },
          after: record,
          summary: { name: record.name, tier: record.tier, adminUserId: formatId('user', adminId) },
        });
        return 'created';
      });
    },
    async 'metering-account'({ record }) {
      const inserted = await usage.insertEvents([
        {
          id: onboardingEventId(record.id),
          tenantId: record.id,
          tier: record.tier,
          metric: 'users',
          quantity: 1,
          occurredAt: record.createdAt,
          properties: { source: 'onboarding' },
        },
      ]);
      return inserted === 1 ? 'created' : 'exists';
    },
    async activate({ record }) {
      return (await store.activate(record.id)) === 'activated' ? 'activated' : 'unchanged';
    },
  };
}

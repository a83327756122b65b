import type { PlanOverrides } from '../../limits/limits.types.ts';
import type { TenantPlacement } from '../../platform/database/tenant-scope.ts';
import type { RegulatoryTier } from '../tenancy.types.ts';

/**
 * Onboarding as code: a tenant's provisioning plan is an ordered list of named steps, each
 * idempotent, so applying the plan again after a crash at any point finishes the job and
 * applying a finished plan changes nothing. The plan is data (this file); the steps' effects
 * live in provisioning.steps.ts.
 */
export const provisioningSteps = [
  'registry',
  'database',
  'roles',
  'migrations',
  'usage-plan',
  'admin-user',
  'metering-account',
  'activate',
] as const;

export type ProvisioningStepName = (typeof provisioningSteps)[number];

export interface PlannedStep {
  /** 1-based order of application. */
  position: number;
  step: ProvisioningStepName;
  /** What applying the step does, for the plan view (`tenant plan`). */
  action: string;
}

export type StepStatus = 'pending' | 'done' | 'failed';

/** One row of the step log, as `GET /v1/tenants/{id}` shows it. */
export interface StepLogEntry extends PlannedStep {
  status: StepStatus;
  attempts: number;
  /** What the last application found or did (`created`, `exists`, `skipped: …`). */
  outcome: string | null;
  error: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
}

/** What onboarding is asked for; validated before anything is written. */
export interface ProvisioningRequest {
  name: string;
  tier: string;
  /** `standard` when absent; must be one the tier allows. */
  regulatoryTier?: RegulatoryTier | undefined;
  admin: { email: string; password: string };
  /** Per-tenant overrides of the tier's usage plan and bulkheads (`PUT /v1/tenants/{id}/plan` later). */
  plan?: PlanOverrides;
}

/** A plan for one tenant: where it will live and the steps that put it there. */
export interface ProvisioningPlan {
  tenantId: string;
  name: string;
  tier: string;
  placement: TenantPlacement;
  steps: PlannedStep[];
}

/** The state onboarding keeps so a later apply can finish it. */
export interface ProvisioningState {
  tenantId: string;
  adminEmail: string;
  /** Cleared once the admin user exists. */
  adminPasswordHash: string | null;
  applies: number;
  startedAt: Date;
  finishedAt: Date | null;
}

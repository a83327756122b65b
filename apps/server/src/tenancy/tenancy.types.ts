import type { TenantPlacement } from '../platform/database/tenant-scope.ts';

/** Regulatory tier of a firm: drives MFA requirements (docs/security.md). */
export const regulatoryTiers = ['standard', 'irs-authorized', 'sec-registered'] as const;
export type RegulatoryTier = (typeof regulatoryTiers)[number];

export type TenantStatus = 'provisioning' | 'active' | 'suspended' | 'offboarded';

/** A row of the tenant registry (control plane). `id` is the uuid; APIs show `ten_…`. */
export interface TenantRecord {
  id: string;
  name: string;
  tier: string;
  regulatoryTier: RegulatoryTier;
  status: TenantStatus;
  placement: TenantPlacement;
  createdAt: Date;
  updatedAt: Date;
  /** Why the status last changed (a suspension's reason), when the operator gave one. */
  statusReason?: string | null;
  statusChangedAt?: Date | null;
}

export type { ProvisioningRequest as NewTenant } from './provisioning/provisioning.types.ts';

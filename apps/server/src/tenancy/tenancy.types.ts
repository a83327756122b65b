import type { TenantPlacement } from '../platform/database/tenant-scope.ts';

export type TenantStatus = 'provisioning' | 'active' | 'suspended' | 'offboarded';

/** A row of the tenant registry (control plane). `id` is the uuid; APIs show `ten_…`. */
export interface TenantRecord {
  id: string;
  name: string;
  tier: string;
  status: TenantStatus;
  placement: TenantPlacement;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewTenant {
  name: string;
  tier: string;
  admin: { email: string; password: string };
}

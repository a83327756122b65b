import type { TenantPlacement } from '../platform/database/tenant-scope.ts';

/**
 * The tier catalogue. Tiers are data (ARCHITECTURE.md 3); so far one pooled tier exists.
 * The lifecycle issue moves this into a validated, operator-overridable file with usage
 * plans, limits and prices, and adds bridge and silo tiers.
 */
export interface Tier {
  name: string;
  isolation: TenantPlacement['model'];
}

export const tiers: Readonly<Record<string, Tier>> = {
  starter: { name: 'starter', isolation: 'pool' },
};

export function findTier(name: string): Tier | undefined {
  return Object.hasOwn(tiers, name) ? tiers[name] : undefined;
}

/** The shared cluster and database that pooled tenants live in. */
export const sharedPoolPlacement: TenantPlacement = { model: 'pool', cluster: 'shared', database: 'shared' };

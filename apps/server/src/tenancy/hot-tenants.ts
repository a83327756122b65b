import type { TenantPlacement } from '../platform/database/tenant-scope.ts';
import type { TierCatalogue } from './tiers.ts';

/**
 * The hot-tenant report (the seed's "migrate disproportionately large tenants"): for each
 * cluster that several tenants share, each tenant's share of its database time and of its
 * requests over a window, from the metering rollups. A tenant whose share of either reaches
 * the threshold is flagged with the isolation model that would take it off the shared
 * database — pool → bridge (own database, same server), bridge → silo (own cluster) — and the
 * first tier in the catalogue with that model.
 */
export interface ClusterLoad {
  tenantId: string;
  name: string;
  tier: string;
  placement: TenantPlacement;
  databaseUs: bigint;
  requests: bigint;
}

export interface HotTenant {
  tenantId: string;
  name: string;
  tier: string;
  placement: TenantPlacement;
  databaseUs: bigint;
  requests: bigint;
  /** Percent of the cluster's database time / requests in the window, two decimals. */
  databaseSharePercent: number;
  requestSharePercent: number;
  tenantsOnCluster: number;
  suggestedIsolation: 'bridge' | 'silo';
  suggestedTier: string | null;
}

export interface HotTenantReport {
  from: Date;
  to: Date;
  sharePercent: number;
  tenants: HotTenant[];
}

function percentOf(part: bigint, total: bigint): number {
  if (total === 0n) return 0;
  return Number((part * 10_000n) / total) / 100;
}

/** Ranks the loads of tenants on shared clusters; pure, so the rule is tested without a database. */
export function rankHotTenants(
  loads: readonly ClusterLoad[],
  sharePercent: number,
  tiers: TierCatalogue,
  limit: number,
): HotTenant[] {
  const byCluster = new Map<string, ClusterLoad[]>();
  for (const load of loads) {
    // Silo tenants have a cluster to themselves: their load is nobody's neighbour problem.
    if (load.placement.model === 'silo') continue;
    byCluster.set(load.placement.cluster, [...(byCluster.get(load.placement.cluster) ?? []), load]);
  }
  const hot: HotTenant[] = [];
  for (const clusterLoads of byCluster.values()) {
    const totalDatabaseUs = clusterLoads.reduce((sum, load) => sum + load.databaseUs, 0n);
    const totalRequests = clusterLoads.reduce((sum, load) => sum + load.requests, 0n);
    // One tenant alone on a cluster is all of its load and no one's neighbour.
    if (clusterLoads.length < 2) continue;
    for (const load of clusterLoads) {
      const databaseSharePercent = percentOf(load.databaseUs, totalDatabaseUs);
      const requestSharePercent = percentOf(load.requests, totalRequests);
      if (Math.max(databaseSharePercent, requestSharePercent) < sharePercent) continue;
      const suggestedIsolation = load.placement.model === 'pool' ? 'bridge' : 'silo';
      hot.push({
        ...load,
        databaseSharePercent,
        requestSharePercent,
        tenantsOnCluster: clusterLoads.length,
        suggestedIsolation,
        suggestedTier: tiers.list().find((tier) => tier.isolation === suggestedIsolation)?.name ?? null,
      });
    }
  }
  hot.sort(
    (a, b) =>
      Math.max(b.databaseSharePercent, b.requestSharePercent) - Math.max(a.databaseSharePercent, a.requestSharePercent),
  );
  return hot.slice(0, limit);
}

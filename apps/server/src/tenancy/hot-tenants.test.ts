import { describe, expect, it } from 'vitest';
import { type ClusterLoad, rankHotTenants } from './hot-tenants.ts';
import { TierCatalogue } from './tiers.ts';

/** The hot-tenant rule without a database: shares per shared cluster, threshold, suggestion. */
const tiers = TierCatalogue.load();
const pool = { model: 'pool', cluster: 'shared', database: 'shared' } as const;

function load(tenantId: string, databaseUs: bigint, requests: bigint, placement: ClusterLoad['placement'] = pool) {
  return { tenantId, name: tenantId, tier: 'starter', placement, databaseUs, requests };
}

describe('rankHotTenants', () => {
  it('flags tenants at or above the share of database time or requests, biggest first', () => {
    // Proves the threshold on either metric: a has 60 % of db time, b 40 % of requests, c neither.
    const hot = rankHotTenants([load('a', 600n, 10n), load('b', 100n, 40n), load('c', 300n, 50n)], 40, tiers, 10);
    expect(hot.map((tenant) => [tenant.tenantId, tenant.databaseSharePercent, tenant.requestSharePercent])).toEqual([
      ['a', 60, 10],
      ['c', 30, 50],
      ['b', 10, 40],
    ]);
    expect(hot[0]).toMatchObject({ suggestedIsolation: 'bridge', suggestedTier: 'professional', tenantsOnCluster: 3 });
  });

  it('suggests a silo for a bridge tenant and ignores silo tenants and lone tenants', () => {
    // Proves the per-cluster grouping: a silo tenant's load is never counted; a cluster with one tenant flags nothing.
    const bridge = { model: 'bridge', cluster: 'shared', database: 'x_b_1' } as const;
    const silo = { model: 'silo', cluster: 'silo-1', database: 'x_s_1' } as const;
    const hot = rankHotTenants(
      [load('big', 900n, 900n, bridge), load('small', 100n, 100n), load('silo', 10_000n, 10_000n, silo)],
      50,
      tiers,
      10,
    );
    expect(hot).toHaveLength(1);
    expect(hot[0]).toMatchObject({ tenantId: 'big', suggestedIsolation: 'silo', suggestedTier: 'enterprise' });
    expect(rankHotTenants([load('alone', 5n, 5n)], 1, tiers, 10)).toEqual([]);
    expect(rankHotTenants([load('idle-a', 0n, 0n), load('idle-b', 0n, 0n)], 1, tiers, 10)).toEqual([]);
  });
});

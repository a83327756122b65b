import { assert } from '../../platform/assert.ts';
import type { TenantPlacement } from '../../platform/database/tenant-scope.ts';
import { allocateLargestRemainder, divideRounded } from './allocation.ts';
import type { BillingMonth, CostLine, CostPool, CostReport, MonthUsage, TenantCost } from './billing.types.ts';
import { type CostDriver, type CostModel, currencyExponent } from './cost-model.ts';

/**
 * Cost-to-serve: every pool of cost (a unit cost times the month's measured consumption, a
 * fixed shared cost, a dedicated database or cluster, or a line of the AWS bill) is rounded
 * once, half-even, to the minor unit; a shared pool is then apportioned to the tenants that
 * share it by their measured consumption of its driver with largest-remainder rounding, so
 * the tenants' shares add up exactly to the pool. A shared pool that nobody consumed stays
 * unattributed (platform overhead) and is shown as such. Report total = attributed +
 * unattributed, to the cent.
 */
export interface CostedTenant {
  id: string;
  name: string;
  tier: string;
  placement: TenantPlacement['model'];
}

interface PoolDraft {
  name: string;
  kind: CostLine['kind'];
  driver: CostDriver | null;
  totalMinor: bigint;
  shares: Map<string, bigint>;
}

export function driverWeight(driver: CostDriver, usage: MonthUsage): bigint {
  switch (driver) {
    case 'compute_us':
      return usage.computeUs;
    case 'database_us':
      return usage.databaseUs;
    case 'requests':
      return usage.requests;
    case 'storage_byte_days':
      return usage.storageByteDays;
  }
}

/**
 * Who shares a pool driven by `driver`: database time and storage live on the shared database
 * server, which silo tenants (their own cluster) do not use; compute and requests are shared
 * by every placement.
 */
export function participantsFor(driver: CostDriver, tenants: readonly CostedTenant[]): CostedTenant[] {
  const onSharedDatabase = driver === 'database_us' || driver === 'storage_byte_days';
  return tenants.filter((tenant) => !onSharedDatabase || tenant.placement !== 'silo');
}

/** Signed division rounded half-even (credits in a CUR are negative). */
export function divideRoundedSigned(numerator: bigint, denominator: bigint): bigint {
  return numerator < 0n
    ? -divideRounded(-numerator, denominator, 'half-even')
    : divideRounded(numerator, denominator, 'half-even');
}

/** A shared pool apportioned by the driver over the tenants that share it (sorted by id). */
export function sharedPool(
  name: string,
  driver: CostDriver,
  totalMinor: bigint,
  participants: readonly CostedTenant[],
  usage: ReadonlyMap<string, MonthUsage>,
  kind: CostLine['kind'] = 'shared',
): PoolDraft {
  const ordered = [...participants].sort((a, b) => (a.id < b.id ? -1 : 1));
  const weights = ordered.map((tenant) => {
    const tenantUsage = usage.get(tenant.id);
    return tenantUsage ? driverWeight(driver, tenantUsage) : 0n;
  });
  const magnitude = totalMinor < 0n ? -totalMinor : totalMinor;
  const allocated = allocateLargestRemainder(magnitude, weights);
  const shares = new Map<string, bigint>();
  if (allocated !== null) {
    ordered.forEach((tenant, index) => {
      const share = allocated[index] ?? 0n;
      if (share !== 0n) shares.set(tenant.id, totalMinor < 0n ? -share : share);
    });
  }
  return { name, kind, driver, totalMinor, shares };
}

function directPool(name: string, kind: CostLine['kind'], shares: Map<string, bigint>): PoolDraft {
  const totalMinor = [...shares.values()].reduce((sum, share) => sum + share, 0n);
  return { name, kind, driver: null, totalMinor, shares };
}

/** Pools of the cost model for a month: unit costs × consumption, shared fixed, dedicated. */
export function modelPools(
  model: CostModel,
  tenants: readonly CostedTenant[],
  usage: ReadonlyMap<string, MonthUsage>,
  month: BillingMonth,
): PoolDraft[] {
  const minorPerMicro = 10n ** BigInt(6 - currencyExponent(model.currency));
  const onSharedDatabase = tenants.filter((tenant) => tenant.placement !== 'silo');
  const sum = (group: readonly CostedTenant[], driver: CostDriver) =>
    group.reduce((total, tenant) => total + driverWeight(driver, usage.get(tenant.id) ?? zero), 0n);
  const unit = model.unitCosts;
  const variable: Array<[string, CostDriver, readonly CostedTenant[], bigint, bigint]> = [
    ['compute-seconds', 'compute_us', tenants, BigInt(unit.computeSecondMicros), 1_000_000n],
    ['database-seconds', 'database_us', onSharedDatabase, BigInt(unit.databaseSecondMicros), 1_000_000n],
    [
      'storage-gb-months',
      'storage_byte_days',
      onSharedDatabase,
      BigInt(unit.storageGbMonthMicros),
      1_000_000_000n * BigInt(month.days),
    ],
    ['requests', 'requests', tenants, BigInt(unit.requestMicros), 1n],
  ];
  const pools = variable.map(([name, driver, group, priceMicros, scale]) =>
    sharedPool(
      name,
      driver,
      divideRounded(sum(group, driver) * priceMicros, scale * minorPerMicro, 'half-even'),
      group,
      usage,
    ),
  );
  for (const fixed of model.sharedFixedMonthly) {
    const group = tenants.filter((tenant) => fixed.placements.includes(tenant.placement));
    pools.push(sharedPool(fixed.name, fixed.driver, BigInt(fixed.amountMinor), group, usage));
  }
  const dedicated = model.dedicatedMonthly;
  const databases = new Map<string, bigint>();
  const clusters = new Map<string, bigint>();
  for (const tenant of tenants) {
    if (tenant.placement === 'bridge') databases.set(tenant.id, BigInt(dedicated.bridgeDatabaseMinor));
    if (tenant.placement === 'silo') {
      databases.set(tenant.id, BigInt(dedicated.siloDatabaseMinor));
      clusters.set(tenant.id, BigInt(dedicated.siloClusterMinor));
    }
  }
  pools.push(directPool('dedicated-database', 'dedicated', databases));
  pools.push(directPool('dedicated-cluster', 'dedicated', clusters));
  return pools;
}

const zero: MonthUsage = {
  requests: 0n,
  computeUs: 0n,
  databaseUs: 0n,
  jobUs: 0n,
  storageByteDays: 0n,
  usersMax: 0n,
  entitiesMax: 0n,
};

/** Assembles the report from pools and checks that every cent is accounted for. */
export function buildCostReport(
  header: Pick<CostReport, 'month' | 'currency' | 'source' | 'importId' | 'notes'>,
  tenants: readonly CostedTenant[],
  pools: readonly PoolDraft[],
): CostReport {
  const toNumber = (value: bigint) => {
    assert(value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER), 'cost out of range');
    return Number(value);
  };
  const tenantCosts: TenantCost[] = [...tenants]
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((tenant) => {
      const lines = pools
        .filter((pool) => (pool.shares.get(tenant.id) ?? 0n) !== 0n)
        .map((pool) => ({ pool: pool.name, kind: pool.kind, amountMinor: toNumber(pool.shares.get(tenant.id) ?? 0n) }));
      return {
        tenantId: tenant.id,
        tenantName: tenant.name,
        tier: tenant.tier,
        placement: tenant.placement,
        lines,
        totalMinor: lines.reduce((sum, line) => sum + line.amountMinor, 0),
      };
    });
  const reportPools: CostPool[] = pools
    .filter((pool) => pool.totalMinor !== 0n || pool.shares.size > 0)
    .map((pool) => {
      const attributed = [...pool.shares.values()].reduce((sum, share) => sum + share, 0n);
      return {
        name: pool.name,
        kind: pool.kind,
        driver: pool.driver,
        totalMinor: toNumber(pool.totalMinor),
        attributedMinor: toNumber(attributed),
        unattributedMinor: toNumber(pool.totalMinor - attributed),
      };
    });
  const totalMinor = reportPools.reduce((sum, pool) => sum + pool.totalMinor, 0);
  const attributedMinor = tenantCosts.reduce((sum, tenant) => sum + tenant.totalMinor, 0);
  const unattributedMinor = reportPools.reduce((sum, pool) => sum + pool.unattributedMinor, 0);
  assert(totalMinor === attributedMinor + unattributedMinor, 'cost report does not add up to the cent');
  return {
    ...header,
    pools: reportPools,
    tenants: tenantCosts,
    totalMinor,
    attributedMinor,
    unattributedMinor,
    rounding: 'half-even-per-pool, largest-remainder-per-tenant',
  };
}

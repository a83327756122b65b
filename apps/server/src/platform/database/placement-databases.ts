import pg from 'pg';
import type { Logger } from 'pino';
import type { TenancyStore } from '../../tenancy/tenancy.store.ts';
import { sharedPoolPlacement } from '../../tenancy/tiers.ts';
import type { PlacementDatabases } from '../../tenant-data/placements.ts';
import { assert } from '../assert.ts';
import { lowerBackendPriority } from './backend-priority.ts';
import type { ClusterDirectory } from './clusters.ts';
import { type PlacementPools, placementKey } from './placement-pools.ts';
import { logConnectionErrors } from './pool-errors.ts';
import type { TenantPlacement } from './tenant-scope.ts';

/**
 * Owner-role access to every placement, for control-plane work that crosses databases (the
 * tenant-data domain's moves, exports and purges): the control pool for the shared database,
 * and one small owner pool per dedicated database, opened on first use. A dedicated database
 * for a tenant is made from its cluster's migrated template (clusters.ts).
 *
 * The owner role may bypass row-level security (a superuser on an external server), so code
 * using these pools names the tenant in every statement.
 */
export const placementDatabaseLimits = {
  ownerPoolMax: 2,
  ownerPoolIdleMs: 10_000,
  ownerPoolsMax: 32,
  connectionTimeoutMs: 5_000,
} as const;

export class OwnerPlacementDatabases implements PlacementDatabases {
  readonly control: pg.Pool;
  readonly #clusters: ClusterDirectory;
  readonly #tenants: Pick<TenancyStore, 'countByCluster'>;
  readonly #runtimePools: Pick<PlacementPools, 'closePlacement'>;
  readonly #log: Logger;
  readonly #pools = new Map<string, pg.Pool>();

  constructor(
    control: pg.Pool,
    clusters: ClusterDirectory,
    tenants: Pick<TenancyStore, 'countByCluster'>,
    runtimePools: Pick<PlacementPools, 'closePlacement'>,
    log: Logger,
  ) {
    this.control = control;
    this.#clusters = clusters;
    this.#tenants = tenants;
    this.#runtimePools = runtimePools;
    this.#log = log;
  }

  async batchOwnerPool(placement: TenantPlacement): Promise<pg.Pool | null> {
    const batchNice = this.#clusters.batchNiceFor(placement.cluster);
    if (batchNice === 0) return null;
    const url =
      placement.model === 'pool'
        ? (this.control.options as { connectionString?: string }).connectionString
        : await this.#clusters.ownerUrlFor(placement);
    if (url === undefined) return null;
    const pool = new pg.Pool({
      connectionString: url,
      max: 1,
      idleTimeoutMillis: placementDatabaseLimits.ownerPoolIdleMs,
      connectionTimeoutMillis: placementDatabaseLimits.connectionTimeoutMs,
      application_name: 'countinghouse-placement-batch',
    });
    logConnectionErrors(pool, this.#log, { placement: placementKey(placement), pool: 'owner-batch' });
    lowerBackendPriority(pool, batchNice, this.#log);
    return pool;
  }

  async ownerPoolFor(placement: TenantPlacement): Promise<pg.Pool> {
    if (placement.model === 'pool') return this.control;
    const key = placementKey(placement);
    const open = this.#pools.get(key);
    if (open) return open;
    const url = await this.#clusters.ownerUrlFor(placement);
    // Re-check: another caller may have opened it while the cluster was being readied.
    const raced = this.#pools.get(key);
    if (raced) return raced;
    if (this.#pools.size >= placementDatabaseLimits.ownerPoolsMax) await this.#closeOldest();
    const pool = new pg.Pool({
      connectionString: url,
      max: placementDatabaseLimits.ownerPoolMax,
      idleTimeoutMillis: placementDatabaseLimits.ownerPoolIdleMs,
      connectionTimeoutMillis: placementDatabaseLimits.connectionTimeoutMs,
      application_name: 'countinghouse-placement-owner',
    });
    logConnectionErrors(pool, this.#log, { placement: key, pool: 'owner' });
    this.#pools.set(key, pool);
    return pool;
  }

  async #closeOldest(): Promise<void> {
    const [key, pool] = this.#pools.entries().next().value ?? [];
    if (key === undefined || pool === undefined) return;
    this.#pools.delete(key);
    await pool.end();
  }

  supports(model: TenantPlacement['model']): boolean {
    return model !== 'silo' || this.#clusters.siloClusters().length > 0;
  }

  async placementFor(tenantId: string, model: TenantPlacement['model']): Promise<TenantPlacement | null> {
    if (model === 'pool') return sharedPoolPlacement;
    if (!this.supports(model)) return null;
    let cluster = 'shared';
    if (model === 'silo') {
      const counts = await this.#tenants.countByCluster('silo');
      const silos = this.#clusters.siloClusters();
      cluster = silos.reduce((best, name) => ((counts.get(name) ?? 0) < (counts.get(best) ?? 0) ? name : best));
    }
    const placement = { model, cluster, database: this.#clusters.databaseNameFor(model, tenantId) };
    const made = await this.#clusters.createDatabase(placement);
    try {
      await this.#clusters.migrateDatabase(placement);
    } catch (error) {
      // A database made here and never migrated serves nobody: drop it rather than leave it.
      if (made === 'created') await this.dropUnplaced(placement).catch(() => false);
      throw error;
    }
    return placement;
  }

  async dropUnplaced(placement: TenantPlacement): Promise<boolean> {
    assert(placement.model !== 'pool', 'the shared database is never dropped');
    const placed = await this.control.query(
      `select 1 from tenants
        where placement_model = $1 and placement_cluster = $2 and placement_database = $3 limit 1`,
      [placement.model, placement.cluster, placement.database],
    );
    if (placed.rowCount !== 0) return false;
    await this.closePlacement(placement);
    await this.#runtimePools.closePlacement(placement);
    await this.#clusters.dropDatabase(placement);
    return true;
  }

  async schemaOf(placement: TenantPlacement): Promise<string | null> {
    return placement.model === 'pool' ? null : await this.#clusters.schemaVersion();
  }

  /** Closes the owner pool of one placement (before its database is dropped). */
  async closePlacement(placement: TenantPlacement): Promise<void> {
    assert(placement.model !== 'pool', 'the control pool belongs to the platform');
    const key = placementKey(placement);
    const pool = this.#pools.get(key);
    if (!pool) return;
    this.#pools.delete(key);
    await pool.end();
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.end()));
  }
}

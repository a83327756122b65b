import type pg from 'pg';
import type { TenantPlacement } from '../platform/database/tenant-scope.ts';
import { sharedPoolPlacement } from '../tenancy/tiers.ts';

/**
 * Owner-role access to the databases a tenant's rows can live in. The control database holds
 * the registry, the job queue and metering, and is also the shared pool's database; bridge and
 * silo placements each have their own database (the placement layer, docs/lifecycle.md).
 */
export interface PlacementDatabases {
  /** The control database's owner pool. */
  readonly control: pg.Pool;
  /** The owner pool of the database a placement names (the control pool for the shared pool). */
  ownerPoolFor(placement: TenantPlacement): Promise<pg.Pool>;
  /**
   * A new one-connection owner pool on the placement's database whose backend runs at batch
   * CPU priority (platform/database/backend-priority.ts), for long reads such as exports; null
   * when the server is not on this machine or batch priority is off. The caller ends it.
   */
  batchOwnerPool(placement: TenantPlacement): Promise<pg.Pool | null>;
  /** Whether this deployment can place tenants under an isolation model at all. */
  supports(model: TenantPlacement['model']): boolean;
  /**
   * Makes (or finds) a database for `tenantId` under the isolation model of the target tier and
   * returns its placement, or null when this deployment cannot serve that model.
   */
  placementFor(tenantId: string, model: TenantPlacement['model']): Promise<TenantPlacement | null>;
  /**
   * The schema (`tenants.placement_schema`) a placement's database is at once `placementFor`
   * made it: the current migrations' hash for a dedicated database, null for the shared pool,
   * which start-up migrates as a whole.
   */
  schemaOf(placement: TenantPlacement): Promise<string | null>;
  /**
   * Drops a dedicated database that no tenant in the registry is placed on (what a failed
   * move made), after closing the pools that reach it; false, dropping nothing, when a
   * tenant is placed there.
   */
  dropUnplaced(placement: TenantPlacement): Promise<boolean>;
}

export function samePlacement(left: TenantPlacement, right: TenantPlacement): boolean {
  return left.model === right.model && left.cluster === right.cluster && left.database === right.database;
}

/** Only the shared pool: what a deployment without the placement layer can serve. */
export function sharedPoolOnly(control: pg.Pool): PlacementDatabases {
  return {
    control,
    async ownerPoolFor(placement) {
      if (!samePlacement(placement, sharedPoolPlacement)) {
        throw new Error(`no owner pool serves placement ${placement.model}/${placement.cluster}/${placement.database}`);
      }
      return control;
    },
    async batchOwnerPool() {
      return null;
    },
    supports(model) {
      return model === 'pool';
    },
    async placementFor(_tenantId, model) {
      return model === 'pool' ? sharedPoolPlacement : null;
    },
    async schemaOf() {
      return null;
    },
    async dropUnplaced() {
      // The shared pool is the control database: never dropped.
      return false;
    },
  };
}

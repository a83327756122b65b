import type pg from 'pg';
import type { TenantPlacement } from '../platform/database/tenant-scope.ts';
import type { ClusterLoad } from './hot-tenants.ts';

/**
 * Database time and requests per live tenant over a window, from the metering domain's hourly
 * rollups (owner role; both tables are control-plane data in the shared database).
 */
export class PgHotTenantStore {
  readonly #pool: pg.Pool;

  constructor(ownerPool: pg.Pool) {
    this.#pool = ownerPool;
  }

  async loads(from: Date, to: Date): Promise<ClusterLoad[]> {
    const { rows } = await this.#pool.query<{
      id: string;
      name: string;
      tier: string;
      model: TenantPlacement['model'];
      cluster: string;
      database: string;
      database_us: string;
      requests: string;
    }>(
      `select t.id, t.name, t.tier, t.placement_model as model, t.placement_cluster as cluster,
              t.placement_database as database,
              coalesce(sum(r.quantity_sum) filter (where r.metric = 'database_us'), 0)::text as database_us,
              coalesce(sum(r.quantity_sum) filter (where r.metric = 'requests'), 0)::text as requests
         from tenants t
         left join usage_rollups r
           on r.tenant = t.id and r.granularity = 'hour' and r.bucket_start >= $1 and r.bucket_start < $2
          and r.metric in ('database_us', 'requests')
        where t.status in ('active', 'suspended')
        group by t.id`,
      [from, to],
    );
    return rows.map((row) => ({
      tenantId: row.id,
      name: row.name,
      tier: row.tier,
      placement: { model: row.model, cluster: row.cluster, database: row.database },
      databaseUs: BigInt(row.database_us),
      requests: BigInt(row.requests),
    }));
  }
}

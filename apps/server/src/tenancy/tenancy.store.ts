import type pg from 'pg';
import type { RegulatoryTier, TenantRecord, TenantStatus } from './tenancy.types.ts';

/** The tenant registry, read and written with the owner role (control plane only). */
export interface TenancyStore {
  findById(id: string): Promise<TenantRecord | null>;
  /** Returns the updated record as stored, or null when there is no such tenant. */
  setStatus(id: string, status: TenantStatus): Promise<TenantRecord | null>;
  /** Live tenants per cluster for one placement model (silo placement picks the emptiest). */
  countByCluster(model: TenantRecord['placement']['model']): Promise<Map<string, number>>;
  nameTaken(name: string): Promise<boolean>;
  /** The stored per-tenant plan overrides (`{}` when none). */
  planOverrides(id: string): Promise<Record<string, unknown>>;
  /** A page of the registry in id (creation) order after `afterId`. */
  list(filter: TenantListFilter): Promise<TenantRecord[]>;
  /**
   * Moves a tenant from one of `from` to `to`, recording why; null when the tenant is not in
   * one of those states (the caller reads it back to say why).
   */
  transition(
    id: string,
    from: readonly TenantStatus[],
    to: TenantStatus,
    reason: string | null,
  ): Promise<TenantRecord | null>;
}

export interface TenantListFilter {
  afterId: string | null;
  limit: number;
  status?: TenantStatus;
  tier?: string;
}

interface TenantRow {
  id: string;
  name: string;
  tier: string;
  regulatory_tier: RegulatoryTier;
  status: TenantStatus;
  placement_model: TenantRecord['placement']['model'];
  placement_cluster: string;
  placement_database: string;
  created_at: Date;
  updated_at: Date;
  status_reason?: string | null;
  status_changed_at?: Date | null;
}

function fromRow(row: TenantRow): TenantRecord {
  return {
    id: row.id,
    name: row.name,
    tier: row.tier,
    regulatoryTier: row.regulatory_tier,
    status: row.status,
    placement: { model: row.placement_model, cluster: row.placement_cluster, database: row.placement_database },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    statusReason: row.status_reason ?? null,
    statusChangedAt: row.status_changed_at ?? null,
  };
}

const recordColumns = `id, name, tier, regulatory_tier, status, placement_model, placement_cluster,
  placement_database, created_at, updated_at, status_reason, status_changed_at`;

export class PgTenancyStore implements TenancyStore {
  readonly #pool: pg.Pool;

  constructor(ownerPool: pg.Pool) {
    this.#pool = ownerPool;
  }

  async findById(id: string): Promise<TenantRecord | null> {
    const { rows } = await this.#pool.query<TenantRow>(`select ${recordColumns} from tenants where id = $1`, [id]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async setStatus(id: string, status: TenantStatus): Promise<TenantRecord | null> {
    const { rows } = await this.#pool.query<TenantRow>(
      `update tenants set status = $2, updated_at = now(), status_changed_at = now() where id = $1
       returning ${recordColumns}`,
      [id, status],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async countByCluster(model: TenantRecord['placement']['model']): Promise<Map<string, number>> {
    const { rows } = await this.#pool.query<{ cluster: string; tenants: number }>(
      `select placement_cluster as cluster, count(*)::int as tenants from tenants
        where placement_model = $1 and status <> 'offboarded' group by 1`,
      [model],
    );
    return new Map(rows.map((row) => [row.cluster, row.tenants]));
  }

  async nameTaken(name: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query('select 1 from tenants where lower(name) = lower($1)', [name]);
    return rowCount !== 0;
  }

  async planOverrides(id: string): Promise<Record<string, unknown>> {
    const { rows } = await this.#pool.query<{ plan_overrides: Record<string, unknown> }>(
      'select plan_overrides from tenants where id = $1',
      [id],
    );
    return rows[0]?.plan_overrides ?? {};
  }

  async list(filter: TenantListFilter): Promise<TenantRecord[]> {
    const { rows } = await this.#pool.query<TenantRow>(
      `select ${recordColumns} from tenants
        where ($1::uuid is null or id > $1) and ($2::text is null or status = $2) and ($3::text is null or tier = $3)
        order by id limit $4`,
      [filter.afterId, filter.status ?? null, filter.tier ?? null, filter.limit],
    );
    return rows.map(fromRow);
  }

  async transition(
    id: string,
    from: readonly TenantStatus[],
    to: TenantStatus,
    reason: string | null,
  ): Promise<TenantRecord | null> {
    const { rows } = await this.#pool.query<TenantRow>(
      `update tenants set status = $3, status_reason = $4, updated_at = now(), status_changed_at = now()
        where id = $1 and status = any($2::text[])
       returning ${recordColumns}`,
      [id, from, to, reason],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }
}

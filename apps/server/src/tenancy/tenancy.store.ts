import type pg from 'pg';
import type { RegulatoryTier, TenantRecord, TenantStatus } from './tenancy.types.ts';

/** The tenant registry, read and written with the owner role (control plane only). */
export interface TenancyStore {
  insert(record: TenantRecord): Promise<'inserted' | 'name_taken'>;
  findById(id: string): Promise<TenantRecord | null>;
  /** Returns the updated record as stored, or null when there is no such tenant. */
  setStatus(id: string, status: TenantStatus): Promise<TenantRecord | null>;
  remove(id: string): Promise<void>;
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
  };
}

export class PgTenancyStore implements TenancyStore {
  readonly #pool: pg.Pool;

  constructor(ownerPool: pg.Pool) {
    this.#pool = ownerPool;
  }

  async insert(record: TenantRecord): Promise<'inserted' | 'name_taken'> {
    const result = await this.#pool.query(
      `insert into tenants (id, name, tier, status, placement_model, placement_cluster, placement_database, created_at, updated_at,
         regulatory_tier)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
       on conflict ((lower(name))) do nothing`,
      [
        record.id,
        record.name,
        record.tier,
        record.status,
        record.placement.model,
        record.placement.cluster,
        record.placement.database,
        record.createdAt,
        record.regulatoryTier,
      ],
    );
    return result.rowCount === 1 ? 'inserted' : 'name_taken';
  }

  async findById(id: string): Promise<TenantRecord | null> {
    const { rows } = await this.#pool.query<TenantRow>('select * from tenants where id = $1', [id]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async setStatus(id: string, status: TenantStatus): Promise<TenantRecord | null> {
    const { rows } = await this.#pool.query<TenantRow>(
      'update tenants set status = $2, updated_at = now() where id = $1 returning *',
      [id, status],
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async remove(id: string): Promise<void> {
    await this.#pool.query('delete from tenants where id = $1', [id]);
  }
}

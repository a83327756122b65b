import type pg from 'pg';

/**
 * The per-tenant plan overrides, a column of the tenant registry (`tenants.plan_overrides`,
 * migration 0006), read and written with the owner role like the rest of the registry.
 */
export interface StoredPlan {
  tier: string;
  /** As stored; the service checks its shape before use. */
  overrides: unknown;
}

export interface PlanStore {
  find(tenantId: string): Promise<StoredPlan | null>;
  /** Replaces the overrides; null when there is no such tenant. */
  setOverrides(tenantId: string, overrides: object): Promise<StoredPlan | null>;
}

export class PgPlanStore implements PlanStore {
  readonly #pool: pg.Pool;

  constructor(ownerPool: pg.Pool) {
    this.#pool = ownerPool;
  }

  async find(tenantId: string): Promise<StoredPlan | null> {
    const { rows } = await this.#pool.query<{ tier: string; plan_overrides: unknown }>(
      'select tier, plan_overrides from tenants where id = $1',
      [tenantId],
    );
    return rows[0] ? { tier: rows[0].tier, overrides: rows[0].plan_overrides } : null;
  }

  async setOverrides(tenantId: string, overrides: object): Promise<StoredPlan | null> {
    const { rows } = await this.#pool.query<{ tier: string; plan_overrides: unknown }>(
      `update tenants set plan_overrides = $2::jsonb, updated_at = now() where id = $1
       returning tier, plan_overrides`,
      [tenantId, JSON.stringify(overrides)],
    );
    return rows[0] ? { tier: rows[0].tier, overrides: rows[0].plan_overrides } : null;
  }
}

import type pg from 'pg';
import { recordAuditEvent } from '../audit/audit.service.ts';
import { runOwnerTenantTransaction } from '../audit/owner-transaction.ts';
import type { RequestOrigin } from '../platform/database/tenant-scope.ts';
import { formatId } from '../platform/ids.ts';

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
  /** Replaces the overrides and records it in the tenant's audit log; null when there is no such tenant. */
  setOverrides(tenantId: string, overrides: object, origin: RequestOrigin): Promise<StoredPlan | null>;
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

  async setOverrides(tenantId: string, overrides: object, origin: RequestOrigin): Promise<StoredPlan | null> {
    return await runOwnerTenantTransaction(this.#pool, tenantId, origin, async (db) => {
      const { rows } = await db.query<{ tier: string; plan_overrides: unknown; previous: unknown }>(
        `with previous as (select plan_overrides from tenants where id = $1 for update)
         update tenants set plan_overrides = $2::jsonb, updated_at = now() where id = $1
         returning tier, plan_overrides, (select plan_overrides from previous) as previous`,
        [tenantId, JSON.stringify(overrides)],
      );
      const row = rows[0];
      if (!row) return null;
      await recordAuditEvent(db, {
        action: 'plan.override',
        resource: { type: 'tenant', id: formatId('tenant', tenantId) },
        before: row.previous,
        after: row.plan_overrides,
        summary: { tier: row.tier, cleared: Object.keys(overrides).length === 0 },
      });
      return { tier: row.tier, overrides: row.plan_overrides };
    });
  }
}

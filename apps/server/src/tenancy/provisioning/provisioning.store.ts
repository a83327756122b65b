import type pg from 'pg';
import { inTransaction } from '../../platform/database/transaction.ts';
import type { TenantRecord } from '../tenancy.types.ts';
import type { PlannedStep, ProvisioningState, StepLogEntry, StepStatus } from './provisioning.types.ts';

/**
 * The provisioning state and step log (0007_lifecycle.sql), with the owner role. Control-plane
 * tables: every statement names the tenant.
 */
export interface StepResult {
  position: number;
  status: StepStatus;
  outcome: string | null;
  error: string | null;
  startedAt: Date;
  finishedAt: Date;
}

export interface ProvisioningStore {
  /**
   * The registry step: the tenant row, its provisioning state and its pending step log, in one
   * transaction. 'exists' when this tenant id is already registered (a re-apply).
   */
  register(
    record: TenantRecord,
    state: Pick<ProvisioningState, 'adminEmail' | 'adminPasswordHash'>,
    overrides: object,
    steps: readonly PlannedStep[],
  ): Promise<'inserted' | 'exists' | 'name_taken'>;
  findState(tenantId: string): Promise<ProvisioningState | null>;
  /** Records the schema the tenant's dedicated database was brought to (start-up skips it then). */
  markSchema(tenantId: string, schema: string): Promise<void>;
  /** Counts one more apply of the plan. */
  startApply(tenantId: string): Promise<void>;
  /** Writes the results of one apply to the step log (one statement). */
  recordSteps(tenantId: string, results: readonly StepResult[]): Promise<void>;
  /**
   * Provisioning → active, the plan marked finished and the admin's password hash dropped (the
   * admin user exists by now); a suspended tenant stays suspended.
   */
  activate(tenantId: string): Promise<'activated' | 'unchanged'>;
  steps(tenantId: string): Promise<StepLogEntry[]>;
}

interface StepRow {
  position: number;
  step: StepLogEntry['step'];
  action: string;
  status: StepStatus;
  attempts: number;
  outcome: string | null;
  error: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  duration_ms: number | null;
}

export class PgProvisioningStore implements ProvisioningStore {
  readonly #pool: pg.Pool;

  constructor(ownerPool: pg.Pool) {
    this.#pool = ownerPool;
  }

  async register(
    record: TenantRecord,
    state: Pick<ProvisioningState, 'adminEmail' | 'adminPasswordHash'>,
    overrides: object,
    steps: readonly PlannedStep[],
  ): Promise<'inserted' | 'exists' | 'name_taken'> {
    // A refusal returns before anything is written: the transaction commits nothing.
    return await inTransaction(this.#pool, async (client) => {
      const existing = await client.query('select 1 from tenants where id = $1', [record.id]);
      if (existing.rowCount !== 0) return 'exists';
      const inserted = await client.query(
        `insert into tenants (id, name, tier, status, placement_model, placement_cluster, placement_database,
                              created_at, updated_at, status_changed_at, plan_overrides, regulatory_tier)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8, $9::jsonb, $10)
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
          JSON.stringify(overrides),
          record.regulatoryTier,
        ],
      );
      if (inserted.rowCount !== 1) return 'name_taken';
      await client.query(
        `insert into tenant_provisioning (tenant, admin_email, admin_password_hash, applies) values ($1, $2, $3, 1)`,
        [record.id, state.adminEmail, state.adminPasswordHash],
      );
      await client.query(
        `insert into tenant_provisioning_steps (tenant, position, step, action, status)
         select $1, s.position, s.step, s.action, 'pending'
           from jsonb_to_recordset($2::jsonb) as s(position integer, step text, action text)`,
        [record.id, JSON.stringify(steps)],
      );
      return 'inserted';
    });
  }

  async findState(tenantId: string): Promise<ProvisioningState | null> {
    const { rows } = await this.#pool.query<{
      admin_email: string;
      admin_password_hash: string | null;
      applies: number;
      started_at: Date;
      finished_at: Date | null;
    }>('select * from tenant_provisioning where tenant = $1', [tenantId]);
    const row = rows[0];
    if (!row) return null;
    return {
      tenantId,
      adminEmail: row.admin_email,
      adminPasswordHash: row.admin_password_hash,
      applies: row.applies,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
    };
  }

  async markSchema(tenantId: string, schema: string): Promise<void> {
    await this.#pool.query('update tenants set placement_schema = $2 where id = $1', [tenantId, schema]);
  }

  async startApply(tenantId: string): Promise<void> {
    await this.#pool.query('update tenant_provisioning set applies = applies + 1 where tenant = $1', [tenantId]);
  }

  async recordSteps(tenantId: string, results: readonly StepResult[]): Promise<void> {
    if (results.length === 0) return;
    await this.#pool.query(
      `update tenant_provisioning_steps s
          set status = r.status, outcome = r.outcome, error = r.error, attempts = s.attempts + 1,
              started_at = r.started_at, finished_at = r.finished_at,
              duration_ms = greatest(0, round(extract(epoch from (r.finished_at - r.started_at)) * 1000))::int
         from jsonb_to_recordset($2::jsonb)
              as r(position integer, status text, outcome text, error text, started_at timestamptz, finished_at timestamptz)
        where s.tenant = $1 and s.position = r.position`,
      [tenantId, JSON.stringify(results)],
    );
  }

  async activate(tenantId: string): Promise<'activated' | 'unchanged'> {
    const { rowCount } = await this.#pool.query(
      `with finished as (
         update tenant_provisioning set finished_at = coalesce(finished_at, now()), admin_password_hash = null
          where tenant = $1
       )
       update tenants set status = 'active', updated_at = now(), status_changed_at = now()
        where id = $1 and status = 'provisioning'`,
      [tenantId],
    );
    return rowCount === 1 ? 'activated' : 'unchanged';
  }

  async steps(tenantId: string): Promise<StepLogEntry[]> {
    const { rows } = await this.#pool.query<StepRow>(
      'select * from tenant_provisioning_steps where tenant = $1 order by position',
      [tenantId],
    );
    return rows.map((row) => ({
      position: row.position,
      step: row.step,
      action: row.action,
      status: row.status,
      attempts: row.attempts,
      outcome: row.outcome,
      error: row.error,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      durationMs: row.duration_ms,
    }));
  }
}

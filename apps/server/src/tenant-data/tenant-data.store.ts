import type pg from 'pg';
import type { TenantPlacement } from '../platform/database/tenant-scope.ts';
import type { ExportManifest } from './export-archive.ts';
import type {
  ExportStatus,
  MovePhase,
  TenantExport,
  TenantLifecycle,
  TierChange,
  TierChangeStatus,
} from './tenant-data.types.ts';

/** A pool or a client inside a transaction. */
export interface Queryable {
  query<Row extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<Row>>;
}

/** Control-plane rows of exports, offboarding and tier changes, with the owner role. */

interface ExportRow {
  id: string;
  tenant: string;
  status: ExportStatus;
  job_id: string | null;
  file_name: string | null;
  size_bytes: string | null;
  sha256: string | null;
  manifest: ExportManifest | null;
  error: string | null;
  created_at: Date;
  finished_at: Date | null;
}

function exportFromRow(row: ExportRow): TenantExport {
  return {
    id: row.id,
    tenantId: row.tenant,
    status: row.status,
    jobId: row.job_id,
    fileName: row.file_name,
    sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes),
    sha256: row.sha256,
    manifest: row.manifest,
    error: row.error,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

interface LifecycleRow {
  id: string;
  status: string;
  tier: string;
  placement_model: TenantPlacement['model'];
  placement_cluster: string;
  placement_database: string;
  legal_hold_reason: string | null;
  legal_hold_set_at: Date | null;
  offboarded_at: Date | null;
  purge_after: Date | null;
  purged_at: Date | null;
}

function lifecycleFromRow(row: LifecycleRow): TenantLifecycle {
  return {
    tenantId: row.id,
    status: row.status,
    tier: row.tier,
    placement: { model: row.placement_model, cluster: row.placement_cluster, database: row.placement_database },
    legalHold:
      row.legal_hold_reason !== null && row.legal_hold_set_at !== null
        ? { reason: row.legal_hold_reason, setAt: row.legal_hold_set_at }
        : null,
    offboardedAt: row.offboarded_at,
    purgeAfter: row.purge_after,
    purgedAt: row.purged_at,
  };
}

interface TierChangeRow {
  id: string;
  tenant: string;
  from_tier: string;
  to_tier: string;
  source_placement: TenantPlacement;
  target_placement: TenantPlacement | null;
  status: TierChangeStatus;
  phase: MovePhase;
  rows_total: string;
  rows_copied: string;
  job_id: string | null;
  result: Record<string, unknown> | null;
  error: string | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

function tierChangeFromRow(row: TierChangeRow): TierChange {
  return {
    id: row.id,
    tenantId: row.tenant,
    fromTier: row.from_tier,
    toTier: row.to_tier,
    sourcePlacement: row.source_placement,
    targetPlacement: row.target_placement,
    status: row.status,
    phase: row.phase,
    rowsTotal: Number(row.rows_total),
    rowsCopied: Number(row.rows_copied),
    jobId: row.job_id,
    result: row.result,
    error: row.error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
  };
}

const lifecycleColumns = `id, status, tier, placement_model, placement_cluster, placement_database,
  legal_hold_reason, legal_hold_set_at, offboarded_at, purge_after, purged_at`;

export class TenantDataStore {
  readonly #pool: pg.Pool;

  constructor(ownerPool: pg.Pool) {
    this.#pool = ownerPool;
  }

  async lifecycle(tenantId: string): Promise<TenantLifecycle | null> {
    const { rows } = await this.#pool.query<LifecycleRow>(`select ${lifecycleColumns} from tenants where id = $1`, [
      tenantId,
    ]);
    return rows[0] ? lifecycleFromRow(rows[0]) : null;
  }

  async setLegalHold(tenantId: string, reason: string | null): Promise<TenantLifecycle | null> {
    const { rows } = await this.#pool.query<LifecycleRow>(
      `update tenants set legal_hold_reason = $2::text,
              legal_hold_set_at = case when $2::text is null then null else coalesce(legal_hold_set_at, now()) end,
              updated_at = now()
        where id = $1 returning ${lifecycleColumns}`,
      [tenantId, reason],
    );
    return rows[0] ? lifecycleFromRow(rows[0]) : null;
  }

  /** Marks the tenant offboarded with its purge date, unless a legal hold was set meanwhile. */
  async markOffboarded(tenantId: string, purgeAfter: Date): Promise<TenantLifecycle | null> {
    const { rows } = await this.#pool.query<LifecycleRow>(
      `update tenants set status = 'offboarded', offboarded_at = coalesce(offboarded_at, now()),
              purge_after = $2, updated_at = now()
        where id = $1 and legal_hold_reason is null and purged_at is null
        returning ${lifecycleColumns}`,
      [tenantId, purgeAfter],
    );
    return rows[0] ? lifecycleFromRow(rows[0]) : null;
  }

  /** Tenants whose purge date has passed, with no legal hold, oldest first. */
  async purgeDue(now: Date, limit: number): Promise<string[]> {
    const { rows } = await this.#pool.query<{ id: string }>(
      `select id from tenants
        where purge_after <= $1 and purged_at is null and legal_hold_reason is null and status = 'offboarded'
        order by purge_after limit $2`,
      [now, limit],
    );
    return rows.map((row) => row.id);
  }

  async markPurged(tenantId: string): Promise<void> {
    await this.#pool.query(`update tenants set purged_at = now(), updated_at = now() where id = $1`, [tenantId]);
  }

  /**
   * The registry flip: the tenant's tier, placement and the schema of the target database
   * (`placement_schema`, so a start does not migrate it again) change in one statement, and
   * only if the placement is still the move's source (compare-and-set). False when it was not.
   */
  async flipPlacement(
    tenantId: string,
    source: TenantPlacement,
    target: TenantPlacement & { schema: string | null },
    tier: string,
    executor: Queryable = this.#pool,
  ): Promise<boolean> {
    const result = await executor.query(
      `update tenants set tier = $5, placement_model = $6, placement_cluster = $7, placement_database = $8,
              placement_schema = $9, updated_at = now()
        where id = $1 and placement_model = $2 and placement_cluster = $3 and placement_database = $4`,
      [
        tenantId,
        source.model,
        source.cluster,
        source.database,
        tier,
        target.model,
        target.cluster,
        target.database,
        target.schema,
      ],
    );
    return result.rowCount === 1;
  }

  async insertExport(
    id: string,
    tenantId: string,
    jobId: string,
    executor: Queryable = this.#pool,
  ): Promise<TenantExport> {
    const { rows } = await executor.query<ExportRow>(
      `insert into tenant_exports (id, tenant, status, job_id) values ($1, $2, 'queued', $3) returning *`,
      [id, tenantId, jobId],
    );
    const row = rows[0];
    if (!row) throw new Error('export insert returned no row');
    return exportFromRow(row);
  }

  async findExport(tenantId: string, id: string): Promise<TenantExport | null> {
    const { rows } = await this.#pool.query<ExportRow>('select * from tenant_exports where tenant = $1 and id = $2', [
      tenantId,
      id,
    ]);
    return rows[0] ? exportFromRow(rows[0]) : null;
  }

  async latestSucceededExport(tenantId: string): Promise<TenantExport | null> {
    const { rows } = await this.#pool.query<ExportRow>(
      `select * from tenant_exports where tenant = $1 and status = 'succeeded' order by finished_at desc limit 1`,
      [tenantId],
    );
    return rows[0] ? exportFromRow(rows[0]) : null;
  }

  async exportStarted(id: string): Promise<void> {
    await this.#pool.query(`update tenant_exports set status = 'running' where id = $1 and status <> 'succeeded'`, [
      id,
    ]);
  }

  async exportSucceeded(
    id: string,
    done: { fileName: string; sizeBytes: number; sha256: string; manifest: ExportManifest },
  ): Promise<void> {
    await this.#pool.query(
      `update tenant_exports set status = 'succeeded', file_name = $2, size_bytes = $3, sha256 = $4, manifest = $5,
              error = null, finished_at = now()
        where id = $1`,
      [id, done.fileName, done.sizeBytes, done.sha256, JSON.stringify(done.manifest)],
    );
  }

  async exportFailed(id: string, error: string): Promise<void> {
    await this.#pool.query(
      `update tenant_exports set status = 'failed', error = $2, finished_at = now() where id = $1 and status <> 'succeeded'`,
      [id, error],
    );
  }

  /** Inserts a queued tier change; 'busy' when the tenant already has one queued or running. */
  async insertTierChange(
    change: {
      id: string;
      tenantId: string;
      fromTier: string;
      toTier: string;
      sourcePlacement: TenantPlacement;
      jobId: string;
    },
    executor: Queryable = this.#pool,
  ): Promise<TierChange | 'busy'> {
    const { rows } = await executor.query<TierChangeRow>(
      `insert into tenant_tier_changes (id, tenant, from_tier, to_tier, source_placement, status, phase, job_id)
       values ($1, $2, $3, $4, $5, 'queued', 'queued', $6)
       on conflict (tenant) where status in ('queued', 'running') do nothing
       returning *`,
      [
        change.id,
        change.tenantId,
        change.fromTier,
        change.toTier,
        JSON.stringify(change.sourcePlacement),
        change.jobId,
      ],
    );
    return rows[0] ? tierChangeFromRow(rows[0]) : 'busy';
  }

  async findTierChange(tenantId: string, id: string): Promise<TierChange | null> {
    const { rows } = await this.#pool.query<TierChangeRow>(
      'select * from tenant_tier_changes where tenant = $1 and id = $2',
      [tenantId, id],
    );
    return rows[0] ? tierChangeFromRow(rows[0]) : null;
  }

  async activeTierChange(tenantId: string): Promise<TierChange | null> {
    const { rows } = await this.#pool.query<TierChangeRow>(
      `select * from tenant_tier_changes where tenant = $1 and status in ('queued', 'running')`,
      [tenantId],
    );
    return rows[0] ? tierChangeFromRow(rows[0]) : null;
  }

  /** Writes phase and progress; fields left undefined keep their value. */
  async updateTierChange(
    id: string,
    update: {
      status?: TierChangeStatus;
      phase?: MovePhase;
      rowsTotal?: number;
      rowsCopied?: number;
      targetPlacement?: TenantPlacement;
      result?: Record<string, unknown>;
      error?: string;
    },
  ): Promise<void> {
    const finished = update.status === 'succeeded' || update.status === 'failed';
    await this.#pool.query(
      `update tenant_tier_changes
          set status = coalesce($2, status), phase = coalesce($3, phase),
              rows_total = coalesce($4, rows_total), rows_copied = coalesce($5, rows_copied),
              target_placement = coalesce($6::jsonb, target_placement), result = coalesce($7::jsonb, result),
              error = coalesce($8, error), updated_at = now(),
              finished_at = case when $9 then now() else finished_at end
        where id = $1`,
      [
        id,
        update.status ?? null,
        update.phase ?? null,
        update.rowsTotal ?? null,
        update.rowsCopied ?? null,
        update.targetPlacement ? JSON.stringify(update.targetPlacement) : null,
        update.result ? JSON.stringify(update.result) : null,
        update.error ?? null,
        finished,
      ],
    );
  }
}

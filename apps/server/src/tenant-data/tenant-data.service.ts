import path from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import { insertJobs } from '../jobs/jobs.store.ts';
import type { JsonValue } from '../jobs/jobs.types.ts';
import { assert } from '../platform/assert.ts';
import { queryOn, type TenantDb, type TenantPlacement } from '../platform/database/tenant-scope.ts';
import { AppError } from '../platform/errors.ts';
import { newUuid } from '../platform/ids.ts';
import type { TenancyService } from '../tenancy/tenancy.service.ts';
import { sharedPoolPlacement, type TierCatalogue } from '../tenancy/tiers.ts';
import type { ExportSource } from './export-archive.ts';
import { assertMaintenancePermitted, inTenantMaintenance } from './maintenance.ts';
import { type MoveOptions, type MoveResult, moveTenantRows } from './move-engine.ts';
import { type PlacementDatabases, samePlacement } from './placements.ts';
import { purgeTenantRows } from './purge.ts';
import { tenantDataLimits } from './tenant-data.limits.ts';
import type { TenantDataStore } from './tenant-data.store.ts';
import type { TenantExport, TenantLifecycle, TierChange } from './tenant-data.types.ts';
import {
  controlTables,
  discoverTenantTables,
  placementTables,
  retainedAfterPurgeTables,
  type TenantTable,
} from './tenant-tables.ts';

export const tenantExportKind = 'tenant.export';
export const tierChangeKind = 'tenant.tier-change';

const dayMs = 86_400_000;

export interface TenantDataDeps {
  store: TenantDataStore;
  databases: PlacementDatabases;
  tenancy: TenancyService;
  tiers: TierCatalogue;
  /** The server home; archives go under `<home>/exports/<tenant>/`. */
  home: string;
  log: Logger;
}

/**
 * Exports, legal hold, offboarding, purges and tier-change requests (control plane). Exports and
 * moves run as batch jobs of the tenant (kinds `tenant.export`, `tenant.tier-change`), queued in
 * the control database together with their own record.
 */
export class TenantDataService {
  readonly #deps: TenantDataDeps;

  constructor(deps: TenantDataDeps) {
    this.#deps = deps;
  }

  get store(): TenantDataStore {
    return this.#deps.store;
  }

  /** Owner access to every placement (tests and tools read a tenant's rows where they live). */
  get databases(): PlacementDatabases {
    return this.#deps.databases;
  }

  /** Errors: TENANT_NOT_FOUND, TENANT_PURGED. */
  async #existing(tenantId: string): Promise<TenantLifecycle> {
    const lifecycle = await this.#deps.store.lifecycle(tenantId);
    if (!lifecycle) throw new AppError('TENANT_NOT_FOUND');
    if (lifecycle.purgedAt !== null) throw new AppError('TENANT_PURGED');
    return lifecycle;
  }

  /** Queues a job of the tenant and runs `record` in the same control-database transaction. */
  async #queue<T>(
    tenantId: string,
    job: { kind: string; payload: JsonValue; maxAttempts: number },
    record: (client: TenantDb, jobId: string) => Promise<T>,
  ): Promise<T> {
    return await inTenantMaintenance(this.#deps.databases.control, tenantId, { replica: false }, async (client) => {
      const db: TenantDb = { tenantId, origin: null, query: (sql, params) => queryOn(client, sql, params) };
      const jobId = newUuid();
      const result = await record(db, jobId);
      await insertJobs(db, [{ id: jobId, priority: 0, createdBy: null, ...job }]);
      return result;
    });
  }

  /** Starts an export. Errors: TENANT_NOT_FOUND, TENANT_PURGED. */
  async requestExport(tenantId: string): Promise<TenantExport> {
    await this.#existing(tenantId);
    const exportId = newUuid();
    return await this.#queue(
      tenantId,
      { kind: tenantExportKind, payload: { exportId }, maxAttempts: tenantDataLimits.exportMaxAttempts },
      (db, jobId) => this.#deps.store.insertExport(exportId, tenantId, jobId, db),
    );
  }

  /** Errors: TENANT_EXPORT_NOT_FOUND. */
  async getExport(tenantId: string, exportId: string): Promise<TenantExport> {
    const found = await this.#deps.store.findExport(tenantId, exportId);
    if (!found) throw new AppError('TENANT_EXPORT_NOT_FOUND');
    return found;
  }

  /** The archive's path on disk. Errors: TENANT_EXPORT_NOT_FOUND, TENANT_EXPORT_NOT_READY. */
  async exportFile(tenantId: string, exportId: string): Promise<{ path: string; export: TenantExport }> {
    const found = await this.getExport(tenantId, exportId);
    if (found.status !== 'succeeded' || found.fileName === null) throw new AppError('TENANT_EXPORT_NOT_READY');
    return { path: path.join(this.#deps.home, found.fileName), export: found };
  }

  /** Where an export's archive is written, relative to the home (stored in the row). */
  exportFileName(tenantId: string, exportId: string): string {
    return path.join('exports', tenantId, `${exportId}.tar.gz`);
  }

  get home(): string {
    return this.#deps.home;
  }

  /**
   * Runs `work` on the databases and tables an export of this tenant reads. Each is read on a
   * connection of its own whose backend runs at batch CPU priority where the server is on this
   * machine (docs/limits.md, "Batch connections"): an export is the firm's biggest read, and
   * other firms' requests go first. The connections close when `work` ends.
   */
  async withExportSources<T>(tenantId: string, work: (sources: ExportSource[]) => Promise<T>): Promise<T> {
    const lifecycle = await this.#existing(tenantId);
    const sources = await this.#sources(lifecycle, () => true);
    const opened: pg.Pool[] = [];
    try {
      const batched = await Promise.all(
        sources.map(async (source) => {
          const pool = await this.#deps.databases.batchOwnerPool(source.placement);
          if (pool === null) return source;
          opened.push(pool);
          return { ...source, pool };
        }),
      );
      return await work(batched);
    } finally {
      await Promise.all(opened.map((pool) => pool.end()));
    }
  }

  async #sources(
    lifecycle: TenantLifecycle,
    keep: (table: TenantTable) => boolean,
  ): Promise<Array<ExportSource & { placement: TenantPlacement }>> {
    const { control } = this.#deps.databases;
    const placementPool = await this.#deps.databases.ownerPoolFor(lifecycle.placement);
    const controlAll = (await discoverTenantTables(control)).filter(keep);
    if (placementPool === control) {
      return [{ label: 'control', pool: control, tables: controlAll, placement: sharedPoolPlacement }];
    }
    const placementAll = (await discoverTenantTables(placementPool)).filter(keep);
    return [
      { label: 'control', pool: control, tables: controlTables(controlAll), placement: sharedPoolPlacement },
      {
        label: lifecycle.placement.database,
        pool: placementPool,
        tables: placementTables(placementAll),
        placement: lifecycle.placement,
      },
    ];
  }

  /** Errors: TENANT_NOT_FOUND, TENANT_PURGED. */
  async setLegalHold(tenantId: string, reason: string): Promise<TenantLifecycle> {
    await this.#existing(tenantId);
    const updated = await this.#deps.store.setLegalHold(tenantId, reason);
    assert(updated !== null, 'tenant vanished while setting a legal hold');
    this.#deps.log.info({ tenantId }, 'legal hold set');
    return updated;
  }

  /** Errors: TENANT_NOT_FOUND, TENANT_PURGED. */
  async clearLegalHold(tenantId: string): Promise<TenantLifecycle> {
    await this.#existing(tenantId);
    const updated = await this.#deps.store.setLegalHold(tenantId, null);
    assert(updated !== null, 'tenant vanished while clearing a legal hold');
    this.#deps.log.info({ tenantId }, 'legal hold cleared');
    return updated;
  }

  async lifecycle(tenantId: string): Promise<TenantLifecycle> {
    return await this.#existing(tenantId);
  }

  /**
   * Offboards: the tenant's requests are refused from now on and its purge is scheduled for the
   * tier's `dataRetentionDays` after its latest export (after now when forced without one).
   * A legal hold is never forced: clear it first.
   * Errors: TENANT_NOT_FOUND, TENANT_PURGED, TENANT_ALREADY_OFFBOARDED, TENANT_LEGAL_HOLD,
   * TIER_CHANGE_IN_PROGRESS, TENANT_EXPORT_REQUIRED.
   */
  async offboard(
    tenantId: string,
    options: { force: boolean },
  ): Promise<{
    lifecycle: TenantLifecycle;
    exportId: string | null;
  }> {
    const lifecycle = await this.#existing(tenantId);
    if (lifecycle.status === 'offboarded') throw new AppError('TENANT_ALREADY_OFFBOARDED');
    if (lifecycle.legalHold) throw new AppError('TENANT_LEGAL_HOLD', `Legal hold: ${lifecycle.legalHold.reason}`);
    if (await this.#deps.store.activeTierChange(tenantId)) throw new AppError('TIER_CHANGE_IN_PROGRESS');
    const latest = await this.#deps.store.latestSucceededExport(tenantId);
    if (!latest && !options.force) throw new AppError('TENANT_EXPORT_REQUIRED');
    const retentionDays = this.#deps.tiers.find(lifecycle.tier)?.dataRetentionDays;
    assert(retentionDays !== undefined, `tenant ${tenantId} is on unknown tier ${lifecycle.tier}`);
    const from = latest?.finishedAt ?? new Date();
    const purgeAfter = new Date(from.getTime() + retentionDays * dayMs);
    const offboarded = await this.#deps.store.markOffboarded(tenantId, purgeAfter);
    // Null: a legal hold was set between the check and the update.
    if (!offboarded) throw new AppError('TENANT_LEGAL_HOLD');
    this.#deps.tenancy.forget(tenantId);
    this.#deps.log.info({ tenantId, purgeAfter, exportId: latest?.id ?? null }, 'tenant offboarded');
    return { lifecycle: offboarded, exportId: latest?.id ?? null };
  }

  /**
   * Deletes the offboarded tenant's rows from every database that holds them (its placement
   * and the control database) and records the purge; the registry row stays, marked purged.
   * Errors: TENANT_NOT_FOUND, TENANT_PURGED, TENANT_NOT_OFFBOARDED, TENANT_LEGAL_HOLD.
   */
  async purge(tenantId: string): Promise<{ deleted: Record<string, number> }> {
    const lifecycle = await this.#existing(tenantId);
    if (lifecycle.status !== 'offboarded') throw new AppError('TENANT_NOT_OFFBOARDED');
    if (lifecycle.legalHold) throw new AppError('TENANT_LEGAL_HOLD', `Legal hold: ${lifecycle.legalHold.reason}`);
    const sources = await this.#sources(lifecycle, (table) => !retainedAfterPurgeTables.has(table.name));
    const deleted: Record<string, number> = {};
    for (const source of sources) await assertMaintenancePermitted(source.pool);
    for (const source of sources) {
      const counts = await purgeTenantRows(source.pool, tenantId, source.tables);
      for (const [table, count] of Object.entries(counts)) deleted[table] = (deleted[table] ?? 0) + count;
    }
    // Recheck the hold after deleting would be too late; the hold is read again first thing in
    // every purge, and a hold set during one is honoured by the next (documented).
    await this.#deps.store.markPurged(tenantId);
    this.#deps.log.info({ tenantId, deleted }, 'tenant data purged');
    return { deleted };
  }

  /** Purges every tenant whose retention has run out (no legal hold); returns their ids. */
  async purgeDue(now: Date = new Date(), limit = 10): Promise<string[]> {
    const due = await this.#deps.store.purgeDue(now, limit);
    const purged: string[] = [];
    for (const tenantId of due) {
      try {
        await this.purge(tenantId);
        purged.push(tenantId);
      } catch (error) {
        this.#deps.log.error({ err: error, tenantId }, 'scheduled purge failed; retried next sweep');
      }
    }
    return purged;
  }

  /**
   * Queues a tier change. Errors: TENANT_NOT_FOUND, TENANT_PURGED, TENANT_NOT_ACTIVE,
   * TENANT_UNKNOWN_TIER, TIER_CHANGE_SAME_TIER, TIER_CHANGE_IN_PROGRESS.
   */
  async requestTierChange(tenantId: string, tierName: string): Promise<TierChange> {
    const lifecycle = await this.#existing(tenantId);
    if (lifecycle.status !== 'active') throw new AppError('TENANT_NOT_ACTIVE', `The tenant is ${lifecycle.status}.`);
    const tier = this.#deps.tiers.find(tierName);
    if (!tier) throw new AppError('TENANT_UNKNOWN_TIER', `There is no tier named "${tierName}".`);
    if (tier.name === lifecycle.tier) {
      throw new AppError('TIER_CHANGE_SAME_TIER', `The tenant is already on tier "${tier.name}".`);
    }
    if (!this.#deps.databases.supports(tier.isolation)) {
      throw new AppError(
        'TIER_CHANGE_PLACEMENT_UNAVAILABLE',
        `Tier "${tier.name}" needs a ${tier.isolation} placement, which this deployment does not offer.`,
      );
    }
    const changeId = newUuid();
    return await this.#queue(
      tenantId,
      { kind: tierChangeKind, payload: { changeId }, maxAttempts: tenantDataLimits.moveMaxAttempts },
      async (db, jobId) => {
        const inserted = await this.#deps.store.insertTierChange(
          {
            id: changeId,
            tenantId,
            fromTier: lifecycle.tier,
            toTier: tier.name,
            sourcePlacement: lifecycle.placement,
            jobId,
          },
          db,
        );
        // The partial unique index holds one active change per tenant, even for racing requests;
        // throwing rolls the job back with it.
        if (inserted === 'busy') throw new AppError('TIER_CHANGE_IN_PROGRESS');
        return inserted;
      },
    );
  }

  /** Errors: TIER_CHANGE_NOT_FOUND. */
  async getTierChange(tenantId: string, changeId: string): Promise<TierChange> {
    const found = await this.#deps.store.findTierChange(tenantId, changeId);
    if (!found) throw new AppError('TIER_CHANGE_NOT_FOUND');
    return found;
  }

  /** The placement the change moves to: the current one when the target tier shares its model and it is the pool. */
  async targetPlacement(change: TierChange): Promise<TenantPlacement> {
    const tier = this.#deps.tiers.find(change.toTier);
    assert(tier !== undefined, `tier ${change.toTier} vanished from the catalogue`);
    if (tier.isolation === 'pool' && change.sourcePlacement.model === 'pool') return change.sourcePlacement;
    const target = await this.#deps.databases.placementFor(change.tenantId, tier.isolation);
    if (!target) throw new AppError('TIER_CHANGE_PLACEMENT_UNAVAILABLE');
    return target;
  }

  /**
   * After a failed change: drops the dedicated database the change moved to, unless the
   * registry places a tenant there (the switch happened) or it is the source. A failure to
   * drop is logged, not thrown, so the change still reports the failure that stopped it.
   */
  async discardTarget(change: TierChange, target: TenantPlacement): Promise<void> {
    if (target.model === 'pool' || samePlacement(change.sourcePlacement, target)) return;
    try {
      const dropped = await this.#deps.databases.dropUnplaced(target);
      this.#deps.log.info({ tenantId: change.tenantId, changeId: change.id, target, dropped }, 'failed move target');
    } catch (error) {
      this.#deps.log.warn({ err: error, changeId: change.id, target }, 'could not drop the failed move target');
    }
  }

  forgetCachedTenant(tenantId: string): void {
    this.#deps.tenancy.forget(tenantId);
  }

  /** Moves the tenant's rows from the change's source to `target` (move-engine.ts), recording phase and progress. */
  async moveTenant(
    change: TierChange,
    target: TenantPlacement,
    signal: AbortSignal,
    testHooks: Pick<MoveOptions, 'failAt' | 'purgeGraceMs'> = {},
  ): Promise<MoveResult> {
    const { store } = this.#deps;
    let lastWriteMs = 0;
    let pending: Promise<void> = Promise.resolve();
    const targetSchema = await this.#deps.databases.schemaOf(target);
    const result = await moveTenantRows({
      tenantId: change.tenantId,
      changeId: change.id,
      source: await this.#deps.databases.ownerPoolFor(change.sourcePlacement),
      target: await this.#deps.databases.ownerPoolFor(target),
      flip: async () => {
        const flipped = await store.flipPlacement(
          change.tenantId,
          change.sourcePlacement,
          { ...target, schema: targetSchema },
          change.toTier,
        );
        if (!flipped) {
          throw new Error('the registry no longer names the source placement');
        }
        this.#deps.tenancy.forget(change.tenantId);
      },
      onPhase: async (phase) => {
        await pending;
        await store.updateTierChange(change.id, { phase });
      },
      onProgress: (rowsCopied, rowsTotal) => {
        const nowMs = Date.now();
        if (nowMs - lastWriteMs < tenantDataLimits.progressIntervalMs && rowsCopied < rowsTotal) return;
        lastWriteMs = nowMs;
        pending = pending.then(() =>
          store.updateTierChange(change.id, { rowsCopied, rowsTotal }).catch((error: unknown) => {
            this.#deps.log.warn({ err: error, changeId: change.id }, 'could not record move progress');
          }),
        );
      },
      signal,
      log: this.#deps.log,
      ...testHooks,
    });
    await pending;
    return result;
  }
}

import type { Logger } from 'pino';
import { allEntities, type TenantDb, type TenantScopes } from '../platform/database/tenant-scope.ts';
import { meteringLimits } from './metering.limits.ts';
import type { UsageStore } from './metering.store.ts';
import type { UsageRecorder } from './usage-recorder.ts';

/**
 * Storage, users and entities per tenant, measured from the database on a timer
 * (`storageSampleIntervalMs`, hourly by default). For each active tenant it opens that
 * tenant's own scope — so row-level security limits every sum to the tenant's rows — and
 * sums `pg_column_size` of the rows of every tenant table the runtime role can read. That
 * is the logical size of the rows (no index or page overhead, no TOAST compression beyond
 * what the datum carries); the day's largest sample is the day's storage.
 * The sampler's scopes are not metered as the tenant's database time: it is the platform's.
 */
export interface StorageSample {
  tenantId: string;
  storageBytes: number;
  users: number;
  entities: number;
}

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

async function tenantTables(db: TenantDb): Promise<string[]> {
  // information_schema.columns lists only columns the current (runtime) role may read.
  const { rows } = await db.query<{ table_name: string }>(
    `select c.table_name::text as table_name from information_schema.columns c
       join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where c.table_schema = 'public' and c.column_name = 'tenant_id' and t.table_type = 'BASE TABLE'
      order by 1`,
  );
  return rows.map((row) => row.table_name);
}

export async function measureTenant(db: TenantDb, tables: readonly string[]): Promise<Omit<StorageSample, 'tenantId'>> {
  const sizeTerms = tables.map(
    (table) => `(select coalesce(sum(pg_column_size(t.*)), 0) from ${quoteIdentifier(table)} t)`,
  );
  const { rows } = await db.query<{ storage_bytes: string; users: string; entities: string }>(
    `select (${sizeTerms.length > 0 ? sizeTerms.join(' + ') : '0'})::text as storage_bytes,
            (select count(*) from users)::text as users,
            (select count(*) from entities)::text as entities`,
  );
  const row = rows[0];
  return {
    storageBytes: Number(row?.storage_bytes ?? 0),
    users: Number(row?.users ?? 0),
    entities: Number(row?.entities ?? 0),
  };
}

export class StorageSampler {
  readonly #store: UsageStore;
  readonly #scopes: TenantScopes;
  readonly #recorder: UsageRecorder;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<StorageSample[]> | null = null;

  /** `scopes` must be a TenantScopes without the metering observer. */
  constructor(store: UsageStore, scopes: TenantScopes, recorder: UsageRecorder, log: Logger) {
    this.#store = store;
    this.#scopes = scopes;
    this.#recorder = recorder;
    this.#log = log;
  }

  start(intervalMs: number = meteringLimits.storageSampleIntervalMs): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => {
      this.sampleAll().catch((error: unknown) => this.#log.warn({ err: error }, 'storage sampling failed'));
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Measures every active tenant once and records the samples; one run at a time. */
  async sampleAll(now: Date = new Date()): Promise<StorageSample[]> {
    this.#running ??= this.#sampleAll(now).finally(() => {
      this.#running = null;
    });
    return await this.#running;
  }

  async #sampleAll(now: Date): Promise<StorageSample[]> {
    const tenants = (await this.#store.listTenants())
      .filter((tenant) => tenant.status === 'active')
      .slice(0, meteringLimits.storageSampleTenantsMax);
    const samples: StorageSample[] = [];
    let tables: string[] | null = null;
    for (const tenant of tenants) {
      const context = { tenantId: tenant.id, tier: tenant.tier, placement: tenant.placement, entityScope: allEntities };
      let measured: Omit<StorageSample, 'tenantId'>;
      try {
        measured = await this.#scopes.run(context, async (db) => {
          tables ??= await tenantTables(db);
          return await measureTenant(db, tables);
        });
      } catch (error) {
        // One unreachable placement must not stop the others from being measured.
        this.#log.warn({ err: error, tenantId: tenant.id }, 'storage sample failed for a tenant');
        continue;
      }
      const sample = { tenantId: tenant.id, ...measured };
      samples.push(sample);
      const base = { tenantId: tenant.id, tier: tenant.tier, occurredAt: now };
      this.#recorder.recordUsage({ ...base, metric: 'storage_bytes', quantity: sample.storageBytes });
      this.#recorder.recordUsage({ ...base, metric: 'users', quantity: sample.users });
      this.#recorder.recordUsage({ ...base, metric: 'entities', quantity: sample.entities });
    }
    return samples;
  }
}

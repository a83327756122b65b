import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { assert } from '../assert.ts';
import type { SiloClusterSetting } from '../config.ts';
import { AppError } from '../errors.ts';
import { randomToken, readOrCreateSecret } from '../local-secrets.ts';
import { bootstrapOwnerDatabase, verifyRuntimeRole } from './database-setup.ts';
import { type EmbeddedCluster, startEmbeddedCluster } from './embedded-cluster.ts';
import { applyMigrations, loadMigrations } from './migrate.ts';
import { logClientErrors, logConnectionErrors } from './pool-errors.ts';
import type { TenantPlacement } from './tenant-scope.ts';

/**
 * The clusters tenants' databases live on (ARCHITECTURE.md 3): `shared` — the server of the
 * shared database, which also holds every bridge tenant's own database — and the silo
 * clusters named in the configuration, each an owner-role URL or a second embedded PostgreSQL
 * that this process starts the first time it is needed.
 *
 * Preparing a cluster makes it able to take tenants fast: the runtime role exists there with
 * the deployment's one password (so a runtime URL is the shared one with another host and
 * database), and a migrated template database exists, so a tenant's database is one
 * `CREATE DATABASE … TEMPLATE` away. The template's name carries a hash of the migrations;
 * it is built under a temporary name and renamed when complete, so its existence means it
 * is whole. Databases made from an older template are migrated when the platform starts.
 */
export const sharedClusterName = 'shared';

export const clusterLimits = {
  /** Retries of a CREATE/RENAME DATABASE that found the template still held by a closing session. */
  objectInUseRetries: 40,
  objectInUseRetryMs: 50,
  /** Dedicated databases migrated at once when the platform starts. */
  startupMigrationsParallel: 4,
  /** Prefix kept from the shared database's name in the names of tenant databases. */
  prefixLengthMax: 24,
} as const;

// Advisory lock keys: one for cluster preparation, one for migrating a tenant database.
const clusterLockKey = 7_042_101;
const migrateLockKey = 7_042_001;

export interface ClusterDirectoryOptions {
  /** Owner URL of the shared database; its database name prefixes every database we create. */
  sharedOwnerUrl: string;
  /** The shared cluster's server runs on this machine: the embedded one, or DATABASE_URL's with COUNTINGHOUSE_DATABASE_LOCAL. */
  sharedOnThisMachine: boolean;
  /** Nice value of batch work's backends on servers on this machine (COUNTINGHOUSE_BATCH_BACKEND_NICE); 0: none. */
  batchBackendNice: number;
  runtimeRole: string;
  runtimePassword: string;
  silos: readonly SiloClusterSetting[];
  /** Home folder; embedded silo clusters keep their data under `<home>/silos/<name>`. */
  home: string;
  log: Logger;
}

interface ReadyCluster {
  name: string;
  ownerUrl: string;
  template: string;
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

function isPgError(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

/** Runs a statement that needs no session on a database; retries while a closing session still holds it. */
async function retryWhileInUse(client: pg.ClientBase, sql: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await client.query(sql);
      return;
    } catch (error) {
      // 55006 object_in_use: a session we just closed has not left the source database yet.
      if (!isPgError(error, '55006') || attempt >= clusterLimits.objectInUseRetries) throw error;
      await sleep(clusterLimits.objectInUseRetryMs);
    }
  }
}

async function withClient<T>(url: string, log: Logger, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'countinghouse-placement' });
  logClientErrors(client, log, { client: 'placement' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * The prefix of every database a deployment makes (`<prefix>_b_…`, `<prefix>_s_…`,
 * `<prefix>_tpl_…`): its shared database's name, lowercased and cut to 24 characters, so
 * scripts that clean a scratch deployment up find them by the same rule.
 */
export function tenantDatabasePrefix(sharedDatabase: string): string {
  return sharedDatabase
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, clusterLimits.prefixLengthMax);
}

export class ClusterDirectory {
  readonly #options: ClusterDirectoryOptions;
  readonly #prefix: string;
  readonly #silos: ReadonlyMap<string, SiloClusterSetting>;
  readonly #ready = new Map<string, Promise<ReadyCluster>>();
  /** Owner URLs of clusters whose preparation finished: what the synchronous lookups read. */
  readonly #readyUrls = new Map<string, string>();
  readonly #embedded: EmbeddedCluster[] = [];
  #templateHash: Promise<string> | null = null;

  constructor(options: ClusterDirectoryOptions) {
    this.#options = options;
    this.#prefix = tenantDatabasePrefix(decodeURIComponent(new URL(options.sharedOwnerUrl).pathname.slice(1)));
    assert(this.#prefix.length > 0, 'the shared database needs a name');
    this.#silos = new Map(options.silos.map((silo) => [silo.name, silo]));
    assert(!this.#silos.has(sharedClusterName), 'a silo cluster cannot be named shared');
  }

  /** Silo cluster names in configuration order. */
  siloClusters(): string[] {
    return [...this.#silos.keys()];
  }

  isKnown(cluster: string): boolean {
    return cluster === sharedClusterName || this.#silos.has(cluster);
  }

  /**
   * The nice value batch work's connections to this cluster get, or 0 when they share its
   * interactive pools (backend-priority.ts). The one rule: only a server on this machine (an
   * embedded silo, or the shared one when it runs here), whose backends' process ids are ours.
   */
  batchNiceFor(cluster: string): number {
    const onThisMachine =
      cluster === sharedClusterName ? this.#options.sharedOnThisMachine : this.#silos.get(cluster)?.url === null;
    return onThisMachine ? this.#options.batchBackendNice : 0;
  }

  /** The database a dedicated tenant gets: named after the deployment, the model and the tenant. */
  databaseNameFor(model: 'bridge' | 'silo', tenantId: string): string {
    assert(/^[0-9a-f-]{36}$/.test(tenantId), 'tenant database names come from a tenant uuid');
    return `${this.#prefix}_${model === 'bridge' ? 'b' : 's'}_${tenantId.replaceAll('-', '')}`;
  }

  /** True when the name is one this deployment gives tenant databases (never the shared one). */
  isTenantDatabaseName(database: string): boolean {
    return new RegExp(`^${this.#prefix}_[bs]_[0-9a-f]{32}$`).test(database);
  }

  /**
   * The runtime-role URL of a dedicated placement, for the pools. Synchronous: the cluster
   * must have been prepared (provisioning or the start-up pass does that).
   * Errors: PLACEMENT_UNAVAILABLE.
   */
  runtimeUrlFor(placement: TenantPlacement): string {
    const ownerUrl = this.#readyUrls.get(placement.cluster);
    if (ownerUrl === undefined) {
      throw new AppError('PLACEMENT_UNAVAILABLE', `Cluster "${placement.cluster}" is not open in this instance.`);
    }
    const url = new URL(withDatabase(ownerUrl, placement.database));
    url.username = this.#options.runtimeRole;
    url.password = this.#options.runtimePassword;
    return url.toString();
  }

  /** Owner-role URL of a placement's database (control-plane work: copies, purges, sizes). */
  async ownerUrlFor(placement: TenantPlacement): Promise<string> {
    const cluster = await this.ready(placement.cluster);
    return withDatabase(cluster.ownerUrl, placement.database);
  }

  /**
   * Prepares a cluster once per process (embedded start, runtime role, template); concurrent
   * callers share the work, and a failure is forgotten so the next call tries again.
   * Errors: PLACEMENT_UNAVAILABLE (a cluster no configuration names).
   */
  async ready(cluster: string): Promise<ReadyCluster> {
    if (!this.isKnown(cluster)) {
      throw new AppError('PLACEMENT_UNAVAILABLE', `No cluster named "${cluster}" is configured.`);
    }
    let pending = this.#ready.get(cluster);
    if (pending === undefined) {
      pending = this.#prepare(cluster);
      this.#ready.set(cluster, pending);
      pending.then(
        (ready) => this.#readyUrls.set(cluster, ready.ownerUrl),
        () => this.#ready.delete(cluster),
      );
    }
    return await pending;
  }

  async #ownerUrlOf(cluster: string): Promise<string> {
    if (cluster === sharedClusterName) return this.#options.sharedOwnerUrl;
    const silo = this.#silos.get(cluster);
    assert(silo !== undefined, `cluster ${cluster} is known`);
    if (silo.url !== null) return silo.url;
    return await this.#startEmbedded(silo.name);
  }

  async #startEmbedded(name: string): Promise<string> {
    const { home, log } = this.#options;
    const siloHome = path.join(home, 'silos', name);
    // The postgres OS user (when we run as root) must reach its data folder.
    await fs.mkdir(siloHome, { recursive: true, mode: 0o755 });
    await fs.chmod(path.join(home, 'silos'), 0o755);
    await fs.chmod(siloHome, 0o755);
    const embedded = await startEmbeddedCluster({ home: siloHome, log: log.child({ cluster: name }) });
    this.#embedded.push(embedded);
    const ownerPassword = await readOrCreateSecret(siloHome, 'pg-owner.secret', () => randomToken(24));
    // The owner database carries the shared database's name, so templates and roles match.
    const sharedDatabase = decodeURIComponent(new URL(this.#options.sharedOwnerUrl).pathname.slice(1));
    return await bootstrapOwnerDatabase(embedded.superuserUrl, sharedDatabase, ownerPassword.value);
  }

  async #prepare(cluster: string): Promise<ReadyCluster> {
    const ownerUrl = await this.#ownerUrlOf(cluster);
    const template = await this.#templateName();
    await withClient(ownerUrl, this.#options.log, async (client) => {
      await client.query('select pg_advisory_lock($1)', [clusterLockKey]);
      try {
        if (cluster !== sharedClusterName) await this.#ensureRuntimeRole(client);
        await this.#ensureTemplate(client, ownerUrl, template);
      } finally {
        await client.query('select pg_advisory_unlock($1)', [clusterLockKey]);
      }
    });
    this.#options.log.info({ cluster, template }, 'cluster ready for tenant databases');
    return { name: cluster, ownerUrl, template };
  }

  /** The runtime role on a silo cluster: same name and password as on the shared one. */
  async #ensureRuntimeRole(client: pg.ClientBase): Promise<void> {
    const { runtimeRole, runtimePassword } = this.#options;
    const found = await client.query('select 1 from pg_roles where rolname = $1', [runtimeRole]);
    // As in database-setup: a role made by a non-superuser owner is NOSUPERUSER and NOBYPASSRLS.
    const verb = found.rowCount === 0 ? 'create' : 'alter';
    await client.query(
      `${verb} role ${quoteIdentifier(runtimeRole)} login ${verb === 'create' ? 'noinherit ' : ''}password ${quoteLiteral(runtimePassword)}`,
    );
  }

  /** A hash of the migrations (and runtime role): the schema every tenant database is brought to. */
  async schemaVersion(): Promise<string> {
    await this.#templateName();
    return (await this.#templateHash) ?? '';
  }

  async #templateName(): Promise<string> {
    this.#templateHash ??= loadMigrations().then((migrations) =>
      createHash('sha256')
        .update(this.#options.runtimeRole)
        .update(migrations.map((migration) => `${migration.version}:${migration.checksum}`).join('\n'))
        .digest('hex')
        .slice(0, 12),
    );
    return `${this.#prefix}_tpl_${await this.#templateHash}`;
  }

  async #ensureTemplate(client: pg.ClientBase, ownerUrl: string, template: string): Promise<void> {
    const found = await client.query('select 1 from pg_database where datname = $1', [template]);
    if (found.rowCount !== 0) return;
    const building = `${template}_building`;
    // A half-built template from a crashed run is thrown away and built again.
    await client.query(`drop database if exists ${quoteIdentifier(building)}`);
    await client.query(`create database ${quoteIdentifier(building)}`);
    await withClient(withDatabase(ownerUrl, building), this.#options.log, async (templateClient) => {
      await applyMigrations(templateClient, this.#options.runtimeRole);
    });
    await retryWhileInUse(client, `alter database ${quoteIdentifier(building)} rename to ${quoteIdentifier(template)}`);
    await this.#dropStaleTemplates(client, template);
  }

  async #dropStaleTemplates(client: pg.ClientBase, current: string): Promise<void> {
    const { rows } = await client.query<{ datname: string }>(
      `select datname::text as datname from pg_database where datname like $1 and datname <> $2`,
      [`${this.#prefix}\\_tpl\\_%`, current],
    );
    for (const row of rows) {
      // Another instance on older code may still be copying it; it is retried on the next start.
      await client.query(`drop database if exists ${quoteIdentifier(row.datname)}`).catch((error: unknown) => {
        this.#options.log.warn({ err: error, template: row.datname }, 'could not drop an old template');
      });
    }
  }

  /** Creates a tenant database from the cluster's template; an existing one is kept. */
  async createDatabase(placement: TenantPlacement): Promise<'created' | 'exists'> {
    assert(this.isTenantDatabaseName(placement.database), `not a tenant database name: ${placement.database}`);
    const cluster = await this.ready(placement.cluster);
    return await withClient(cluster.ownerUrl, this.#options.log, async (client) => {
      const found = await client.query('select 1 from pg_database where datname = $1', [placement.database]);
      if (found.rowCount !== 0) return 'exists';
      try {
        await retryWhileInUse(
          client,
          `create database ${quoteIdentifier(placement.database)} template ${quoteIdentifier(cluster.template)}`,
        );
        return 'created';
      } catch (error) {
        // 42P04 duplicate_database: a concurrent apply of the same plan made it first.
        if (isPgError(error, '42P04')) return 'exists';
        throw error;
      }
    });
  }

  async databaseExists(placement: TenantPlacement): Promise<boolean> {
    const cluster = await this.ready(placement.cluster);
    return await withClient(cluster.ownerUrl, this.#options.log, async (client) => {
      const found = await client.query('select 1 from pg_database where datname = $1', [placement.database]);
      return found.rowCount !== 0;
    });
  }

  /** Drops a tenant database (purge after a move or offboarding). Close its pools first. */
  async dropDatabase(placement: TenantPlacement): Promise<void> {
    assert(this.isTenantDatabaseName(placement.database), `not a tenant database name: ${placement.database}`);
    const cluster = await this.ready(placement.cluster);
    await withClient(cluster.ownerUrl, this.#options.log, async (client) => {
      await retryWhileInUse(client, `drop database if exists ${quoteIdentifier(placement.database)}`);
    });
  }

  /** Applies pending migrations to a tenant database; returns the versions applied. */
  async migrateDatabase(placement: TenantPlacement): Promise<number[]> {
    const url = await this.ownerUrlFor(placement);
    return await withClient(url, this.#options.log, async (client) => {
      await client.query('select pg_advisory_lock($1)', [migrateLockKey]);
      try {
        return await applyMigrations(client, this.#options.runtimeRole);
      } finally {
        await client.query('select pg_advisory_unlock($1)', [migrateLockKey]);
      }
    });
  }

  /** Checks, as the runtime role, that it can bypass nothing on this placement's database. */
  async verifyRuntimeRole(placement: TenantPlacement): Promise<void> {
    const pool = new pg.Pool({ connectionString: this.runtimeUrlFor(placement), max: 1 });
    logConnectionErrors(pool, this.#options.log, { pool: 'runtime-role-check' });
    try {
      await verifyRuntimeRole(pool);
    } finally {
      await pool.end();
    }
  }

  /**
   * Start-up pass over the registry's dedicated placements: prepares each cluster in use
   * (starting an embedded silo if tenants live there) and migrates each database not yet at
   * the current schema (the registry records it per tenant). A cluster
   * or database that cannot be opened is logged and skipped — its tenants get
   * PLACEMENT_UNAVAILABLE — so one broken silo does not stop the service for everyone.
   */
  async openPlacements(
    placements: ReadonlyArray<TenantPlacement & { current: boolean }>,
    markMigrated: (placement: TenantPlacement) => Promise<void>,
  ): Promise<void> {
    const byCluster = new Map<string, TenantPlacement[]>();
    for (const placement of placements) {
      if (placement.model === 'pool') continue;
      const list = byCluster.get(placement.cluster) ?? [];
      // Databases already at the current schema need no connection at all.
      if (!placement.current) list.push(placement);
      byCluster.set(placement.cluster, list);
    }
    for (const [cluster, list] of byCluster) {
      if (!this.isKnown(cluster)) {
        this.#options.log.warn({ cluster, databases: list.length }, 'tenants live on a cluster no setting names');
        continue;
      }
      try {
        await this.ready(cluster);
      } catch (error) {
        this.#options.log.error({ err: error, cluster }, 'cluster could not be opened');
        continue;
      }
      await this.#migrateAll(list, markMigrated);
    }
  }

  async #migrateAll(
    placements: readonly TenantPlacement[],
    markMigrated: (placement: TenantPlacement) => Promise<void>,
  ): Promise<void> {
    const queue = [...placements];
    const worker = async () => {
      for (let placement = queue.shift(); placement; placement = queue.shift()) {
        try {
          if (!(await this.databaseExists(placement))) {
            this.#options.log.warn({ placement }, 'a registered tenant database does not exist');
            continue;
          }
          const applied = await this.migrateDatabase(placement);
          if (applied.length > 0) this.#options.log.info({ placement, applied }, 'migrated a tenant database');
          await markMigrated(placement);
        } catch (error) {
          this.#options.log.error({ err: error, placement }, 'a tenant database could not be migrated');
        }
      }
    };
    await Promise.all(Array.from({ length: clusterLimits.startupMigrationsParallel }, worker));
  }

  /** Stops the embedded silo clusters this process started. */
  async close(): Promise<void> {
    await Promise.all(this.#embedded.map((cluster) => cluster.stop()));
    this.#embedded.length = 0;
  }
}

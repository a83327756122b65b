import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { AuditService } from '../audit/audit.service.ts';
import { OperatorAudit } from '../audit/operator-audit.ts';
import { PlatformAudit } from '../audit/platform-audit.ts';
import { EntitiesService } from '../entities/entities.service.ts';
import { ApiKeysService } from '../identity/api-keys.ts';
import { auditAuthEvents } from '../identity/auth-events.ts';
import { Credentials } from '../identity/credentials.ts';
import { IdentityService } from '../identity/identity.service.ts';
import { MfaService } from '../identity/mfa.service.ts';
import { MfaPolicy } from '../identity/mfa-policy.ts';
import { OidcVerifier, parseOidcIssuers } from '../identity/oidc.ts';
import { defaultBreachedPasswordsFile, loadBreachedPasswords, PasswordPolicy } from '../identity/passwords.ts';
import { loadSigningKeys } from '../identity/signing-keys.ts';
import { TokenService } from '../identity/tokens.ts';
import { UsersService } from '../identity/users.service.ts';
import { JobDispatcher } from '../jobs/jobs.dispatcher.ts';
import { jobLimits } from '../jobs/jobs.limits.ts';
import { JobRegistry } from '../jobs/jobs.registry.ts';
import { batchScopeGate } from '../jobs/jobs.scope-gate.ts';
import { JobsService } from '../jobs/jobs.service.ts';
import { entityImportJob } from '../jobs/kinds/entity-import.ts';
import { createLedgerServices, type LedgerServices } from '../ledger/ledger.services.ts';
import { ReportPacksService, reportPackJob } from '../ledger/reports/report-packs.ts';
import { ReportRenderer } from '../ledger/reports/report-renderer.ts';
import { InteractiveSignal } from '../limits/interactive-signal.ts';
import { limitsLimits } from '../limits/limits.limits.ts';
import { type Clock, LimitsService } from '../limits/limits.service.ts';
import { PgPlanStore } from '../limits/limits.store.ts';
import { RedisRateLimitStore } from '../limits/rate-limit.redis.ts';
import { MemoryRateLimitStore, type RateLimitStore } from '../limits/rate-limit.store.ts';
import { BillingService } from '../metering/billing/billing.service.ts';
import { PgBillingStore } from '../metering/billing/billing.store.ts';
import { loadCostModel } from '../metering/billing/cost-model.ts';
import { Metering } from '../metering/metering.runtime.ts';
import { MeteringService } from '../metering/metering.service.ts';
import { PgUsageStore } from '../metering/metering.store.ts';
import { OperatorsService } from '../operators/operators.service.ts';
import { PgOperatorsStore } from '../operators/operators.store.ts';
import { PgHotTenantStore } from '../tenancy/hot-tenants.store.ts';
import { OperatorKey } from '../tenancy/operator-key.ts';
import { type FaultInjector, ProvisioningService } from '../tenancy/provisioning/provisioning.service.ts';
import { PgProvisioningStore } from '../tenancy/provisioning/provisioning.store.ts';
import { TenancyService } from '../tenancy/tenancy.service.ts';
import { PgTenancyStore } from '../tenancy/tenancy.store.ts';
import { TierCatalogue } from '../tenancy/tiers.ts';
import { tenantExportJob } from '../tenant-data/kinds/tenant-export.job.ts';
import { tierChangeJob } from '../tenant-data/kinds/tier-change.job.ts';
import { TenantDataService } from '../tenant-data/tenant-data.service.ts';
import { TenantDataStore } from '../tenant-data/tenant-data.store.ts';
import type { Config } from './config.ts';
import { lowerBackendPriority } from './database/backend-priority.ts';
import { ClusterDirectory, sharedClusterName } from './database/clusters.ts';
import { bootstrapOwnerDatabase, prepareDatabase, verifyRuntimeRole } from './database/database-setup.ts';
import { type EmbeddedCluster, startEmbeddedCluster } from './database/embedded-cluster.ts';
import { OwnerPlacementDatabases } from './database/placement-databases.ts';
import { PlacementPools } from './database/placement-pools.ts';
import { logConnectionErrors } from './database/pool-errors.ts';
import { type TenantPlacement, TenantScopes } from './database/tenant-scope.ts';
import { warmPool } from './database/warm-pool.ts';
import { ensureHome, randomToken, readOrCreateSecret, Sealer } from './local-secrets.ts';

/**
 * The composition root: starts or connects to PostgreSQL, migrates, checks the runtime
 * role, and wires the services. The HTTP layer, the CLI and the tests all start here.
 */
export interface Platform {
  /** Seals secrets at rest (signing keys, taxpayer ids) under the master key. */
  sealer: Sealer;
  tiers: TierCatalogue;
  ownerPool: pg.Pool;
  runtimePool: pg.Pool;
  /** The clusters tenant databases live on: templates, creating, migrating and dropping databases. */
  clusters: ClusterDirectory;
  /** Routing: the runtime pool of each placement (shared, or one per dedicated database). */
  placementPools: PlacementPools;
  scopes: TenantScopes;
  /**
   * The same scopes for job handlers: each transaction first yields to interactive requests
   * (jobs.scope-gate.ts), on connections of low CPU priority where the server is on this machine.
   */
  batchScopes: TenantScopes;
  /** Scopes on the shared database for every tenant: the job queue lives there for all placements. */
  queueScopes: TenantScopes;
  tenancy: TenancyService;
  identity: IdentityService;
  mfa: MfaService;
  users: UsersService;
  /** Base URL for links the server hands out (invitations); null: the request's own origin. */
  publicUrl: string | null;
  apiKeys: ApiKeysService;
  passwords: PasswordPolicy;
  tokens: TokenService;
  /** Verifies every kind of tenant credential: built-in tokens, API keys, external OIDC tokens. */
  credentials: Credentials;
  entities: EntitiesService;
  /** The tenants' tamper-evident audit logs: reading and verifying (recording is `recordAuditEvent`). */
  audit: AuditService;
  /** Writes an operator's action on a tenant to the tenant's audit log, with the change. */
  operatorAudit: OperatorAudit;
  /** The platform's own audit log: operator actions on the platform as a whole (signing keys). */
  platformAudit: PlatformAudit;
  /** Exports, legal hold, offboarding, purges and tier changes (tenant-data domain). */
  tenantData: TenantDataService;
  /** Batch jobs: the handlers this process knows, the dispatcher (owner role) and the tenant API. */
  jobRegistry: JobRegistry;
  jobDispatcher: JobDispatcher;
  jobs: JobsService;
  /** Report packs: queued as `reports.pack` jobs, downloaded as ZIP archives. */
  reportPacks: ReportPacksService;
  limits: LimitsService;
  ledger: LedgerServices;
  operatorKey: OperatorKey;
  /** Named operators and the bootstrap one: who an operator key belongs to. */
  operators: OperatorsService;
  metering: Metering;
  usage: MeteringService;
  usageStore: PgUsageStore;
  billing: BillingService;
  /** Set when this process generated the operator key, so it can be shown once. */
  generatedOperatorKey: string | null;
  /**
   * Opens and warms the shared database's connections ahead of requests (`COUNTINGHOUSE_DB_POOL_WARM`
   * of the runtime pool, all of the control pool); `countinghouse start` calls it before it listens.
   */
  warmConnections(): Promise<{ runtime: number; control: number }>;
  isReady(): Promise<boolean>;
  close(): Promise<void>;
}

const embeddedDatabaseName = 'countinghouse';
const ownerPoolMax = 5;
const connectionTimeoutMs = 5_000;
const idleTimeoutMs = 30_000;

async function resolveOwnerUrl(
  config: Config,
  log: Logger,
): Promise<{ ownerUrl: string; cluster: EmbeddedCluster | null }> {
  if (config.databaseUrl !== undefined) {
    log.info('using the external PostgreSQL from DATABASE_URL');
    return { ownerUrl: config.databaseUrl, cluster: null };
  }
  const cluster = await startEmbeddedCluster({ home: config.home, log });
  try {
    const ownerPassword = await readOrCreateSecret(config.home, 'pg-owner.secret', () => randomToken(24));
    const ownerUrl = await bootstrapOwnerDatabase(cluster.superuserUrl, embeddedDatabaseName, ownerPassword.value);
    return { ownerUrl, cluster };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

/** `min`: connections the pool keeps however long they sit idle (the ones `warmConnections` opens). */
function makePool(connectionString: string, max: number, min: number, applicationName: string, log: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    min,
    connectionTimeoutMillis: connectionTimeoutMs,
    idleTimeoutMillis: idleTimeoutMs,
    application_name: applicationName,
  });
  logConnectionErrors(pool, log, { pool: applicationName });
  return pool;
}

/** Every dedicated placement the registry holds a live tenant on (opened at start). */
async function registeredPlacements(
  ownerPool: pg.Pool,
  schema: string,
): Promise<Array<TenantPlacement & { current: boolean }>> {
  const { rows } = await ownerPool.query<TenantPlacement & { current: boolean }>(
    `select placement_model as model, placement_cluster as cluster, placement_database as database,
            bool_and(placement_schema is not distinct from $1) as current
       from tenants where placement_model <> 'pool' and status <> 'offboarded'
      group by 1, 2, 3`,
    [schema],
  );
  return rows;
}

export interface PlatformOptions {
  /** The rate limiter's clock; tests inject one to step time exactly. */
  clock?: Clock;
  /** Tests: crash onboarding at a chosen step (provisioning.service.ts). */
  provisioningFaults?: FaultInjector;
  /**
   * Tests: the interactive-load channel (interactive-signal.ts). Test files share one database
   * but are not one deployment, so each stack gets a channel of its own unless a test joins two.
   */
  interactiveChannel?: string;
}

async function openRateLimitStore(config: Config, log: Logger): Promise<RateLimitStore> {
  if (config.redisUrl === undefined) return new MemoryRateLimitStore();
  log.info('rate-limit state in Redis from REDIS_URL');
  const store = new RedisRateLimitStore({
    url: config.redisUrl,
    fallbackPercent: config.rateLimitFallbackPercent,
    log,
  });
  await store.waitUntilReady();
  return store;
}

export async function openPlatform(config: Config, log: Logger, options: PlatformOptions = {}): Promise<Platform> {
  const tiers = TierCatalogue.load(config.tiersFile);
  const costModel = loadCostModel(config.costsFile);
  await ensureHome(config.home);
  const { ownerUrl, cluster } = await resolveOwnerUrl(config, log);
  const pools: pg.Pool[] = [];
  let rates: RateLimitStore | null = null;
  let signal: InteractiveSignal | null = null;
  let clusters: ClusterDirectory | null = null;
  let placementPools: PlacementPools | null = null;
  let placementDatabases: OwnerPlacementDatabases | null = null;
  const renderer = new ReportRenderer({
    threads: config.renderThreads,
    nice: config.renderNice,
    queueMax: config.renderQueueMax,
  });
  try {
    const prepared = await prepareDatabase(ownerUrl, log);
    const ownerPool = makePool(ownerUrl, ownerPoolMax, ownerPoolMax, 'countinghouse-control', log);
    const runtimeWarm = Math.min(config.runtimePoolWarm, config.runtimePoolMax);
    const runtimePool = makePool(prepared.runtimeUrl, config.runtimePoolMax, runtimeWarm, 'countinghouse-runtime', log);
    pools.push(ownerPool, runtimePool);
    await verifyRuntimeRole(runtimePool);

    const masterKey =
      config.masterKey ??
      (await readOrCreateSecret(config.home, 'master.key', () => randomBytes(32).toString('hex'))).value;
    const operatorSecret = config.operatorKey
      ? { value: config.operatorKey, created: false }
      : await readOrCreateSecret(config.home, 'operator.key', () => `chop_${randomToken(32)}`);

    rates = await openRateLimitStore(config, log);
    signal = new InteractiveSignal({
      connectionString: ownerUrl,
      announcer: ownerPool,
      instanceId: randomBytes(8).toString('hex'),
      log,
      announceEveryMs: limitsLimits.interactiveAnnounceEveryMs,
      reconnectMsMax: limitsLimits.interactiveSignalReconnectMsMax,
      ...(options.interactiveChannel ? { channel: options.interactiveChannel } : {}),
    });
    await signal.start();
    const limits = new LimitsService({
      tiers,
      plans: new PgPlanStore(ownerPool),
      rates,
      shedding: {
        requestsInFlightMax: config.requestsInFlightMax,
        shedReportsAtPercent: config.shedReportsAtPercent,
        shedBatchAtPercent: config.shedBatchAtPercent,
        connectionShareBudget: config.connectionShareBudget,
        batchSharePercent: config.batchSharePercent,
      },
      log,
      signal,
      ...(options.clock ? { clock: options.clock } : {}),
    });
    clusters = new ClusterDirectory({
      sharedOwnerUrl: ownerUrl,
      sharedOnThisMachine: cluster !== null || config.databaseLocal,
      batchBackendNice: config.batchBackendNice,
      runtimeRole: prepared.runtimeRole,
      runtimePassword: decodeURIComponent(new URL(prepared.runtimeUrl).password),
      silos: config.siloClusters,
      home: config.home,
      log,
    });
    // Batch work's connections to a server on this machine run at a lower CPU priority, in
    // pools of their own sized to this process's job slots (backend-priority.ts).
    const batchPoolMax = Math.max(1, config.jobWorkerSlots);
    let sharedBatchPool: pg.Pool | null = null;
    const sharedBatchNice = clusters.batchNiceFor(sharedClusterName);
    if (sharedBatchNice > 0) {
      sharedBatchPool = makePool(prepared.runtimeUrl, batchPoolMax, 0, 'countinghouse-batch', log);
      lowerBackendPriority(sharedBatchPool, sharedBatchNice, log);
      pools.push(sharedBatchPool);
    }
    placementPools = new PlacementPools(
      { pool: runtimePool, batch: sharedBatchPool },
      clusters,
      {
        poolMax: config.dedicatedPoolMax,
        poolsMax: config.dedicatedPoolsMax,
        idleCloseMs: config.dedicatedPoolIdleMs,
        connectionTimeoutMs,
        batchPoolMax,
      },
      log,
    );
    const usageStore = new PgUsageStore(ownerPool);
    const metering = new Metering(usageStore, log, {
      metricsTopTenants: config.metricsTopTenants,
      emf: config.metricsEmf,
      storageSampleIntervalMs: config.storageSampleMinutes * 60_000,
    });
    const scopes = new TenantScopes(placementPools, limits, metering.scopeObserver);
    const batchScopes = new TenantScopes(
      placementPools.batch,
      batchScopeGate(limits, limits, jobLimits.interactiveLullWaitMsMax),
      metering.scopeObserver,
    );
    // The job queue is one set of tables in the shared database for every placement, so the
    // dispatcher claims across all tenants in one statement; handlers reach the tenant's own
    // data through `scopes`, which routes to its placement.
    const queueScopes = new TenantScopes({ poolFor: () => runtimePool }, limits, metering.scopeObserver);
    // The sampler's own scopes are platform work, not the tenant's database time.
    metering.start(new TenantScopes(placementPools), usageStore);
    const sealer = new Sealer(masterKey);
    const tokens = new TokenService(await loadSigningKeys(ownerPool, sealer), () => loadSigningKeys(ownerPool, sealer));
    const ledger = createLedgerServices(scopes, renderer);
    const passwords = new PasswordPolicy(
      config.passwordLengthMin,
      loadBreachedPasswords(config.breachedPasswordsFile ?? defaultBreachedPasswordsFile),
    );
    const tenancyStore = new PgTenancyStore(ownerPool);
    const provisioning = new ProvisioningService({
      tenants: tenancyStore,
      store: new PgProvisioningStore(ownerPool),
      clusters,
      scopes,
      usage: usageStore,
      tiers,
      passwords,
      log,
      ...(options.provisioningFaults ? { faults: options.provisioningFaults } : {}),
    });
    const tenancy = new TenancyService(tenancyStore, provisioning, new PgHotTenantStore(ownerPool), tiers, log);
    const authEvents = auditAuthEvents(log);
    const identity = new IdentityService({
      tenancy,
      scopes,
      tokens,
      sealer,
      tiers,
      mfaPolicy: new MfaPolicy(config.mfaRegulatoryTiers, config.mfaRoles),
      events: authEvents,
    });
    const apiKeys = new ApiKeysService(scopes, tenancy, authEvents);
    const credentials = new Credentials(tokens).add(apiKeys);
    const oidcIssuers = parseOidcIssuers(config.oidcIssuers);
    if (oidcIssuers.length > 0) {
      credentials.add(
        new OidcVerifier(oidcIssuers, tenancy, scopes, (tenant, role) => identity.mfaRequired(tenant, role)),
      );
      log.info({ issuers: oidcIssuers.map((issuer) => issuer.issuer) }, 'external OIDC issuers configured');
    }
    placementDatabases = new OwnerPlacementDatabases(ownerPool, clusters, tenancyStore, placementPools, log);
    const tenantData = new TenantDataService({
      store: new TenantDataStore(ownerPool),
      databases: placementDatabases,
      tenancy,
      tiers,
      home: config.home,
      log,
    });
    const jobRegistry = new JobRegistry()
      .register(entityImportJob)
      .register(tenantExportJob(tenantData))
      .register(tierChangeJob(tenantData))
      .register(reportPackJob(renderer));
    const jobDispatcher = new JobDispatcher(ownerPool, tiers);
    const operatorKey = new OperatorKey(operatorSecret.value);
    // Queued and running jobs come from the queue table, so the operator view is cluster-wide.
    limits.setJobCountsSource({
      async countsByTenant() {
        const counts = await jobDispatcher.tenantCounts();
        return new Map(counts.map((count) => [count.tenantId, { queued: count.queued, running: count.running }]));
      },
    });
    // Open the clusters tenants live on and migrate their databases before serving them.
    const schema = await clusters.schemaVersion();
    await clusters.openPlacements(await registeredPlacements(ownerPool, schema), async (placement) => {
      await ownerPool.query(
        `update tenants set placement_schema = $4
          where placement_model = $1 and placement_cluster = $2 and placement_database = $3`,
        [placement.model, placement.cluster, placement.database, schema],
      );
    });
    const jobs = new JobsService(queueScopes, jobRegistry, jobDispatcher);
    return {
      sealer,
      tiers,
      ownerPool,
      runtimePool,
      clusters,
      placementPools,
      scopes,
      batchScopes,
      queueScopes,
      tenancy,
      tenantData,
      identity,
      mfa: new MfaService(scopes, sealer, identity, authEvents),
      users: new UsersService(scopes, passwords, authEvents),
      apiKeys,
      publicUrl: config.publicUrl ?? null,
      passwords,
      tokens,
      credentials,
      jobRegistry,
      jobDispatcher,
      jobs,
      reportPacks: new ReportPacksService(scopes, jobs),
      limits,
      entities: new EntitiesService(scopes, sealer, ledger.charts),
      audit: new AuditService(scopes),
      operatorAudit: new OperatorAudit(scopes, tenancy),
      platformAudit: new PlatformAudit(ownerPool),
      ledger,
      operatorKey,
      operators: new OperatorsService(new PgOperatorsStore(ownerPool), operatorKey, log),
      metering,
      usage: new MeteringService(usageStore),
      usageStore,
      billing: new BillingService(usageStore, new PgBillingStore(ownerPool), tiers, costModel, log),
      generatedOperatorKey: operatorSecret.created ? operatorSecret.value : null,
      async warmConnections() {
        const [runtime, control] = await Promise.all([
          warmPool(runtimePool, runtimeWarm),
          warmPool(ownerPool, ownerPoolMax),
        ]);
        return { runtime, control };
      },
      async isReady() {
        return await runtimePool.query('select 1').then(
          () => true,
          () => false,
        );
      },
      async close() {
        // Usage still buffered is written before the pools close (graceful shutdown).
        await metering.close();
        await limits.close();
        await placementPools?.close();
        await placementDatabases?.close();
        await Promise.all(pools.map((pool) => pool.end()));
        await clusters?.close();
        await cluster?.stop();
        await renderer.close();
      },
    };
  } catch (error) {
    await signal?.close();
    await rates?.close();
    await placementPools?.close();
    await placementDatabases?.close();
    await Promise.all(pools.map((pool) => pool.end()));
    await clusters?.close();
    await cluster?.stop();
    await renderer.close();
    throw error;
  }
}

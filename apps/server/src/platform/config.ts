import os from 'node:os';
import path from 'node:path';

/**
 * Everything the server reads from its environment, read once at start. Defaults make
 * `npm start` work on a laptop; each variable is documented in docs/operations.md.
 */
export interface Config {
  /** Folder for local state: embedded PostgreSQL data, generated keys. */
  home: string;
  host: string;
  port: number;
  /** Owner-role URL of an external PostgreSQL; when absent an embedded server starts. */
  databaseUrl: string | undefined;
  /** Operator bearer key; when absent one is generated and stored in `home`. */
  operatorKey: string | undefined;
  /** Key that seals secrets at rest (signing keys); generated in `home` when absent. */
  masterKey: string | undefined;
  logLevel: string;
  /** Tier catalogue file; the checked-in default when absent. */
  tiersFile: string | undefined;
  /** Runtime (RLS-bound) pool size for the shared cluster. */
  runtimePoolMax: number;
  /** Runtime connections `start` opens and warms before it listens, and keeps open (at most the pool size). */
  runtimePoolWarm: number;
  /** Job slots of the worker a server runs in-process (0: none); also the slots of `countinghouse worker`. */
  jobWorkerSlots: number;
  /** How often an idle job worker looks for work. */
  jobPollMs: number;
  /** Redis for rate-limit state shared by several instances; in-process state when absent. */
  redisUrl: string | undefined;
  /** Share (percent) of each plan an instance enforces alone while Redis is unreachable. */
  rateLimitFallbackPercent: number;
  /** Global in-flight request budget of one instance (load shedding). */
  requestsInFlightMax: number;
  /** Report-class requests are shed from this share (percent) of the budget on. */
  shedReportsAtPercent: number;
  /** Batch work is shed from this share (percent) of the budget on. */
  shedBatchAtPercent: number;
  /** Shared-database connections split evenly among the pooled tenants active at once (limits.md). */
  connectionShareBudget: number;
  batchSharePercent: number;
  /**
   * Nice value (1..19; 0: off) of the PostgreSQL backends that batch work uses on a server on
   * this machine — the embedded clusters, or DATABASE_URL's with `databaseLocal` (limits.md).
   */
  batchBackendNice: number;
  /** Threads that render statement PDFs, XLSX and report-pack archives, their nice value (0: off), and how many renders may wait. */
  renderThreads: number;
  renderNice: number;
  renderQueueMax: number;
  /** DATABASE_URL's server runs on this machine and its backends' process ids are this process's to see (single-box installs). */
  databaseLocal: boolean;
  /** Metering: cost model file, top-N tenants on /metrics, CloudWatch EMF lines, storage sampling period. */
  costsFile: string | undefined;
  metricsTopTenants: number;
  metricsEmf: boolean;
  storageSampleMinutes: number;
  /** Identity: minimum password length, breached-password list file (the shipped one when absent). */
  passwordLengthMin: number;
  breachedPasswordsFile: string | undefined;
  /** Regulatory tiers and roles whose users must use a second factor. */
  mfaRegulatoryTiers: string[];
  mfaRoles: string[];
  /** External OIDC issuers: JSON, or `@path` to a JSON file (docs/security.md). */
  oidcIssuers: string | undefined;
  /** Base URL of the web app for invitation links; the server's own address when absent. */
  publicUrl: string | undefined;
  /**
   * Clusters that hold silo (enterprise) tenants' databases, from COUNTINGHOUSE_SILO_CLUSTERS.
   * `url` is an owner-role URL (CREATEDB, CREATEROLE); null means a second embedded
   * PostgreSQL started by the platform when first needed.
   */
  siloClusters: SiloClusterSetting[];
  /** Connections in the runtime pool of one dedicated (bridge or silo) database. */
  dedicatedPoolMax: number;
  /** Dedicated-database pools open at once; the least recently used idle one is closed first. */
  dedicatedPoolsMax: number;
  /** A dedicated-database pool unused for this long is closed. */
  dedicatedPoolIdleMs: number;
}

export interface SiloClusterSetting {
  name: string;
  url: string | null;
}

export const configLimits = {
  portMax: 65_535,
  runtimePoolMaxUpper: 200,
  jobWorkerSlotsMax: 64,
  niceMax: 19,
  renderThreadsMax: 16,
  renderQueueMaxUpper: 10_000,
  jobPollMsMax: 60_000,
  requestsInFlightMaxUpper: 100_000,
  percentMax: 100,
  metricsTopTenantsMax: 1_000,
  storageSampleMinutesMax: 24 * 60,
  passwordLengthMinFloor: 8,
  passwordLengthMinCeiling: 128,
  siloClustersMax: 32,
  dedicatedPoolMaxUpper: 50,
  dedicatedPoolsMaxUpper: 1_000,
  dedicatedPoolIdleMsMax: 3_600_000,
} as const;

/** The name of the embedded silo cluster when COUNTINGHOUSE_SILO_CLUSTERS is absent. */
export const embeddedSiloClusterName = 'silo-1';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Two connections per core: beside other firms, each firm's share of queries running at once. */
export function defaultConnectionShareBudget(): number {
  return 2 * os.availableParallelism();
}

function integerFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^[0-9]+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value > max) throw new ConfigError(`${name} must be at most ${max}, got ${value}`);
  return value;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number, max: number): number {
  const value = integerFrom(env, name, fallback, max);
  if (value < 1) throw new ConfigError(`${name} must be at least 1, got ${value}`);
  return value;
}

function booleanFrom(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '' || raw === 'off') return false;
  if (raw === 'on') return true;
  throw new ConfigError(`${name} must be "on" or "off", got "${raw}"`);
}

function listFrom(env: NodeJS.ProcessEnv, name: string, fallback: string[], allowed: readonly string[]): string[] {
  const raw = env[name];
  if (raw === undefined) return fallback;
  const items = raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  const unknown = items.filter((item) => !allowed.includes(item));
  if (unknown.length > 0)
    throw new ConfigError(`${name}: unknown ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`);
  return items;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function passwordLengthMinFrom(env: NodeJS.ProcessEnv): number {
  const name = 'COUNTINGHOUSE_PASSWORD_MIN_LENGTH';
  const value = integerFrom(env, name, 12, configLimits.passwordLengthMinCeiling);
  if (value < configLimits.passwordLengthMinFloor) {
    throw new ConfigError(`${name} must be at least ${configLimits.passwordLengthMinFloor}, got ${value}`);
  }
  return value;
}

const clusterNamePattern = /^[a-z][a-z0-9-]{0,30}$/;

/**
 * COUNTINGHOUSE_SILO_CLUSTERS: comma-separated entries, each `name=URL`, `name=embedded`, a bare
 * URL (named silo-1, silo-2, … by position) or `embedded`; `none` turns silos off. Absent: one
 * embedded silo cluster for the embedded default, none with DATABASE_URL (a production
 * deployment names its clusters).
 */
export function parseSiloClusters(raw: string | undefined, external: boolean): SiloClusterSetting[] {
  if (raw === undefined) return external ? [] : [{ name: embeddedSiloClusterName, url: null }];
  if (raw.trim() === 'none') return [];
  const entries = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length > configLimits.siloClustersMax) {
    throw new ConfigError(`COUNTINGHOUSE_SILO_CLUSTERS names at most ${configLimits.siloClustersMax} clusters`);
  }
  const clusters = entries.map((entry, index): SiloClusterSetting => {
    const named = /^([a-z][a-z0-9-]{0,30})=(.+)$/.exec(entry);
    const name = named?.[1] ?? `silo-${index + 1}`;
    const target = named?.[2] ?? entry;
    if (!clusterNamePattern.test(name) || name === 'shared') {
      throw new ConfigError(`COUNTINGHOUSE_SILO_CLUSTERS: "${name}" is not a usable cluster name`);
    }
    if (target === 'embedded') return { name, url: null };
    if (!/^postgres(ql)?:\/\//.test(target)) {
      throw new ConfigError(`COUNTINGHOUSE_SILO_CLUSTERS: cluster ${name} needs a postgres:// URL or "embedded"`);
    }
    return { name, url: target };
  });
  const names = clusters.map((cluster) => cluster.name);
  if (new Set(names).size !== names.length) throw new ConfigError('COUNTINGHOUSE_SILO_CLUSTERS names a cluster twice');
  return clusters;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const databaseUrl = nonEmpty(env.DATABASE_URL);
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must start with postgres:// or postgresql://');
  }
  const operatorKey = nonEmpty(env.COUNTINGHOUSE_OPERATOR_KEY);
  if (operatorKey !== undefined && operatorKey.length < 32) {
    throw new ConfigError('COUNTINGHOUSE_OPERATOR_KEY must be at least 32 characters');
  }
  const masterKey = nonEmpty(env.COUNTINGHOUSE_MASTER_KEY);
  if (masterKey !== undefined && !/^[0-9a-f]{64}$/.test(masterKey)) {
    throw new ConfigError('COUNTINGHOUSE_MASTER_KEY must be 64 hex characters (32 bytes)');
  }
  const redisUrl = nonEmpty(env.REDIS_URL);
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new ConfigError('REDIS_URL must start with redis:// or rediss://');
  }
  return {
    home: path.resolve(nonEmpty(env.COUNTINGHOUSE_HOME) ?? '.countinghouse'),
    host: nonEmpty(env.HOST) ?? '127.0.0.1',
    port: integerFrom(env, 'PORT', 4000, configLimits.portMax),
    databaseUrl,
    operatorKey,
    masterKey,
    logLevel: nonEmpty(env.LOG_LEVEL) ?? 'info',
    tiersFile: nonEmpty(env.COUNTINGHOUSE_TIERS_FILE),
    runtimePoolMax: integerFrom(env, 'COUNTINGHOUSE_DB_POOL_MAX', 20, configLimits.runtimePoolMaxUpper),
    runtimePoolWarm: integerFrom(env, 'COUNTINGHOUSE_DB_POOL_WARM', 20, configLimits.runtimePoolMaxUpper),
    jobWorkerSlots: integerFrom(env, 'COUNTINGHOUSE_JOB_WORKERS', 4, configLimits.jobWorkerSlotsMax),
    jobPollMs: Math.max(10, integerFrom(env, 'COUNTINGHOUSE_JOB_POLL_MS', 500, configLimits.jobPollMsMax)),
    redisUrl,
    rateLimitFallbackPercent: positive(env, 'COUNTINGHOUSE_RATE_LIMIT_FALLBACK_PERCENT', 50, configLimits.percentMax),
    requestsInFlightMax: positive(
      env,
      'COUNTINGHOUSE_REQUESTS_IN_FLIGHT_MAX',
      256,
      configLimits.requestsInFlightMaxUpper,
    ),
    shedReportsAtPercent: positive(env, 'COUNTINGHOUSE_SHED_REPORTS_AT_PERCENT', 75, configLimits.percentMax),
    shedBatchAtPercent: positive(env, 'COUNTINGHOUSE_SHED_BATCH_AT_PERCENT', 50, configLimits.percentMax),
    connectionShareBudget: positive(
      env,
      'COUNTINGHOUSE_DB_SHARE_BUDGET',
      defaultConnectionShareBudget(),
      configLimits.runtimePoolMaxUpper,
    ),
    batchSharePercent: positive(env, 'COUNTINGHOUSE_BATCH_SHARE_PERCENT', 10, configLimits.percentMax),
    batchBackendNice: integerFrom(env, 'COUNTINGHOUSE_BATCH_BACKEND_NICE', 19, configLimits.niceMax),
    renderThreads: positive(env, 'COUNTINGHOUSE_RENDER_THREADS', 1, configLimits.renderThreadsMax),
    renderNice: integerFrom(env, 'COUNTINGHOUSE_RENDER_NICE', 10, configLimits.niceMax),
    renderQueueMax: positive(env, 'COUNTINGHOUSE_RENDER_QUEUE_MAX', 64, configLimits.renderQueueMaxUpper),
    databaseLocal: booleanFrom(env, 'COUNTINGHOUSE_DATABASE_LOCAL'),
    costsFile: nonEmpty(env.COUNTINGHOUSE_COSTS_FILE),
    metricsTopTenants: integerFrom(env, 'COUNTINGHOUSE_METRICS_TOP_TENANTS', 20, configLimits.metricsTopTenantsMax),
    metricsEmf: booleanFrom(env, 'COUNTINGHOUSE_METRICS_EMF'),
    storageSampleMinutes: integerFrom(
      env,
      'COUNTINGHOUSE_STORAGE_SAMPLE_MINUTES',
      60,
      configLimits.storageSampleMinutesMax,
    ),
    passwordLengthMin: passwordLengthMinFrom(env),
    breachedPasswordsFile: nonEmpty(env.COUNTINGHOUSE_BREACHED_PASSWORDS_FILE),
    mfaRegulatoryTiers: listFrom(
      env,
      'COUNTINGHOUSE_MFA_REGULATORY_TIERS',
      ['irs-authorized', 'sec-registered'],
      ['standard', 'irs-authorized', 'sec-registered'],
    ),
    mfaRoles: listFrom(
      env,
      'COUNTINGHOUSE_MFA_ROLES',
      [],
      ['owner', 'partner', 'manager', 'staff', 'client', 'auditor'],
    ),
    oidcIssuers: nonEmpty(env.COUNTINGHOUSE_OIDC_ISSUERS),
    publicUrl: nonEmpty(env.COUNTINGHOUSE_PUBLIC_URL),
    siloClusters: parseSiloClusters(nonEmpty(env.COUNTINGHOUSE_SILO_CLUSTERS), databaseUrl !== undefined),
    dedicatedPoolMax: positive(env, 'COUNTINGHOUSE_DEDICATED_POOL_MAX', 4, configLimits.dedicatedPoolMaxUpper),
    dedicatedPoolsMax: positive(env, 'COUNTINGHOUSE_DEDICATED_POOLS_MAX', 64, configLimits.dedicatedPoolsMaxUpper),
    dedicatedPoolIdleMs: positive(
      env,
      'COUNTINGHOUSE_DEDICATED_POOL_IDLE_MS',
      60_000,
      configLimits.dedicatedPoolIdleMsMax,
    ),
  };
}

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultConnectionShareBudget, loadConfig } from './config.ts';
import { formatId, idPattern, newUuid, parseId } from './ids.ts';
import { Sealer } from './local-secrets.ts';

/** Pure units without a database: environment parsing, public ids, and sealing secrets at rest. */
const masterKey = 'a1'.repeat(32);

describe('loadConfig', () => {
  it('fills in laptop defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toEqual({
      home: path.resolve('.countinghouse'),
      host: '127.0.0.1',
      port: 4000,
      databaseUrl: undefined,
      operatorKey: undefined,
      masterKey: undefined,
      logLevel: 'info',
      runtimePoolMax: 20,
      runtimePoolWarm: 20,
      jobWorkerSlots: 4,
      jobPollMs: 500,
      redisUrl: undefined,
      rateLimitFallbackPercent: 50,
      requestsInFlightMax: 256,
      shedReportsAtPercent: 75,
      shedBatchAtPercent: 50,
      connectionShareBudget: defaultConnectionShareBudget(),
      batchSharePercent: 10,
      batchBackendNice: 19,
      renderThreads: 1,
      renderNice: 10,
      renderQueueMax: 64,
      databaseLocal: false,
      metricsTopTenants: 20,
      metricsEmf: false,
      storageSampleMinutes: 60,
      passwordLengthMin: 12,
      mfaRegulatoryTiers: ['irs-authorized', 'sec-registered'],
      mfaRoles: [],
      siloClusters: [{ name: 'silo-1', url: null }],
      dedicatedPoolMax: 4,
      dedicatedPoolsMax: 64,
      dedicatedPoolIdleMs: 60_000,
    });
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig({ PORT: '', HOST: '', DATABASE_URL: '', COUNTINGHOUSE_MASTER_KEY: '' });
    expect(config).toMatchObject({ port: 4000, host: '127.0.0.1', databaseUrl: undefined, masterKey: undefined });
  });

  it('reads valid values', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgresql://owner@db.internal:5432/books',
      COUNTINGHOUSE_OPERATOR_KEY: 'k'.repeat(32),
      COUNTINGHOUSE_MASTER_KEY: masterKey,
      COUNTINGHOUSE_DB_POOL_MAX: '50',
      COUNTINGHOUSE_DB_POOL_WARM: '8',
      COUNTINGHOUSE_JOB_WORKERS: '0',
      COUNTINGHOUSE_JOB_POLL_MS: '100',
      REDIS_URL: 'redis://cache.internal:6379/2',
      COUNTINGHOUSE_RATE_LIMIT_FALLBACK_PERCENT: '34',
      COUNTINGHOUSE_REQUESTS_IN_FLIGHT_MAX: '1000',
      COUNTINGHOUSE_SHED_REPORTS_AT_PERCENT: '80',
      COUNTINGHOUSE_SHED_BATCH_AT_PERCENT: '40',
      COUNTINGHOUSE_DB_SHARE_BUDGET: '6',
      COUNTINGHOUSE_BATCH_SHARE_PERCENT: '100',
      COUNTINGHOUSE_BATCH_BACKEND_NICE: '0',
      COUNTINGHOUSE_DATABASE_LOCAL: 'on',
      COUNTINGHOUSE_RENDER_THREADS: '3',
      COUNTINGHOUSE_RENDER_NICE: '0',
      COUNTINGHOUSE_RENDER_QUEUE_MAX: '5',
    });
    expect(config).toMatchObject({
      jobWorkerSlots: 0,
      jobPollMs: 100,
      port: 8080,
      host: '0.0.0.0',
      databaseUrl: 'postgresql://owner@db.internal:5432/books',
      operatorKey: 'k'.repeat(32),
      masterKey,
      runtimePoolMax: 50,
      runtimePoolWarm: 8,
      redisUrl: 'redis://cache.internal:6379/2',
      rateLimitFallbackPercent: 34,
      requestsInFlightMax: 1000,
      shedReportsAtPercent: 80,
      shedBatchAtPercent: 40,
      connectionShareBudget: 6,
      batchSharePercent: 100,
      batchBackendNice: 0,
      databaseLocal: true,
      renderThreads: 3,
      renderNice: 0,
      renderQueueMax: 5,
    });
  });

  const invalid: Array<{ title: string; env: NodeJS.ProcessEnv; message: RegExp }> = [
    { title: 'a non-numeric PORT', env: { PORT: 'abc' }, message: /PORT/ },
    { title: 'a negative PORT', env: { PORT: '-1' }, message: /PORT/ },
    { title: 'a PORT above 65535', env: { PORT: '65536' }, message: /PORT/ },
    { title: 'a pool size above the limit', env: { COUNTINGHOUSE_DB_POOL_MAX: '201' }, message: /POOL_MAX/ },
    { title: 'too many job worker slots', env: { COUNTINGHOUSE_JOB_WORKERS: '65' }, message: /JOB_WORKERS/ },
    { title: 'a batch share of 0 %', env: { COUNTINGHOUSE_BATCH_SHARE_PERCENT: '0' }, message: /BATCH_SHARE_PERCENT/ },
    {
      title: 'a batch share above 100 %',
      env: { COUNTINGHOUSE_BATCH_SHARE_PERCENT: '101' },
      message: /BATCH_SHARE_PERCENT/,
    },
    { title: 'a nice value above 19', env: { COUNTINGHOUSE_BATCH_BACKEND_NICE: '20' }, message: /BACKEND_NICE/ },
    { title: 'a negative nice value', env: { COUNTINGHOUSE_BATCH_BACKEND_NICE: '-5' }, message: /BACKEND_NICE/ },
    { title: 'no rendering threads', env: { COUNTINGHOUSE_RENDER_THREADS: '0' }, message: /RENDER_THREADS/ },
    { title: 'a render nice value above 19', env: { COUNTINGHOUSE_RENDER_NICE: '20' }, message: /RENDER_NICE/ },
    {
      title: 'no room to wait for a render',
      env: { COUNTINGHOUSE_RENDER_QUEUE_MAX: '0' },
      message: /RENDER_QUEUE_MAX/,
    },
    {
      title: 'a database locality not on/off',
      env: { COUNTINGHOUSE_DATABASE_LOCAL: 'yes' },
      message: /DATABASE_LOCAL/,
    },
    { title: 'a fractional job poll interval', env: { COUNTINGHOUSE_JOB_POLL_MS: '1.5' }, message: /JOB_POLL_MS/ },
    { title: 'a MySQL DATABASE_URL', env: { DATABASE_URL: 'mysql://root@localhost/books' }, message: /DATABASE_URL/ },
    {
      title: 'an operator key of 31 characters',
      env: { COUNTINGHOUSE_OPERATOR_KEY: 'k'.repeat(31) },
      message: /OPERATOR_KEY/,
    },
    {
      title: 'a top-N above the limit',
      env: { COUNTINGHOUSE_METRICS_TOP_TENANTS: '1001' },
      message: /METRICS_TOP_TENANTS/,
    },
    { title: 'an EMF switch that is neither on nor off', env: { COUNTINGHOUSE_METRICS_EMF: 'yes' }, message: /EMF/ },
    { title: 'a non-hex master key', env: { COUNTINGHOUSE_MASTER_KEY: 'zz'.repeat(32) }, message: /MASTER_KEY/ },
    { title: 'an http REDIS_URL', env: { REDIS_URL: 'http://cache:6379' }, message: /REDIS_URL/ },
    { title: 'a fallback share of 0', env: { COUNTINGHOUSE_RATE_LIMIT_FALLBACK_PERCENT: '0' }, message: /FALLBACK/ },
    { title: 'a shed share above 100', env: { COUNTINGHOUSE_SHED_REPORTS_AT_PERCENT: '101' }, message: /SHED_REPORTS/ },
    { title: 'an in-flight budget of 0', env: { COUNTINGHOUSE_REQUESTS_IN_FLIGHT_MAX: '0' }, message: /IN_FLIGHT/ },
    { title: 'a short master key', env: { COUNTINGHOUSE_MASTER_KEY: 'a1'.repeat(31) }, message: /MASTER_KEY/ },
    {
      title: 'a silo cluster that is not a postgres URL',
      env: { COUNTINGHOUSE_SILO_CLUSTERS: 'big=mysql://db/x' },
      message: /SILO_CLUSTERS.*big/,
    },
    {
      title: 'a silo cluster named shared',
      env: { COUNTINGHOUSE_SILO_CLUSTERS: 'shared=embedded' },
      message: /SILO_CLUSTERS/,
    },
    {
      title: 'a silo cluster named twice',
      env: { COUNTINGHOUSE_SILO_CLUSTERS: 'a=embedded,a=postgres://h/db' },
      message: /twice/,
    },
    { title: 'a dedicated pool of 0', env: { COUNTINGHOUSE_DEDICATED_POOL_MAX: '0' }, message: /DEDICATED_POOL_MAX/ },
  ];

  it('reads silo clusters by name, by position and as embedded', () => {
    // Proves each entry form of COUNTINGHOUSE_SILO_CLUSTERS and the defaults with and without DATABASE_URL.
    expect(
      loadConfig({ COUNTINGHOUSE_SILO_CLUSTERS: 'eu=postgres://o@eu/db, postgresql://o@us/db ,embedded' }).siloClusters,
    ).toEqual([
      { name: 'eu', url: 'postgres://o@eu/db' },
      { name: 'silo-2', url: 'postgresql://o@us/db' },
      { name: 'silo-3', url: null },
    ]);
    expect(loadConfig({ DATABASE_URL: 'postgres://o@h/db' }).siloClusters).toEqual([]);
    expect(loadConfig({ COUNTINGHOUSE_SILO_CLUSTERS: 'none' }).siloClusters).toEqual([]);
  });

  for (const testCase of invalid) {
    it(`throws a ConfigError for ${testCase.title}`, () => {
      expect(() => loadConfig(testCase.env)).toThrow(ConfigError);
      expect(() => loadConfig(testCase.env)).toThrow(testCase.message);
    });
  }
});

describe('public ids', () => {
  it('round-trips a uuid through formatId and parseId', () => {
    const uuid = newUuid();
    const id = formatId('tenant', uuid);
    expect(id).toMatch(/^ten_[0-9a-f]{32}$/);
    expect(id).toMatch(new RegExp(idPattern('tenant')));
    expect(parseId('tenant', id)).toBe(uuid);
  });

  it('refuses an id of another kind', () => {
    const uuid = newUuid();
    expect(parseId('entity', formatId('tenant', uuid))).toBeNull();
    expect(parseId('tenant', formatId('user', uuid))).toBeNull();
    expect(parseId('tenant', uuid)).toBeNull();
  });

  it('refuses a wrong length, uppercase or non-hex characters', () => {
    const hex = newUuid().replaceAll('-', '');
    expect(parseId('tenant', `ten_${hex.slice(1)}`)).toBeNull();
    expect(parseId('tenant', `ten_${hex}0`)).toBeNull();
    expect(parseId('tenant', `ten_${'A'.repeat(32)}`)).toBeNull();
    expect(parseId('tenant', `ten_${'g'.repeat(32)}`)).toBeNull();
    expect(parseId('tenant', `TEN_${hex}`)).toBeNull();
    expect(parseId('tenant', '')).toBeNull();
  });
});

describe('Sealer', () => {
  function tamperBody(sealed: string): string {
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3] ?? '', 'base64url');
    body[0] = (body[0] ?? 0) ^ 0x01;
    parts[3] = body.toString('base64url');
    return parts.join('.');
  }

  it('opens what it sealed, and never seals the same text twice the same way', () => {
    const sealer = new Sealer(masterKey);
    const secret = '{"kty":"EC","d":"private"}';
    const sealed = sealer.seal(secret);
    expect(sealed.startsWith('v1.')).toBe(true);
    expect(sealed).not.toContain('private');
    expect(sealer.open(sealed)).toBe(secret);
    expect(sealer.seal(secret)).not.toBe(sealed);
  });

  it('refuses a tampered sealed string', () => {
    const sealer = new Sealer(masterKey);
    const sealed = sealer.seal('signing key material');
    const tampered = tamperBody(sealed);
    expect(tampered).not.toBe(sealed);
    expect(() => sealer.open(tampered)).toThrow();
  });

  it('refuses a value sealed under another key', () => {
    const sealed = new Sealer(masterKey).seal('signing key material');
    expect(() => new Sealer('b2'.repeat(32)).open(sealed)).toThrow();
  });

  it('refuses an unknown format and a master key that is not 32 bytes', () => {
    const sealer = new Sealer(masterKey);
    expect(() => sealer.open('v2.a.b.c')).toThrow(/unknown format/);
    expect(() => sealer.open('not sealed')).toThrow(/unknown format/);
    expect(() => new Sealer('a1'.repeat(16))).toThrow(/32 bytes/);
  });
});

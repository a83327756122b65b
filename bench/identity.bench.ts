/**
 * What authentication costs, on the embedded default (or DATABASE_URL if set):
 *   verify      the auth hook's credential work per request, in microseconds: ES256 signature,
 *               claims and the (cached) registry lookup, through `platform.credentials.verify`
 *               and `tenancy.lookup`, sequentially, --verifications times after a warm-up;
 *   api key     the same for an API key (`chk_…`): one tenant-scoped lookup of the hashed key;
 *   sign-in     `IdentityService.signIn` end to end with the argon2id parameters in use (password
 *               hash verify, user lookup, refresh-token insert, audit event, token signing),
 *               --signins times sequentially.
 * Prints p50/p95 of each and the argon2id parameters. No HTTP: the figures are the work itself.
 *
 *   npx tsx bench/identity.bench.ts [--verifications 20000] [--signins 30]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { argon2Parameters } from '../apps/server/src/identity/identity.limits.ts';
import { loadConfig } from '../apps/server/src/platform/config.ts';
import { bootstrapOwnerDatabase } from '../apps/server/src/platform/database/database-setup.ts';
import { type EmbeddedCluster, startEmbeddedCluster } from '../apps/server/src/platform/database/embedded-cluster.ts';
import { randomToken } from '../apps/server/src/platform/local-secrets.ts';
import { openPlatform, type Platform } from '../apps/server/src/platform/platform.ts';
import { tenantContextOf } from '../apps/server/src/tenancy/tenancy.service.ts';
import { intFlag } from './bench-flags.ts';

const { values: flags } = parseArgs({
  options: {
    verifications: { type: 'string', default: '20000' },
    signins: { type: 'string', default: '30' },
  },
});

const verifications = intFlag(flags, 'verifications', 100, 1_000_000);
const signIns = intFlag(flags, 'signins', 3, 10_000);
const log = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' });
const password = 'a bench passphrase that is long enough';

async function openBenchPlatform(home: string): Promise<{ platform: Platform; cluster: EmbeddedCluster | null }> {
  let ownerUrl = process.env.DATABASE_URL;
  let cluster: EmbeddedCluster | null = null;
  if (!ownerUrl) {
    // When we run as root, PostgreSQL runs as the `postgres` OS user and must reach the folder.
    const clusterHome = path.join(home, 'cluster');
    await fs.mkdir(clusterHome, { mode: 0o755 });
    await fs.chmod(home, 0o755);
    cluster = await startEmbeddedCluster({ home: clusterHome, log });
    ownerUrl = await bootstrapOwnerDatabase(cluster.superuserUrl, 'countinghouse_bench_identity', randomToken(24));
  }
  const config = { ...loadConfig({}), home, databaseUrl: ownerUrl, operatorKey: `chop_bench_${randomToken(32)}` };
  return { platform: await openPlatform(config, log), cluster };
}

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;
}

async function timeEach(count: number, call: () => Promise<unknown>): Promise<{ p50: number; p95: number }> {
  const samplesMs: number[] = [];
  for (let index = 0; index < count; index++) {
    const startedMs = performance.now();
    await call();
    samplesMs.push(performance.now() - startedMs);
  }
  samplesMs.sort((left, right) => left - right);
  return { p50: percentile(samplesMs, 0.5), p95: percentile(samplesMs, 0.95) };
}

async function main(): Promise<void> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-bench-identity-'));
  console.log(
    `identity benchmark: ${os.cpus().length} CPU(s), load average ${(os.loadavg()[0] ?? 0).toFixed(2)}, node ${process.version}, ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}; ${verifications} verifications, ${signIns} sign-ins`,
  );
  const { platform, cluster } = await openBenchPlatform(home);
  const stop = async () => {
    await platform.close();
    await cluster?.stop();
    await fs.rm(home, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stop().finally(() => process.exit(130)));
  try {
    const email = `owner-${randomToken(6).toLowerCase()}@bench.test`.replace(/[^a-z0-9@.-]/g, 'x');
    const tenant = await platform.tenancy.createTenant({
      name: `Identity bench ${randomToken(6)}`,
      tier: 'starter',
      admin: { email, password },
    });
    const origin = { requestId: null, sourceAddress: '127.0.0.1' };
    const signedIn = await platform.identity.signIn(tenant.id, email, password, origin);
    if (signedIn.kind !== 'session') throw new Error('bench owner unexpectedly needs MFA');
    const accessToken = signedIn.tokens.accessToken;
    const verifyOnce = async () => {
      const caller = await platform.credentials.verify(accessToken);
      await platform.tenancy.lookup(caller.tenantId);
    };
    await timeEach(Math.min(2_000, verifications), verifyOnce);
    const verify = await timeEach(verifications, verifyOnce);
    console.log(
      `verify (ES256 access token): p50 ${(verify.p50 * 1000).toFixed(0)} µs, p95 ${(verify.p95 * 1000).toFixed(0)} µs`,
    );

    const userId = (await platform.users.list(tenantContextOf(tenant)))[0]?.user.id ?? '';
    const created = await platform.apiKeys.create(
      tenantContextOf(tenant),
      userId,
      { name: 'bench', scope: 'read', entityIds: null, expiresAt: null },
      origin,
    );
    const keyCount = Math.min(verifications, 5_000);
    const apiKey = await timeEach(keyCount, () => platform.credentials.verify(created.secret));
    console.log(
      `verify (API key): p50 ${(apiKey.p50 * 1000).toFixed(0)} µs, p95 ${(apiKey.p95 * 1000).toFixed(0)} µs over ${keyCount}`,
    );

    const signIn = await timeEach(signIns, () => platform.identity.signIn(tenant.id, email, password, origin));
    const parameters = `argon2id m=${argon2Parameters.memoryCost} KiB t=${argon2Parameters.timeCost} p=${argon2Parameters.parallelism}`;
    console.log(`sign-in (${parameters}): p50 ${signIn.p50.toFixed(1)} ms, p95 ${signIn.p95.toFixed(1)} ms`);
    console.log(
      `identity: token verify p50 ${(verify.p50 * 1000).toFixed(0)} µs p95 ${(verify.p95 * 1000).toFixed(0)} µs; API key p50 ${(apiKey.p50 * 1000).toFixed(0)} µs; sign-in p50 ${signIn.p50.toFixed(1)} ms p95 ${signIn.p95.toFixed(1)} ms (${parameters}) (load ${(os.loadavg()[0] ?? 0).toFixed(2)})`,
    );
  } finally {
    await stop();
  }
}

await main();

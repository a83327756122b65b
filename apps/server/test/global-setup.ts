import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import pg from 'pg';
import pino from 'pino';
import type { TestProject } from 'vitest/node';
import { bootstrapOwnerDatabase } from '../src/platform/database/database-setup.ts';
import { defaultTemporaryHome, startEmbeddedCluster } from '../src/platform/database/embedded-cluster.ts';
import { randomToken } from '../src/platform/local-secrets.ts';

/**
 * One database for the whole run. With DATABASE_URL (CI's system PostgreSQL) the suite runs
 * against that server, creating the named database if needed; otherwise it starts an
 * embedded cluster in a temporary folder, exactly as `npm start` would.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    ownerUrl: string;
    masterKey: string;
    external: boolean;
  }
}

async function ensureDatabase(ownerUrl: string): Promise<void> {
  const url = new URL(ownerUrl);
  const name = url.pathname.slice(1);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`create database "${name.replaceAll('"', '""')}"`);
  } finally {
    await client.end();
  }
}

export default async function setup(project: TestProject) {
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
  const external = process.env.DATABASE_URL;
  // An external database outlives the run and keeps the signing key sealed on its first run,
  // so its master key must be the same every run; an embedded cluster is new each time.
  project.provide(
    'masterKey',
    external
      ? createHash('sha256').update(`countinghouse-test:${external}`).digest('hex')
      : randomBytes(32).toString('hex'),
  );
  if (external) {
    await ensureDatabase(external);
    project.provide('ownerUrl', external);
    project.provide('external', true);
    return;
  }
  const home = await defaultTemporaryHome('countinghouse-test-');
  // The postgres OS user (when we run as root) must be able to reach the data folder.
  await fs.chmod(home, 0o755);
  const cluster = await startEmbeddedCluster({ home, log });
  const ownerUrl = await bootstrapOwnerDatabase(cluster.superuserUrl, 'countinghouse_test', randomToken(24));
  project.provide('ownerUrl', ownerUrl);
  project.provide('external', false);
  return async () => {
    await cluster.stop();
    await fs.rm(home, { recursive: true, force: true });
  };
}

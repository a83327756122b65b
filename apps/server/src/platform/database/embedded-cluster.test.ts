import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataFolderInUseError, type EmbeddedCluster, startEmbeddedCluster } from './embedded-cluster.ts';

/**
 * The embedded cluster's lifecycle on its own data folder: data survives a restart, a stale
 * lock from a killed run is recovered, an orphaned PostgreSQL of ours is stopped and
 * replaced, and a data folder held by a live server is refused.
 */
const log = pino({ level: 'silent' });
let home: string;

beforeAll(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-embedded-'));
  await fs.chmod(home, 0o755);
});

afterAll(async () => {
  await fs.rm(home, { recursive: true, force: true });
});

async function query(cluster: EmbeddedCluster, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: cluster.superuserUrl });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A pid that certainly belongs to no running process: one that has just exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid ?? 999_999;
}

describe('embedded cluster lifecycle', () => {
  it('keeps data across a stop and a start', async () => {
    const first = await startEmbeddedCluster({ home, log });
    await query(first, 'create table kept (value text); insert into kept values ($$still here$$)');
    await first.stop();
    const second = await startEmbeddedCluster({ home, log });
    expect((await query(second, 'select value from kept')).rows).toEqual([{ value: 'still here' }]);
    await second.stop();
  });

  it('serves its clients over a Unix-domain socket in its data folder, and TCP on loopback for tools', async () => {
    const cluster = await startEmbeddedCluster({ home, log });
    try {
      const url = new URL(cluster.superuserUrl);
      expect(url.searchParams.get('host')).toBe(path.join(home, 'pg'));
      // A socket connection has no client address; a TCP one has the loopback's.
      expect((await query(cluster, 'select inet_client_addr() as address')).rows).toEqual([{ address: null }]);
      url.search = '';
      const tcp = new pg.Client({ connectionString: url.toString() });
      await tcp.connect();
      try {
        expect((await tcp.query('select host(inet_client_addr()) as address')).rows).toEqual([
          { address: '127.0.0.1' },
        ]);
      } finally {
        await tcp.end();
      }
    } finally {
      await cluster.stop();
    }
  });

  it('recovers from a stale postmaster.pid left by a killed run', async () => {
    const lockFile = path.join(home, 'pg', 'postmaster.pid');
    await fs.writeFile(lockFile, `${await deadPid()}\n${path.join(home, 'pg')}\n0\n5999\n`);
    await fs.writeFile(path.join(home, 'server.pid'), `${await deadPid()}\n`);
    const cluster = await startEmbeddedCluster({ home, log });
    expect((await query(cluster, 'select 1 as one')).rows).toEqual([{ one: 1 }]);
    await cluster.stop();
  });

  it('stops an orphaned PostgreSQL of its own and starts afresh', async () => {
    const orphan = await startEmbeddedCluster({ home, log });
    // Simulate the server being killed: its lock names a dead process, its PostgreSQL runs on.
    await fs.writeFile(path.join(home, 'server.pid'), `${await deadPid()}\n`);
    const replacement = await startEmbeddedCluster({ home, log });
    expect((await query(replacement, 'select value from kept')).rows).toEqual([{ value: 'still here' }]);
    await expect(query(orphan, 'select 1')).rejects.toThrow();
    await replacement.stop();
  });

  it('refuses a data folder that a live server holds', async () => {
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await fs.writeFile(path.join(home, 'server.pid'), `${holder.pid}\n`);
      await expect(startEmbeddedCluster({ home, log })).rejects.toBeInstanceOf(DataFolderInUseError);
    } finally {
      holder.kill();
      await fs.rm(path.join(home, 'server.pid'), { force: true });
    }
  });
});

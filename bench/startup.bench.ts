/**
 * Startup time of `countinghouse start` on the embedded default (no DATABASE_URL): from
 * spawning `node apps/server/bin/countinghouse.mjs start` to the first GET /readyz == 200,
 *   (a) fresh    — a new, empty COUNTINGHOUSE_HOME (initdb + create roles/database + migrate);
 *   (b) existing — the same folder again, after a clean SIGTERM stop of the first start.
 * Each run uses its own temporary home and a free port; every start is stopped with SIGTERM
 * and waited for. Prints per-run timings, then the median and min/max of each case.
 *
 *   npx tsx bench/startup.bench.ts [--runs 3] [--timeout-s 120]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { intFlag } from './bench-flags.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const binary = path.join(repoRoot, 'apps', 'server', 'bin', 'countinghouse.mjs');
const pollIntervalMs = 20;
const pollRequestTimeoutMs = 1_000;
const stopTimeoutMs = 60_000;
const runsMax = 50;

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'timeout-s': { type: 'string', default: '120' },
  },
});
const runs = intFlag(flags, 'runs', 1, runsMax);
const startTimeoutMs = Number(flags['timeout-s']) * 1_000;
if (!Number.isFinite(startTimeoutMs) || startTimeoutMs <= 0) throw new Error('--timeout-s must be a positive number');

/** Log messages (pino `msg`) whose timestamps mark the phases of a start. */
const phaseMessages = {
  initdb: 'initialising the embedded PostgreSQL data folder',
  pgRunning: 'embedded PostgreSQL is running',
  migrated: 'applied database migrations',
} as const;
type Phase = keyof typeof phaseMessages | 'firstLog' | 'listening' | 'ready';

interface StartResult {
  readyMs: number;
  stopMs: number;
  phases: Partial<Record<Phase, number>>;
}

async function freePort(): Promise<number> {
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function isReady(url: string): Promise<boolean> {
  return await fetch(url, { signal: AbortSignal.timeout(pollRequestTimeoutMs) }).then(
    async (response) => {
      await response.body?.cancel();
      return response.status === 200;
    },
    () => false,
  );
}

/** After a failure or interrupt: stop a PostgreSQL a killed server left behind (fast shutdown via SIGINT). */
async function stopOrphanPostgres(home: string): Promise<void> {
  const pidText = await fs.readFile(path.join(home, 'pg', 'postmaster.pid'), 'utf8').catch(() => '');
  const pid = Number(pidText.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  for (let waited = 0; waited < stopTimeoutMs; waited += 100) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
}

/** The server being timed, so Ctrl-C can stop it; cleanup itself stays on the main path. */
let current: ChildProcess | null = null;
let interrupted = false;

async function stopChild(child: ChildProcess): Promise<number> {
  const started = performance.now();
  if (child.exitCode !== null || child.signalCode !== null) return 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
  await exited;
  clearTimeout(timer);
  if (child.exitCode !== 0) throw new Error(`server did not stop cleanly (exit ${child.exitCode ?? child.signalCode})`);
  return performance.now() - started;
}

async function timeOneStart(home: string): Promise<StartResult> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, COUNTINGHOUSE_HOME: home, PORT: String(port), LOG_LEVEL: 'info' };
  delete env.DATABASE_URL; // an embedded-start benchmark, always
  const readyUrl = `http://127.0.0.1:${port}/readyz`;

  const spawnedAtEpochMs = Date.now();
  const t0 = performance.now();
  const child = spawn(process.execPath, [binary, 'start'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  current = child;
  const phases: Partial<Record<Phase, number>> = {};
  let output = '';
  let pending = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    if (phases.listening === undefined && text.includes('Countinghouse is listening on')) {
      phases.listening = performance.now() - t0;
    }
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { time?: number; msg?: string };
        if (typeof entry.time !== 'number') continue;
        const offset = entry.time - spawnedAtEpochMs;
        phases.firstLog ??= offset;
        for (const [phase, message] of Object.entries(phaseMessages) as [Phase, string][]) {
          if (entry.msg === message) phases[phase] ??= offset;
        }
      } catch {
        // not a log line
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });

  const deadline = t0 + startTimeoutMs;
  try {
    for (;;) {
      if (interrupted) throw new Error('interrupted');
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`server exited before it was ready (${child.exitCode ?? child.signalCode})`);
      }
      if (await isReady(readyUrl)) break;
      if (performance.now() > deadline) throw new Error(`server was not ready within ${startTimeoutMs} ms`);
      await sleep(pollIntervalMs);
    }
  } catch (error) {
    await stopChild(child).catch(() => undefined);
    await stopOrphanPostgres(home);
    current = null;
    throw new Error(`${(error as Error).message}\n--- server output (tail) ---\n${output.slice(-4_000)}`);
  }
  const readyMs = performance.now() - t0;
  phases.ready = readyMs;
  const stopMs = await stopChild(child);
  current = null;
  return { readyMs, stopMs, phases };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

const seconds = (ms: number) => `${(ms / 1_000).toFixed(2)} s`;

function phaseLine(result: StartResult): string {
  const order: Phase[] = ['firstLog', 'initdb', 'pgRunning', 'migrated', 'listening', 'ready'];
  return order
    .filter((phase) => result.phases[phase] !== undefined)
    .map((phase) => `${phase} ${seconds(result.phases[phase] ?? 0)}`)
    .join(', ');
}

function summary(label: string, values: number[]): string {
  return `startup ${label}: median ${seconds(median(values))} (min ${seconds(Math.min(...values))}, max ${seconds(Math.max(...values))}) over ${values.length} run${values.length === 1 ? '' : 's'}`;
}

function loadAverage(): string {
  return (os.loadavg()[0] ?? 0).toFixed(2);
}

async function main(): Promise<void> {
  if (process.env.DATABASE_URL) console.log('note: DATABASE_URL is ignored; this benchmark always starts embedded');
  console.log(
    `startup benchmark: ${runs} run(s), ${os.cpus().length} CPU(s), load average ${loadAverage()}, node ${process.version}`,
  );
  console.log('(phase offsets are from spawn; firstLog = first log line, i.e. node + tsx + imports)');
  const fresh: StartResult[] = [];
  const existing: StartResult[] = [];
  for (let run = 1; run <= runs; run++) {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-bench-startup-'));
    try {
      if (interrupted) break;
      // When we run as root, PostgreSQL runs as the `postgres` OS user and must reach the folder.
      await fs.chmod(home, 0o755);
      const first = await timeOneStart(home);
      fresh.push(first);
      console.log(
        `run ${run} fresh:    ready ${seconds(first.readyMs)} (stop ${seconds(first.stopMs)}) [${phaseLine(first)}]`,
      );
      const second = await timeOneStart(home);
      existing.push(second);
      console.log(
        `run ${run} existing: ready ${seconds(second.readyMs)} (stop ${seconds(second.stopMs)}) [${phaseLine(second)}]`,
      );
    } finally {
      await stopOrphanPostgres(home);
      await fs.rm(home, { recursive: true, force: true });
    }
  }
  console.log(`load average now ${loadAverage()} (includes this benchmark's own load; other work skews the figures)`);
  console.log(`stop (SIGTERM to exit): median ${seconds(median([...fresh, ...existing].map((r) => r.stopMs)))}`);
  console.log(
    summary(
      'fresh',
      fresh.map((r) => r.readyMs),
    ),
  );
  console.log(
    summary(
      'existing',
      existing.map((r) => r.readyMs),
    ),
  );
}

// Ctrl-C: ask the server we started to stop; the main path then stops any PostgreSQL it left
// and removes the folder. Repeated signals (a terminal's and tsx's relay) are ignored.
process.on('SIGINT', () => {
  if (interrupted) return;
  interrupted = true;
  current?.kill('SIGTERM');
});

await main().catch((error: unknown) => {
  if (!interrupted) throw error;
  console.error('interrupted: stopped the server and removed the temporary folder');
  process.exitCode = 130;
});

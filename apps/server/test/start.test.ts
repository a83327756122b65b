import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freeLocalPort } from '../src/platform/database/embedded-cluster.ts';

/**
 * `npm start` as a newcomer runs it: the real CLI in a child process on a fresh data folder
 * with no DATABASE_URL, so it starts its own embedded PostgreSQL. Proves readiness, the
 * operator key printed once and stored 0600, a clean stop on SIGTERM, and that a second
 * start reuses the data.
 */
const binary = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'countinghouse.mjs');
const startTimeoutMs = 60_000;
// Two cold starts (initdb, migrations) and two stops, each allowed startTimeoutMs: the
// default 30 s test timeout undercut that on a loaded two-core machine.
const startTestTimeoutMs = 2 * startTimeoutMs + 30_000;

interface Started {
  child: ChildProcess;
  output: () => string;
  url: string;
}

async function startServer(home: string, port: number): Promise<Started> {
  const env: NodeJS.ProcessEnv = { ...process.env, COUNTINGHOUSE_HOME: home, PORT: String(port), LOG_LEVEL: 'warn' };
  delete env.DATABASE_URL;
  delete env.COUNTINGHOUSE_OPERATOR_KEY;
  const child = spawn(process.execPath, [binary, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited early (${child.exitCode}):\n${output}`);
    const ready = await fetch(`${url}/readyz`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) return { child, output: () => output, url };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`server did not become ready:\n${output}`);
}

async function stopServer(started: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => started.child.once('exit', (code) => resolve(code)));
  started.child.kill('SIGTERM');
  return await exited;
}

const homes: string[] = [];
afterAll(async () => {
  for (const home of homes) await fs.rm(home, { recursive: true, force: true });
});

describe('npm start on the embedded default', () => {
  it('starts, serves, stops cleanly on SIGTERM, and reuses its data on the next start', {
    timeout: startTestTimeoutMs,
  }, async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-start-'));
    await fs.chmod(home, 0o755);
    homes.push(home);
    const port = await freeLocalPort();

    const first = await startServer(home, port);
    expect(first.output()).toContain(`Countinghouse is listening on ${first.url}`);
    const keyMatch = /Operator key[^\n]*\n\s+(chop_\S+)/.exec(first.output());
    expect(keyMatch).not.toBeNull();
    const operatorKey = keyMatch?.[1] ?? '';
    const keyFile = await fs.stat(path.join(home, 'operator.key'));
    expect(keyFile.mode & 0o777).toBe(0o600);
    expect((await fs.readFile(path.join(home, 'operator.key'), 'utf8')).trim()).toBe(operatorKey);

    const created = await fetch(`${first.url}/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operatorKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'Restart CPA',
        tier: 'starter',
        admin: { email: 'a@restart.test', password: 'a long enough password' },
      }),
    });
    expect(created.status).toBe(201);
    const tenantId = ((await created.json()) as { id: string }).id;

    expect(await stopServer(first)).toBe(0);
    await expect(fs.access(path.join(home, 'pg', 'postmaster.pid'))).rejects.toThrow();

    const second = await startServer(home, port);
    expect(second.output()).not.toContain('Operator key');
    const signedIn = await fetch(`${second.url}/v1/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tenantId, email: 'a@restart.test', password: 'a long enough password' }),
    });
    expect(signedIn.status).toBe(200);
    expect(await stopServer(second)).toBe(0);
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTenant, operatorKey, startTestStack, type TestStack } from '../../test/harness.ts';
import { parseId } from '../platform/ids.ts';
import { catalogueWith, contextOf, eventually, testQueue, uniqueKind } from './jobs.test-support.ts';

/**
 * Workers as separate processes: a worker killed with SIGKILL mid-job stops renewing its
 * lease, and another worker recovers the job (the lost attempt is recorded, the job runs
 * again and succeeds); and `countinghouse worker`, the real CLI, runs imports submitted
 * through another process's API, then stops cleanly on SIGTERM.
 */
const serverRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let stack: TestStack;
let home: string;
const children: ChildProcess[] = [];
// Child processes compile TypeScript and open the platform: slow on a loaded machine.
const childTestTimeoutMs = 120_000;

beforeAll(async () => {
  stack = await startTestStack();
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'countinghouse-worker-'));
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await stack?.close();
  await fs.rm(home, { recursive: true, force: true });
});

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: inject('ownerUrl'),
    COUNTINGHOUSE_MASTER_KEY: inject('masterKey'),
    COUNTINGHOUSE_OPERATOR_KEY: operatorKey,
    COUNTINGHOUSE_HOME: home,
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

function spawnChild(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, args, { cwd: serverRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return { child, output: () => output };
}

async function exited(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  return await new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('a worker process that dies', () => {
  it(
    'loses its job to another worker once its lease expires, and the job completes',
    async () => {
      const kind = uniqueKind('crash');
      const firm = await createTenant(stack.app, 'Crash');
      const tenantId = parseId('tenant', firm.id) ?? '';
      const queue = testQueue(stack, catalogueWith(stack, {}), [
        { kind, parsePayload: (payload) => payload, run: async () => ({ recovered: true }) },
      ]);
      const [job] = await queue.jobs.submit(await contextOf(stack, firm), [{ kind, payload: null }]);
      const doomed = spawnChild(
        ['--import', 'tsx', path.join(serverRoot, 'test', 'fixtures', 'job-worker-process.ts')],
        childEnv({ JOB_KIND: kind }),
      );
      const pid = doomed.child.pid ?? 0;
      const running = await eventually(async () => {
        const { rows } = await stack.platform.ownerPool.query<{ status: string; lease_owner: string | null }>(
          'select status, lease_owner from jobs where tenant_id = $1 and id = $2',
          [tenantId, job?.id],
        );
        return rows[0]?.status === 'running' ? rows[0] : undefined;
      }, 60_000);
      expect(running.lease_owner).toContain(`:${pid}:`);

      doomed.child.kill('SIGKILL');
      expect(await exited(doomed.child)).toEqual({ code: null, signal: 'SIGKILL' });
      queue.startWorkers(1, { recoveryMs: 100, backoffBaseMs: 10 });
      try {
        const detail = await eventually(async () => {
          const found = await queue.jobs.get(await contextOf(stack, firm), job?.id ?? '');
          return found.job.status === 'succeeded' ? found : undefined;
        }, 30_000);
        expect(detail.job).toMatchObject({ attempts: 2, result: { recovered: true } });
        expect(detail.attempts.map((attempt) => attempt.outcome)).toEqual(['lost', 'succeeded']);
        expect(detail.attempts[0]?.worker).toContain(`:${pid}:`);
        expect(detail.attempts[1]?.worker).toBe(queue.workers[0]?.id);
        expect(detail.attempts[0]?.error).toMatch(/lease expired/);
      } finally {
        await queue.stopWorkers();
      }
    },
    childTestTimeoutMs,
  );
});

describe('countinghouse worker', () => {
  it(
    'runs imports submitted through another process, and stops cleanly on SIGTERM',
    async () => {
      const worker = spawnChild(
        [path.join(serverRoot, 'bin', 'countinghouse.mjs'), 'worker'],
        childEnv({ COUNTINGHOUSE_JOB_POLL_MS: '20', COUNTINGHOUSE_JOB_WORKERS: '4' }),
      );
      await eventually(async () => (worker.output().includes('job worker') ? true : undefined), 60_000);
      const pid = worker.child.pid ?? 0;
      const firm = await createTenant(stack.app, 'Worker CLI');
      const tenantId = parseId('tenant', firm.id) ?? '';
      // Other test files run their own import workers on this database; with several jobs,
      // some are certainly the CLI worker's.
      for (let index = 0; index < 12; index++) {
        const accepted = await stack.app.inject({
          method: 'POST',
          url: '/v1/entities/imports',
          headers: { ...firm.auth, 'content-type': 'text/csv' },
          payload: `name\nCLI Client ${index}`,
        });
        expect(accepted.statusCode).toBe(202);
      }
      const attempts = await eventually(async () => {
        const { rows } = await stack.platform.ownerPool.query<{ status: string; worker: string }>(
          `select j.status, a.worker from jobs j join job_attempts a on a.tenant_id = j.tenant_id and a.job_id = j.id
          where j.tenant_id = $1`,
          [tenantId],
        );
        return rows.length === 12 && rows.every((row) => row.status === 'succeeded') ? rows : undefined;
      }, 60_000);
      expect(attempts.some((row) => row.worker.includes(`:${pid}:`))).toBe(true);
      const entities = await stack.app.inject({ method: 'GET', url: '/v1/entities?limit=200', headers: firm.auth });
      expect(entities.json<{ items: unknown[] }>().items).toHaveLength(12);

      worker.child.kill('SIGTERM');
      expect(await exited(worker.child)).toEqual({ code: 0, signal: null });
    },
    childTestTimeoutMs,
  );

  it(
    'refuses to run without DATABASE_URL',
    async () => {
      const env = childEnv({});
      delete env.DATABASE_URL;
      const refused = spawnChild([path.join(serverRoot, 'bin', 'countinghouse.mjs'), 'worker'], env);
      expect(await exited(refused.child)).toEqual({ code: 2, signal: null });
      expect(refused.output()).toMatch(/worker` needs DATABASE_URL/);
    },
    childTestTimeoutMs,
  );
});

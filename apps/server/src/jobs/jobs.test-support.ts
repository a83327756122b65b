import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { expect } from 'vitest';
import type { TestStack, TestTenant } from '../../test/harness.ts';
import type { TenantContext } from '../platform/database/tenant-scope.ts';
import { parseId } from '../platform/ids.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { TierCatalogue, type TierDefinition } from '../tenancy/tiers.ts';
import { JobDispatcher } from './jobs.dispatcher.ts';
import { JobRegistry } from './jobs.registry.ts';
import { JobsService } from './jobs.service.ts';
import type { JobKind } from './jobs.types.ts';
import { JobWorker, type JobWorkerOptions } from './jobs.worker.ts';

/**
 * Test support for the queue: a queue with its own tier catalogue and handler kinds on the
 * shared test database. Kinds get a random suffix, so workers of other test files (which
 * claim only the kinds they know) never take these jobs, and these workers never take theirs.
 */
export const testLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function uniqueKind(name: string): string {
  return `test.${name}.${randomBytes(4).toString('hex')}`;
}

/** The default tier with the job limits replaced, plus any extra tiers. */
export function catalogueWith(
  stack: TestStack,
  starterLimits: Partial<TierDefinition['limits']>,
  extra: Record<string, Partial<TierDefinition['limits']>> = {},
): TierCatalogue {
  const starter = stack.platform.tiers.find('starter');
  if (!starter) throw new Error('the default catalogue has no starter tier');
  const { name: _name, ...definition } = starter;
  const tiers: Record<string, TierDefinition> = {
    starter: { ...definition, limits: { ...definition.limits, ...starterLimits } },
  };
  for (const [name, limits] of Object.entries(extra)) {
    tiers[name] = { ...definition, limits: { ...definition.limits, ...limits } };
  }
  return new TierCatalogue(tiers);
}

export interface TestQueue {
  registry: JobRegistry;
  dispatcher: JobDispatcher;
  jobs: JobsService;
  workers: JobWorker[];
  startWorkers(count: number, options?: Partial<JobWorkerOptions>): JobWorker[];
  stopWorkers(): Promise<void>;
}

export function testQueue(stack: TestStack, tiers: TierCatalogue, kinds: Array<JobKind<unknown>>): TestQueue {
  const registry = new JobRegistry();
  for (const kind of kinds) registry.register(kind);
  const dispatcher = new JobDispatcher(stack.platform.ownerPool, tiers);
  const jobs = new JobsService(stack.platform.scopes, registry, dispatcher);
  const workers: JobWorker[] = [];
  return {
    registry,
    dispatcher,
    jobs,
    workers,
    startWorkers(count, options = {}) {
      const started = Array.from(
        { length: count },
        () =>
          new JobWorker({
            dispatcher,
            registry,
            scopes: stack.platform.scopes,
            log: testLog,
            slots: 2,
            pollMs: 20,
            heartbeatMs: 100,
            leaseMs: 2_000,
            recoveryMs: 200,
            ...options,
            async tenantContext(tenantId) {
              const record = await stack.platform.tenancy.getTenant(tenantId);
              return record && record.status === 'active' ? tenantContextOf(record) : null;
            },
          }),
      );
      for (const worker of started) {
        jobs.onSubmitted(() => worker.wake());
        worker.start();
      }
      workers.push(...started);
      return started;
    },
    async stopWorkers() {
      await Promise.all(workers.splice(0).map((worker) => worker.stop()));
    },
  };
}

export async function contextOf(stack: TestStack, tenant: TestTenant): Promise<TenantContext> {
  const uuid = parseId('tenant', tenant.id);
  const record = uuid ? await stack.platform.tenancy.getTenant(uuid) : null;
  if (!record) throw new Error(`tenant ${tenant.id} not found`);
  return tenantContextOf(record);
}

/** Polls until `check` returns a value (not undefined); bounded, so a broken queue fails the test. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Polls the job over HTTP, as the firm would, until it succeeds, is cancelled or is dead. */
export async function waitForJob<Body extends { status: string } = { status: string; result: unknown }>(
  stack: TestStack,
  tenant: TestTenant,
  jobId: string,
): Promise<Body> {
  for (let poll = 0; poll < 400; poll++) {
    const response = await stack.app.inject({ method: 'GET', url: `/v1/jobs/${jobId}`, headers: tenant.auth });
    expect(response.statusCode).toBe(200);
    const job = response.json<Body>();
    if (['succeeded', 'cancelled', 'dead'].includes(job.status)) return job;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${jobId} did not finish`);
}

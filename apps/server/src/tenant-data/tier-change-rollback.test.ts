import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnthrottledTenant, startTestStack, type TestStack } from '../../test/harness.ts';
import { createBooks, post, twoLine } from '../ledger/ledger.test-support.ts';
import { parseId } from '../platform/ids.ts';
import { tenantContextOf } from '../tenancy/tenancy.service.ts';
import { runTierChange } from './kinds/tier-change.job.ts';
import type { MovePhase } from './tenant-data.types.ts';

/**
 * A tier change from the pool to a bridge database that fails part-way (a failure injected
 * after the copy, and one just before the switch) rolls back: the change reads failed, the
 * firm stays on the pool and still writes, and the bridge database the change made for it is
 * dropped, not left behind empty.
 */
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.close();
});

describe('a failed move', () => {
  it.each(['catching_up', 'switching'] as const)(
    'fails at %s, keeps the firm on the pool and drops the database it made',
    async (failingPhase: MovePhase) => {
      const bridgeTier = stack.platform.tiers.list().find((tier) => tier.isolation === 'bridge');
      if (!bridgeTier) throw new Error('the shipped tiers have a bridge tier');
      const firm = await createUnthrottledTenant(stack.app, 'Failed Mover');
      const tenantId = parseId('tenant', firm.id) ?? '';
      const books = await createBooks(stack, firm);
      expect((await post(stack, books, twoLine(books, '2026-06-01', '1000', '4000', 100))).statusCode).toBe(201);

      const { tenantData } = stack.platform;
      const change = await tenantData.requestTierChange(tenantId, bridgeTier.name);
      // Run here with a failure injected, not by a worker: cancel the queued job first.
      const record = await stack.platform.tenancy.getTenant(tenantId);
      if (!record || !change.jobId) throw new Error('the change has no job');
      await stack.platform.jobs.cancel(tenantContextOf(record), change.jobId);

      const injected = new Error(`injected failure at ${failingPhase}`);
      const run = runTierChange(tenantData, change, new AbortController().signal, {
        failAt: (phase) => {
          if (phase === failingPhase) throw injected;
        },
      });
      await expect(run).rejects.toThrow(/tier change failed and was rolled back: injected failure/);

      const after = await tenantData.getTierChange(tenantId, change.id);
      expect(after).toMatchObject({ status: 'failed', phase: 'rolled_back' });
      const target = after.targetPlacement;
      expect(target?.model).toBe('bridge');
      if (!target) throw new Error('the change names no target');
      expect(await stack.platform.clusters.databaseExists(target)).toBe(false);
      expect((await tenantData.lifecycle(tenantId)).placement.model).toBe('pool');
      expect((await post(stack, books, twoLine(books, '2026-06-02', '1000', '4000', 200))).statusCode).toBe(201);
    },
    120_000,
  );
});

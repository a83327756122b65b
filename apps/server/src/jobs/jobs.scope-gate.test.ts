import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LimitsService } from '../limits/limits.service.ts';
import { MemoryRateLimitStore } from '../limits/rate-limit.store.ts';
import { allEntities, type TenantContext, type TenantScopeGate } from '../platform/database/tenant-scope.ts';
import { newUuid } from '../platform/ids.ts';
import { sharedPoolPlacement, TierCatalogue } from '../tenancy/tiers.ts';
import { batchScopeGate } from './jobs.scope-gate.ts';

/**
 * A job's tenant transactions wait for interactive requests: with the real limits service
 * admitting requests, the batch gate passes at once when the instance is quiet, holds a job's
 * next transaction while a request of another firm is in flight and lets it through the
 * moment that request ends, and under requests that never stop still lets one through per
 * bound. The inner gate records when it was entered; no database.
 */
function firm(): TenantContext {
  return { tenantId: newUuid(), tier: 'starter', placement: sharedPoolPlacement, entityScope: allEntities };
}

function setup(waitMsMax: number, batchSharePercent = 100, refuse = false) {
  const limits = new LimitsService({
    tiers: TierCatalogue.load(),
    plans: { find: async () => ({ tier: 'starter', overrides: {} }), setOverrides: async () => null },
    rates: new MemoryRateLimitStore(),
    shedding: {
      requestsInFlightMax: 64,
      shedReportsAtPercent: 75,
      shedBatchAtPercent: 50,
      connectionShareBudget: 4,
      batchSharePercent,
    },
    log: pino({ level: 'silent' }),
  });
  const entered: string[] = [];
  const inner: TenantScopeGate = {
    enterScope: async (tenant) => {
      if (refuse) throw new Error('refused by the tenant gate');
      entered.push(tenant.tenantId);
      return { statementTimeoutMs: 5_000, leave: () => {} };
    },
  };
  return { limits, entered, gate: batchScopeGate(inner, limits, waitMsMax) };
}

describe('batch scope gate', () => {
  it('passes at once on a quiet instance, and hands the inner gate its pass', async () => {
    const { gate, entered } = setup(10_000);
    const job = firm();
    const pass = await gate.enterScope(job);
    expect(pass.statementTimeoutMs).toBe(5_000);
    expect(entered).toEqual([job.tenantId]);
  });

  it("holds a job's transaction while another firm's request is in flight, and releases it when the request ends", async () => {
    const { gate, entered, limits } = setup(10_000);
    const job = firm();
    const request = await limits.admit(firm(), 'report');
    if (request.outcome !== 'admitted') throw new Error('not admitted');
    const entering = gate.enterScope(job);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(entered).toEqual([]);
    request.release();
    await entering;
    expect(entered).toEqual([job.tenantId]);
  });

  it('lets a transaction through per bound when interactive requests never stop', async () => {
    const { gate, entered, limits } = setup(40);
    const request = await limits.admit(firm(), 'read');
    expect(request.outcome).toBe('admitted');
    const startedMs = performance.now();
    await gate.enterScope(firm());
    await gate.enterScope(firm());
    expect(entered).toHaveLength(2);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(70);
  });

  it('holds the turn for the transaction and hands it on when the transaction leaves or its tenant gate refuses', async () => {
    const { gate, entered, limits } = setup(1_000, 99);
    const request = await limits.admit(firm(), 'read');
    if (request.outcome !== 'admitted') throw new Error('not admitted');
    request.release();
    const first = await gate.enterScope(firm());
    let secondEntered = false;
    const second = gate.enterScope(firm()).then((pass) => {
      secondEntered = true;
      return pass;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(secondEntered).toBe(false);
    first.leave();
    (await second).leave();
    expect(entered).toHaveLength(2);

    const refusing = setup(1_000, 99, true);
    const busy = await refusing.limits.admit(firm(), 'read');
    if (busy.outcome !== 'admitted') throw new Error('not admitted');
    busy.release();
    await expect(refusing.gate.enterScope(firm())).rejects.toThrow(/refused/);
    // The refused transaction gave its turn back: the next one is not held behind it.
    await expect(refusing.gate.enterScope(firm())).rejects.toThrow(/refused/);
  });
});

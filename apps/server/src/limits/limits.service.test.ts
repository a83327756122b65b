import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { allEntities, type TenantContext } from '../platform/database/tenant-scope.ts';
import { newUuid } from '../platform/ids.ts';
import { sharedPoolPlacement, TierCatalogue } from '../tenancy/tiers.ts';
import { TenantSemaphores } from './bulkhead.ts';
import { LimitsService, type LimitsServiceOptions } from './limits.service.ts';
import type { PlanStore } from './limits.store.ts';
import type { RouteClass } from './limits.types.ts';
import { MemoryRateLimitStore } from './rate-limit.store.ts';

/**
 * Admission without HTTP or a database: under overload interactive requests win over report
 * classes and batch work (each class is shed at its own share of the in-flight budget),
 * releases give the budget back, and the semaphores behind the bulkheads grant in order and
 * time out. Plans come from an in-memory PlanStore; nothing sleeps except the one bounded wait.
 */
const tiers = TierCatalogue.load();
const plans: PlanStore = {
  find: async () => ({ tier: 'starter', overrides: {} }),
  setOverrides: async () => null,
};

function tenant(): TenantContext {
  return { tenantId: newUuid(), tier: 'starter', placement: sharedPoolPlacement, entityScope: allEntities };
}

function service(signal?: LimitsServiceOptions['signal']) {
  return new LimitsService({
    tiers,
    plans,
    rates: new MemoryRateLimitStore(),
    shedding: {
      requestsInFlightMax: 8,
      shedReportsAtPercent: 75,
      shedBatchAtPercent: 50,
      connectionShareBudget: 4,
      batchSharePercent: 100,
    },
    log: pino({ level: 'silent' }),
    clock: () => 0,
    ...(signal ? { signal } : {}),
  });
}

describe('load shedding by route class', () => {
  it('sheds batch at half the budget, reports at three quarters, interactive only when full', async () => {
    const limits = service();
    const firms = Array.from({ length: 8 }, tenant);
    const releases: Array<() => void> = [];
    const admit = async (firm: TenantContext | null, routeClass: RouteClass) => {
      const admission = await limits.admit(firm, routeClass);
      if (admission.outcome === 'admitted') releases.push(admission.release);
      return admission.outcome === 'admitted' ? 'admitted' : admission.error.code;
    };
    for (const firm of firms.slice(0, 4)) expect(await admit(firm, 'read')).toBe('admitted');
    expect(await admit(firms[4] as TenantContext, 'batch')).toBe('SERVICE_OVERLOADED');
    expect(await admit(firms[4] as TenantContext, 'report')).toBe('admitted');
    expect(await admit(firms[5] as TenantContext, 'write')).toBe('admitted');
    expect(await admit(firms[6] as TenantContext, 'report')).toBe('SERVICE_OVERLOADED');
    expect(await admit(firms[6] as TenantContext, 'read')).toBe('admitted');
    expect(await admit(null, 'read')).toBe('admitted');
    expect(await admit(firms[7] as TenantContext, 'read')).toBe('SERVICE_OVERLOADED');
    expect(await admit(null, 'write')).toBe('SERVICE_OVERLOADED');
    const snapshot = await limits.snapshot();
    expect(snapshot.instance.requestsInFlight).toBe(8);
    const shedOf = (firm: TenantContext | undefined) =>
      snapshot.tenants.find((entry) => entry.tenantId === firm?.tenantId)?.counts.shed;
    expect([shedOf(firms[4]), shedOf(firms[6]), shedOf(firms[7])]).toEqual([1, 1, 1]);
    for (const release of releases) {
      release();
      release();
    }
    expect((await limits.snapshot()).instance.requestsInFlight).toBe(0);
    expect(await admit(firms[7] as TenantContext, 'batch')).toBe('admitted');
  });

  it('reports queued and running jobs through the jobs hook once one is registered', async () => {
    const limits = service();
    const firm = tenant();
    expect((await limits.snapshot()).tenants).toEqual([]);
    limits.setJobCountsSource({ countsByTenant: async () => new Map([[firm.tenantId, { queued: 7, running: 1 }]]) });
    const [entry] = (await limits.snapshot()).tenants;
    expect(entry).toMatchObject({ tenantId: firm.tenantId, jobs: { queued: 7, running: 1 }, counts: { accepted: 0 } });
  });
});

describe('tenant semaphores', () => {
  it('grant up to max, queue in order, hand a released slot to the oldest waiter, and time out', async () => {
    const slots = new TenantSemaphores();
    expect(slots.tryAcquire('a', 2)).toBe(true);
    expect(slots.tryAcquire('a', 2)).toBe(true);
    expect(slots.tryAcquire('a', 2)).toBe(false);
    expect(slots.tryAcquire('b', 2)).toBe(true);
    const order: string[] = [];
    const first = slots.acquire('a', 2, 10_000, 2).then((granted) => order.push(`first:${granted}`));
    const second = slots.acquire('a', 2, 10_000, 2).then((granted) => order.push(`second:${granted}`));
    expect(await slots.acquire('a', 2, 10_000, 2)).toBe(false);
    slots.release('a');
    slots.release('a');
    await Promise.all([first, second]);
    expect(order).toEqual(['first:true', 'second:true']);
    expect(slots.held('a')).toBe(2);
    expect(await slots.acquire('a', 2, 20, 2)).toBe(false);
    slots.release('a');
    slots.release('a');
    slots.release('b');
    expect([slots.held('a'), slots.held('b')]).toEqual([0, 0]);
    expect(() => slots.release('a')).toThrow(/not held/);
  });
});

describe('the connection share', () => {
  it('lets a tenant alone use its whole cap, and holds it to an even share of the budget beside others', async () => {
    let nowMs = 0;
    const limits = new LimitsService({
      tiers,
      plans,
      rates: new MemoryRateLimitStore(),
      shedding: {
        requestsInFlightMax: 64,
        shedReportsAtPercent: 75,
        shedBatchAtPercent: 50,
        connectionShareBudget: 4,
        batchSharePercent: 100,
      },
      log: pino({ level: 'silent' }),
      clock: () => nowMs,
    });
    const [a, b, c, d, e] = [tenant(), tenant(), tenant(), tenant(), tenant()];
    if (!a || !b || !c || !d || !e) throw new Error('tenants');
    // Alone, A holds its starter cap of four.
    const held = [];
    for (let index = 0; index < 4; index++) held.push(await limits.enterScope(a));
    // B arrives: two active tenants, a share of two each. B gets its first at once; A, holding
    // four, waits until it holds fewer than two.
    const bPass = await limits.enterScope(b);
    let aGranted = false;
    const aWaiting = limits.enterScope(a).then((pass) => {
      aGranted = true;
      return pass;
    });
    held.pop()?.leave();
    held.pop()?.leave();
    await new Promise((resolve) => setImmediate(resolve));
    expect(aGranted).toBe(false);
    held.pop()?.leave();
    const aPass = await aWaiting;
    expect(aGranted).toBe(true);
    // Five active tenants: the budget of four gives each one connection, never none.
    const others = await Promise.all([c, d, e].map((other) => limits.enterScope(other)));
    let aSecond = false;
    const aSecondWaiting = limits.enterScope(a).then((pass) => {
      aSecond = true;
      return pass;
    });
    held.pop()?.leave();
    await new Promise((resolve) => setImmediate(resolve));
    expect(aSecond).toBe(false);
    aPass.leave();
    (await aSecondWaiting).leave();
    bPass.leave();
    for (const pass of others) pass.leave();
    // Two windows later only A is active again, and its whole cap is back.
    nowMs += 2 * 1_000;
    const again = await Promise.all([0, 1, 2, 3].map(() => limits.enterScope(a)));
    expect(again).toHaveLength(4);
    for (const pass of again) pass.leave();
  });
});

describe('batch work yields to interactive requests', () => {
  it('takes its turn at once when only batch requests are in flight, and when the last interactive one ends', async () => {
    const limits = service();
    const firm = tenant();
    const batch = await limits.admit(firm, 'batch');
    expect(batch.outcome).toBe('admitted');
    (await limits.batchTurn(10_000))();
    const read = await limits.admit(firm, 'read');
    const operator = await limits.admit(null, 'write');
    if (read.outcome !== 'admitted' || operator.outcome !== 'admitted') throw new Error('not admitted');
    let turned = false;
    const waiting = limits.batchTurn(10_000).then((endTurn) => {
      turned = true;
      endTurn();
    });
    read.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(turned).toBe(false);
    operator.release();
    await waiting;
    expect(turned).toBe(true);
    // Only the wait that met interactive work counts, for the operator.
    expect((await limits.snapshot()).instance).toMatchObject({
      interactiveInFlight: 0,
      batchWaits: 1,
      batchWaitsTimedOut: 0,
    });
  });

  it('goes ahead after the bound when interactive requests never stop, so batch work is not starved', async () => {
    const limits = service();
    const read = await limits.admit(tenant(), 'read');
    expect(read.outcome).toBe('admitted');
    const startedMs = performance.now();
    (await limits.batchTurn(30))();
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(25);
    const { instance } = await limits.snapshot();
    expect(instance).toMatchObject({ interactiveInFlight: 1, batchWaits: 1, batchWaitsTimedOut: 1 });
    expect(instance.batchWaitMs).toBeGreaterThanOrEqual(25);
  });

  it('tells other instances of interactive requests (never of batch ones), and shows a lost signal as an alert', async () => {
    const announced: string[] = [];
    let lost = false;
    const limits = service({
      announce: () => announced.push('announce'),
      busyElsewhere: () => lost,
      alerts: () => (lost ? [{ code: 'INTERACTIVE_SIGNAL_LOST', message: 'lost', since: new Date(0) }] : []),
      close: async () => {},
    });
    const firm = tenant();
    const batch = await limits.admit(firm, 'batch');
    if (batch.outcome !== 'admitted') throw new Error('not admitted');
    batch.release();
    expect(announced).toEqual([]);
    for (const routeClass of ['read', 'write', 'report'] as const) {
      const admission = await limits.admit(firm, routeClass);
      if (admission.outcome !== 'admitted') throw new Error('not admitted');
      admission.release();
    }
    expect(announced).toHaveLength(3);
    expect((await limits.snapshot()).alerts).toEqual([]);
    lost = true;
    const snapshot = await limits.snapshot();
    expect(snapshot.alerts.map((alert) => alert.code)).toEqual(['INTERACTIVE_SIGNAL_LOST']);
    expect(snapshot.instance.firmsBusyElsewhere).toBe(true);
  });
});

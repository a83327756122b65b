import { describe, expect, it } from 'vitest';
import { BatchYield } from './batch-yield.ts';

/**
 * The batch share, on real timers: while a firm's request is recent, batch transactions take
 * turns one at a time and each waits out the pace the previous one set; on a quiet instance
 * they pass at once, together. Bounds are generous where timers may run late, never loose
 * where the behaviour is the point (a paced turn never starts early).
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function batchYield(batchSharePercent: number, paceWaitMsMax = 10_000, busyElsewhere?: () => boolean) {
  return new BatchYield({
    batchSharePercent,
    busyWindowMs: 200,
    paceWaitMsMax,
    ...(busyElsewhere ? { busyElsewhere } : {}),
  });
}

describe('batch share', () => {
  it('passes at once and lets turns overlap on an instance no firm is using', async () => {
    const batch = batchYield(10);
    const startedMs = performance.now();
    const first = await batch.turn(1_000);
    const second = await batch.turn(1_000);
    expect(performance.now() - startedMs).toBeLessThan(20);
    first();
    second();
    expect(batch.counts()).toMatchObject({ batchPaced: 0, batchWaits: 0 });
  });

  it('while firms use the instance, paces the next turn by the last one: at 50 %, as long again as it took', async () => {
    const batch = batchYield(50);
    batch.interactiveStarted()();
    const endFirst = await batch.turn(1_000);
    await sleep(60);
    endFirst();
    const endedMs = performance.now();
    const second = await batch.turn(1_000);
    expect(performance.now() - endedMs).toBeGreaterThanOrEqual(55);
    second();
    const counts = batch.counts();
    expect(counts.batchPaced).toBe(1);
    expect(counts.batchPacedMs).toBeGreaterThanOrEqual(55);
  });

  it('while firms use the instance, gives the turn to one batch transaction at a time, first come first served', async () => {
    const batch = batchYield(99, 5);
    batch.interactiveStarted()();
    const order: string[] = [];
    const endFirst = await batch.turn(1_000);
    const second = batch.turn(1_000).then((end) => {
      order.push('second');
      return end;
    });
    const third = batch.turn(1_000).then((end) => {
      order.push('third');
      return end;
    });
    await sleep(20);
    expect(order).toEqual([]);
    endFirst();
    (await second)();
    (await third)();
    expect(order).toEqual(['second', 'third']);
  });

  it('waits at most the pace bound however long the last turn took, and not at all once the firms have gone', async () => {
    const batch = batchYield(1, 30);
    batch.interactiveStarted()();
    const endFirst = await batch.turn(1_000);
    await sleep(20);
    endFirst();
    // At 1 % the pace would be 99 × 20 ms; the bound cuts it to 30 ms.
    let startedMs = performance.now();
    const endSecond = await batch.turn(1_000);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(25);
    expect(performance.now() - startedMs).toBeLessThan(500);
    await sleep(20);
    endSecond();
    // The busy window (200 ms) passes with no request: the next turn does not wait.
    await sleep(250);
    startedMs = performance.now();
    (await batch.turn(1_000))();
    expect(performance.now() - startedMs).toBeLessThan(20);
  });

  it('leaves batch work unpaced at a share of 100 %, though still in lulls', async () => {
    const batch = batchYield(100);
    const request = batch.interactiveStarted();
    let turned = false;
    const waiting = batch.turn(10_000).then((end) => {
      turned = true;
      return end;
    });
    await sleep(10);
    expect(turned).toBe(false);
    request();
    (await waiting)();
    const endFirst = await batch.turn(1_000);
    await sleep(20);
    endFirst();
    const startedMs = performance.now();
    (await batch.turn(1_000))();
    expect(performance.now() - startedMs).toBeLessThan(15);
    expect(batch.counts()).toMatchObject({ batchPaced: 0, batchWaits: 1 });
  });

  it('paces batch work while firms use another instance, without waiting for lulls there, and stops when they leave', async () => {
    let elsewhere = true;
    const batch = batchYield(50, 10_000, () => elsewhere);
    expect(batch.counts().firmsBusyElsewhere).toBe(true);
    const endFirst = await batch.turn(1_000);
    await sleep(60);
    endFirst();
    let startedMs = performance.now();
    const endSecond = await batch.turn(1_000);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(55);
    endSecond();
    expect(batch.counts()).toMatchObject({ batchPaced: 1, batchWaits: 0 });
    elsewhere = false;
    expect(batch.counts().firmsBusyElsewhere).toBe(false);
    startedMs = performance.now();
    (await batch.turn(1_000))();
    expect(performance.now() - startedMs).toBeLessThan(20);
    expect(batch.counts().batchPaced).toBe(1);
  });

  it('refuses a share outside 1..100', () => {
    expect(() => batchYield(0)).toThrow(/batch share/);
    expect(() => batchYield(101)).toThrow(/batch share/);
  });
});

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { MeteredTenant, UsageStore } from './metering.store.ts';
import type { UsageEvent } from './metering.types.ts';
import { UsageRecorder } from './usage-recorder.ts';

/**
 * The recorder against an in-memory store that behaves like the PostgreSQL one (insert by
 * id, ignore duplicates) and can be told to fail: batching, the buffer bound, retry after a
 * failed flush, and the final flush on close. The database-backed behaviour is in
 * metering.store.test.ts.
 */
class MemoryStore implements UsageStore {
  readonly rows = new Map<string, UsageEvent>();
  readonly batches: number[] = [];
  failuresLeft = 0;

  async insertEvents(events: readonly UsageEvent[]): Promise<number> {
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('database unavailable');
    }
    this.batches.push(events.length);
    let inserted = 0;
    for (const event of events) {
      if (this.rows.has(event.id)) continue;
      this.rows.set(event.id, event);
      inserted++;
    }
    return inserted;
  }
  buckets = async () => [];
  monthBuckets = async () => [];
  gaugeDaySums = async () => new Map();
  rawSums = async () => new Map();
  listTenants = async (): Promise<MeteredTenant[]> => [];
  findTenant = async () => null;
}

const log = pino({ level: 'silent' });
const tenantId = '0195a3c0-0000-7000-8000-000000000001';
const event = (id?: string) => ({
  tenantId,
  tier: 'starter',
  metric: 'requests' as const,
  quantity: 1,
  ...(id ? { id } : {}),
});

describe('UsageRecorder', () => {
  it('flushes in batches of the configured size and counts every event once', async () => {
    const store = new MemoryStore();
    const recorder = new UsageRecorder(store, log, { flushBatchEventsMax: 4, flushEarlyAtEvents: 100 });
    for (let index = 0; index < 10; index++) recorder.recordUsage(event());
    await recorder.flush();
    expect(store.batches).toEqual([4, 4, 2]);
    expect(recorder.stats()).toMatchObject({ bufferedEvents: 0, flushedEvents: 10, duplicateEvents: 0 });
  });

  it('counts a re-emitted event id as a duplicate, not a second event', async () => {
    const store = new MemoryStore();
    const recorder = new UsageRecorder(store, log);
    const id = '0195a3c0-0000-7000-8000-0000000000aa';
    recorder.recordUsage(event(id));
    await recorder.flush();
    recorder.recordUsage(event(id));
    recorder.recordUsage(event(id));
    await recorder.flush();
    expect(store.rows.size).toBe(1);
    expect(recorder.stats()).toMatchObject({ flushedEvents: 1, duplicateEvents: 2 });
  });

  it('drops and counts events beyond the buffer bound instead of blocking', () => {
    // A store that never answers: the first batch stays in flight, the buffer fills behind it.
    const store = new MemoryStore();
    store.insertEvents = () => new Promise<number>(() => undefined);
    const recorder = new UsageRecorder(store, log, {
      bufferEventsMax: 5,
      flushBatchEventsMax: 5,
      flushEarlyAtEvents: 5,
    });
    for (let index = 0; index < 5; index++) recorder.recordUsage(event()); // taken by the early flush
    for (let index = 0; index < 8; index++) recorder.recordUsage(event()); // 5 fit, 3 do not
    expect(recorder.stats()).toMatchObject({ bufferedEvents: 5, droppedEvents: 3 });
  });

  it('keeps a failed batch and writes it on the next flush', async () => {
    const store = new MemoryStore();
    store.failuresLeft = 1;
    const recorder = new UsageRecorder(store, log);
    for (let index = 0; index < 3; index++) recorder.recordUsage(event());
    await recorder.flush();
    expect(recorder.stats()).toMatchObject({ bufferedEvents: 3, failedFlushes: 1, flushedEvents: 0 });
    await recorder.flush();
    expect(store.rows.size).toBe(3);
    expect(recorder.stats()).toMatchObject({ bufferedEvents: 0, flushedEvents: 3 });
  });

  it('flushes everything on close and refuses events afterwards', async () => {
    const store = new MemoryStore();
    const recorder = new UsageRecorder(store, log);
    recorder.start();
    for (let index = 0; index < 7; index++) recorder.recordUsage(event());
    expect(await recorder.close()).toBe(0);
    expect(store.rows.size).toBe(7);
    recorder.recordUsage(event());
    expect(recorder.stats()).toMatchObject({ bufferedEvents: 0, droppedEvents: 1 });
  });

  it('reports what it could not write when the database stays down past the shutdown timeout', async () => {
    const store = new MemoryStore();
    store.failuresLeft = 1_000;
    const recorder = new UsageRecorder(store, log);
    recorder.recordUsage(event());
    recorder.recordUsage(event());
    expect(await recorder.close(120)).toBe(2);
  });

  it('treats a malformed event as a programmer error', () => {
    const recorder = new UsageRecorder(new MemoryStore(), log);
    expect(() => recorder.recordUsage({ ...event(), quantity: -1 })).toThrow(/quantity/);
    expect(() => recorder.recordUsage({ ...event(), quantity: 1.5 })).toThrow(/quantity/);
    expect(() => recorder.recordUsage({ ...event(), tenantId: 'ten_1' })).toThrow(/tenant/);
    expect(() => recorder.recordUsage({ ...event(), metric: 'fax_pages' as 'requests' })).toThrow(/metric/);
  });
});

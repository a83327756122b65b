import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../../test/harness.ts';
import { newUuid } from '../platform/ids.ts';
import type { Granularity, MetricCode, UsageEvent } from './metering.types.ts';

/**
 * The PostgreSQL usage store: duplicate events are counted once (in the raw table and in
 * the rollups), every rollup equals the sum of its raw events, graceful shutdown writes the
 * buffer, and the runtime role (every tenant request) cannot read the usage tables at all.
 */
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
});

afterAll(async () => {
  await stack?.close();
});

function makeEvent(tenantId: string, metric: MetricCode, quantity: number, occurredAt: Date): UsageEvent {
  return { id: newUuid(), tenantId, tier: 'starter', metric, quantity, occurredAt, properties: { source: 'test' } };
}

const truncate: Record<Granularity, (date: Date) => string> = {
  hour: (date) => `${date.toISOString().slice(0, 13)}:00:00.000Z`,
  day: (date) => `${date.toISOString().slice(0, 10)}T00:00:00.000Z`,
  month: (date) => `${date.toISOString().slice(0, 7)}-01T00:00:00.000Z`,
};

describe('usage store', () => {
  it('counts a duplicate event once, in the events and in the rollups', async () => {
    const tenantId = newUuid();
    const at = new Date('2026-08-03T10:15:00Z');
    const event = makeEvent(tenantId, 'requests', 7, at);
    expect(await stack.platform.usageStore.insertEvents([event, { ...event }])).toBe(1);
    expect(await stack.platform.usageStore.insertEvents([{ ...event, quantity: 999 }])).toBe(0);
    const raw = await stack.platform.usageStore.rawSums(tenantId, new Date('2026-08-01Z'), new Date('2026-09-01Z'));
    expect(raw.get('requests')).toBe(7n);
    for (const granularity of ['hour', 'day', 'month'] as const) {
      const buckets = await stack.platform.usageStore.buckets(
        tenantId,
        granularity,
        new Date('2026-08-01Z'),
        new Date('2026-09-01Z'),
      );
      expect(buckets.map((bucket) => [bucket.quantitySum, bucket.eventCount])).toEqual([[7n, 1n]]);
    }
  });

  it('stores properties exactly, whatever characters they hold (COPY escaping)', async () => {
    const tenantId = newUuid();
    const properties = {
      path: 'C:\\books\\2026\tq1\nline two\r',
      quote: 'say "hi"',
      unicode: 'Zoë — €5 ✓',
      empty: '',
      nul: '\\N',
    };
    const event = { ...makeEvent(tenantId, 'requests', 1, new Date('2026-08-03T10:15:00Z')), properties };
    expect(await stack.platform.usageStore.insertEvents([event])).toBe(1);
    const { rows } = await stack.platform.ownerPool.query<{ properties: unknown }>(
      'select properties from usage_events where id = $1',
      [event.id],
    );
    expect(rows[0]?.properties).toEqual(properties);
  });

  it('keeps every hour, day and month rollup equal to the raw events, across batches with repeats', async () => {
    const tenantId = newUuid();
    const events: UsageEvent[] = [];
    // 400 events over three days around a month boundary, counters and a gauge.
    for (let index = 0; index < 400; index++) {
      const at = new Date(Date.UTC(2026, 6, 30, 0, 0, 0) + index * 11 * 60_000 + (index % 7) * 1_000);
      const metric: MetricCode = index % 5 === 0 ? 'storage_bytes' : index % 2 === 0 ? 'requests' : 'database_us';
      events.push(makeEvent(tenantId, metric, (index * 7919) % 10_000, at));
    }
    // Three overlapping batches: every event is sent at least once, many twice.
    await stack.platform.usageStore.insertEvents(events.slice(0, 250));
    await stack.platform.usageStore.insertEvents(events.slice(150, 400));
    await stack.platform.usageStore.insertEvents(events.slice(100, 200));
    for (const granularity of ['hour', 'day', 'month'] as const) {
      const expected = new Map<string, { sum: bigint; max: bigint; count: bigint }>();
      for (const event of events) {
        const key = `${event.metric}@${truncate[granularity](event.occurredAt)}`;
        const entry = expected.get(key) ?? { sum: 0n, max: 0n, count: 0n };
        entry.sum += BigInt(event.quantity);
        entry.max = entry.max > BigInt(event.quantity) ? entry.max : BigInt(event.quantity);
        entry.count++;
        expected.set(key, entry);
      }
      const buckets = await stack.platform.usageStore.buckets(
        tenantId,
        granularity,
        new Date('2026-07-01Z'),
        new Date('2026-09-01Z'),
      );
      const actual = new Map(
        buckets.map((bucket) => [
          `${bucket.metric}@${bucket.bucketStart.toISOString()}`,
          { sum: bucket.quantitySum, max: bucket.quantityMax, count: bucket.eventCount },
        ]),
      );
      expect(actual, granularity).toEqual(expected);
    }
    const raw = await stack.platform.usageStore.rawSums(tenantId, new Date('2026-07-01Z'), new Date('2026-09-01Z'));
    const requestSum = events
      .filter((event) => event.metric === 'requests')
      .reduce((sum, event) => sum + BigInt(event.quantity), 0n);
    expect(raw.get('requests')).toBe(requestSum);
  });

  it('is out of the runtime role’s reach: tenant requests cannot read or write usage', async () => {
    for (const table of ['usage_events', 'usage_rollups', 'cost_imports', 'cost_import_lines']) {
      await expect(stack.platform.runtimePool.query(`select 1 from ${table} limit 1`)).rejects.toThrow(
        /permission denied/,
      );
    }
  });
});

describe('graceful shutdown', () => {
  it('writes every buffered event before the pools close', async () => {
    const other = await startTestStack();
    const tenantId = newUuid();
    const at = new Date('2026-06-15T12:00:00Z');
    for (let index = 0; index < 250; index++) {
      other.platform.metering.recordUsage({
        tenantId,
        tier: 'starter',
        metric: 'requests',
        quantity: 2,
        occurredAt: at,
      });
    }
    expect(other.platform.metering.recorder.stats().bufferedEvents).toBe(250);
    await other.close();
    const raw = await stack.platform.usageStore.rawSums(tenantId, new Date('2026-06-01Z'), new Date('2026-07-01Z'));
    expect(raw.get('requests')).toBe(500n);
  });
});

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../../test/harness.ts';
import { newUuid } from '../platform/ids.ts';
import { PgUsageStore } from './metering.store.ts';
import type { Granularity, MetricCode, UsageEvent } from './metering.types.ts';

/**
 * The PostgreSQL usage store: duplicate events are counted once (in the raw table and in
 * the rollups), every rollup equals the sum of its raw events — on the fast path (COPY
 * straight into usage_events, hour totals summed in memory) and on the fallback a duplicate
 * sends a batch down (staging, ON CONFLICT DO NOTHING) — also when two instances flush the
 * same events at once; graceful shutdown writes the buffer, and the runtime role (every
 * tenant request) cannot read the usage tables at all.
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

/** Asserts every hour, day and month rollup of the tenant equals what `events` (each once) sum to. */
async function expectRollupsOf(tenantId: string, events: readonly UsageEvent[], from: Date, to: Date): Promise<void> {
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
    const buckets = await stack.platform.usageStore.buckets(tenantId, granularity, from, to);
    const actual = new Map(
      buckets.map((bucket) => [
        `${bucket.metric}@${bucket.bucketStart.toISOString()}`,
        { sum: bucket.quantitySum, max: bucket.quantityMax, count: bucket.eventCount },
      ]),
    );
    expect(actual, granularity).toEqual(expected);
  }
}

/** Events over three days around a month boundary, counters and a gauge. */
function spreadEvents(tenantId: string, count: number): UsageEvent[] {
  const events: UsageEvent[] = [];
  for (let index = 0; index < count; index++) {
    const at = new Date(Date.UTC(2026, 6, 30, 0, 0, 0) + index * 11 * 60_000 + (index % 7) * 1_000);
    const metric: MetricCode = index % 5 === 0 ? 'storage_bytes' : index % 2 === 0 ? 'requests' : 'database_us';
    events.push(makeEvent(tenantId, metric, (index * 7919) % 10_000, at));
  }
  return events;
}

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
    const events = spreadEvents(tenantId, 400);
    // Three overlapping batches: the first takes the fast path, the next two meet stored
    // events and fall back; every event is sent at least once, many twice.
    expect(await stack.platform.usageStore.insertEvents(events.slice(0, 250))).toBe(250);
    expect(await stack.platform.usageStore.insertEvents(events.slice(150, 400))).toBe(150);
    expect(await stack.platform.usageStore.insertEvents(events.slice(100, 200))).toBe(0);
    await expectRollupsOf(tenantId, events, new Date('2026-07-01Z'), new Date('2026-09-01Z'));
    const raw = await stack.platform.usageStore.rawSums(tenantId, new Date('2026-07-01Z'), new Date('2026-09-01Z'));
    const requestSum = events
      .filter((event) => event.metric === 'requests')
      .reduce((sum, event) => sum + BigInt(event.quantity), 0n);
    expect(raw.get('requests')).toBe(requestSum);
  });

  it("reads one tenant's month alone, with the same figures as the whole fleet's read", async () => {
    const [mine, theirs] = [newUuid(), newUuid()];
    // A month of its own (2024-02), so other tests' rollups do not enter the fleet's read.
    const at = (day: number) => new Date(Date.UTC(2024, 1, day, 12));
    const events = [mine, theirs].flatMap((tenantId, index) => [
      makeEvent(tenantId, 'requests', 10 + index, at(3)),
      makeEvent(tenantId, 'requests', 20 + index, at(4)),
      makeEvent(tenantId, 'storage_bytes', 1_000 * (index + 1), at(3)),
      makeEvent(tenantId, 'storage_bytes', 3_000 * (index + 1), at(5)),
    ]);
    expect(await stack.platform.usageStore.insertEvents(events)).toBe(8);
    const [start, end] = [new Date('2024-02-01Z'), new Date('2024-03-01Z')];
    const fleet = await stack.platform.usageStore.monthBuckets(start);
    const alone = await stack.platform.usageStore.monthBuckets(start, mine);
    expect(alone.map((bucket) => bucket.tenantId)).toEqual([mine, mine]);
    expect(alone).toEqual(fleet.filter((bucket) => bucket.tenantId === mine));
    expect(alone.find((bucket) => bucket.metric === 'requests')?.quantitySum).toBe(30n);
    const fleetDays = await stack.platform.usageStore.gaugeDaySums('storage_bytes', start, end);
    const aloneDays = await stack.platform.usageStore.gaugeDaySums('storage_bytes', start, end, mine);
    expect([...aloneDays]).toEqual([[mine, 4_000n]]);
    expect(fleetDays.get(theirs)).toBe(8_000n);
  });

  it('counts each event once when two instances flush overlapping batches at the same time', async () => {
    const tenantId = newUuid();
    const events = spreadEvents(tenantId, 600);
    // A second store on its own pool stands for a second instance.
    const otherPool = new pg.Pool({ connectionString: stack.config.databaseUrl, max: 2 });
    const other = new PgUsageStore(otherPool);
    try {
      const inserted = await Promise.all([
        stack.platform.usageStore.insertEvents(events.slice(0, 400)),
        other.insertEvents(events.slice(200, 600)),
        stack.platform.usageStore.insertEvents(events.slice(100, 500)),
      ]);
      expect(inserted.reduce((sum, count) => sum + count, 0)).toBe(600);
    } finally {
      await otherPool.end();
    }
    await expectRollupsOf(tenantId, events, new Date('2026-07-01Z'), new Date('2026-09-01Z'));
  });

  it('does not deadlock when two instances flush the same events in opposite orders', async () => {
    const tenantId = newUuid();
    const events = spreadEvents(tenantId, 100).sort((left, right) => (left.id < right.id ? -1 : 1));
    const middle = events[50] as UsageEvent;
    // A third session holds the middle id uncommitted, so both flushes stop at it with
    // what they have inserted so far: in opposite orders, each then needs the other's rows.
    const holder = new pg.Client({ connectionString: stack.config.databaseUrl });
    const otherPool = new pg.Pool({ connectionString: stack.config.databaseUrl, max: 2 });
    const other = new PgUsageStore(otherPool);
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query(
        `insert into usage_events (id, tenant, metric, quantity, occurred_at, properties)
         values ($1, $2, $3, $4, $5, '{}')`,
        [middle.id, tenantId, middle.metric, middle.quantity, middle.occurredAt],
      );
      const flushes = Promise.allSettled([
        stack.platform.usageStore.insertEvents(events),
        other.insertEvents([...events].reverse()),
      ]);
      const { rows } = await holder.query<{ pid: number }>('select pg_backend_pid() as pid');
      const holderPid = rows[0]?.pid;
      for (let waited = 0; waited < 100; waited++) {
        const blocked = await stack.platform.ownerPool.query<{ waiting: number }>(
          `select count(*)::integer as waiting from pg_stat_activity
            where wait_event_type = 'Lock' and pid <> $1 and datname = current_database()`,
          [holderPid],
        );
        if ((blocked.rows[0]?.waiting ?? 0) >= 2) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await holder.query('rollback');
      const settled = await flushes;
      expect(settled.map((result) => (result.status === 'rejected' ? String(result.reason) : 'ok'))).toEqual([
        'ok',
        'ok',
      ]);
      const inserted = settled.reduce((sum, result) => sum + (result.status === 'fulfilled' ? result.value : 0), 0);
      expect(inserted).toBe(100);
    } finally {
      await holder.end();
      await otherPool.end();
    }
    await expectRollupsOf(tenantId, events, new Date('2026-07-01Z'), new Date('2026-09-01Z'));
  });

  it('sums an hour exactly past 2^53 on the fast path', async () => {
    const tenantId = newUuid();
    const at = new Date('2026-08-03T10:15:00Z');
    const events = [0, 1, 2].map((index) =>
      makeEvent(tenantId, 'database_us', Number.MAX_SAFE_INTEGER, new Date(at.getTime() + index)),
    );
    expect(await stack.platform.usageStore.insertEvents(events)).toBe(3);
    const [hour] = await stack.platform.usageStore.buckets(
      tenantId,
      'hour',
      new Date('2026-08-03Z'),
      new Date('2026-08-04Z'),
    );
    expect(hour?.quantitySum).toBe(3n * BigInt(Number.MAX_SAFE_INTEGER));
  });

  it('writes nothing of a batch the database refuses', async () => {
    const tenantId = newUuid();
    const good = makeEvent(tenantId, 'requests', 1, new Date('2026-08-03T10:15:00Z'));
    const bad = { ...makeEvent(tenantId, 'requests', 1, new Date('2026-08-03T10:15:00Z')), metric: 'Not-A-Metric' };
    await expect(stack.platform.usageStore.insertEvents([good, bad as UsageEvent])).rejects.toThrow(/check constraint/);
    // The same refusal after the fallback: a stored duplicate sends the batch to staging first.
    expect(await stack.platform.usageStore.insertEvents([good])).toBe(1);
    const next = makeEvent(tenantId, 'requests', 1, new Date('2026-08-03T10:16:00Z'));
    await expect(stack.platform.usageStore.insertEvents([good, next, bad as UsageEvent])).rejects.toThrow(
      /check constraint/,
    );
    const raw = await stack.platform.usageStore.rawSums(tenantId, new Date('2026-08-01Z'), new Date('2026-09-01Z'));
    expect(raw.get('requests')).toBe(1n);
    await expectRollupsOf(tenantId, [good], new Date('2026-08-01Z'), new Date('2026-09-01Z'));
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

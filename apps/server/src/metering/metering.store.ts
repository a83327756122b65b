import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { TenantPlacement } from '../platform/database/tenant-scope.ts';
import { inTransaction } from '../platform/database/transaction.ts';
import type { Granularity, MetricCode, UsageBucket, UsageEvent } from './metering.types.ts';

/**
 * Usage events and rollups in the control-plane tables (0008_metering.sql), through the
 * owner pool. The insert and the rollup update are one transaction: the rollups grow only by
 * the events that were actually inserted, so a duplicate event changes neither.
 */
export interface UsageStore {
  /** Inserts the events not yet stored and adds them to the rollups; returns how many were new. */
  insertEvents(events: readonly UsageEvent[]): Promise<number>;
  buckets(tenantId: string, granularity: Granularity, from: Date, to: Date): Promise<UsageBucket[]>;
  /** Month rollups of every tenant (or of `tenantId` only) for the month starting at `monthStart` (UTC). */
  monthBuckets(monthStart: Date, tenantId?: string): Promise<Array<UsageBucket & { tenantId: string }>>;
  /** Sum over days of the day's largest sample of a gauge, per tenant (or of `tenantId` only; for example byte-days). */
  gaugeDaySums(metric: MetricCode, monthStart: Date, monthEnd: Date, tenantId?: string): Promise<Map<string, bigint>>;
  /** Straight from the raw events, for reproducibility checks: sum per metric for one tenant. */
  rawSums(tenantId: string, from: Date, to: Date): Promise<Map<MetricCode, bigint>>;
  listTenants(): Promise<MeteredTenant[]>;
  findTenant(id: string): Promise<MeteredTenant | null>;
}

/** A tenant as metering and billing need it, from the registry. */
export interface MeteredTenant {
  id: string;
  name: string;
  tier: string;
  status: string;
  placement: TenantPlacement;
  createdAt: Date;
}

interface BucketRow {
  tenant: string;
  metric: MetricCode;
  bucket_start: Date;
  quantity_sum: string;
  quantity_max: string;
  event_count: string;
}

function bucketOf(row: BucketRow): UsageBucket {
  return {
    metric: row.metric,
    bucketStart: row.bucket_start,
    quantitySum: BigInt(row.quantity_sum),
    quantityMax: BigInt(row.quantity_max),
    eventCount: BigInt(row.event_count),
  };
}

interface TenantRow {
  id: string;
  name: string;
  tier: string;
  status: string;
  placement_model: TenantPlacement['model'];
  placement_cluster: string;
  placement_database: string;
  created_at: Date;
}

function tenantOf(row: TenantRow): MeteredTenant {
  return {
    id: row.id,
    name: row.name,
    tier: row.tier,
    status: row.status,
    placement: { model: row.placement_model, cluster: row.placement_cluster, database: row.placement_database },
    createdAt: row.created_at,
  };
}

// A flush is one transaction. Fast path: COPY the batch straight into usage_events (a
// duplicate id, in the batch or already stored, fails the whole COPY) and add its hour
// totals, summed in memory, to the rollups. Only when that COPY meets a duplicate does the
// flush fall back to staging: COPY into a per-session temp table, insert the new events with
// ON CONFLICT DO NOTHING and sum the rows actually inserted. Either way the rollups grow by
// exactly the events that were inserted, and one statement per flush upserts each hour, day
// and month row once. Profiled per statement, the staged INSERT … ON CONFLICT cost more than
// the COPY before it; the fast path skips it, and duplicates are rare (retries, replays).
const uniqueViolation = '23505';

const stagingTablesSql = `
create temp table if not exists usage_events_incoming (
  id uuid, tenant uuid, metric text, quantity bigint, occurred_at timestamptz, properties jsonb
) on commit delete rows;
create temp table if not exists usage_hours_incoming (
  tenant uuid, metric text, hour_start timestamptz, quantity_sum numeric, quantity_max bigint, event_count bigint
) on commit delete rows`;

const eventColumns = '(id, tenant, metric, quantity, occurred_at, properties)';
const copyIntoEventsSql = `copy usage_events ${eventColumns} from stdin`;
const copyIntoStagingSql = `copy usage_events_incoming ${eventColumns} from stdin`;
const copyIntoHoursSql =
  'copy usage_hours_incoming (tenant, metric, hour_start, quantity_sum, quantity_max, event_count) from stdin';

// Hours are whole multiples of 3,600 s since the epoch in UTC, as the fast path computes them.
const hourOriginSql = `timestamptz '2000-01-01 00:00:00+00'`;

const moveStagedEventsSql = `
with inserted as (
  insert into usage_events ${eventColumns}
  select id, tenant, metric, quantity, occurred_at, properties from usage_events_incoming
   order by id
  on conflict (id) do nothing
  returning tenant, metric, quantity, occurred_at
), hours as (
  insert into usage_hours_incoming (tenant, metric, hour_start, quantity_sum, quantity_max, event_count)
  select tenant, metric, date_bin('1 hour', occurred_at, ${hourOriginSql}), sum(quantity), max(quantity), count(*)
    from inserted group by 1, 2, 3
  returning event_count
)
select coalesce(sum(event_count), 0)::int as inserted from hours`;

// Sorted like the primary key, so concurrent flushes lock shared rows in the same order.
const rollUpHoursSql = `
insert into usage_rollups (tenant, metric, granularity, bucket_start, quantity_sum, quantity_max, event_count)
select h.tenant, h.metric, g.granularity,
       case g.granularity
         when 'hour' then h.hour_start
         when 'day' then date_bin('1 day', h.hour_start, ${hourOriginSql})
         else date_trunc('month', h.hour_start, 'UTC')
       end,
       sum(h.quantity_sum), max(h.quantity_max), sum(h.event_count)
  from usage_hours_incoming h cross join (values ('hour'), ('day'), ('month')) as g(granularity)
 group by 1, 2, 3, 4
 order by 1, 3, 4, 2
on conflict (tenant, granularity, bucket_start, metric) do update
   set quantity_sum = usage_rollups.quantity_sum + excluded.quantity_sum,
       quantity_max = greatest(usage_rollups.quantity_max, excluded.quantity_max),
       event_count = usage_rollups.event_count + excluded.event_count`;

/** A value in COPY's text format: backslash, tab, newline and carriage return escaped. */
function copyField(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (char) =>
    char === '\\' ? '\\\\' : char === '\t' ? '\\t' : char === '\n' ? '\\n' : '\\r',
  );
}

function copyProperties(properties: UsageEvent['properties']): string {
  // Most events carry no properties; skip the stringify and the escaping for them.
  for (const _ in properties) return copyField(JSON.stringify(properties));
  return '{}';
}

function copyLines(events: readonly UsageEvent[]): string {
  let text = '';
  for (const event of events) {
    // Ids, tenants and metric codes are checked by the recorder; only the JSON needs escaping.
    text += `${event.id}\t${event.tenantId}\t${event.metric}\t${event.quantity}\t${event.occurredAt.toISOString()}\t${copyProperties(event.properties)}\n`;
  }
  return text;
}

const hourMs = 3_600_000;

interface HourTotal {
  /** A number while it is a safe integer, a bigint past 2^53 (a sum of many large samples). */
  quantitySum: number | bigint;
  quantityMax: number;
  eventCount: number;
}

function addToSum(sum: number | bigint, quantity: number): number | bigint {
  if (typeof sum === 'number' && sum + quantity <= Number.MAX_SAFE_INTEGER) return sum + quantity;
  return BigInt(sum) + BigInt(quantity);
}

function entryOf<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  const found = map.get(key);
  if (found !== undefined) return found;
  const created = create();
  map.set(key, created);
  return created;
}

/** The batch summed per tenant, metric and UTC hour, as COPY lines for usage_hours_incoming. */
function hourTotalLines(events: readonly UsageEvent[]): string {
  // Nested maps keyed by the event's own strings and the hour number: no key string is built
  // per event (a concatenated key cost more than the COPY text itself, measured).
  const tenants = new Map<string, Map<string, Map<number, HourTotal>>>();
  for (const event of events) {
    const hourStartMs = Math.floor(event.occurredAt.getTime() / hourMs) * hourMs;
    const metrics = entryOf(tenants, event.tenantId, () => new Map<string, Map<number, HourTotal>>());
    const hours = entryOf(metrics, event.metric, () => new Map<number, HourTotal>());
    const total = hours.get(hourStartMs);
    if (total === undefined) {
      hours.set(hourStartMs, { quantitySum: event.quantity, quantityMax: event.quantity, eventCount: 1 });
      continue;
    }
    total.quantitySum = addToSum(total.quantitySum, event.quantity);
    if (event.quantity > total.quantityMax) total.quantityMax = event.quantity;
    total.eventCount++;
  }
  let text = '';
  for (const [tenantId, metrics] of tenants) {
    for (const [metric, hours] of metrics) {
      for (const [hourStartMs, total] of hours) {
        text += `${tenantId}\t${metric}\t${new Date(hourStartMs).toISOString()}\t${total.quantitySum}\t${total.quantityMax}\t${total.eventCount}\n`;
      }
    }
  }
  return text;
}

async function copyText(client: pg.PoolClient, sql: string, text: string): Promise<void> {
  await pipeline(Readable.from([text]), client.query(copyFrom(sql)));
}

function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === uniqueViolation;
}

export class PgUsageStore implements UsageStore {
  readonly #pool: pg.Pool;

  constructor(ownerPool: pg.Pool) {
    this.#pool = ownerPool;
  }

  async insertEvents(events: readonly UsageEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    return await inTransaction(this.#pool, async (client) => {
      await client.query(stagingTablesSql);
      const inserted = await this.#insertNew(client, events);
      await client.query(rollUpHoursSql);
      return inserted;
    });
  }

  /**
   * Inserts the events not yet stored and stages their hour totals; returns how many were new.
   * Both paths insert in id order: two instances flushing the same ids (a retried event sent
   * to each) then wait on each other's duplicates in one order and cannot deadlock.
   */
  async #insertNew(client: pg.PoolClient, events: readonly UsageEvent[]): Promise<number> {
    // uuidv7 ids arrive nearly sorted, so this sort is close to a single pass.
    const lines = copyLines([...events].sort((left, right) => (left.id < right.id ? -1 : left.id > right.id ? 1 : 0)));
    await client.query('savepoint usage_copy');
    try {
      await copyText(client, copyIntoEventsSql, lines);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      await client.query('rollback to savepoint usage_copy');
      await copyText(client, copyIntoStagingSql, lines);
      const { rows } = await client.query<{ inserted: number }>(moveStagedEventsSql);
      return rows[0]?.inserted ?? 0;
    }
    await copyText(client, copyIntoHoursSql, hourTotalLines(events));
    return events.length;
  }

  async buckets(tenantId: string, granularity: Granularity, from: Date, to: Date): Promise<UsageBucket[]> {
    const { rows } = await this.#pool.query<BucketRow>(
      `select tenant, metric, bucket_start, quantity_sum::text, quantity_max::text, event_count::text
         from usage_rollups
        where tenant = $1 and granularity = $2 and bucket_start >= $3 and bucket_start < $4
        order by bucket_start, metric`,
      [tenantId, granularity, from, to],
    );
    return rows.map(bucketOf);
  }

  // One tenant's rows are read by the primary key (tenant first); the fleet's, by scanning the month.
  async monthBuckets(monthStart: Date, tenantId?: string): Promise<Array<UsageBucket & { tenantId: string }>> {
    const { rows } = await this.#pool.query<BucketRow>(
      `select tenant, metric, bucket_start, quantity_sum::text, quantity_max::text, event_count::text
         from usage_rollups where granularity = 'month' and bucket_start = $1
          ${tenantId === undefined ? '' : 'and tenant = $2'}
        order by tenant, metric`,
      tenantId === undefined ? [monthStart] : [monthStart, tenantId],
    );
    return rows.map((row) => ({ ...bucketOf(row), tenantId: row.tenant }));
  }

  async gaugeDaySums(
    metric: MetricCode,
    monthStart: Date,
    monthEnd: Date,
    tenantId?: string,
  ): Promise<Map<string, bigint>> {
    const { rows } = await this.#pool.query<{ tenant: string; total: string }>(
      `select tenant, sum(quantity_max)::text as total from usage_rollups
        where granularity = 'day' and metric = $1 and bucket_start >= $2 and bucket_start < $3
          ${tenantId === undefined ? '' : 'and tenant = $4'}
        group by tenant`,
      tenantId === undefined ? [metric, monthStart, monthEnd] : [metric, monthStart, monthEnd, tenantId],
    );
    return new Map(rows.map((row) => [row.tenant, BigInt(row.total)]));
  }

  async rawSums(tenantId: string, from: Date, to: Date): Promise<Map<MetricCode, bigint>> {
    const { rows } = await this.#pool.query<{ metric: MetricCode; total: string }>(
      `select metric, sum(quantity)::text as total from usage_events
        where tenant = $1 and occurred_at >= $2 and occurred_at < $3 group by metric`,
      [tenantId, from, to],
    );
    return new Map(rows.map((row) => [row.metric, BigInt(row.total)]));
  }

  async listTenants(): Promise<MeteredTenant[]> {
    const { rows } = await this.#pool.query<TenantRow>(
      `select id, name, tier, status, placement_model, placement_cluster, placement_database, created_at
         from tenants order by id`,
    );
    return rows.map(tenantOf);
  }

  async findTenant(id: string): Promise<MeteredTenant | null> {
    const { rows } = await this.#pool.query<TenantRow>(
      `select id, name, tier, status, placement_model, placement_cluster, placement_database, created_at
         from tenants where id = $1`,
      [id],
    );
    return rows[0] ? tenantOf(rows[0]) : null;
  }
}

/**
 * Usage events: the one currency of metering. Every producer (the request hook, the tenant
 * scope, the storage sampler, and later the job queue, rate limits and identity) hands its
 * events to `UsageRecorder.recordUsage`, which buffers them and flushes them in batches.
 */

/** How a metric's events combine within a rollup bucket and on an invoice. */
export type MetricKind = 'counter' | 'gauge';

/**
 * The metric catalogue. Counters are summed (requests, microseconds of time); gauges are
 * samples of a level (bytes stored, users, entities) whose bucket value is the largest sample.
 */
export const metricCatalogue = {
  requests: { kind: 'counter', unit: 'requests', description: 'Tenant API requests answered.' },
  compute_us: {
    kind: 'counter',
    unit: 'microseconds',
    description: 'Process CPU time apportioned to the tenant by its share of request wall time.',
  },
  database_us: {
    kind: 'counter',
    unit: 'microseconds',
    description: 'Wall time of the tenant-scope database transactions.',
  },
  job_us: {
    kind: 'counter',
    unit: 'microseconds',
    description: 'Wall time of the tenant’s background jobs, less their waits for a turn beside other firms.',
  },
  storage_bytes: {
    kind: 'gauge',
    unit: 'bytes',
    description: 'Bytes of the tenant’s rows, sampled from the database.',
  },
  users: { kind: 'gauge', unit: 'users', description: 'User accounts of the tenant, sampled.' },
  entities: { kind: 'gauge', unit: 'entities', description: 'Client entities of the tenant, sampled.' },
} as const satisfies Record<string, { kind: MetricKind; unit: string; description: string }>;

export type MetricCode = keyof typeof metricCatalogue;
export const metricCodes = Object.keys(metricCatalogue) as MetricCode[];

export function isMetricCode(value: string): value is MetricCode {
  return Object.hasOwn(metricCatalogue, value);
}

export type Granularity = 'hour' | 'day' | 'month';
export const granularities: readonly Granularity[] = ['hour', 'day', 'month'];

export type UsageProperties = Record<string, string | number | boolean>;

/** What a producer hands to `recordUsage`. */
export interface UsageEventInput {
  /** A uuid; give one to make a retried emission idempotent, else one is generated. */
  id?: string;
  tenantId: string;
  /** The tenant's tier, for the bounded-cardinality Prometheus labels. */
  tier: string;
  metric: MetricCode;
  /** A non-negative safe integer in the metric's unit. */
  quantity: number;
  occurredAt?: Date;
  properties?: UsageProperties;
}

/** An event as buffered and stored. */
export interface UsageEvent {
  id: string;
  tenantId: string;
  tier: string;
  metric: MetricCode;
  quantity: number;
  occurredAt: Date;
  properties: UsageProperties;
}

/** One bucket of the rollups for one tenant and metric. */
export interface UsageBucket {
  metric: MetricCode;
  bucketStart: Date;
  /** Sum of quantities (counters), as bigint since a month of microseconds can exceed 2^53. */
  quantitySum: bigint;
  /** Largest single quantity in the bucket (gauges). */
  quantityMax: bigint;
  eventCount: bigint;
}

/** Sees every recorded event synchronously; must be cheap (a map update). */
export interface UsageObserver {
  observe(event: UsageEvent): void;
}

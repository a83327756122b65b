import { AppError } from '../platform/errors.ts';
import { meteringLimits } from './metering.limits.ts';
import type { UsageStore } from './metering.store.ts';
import { type Granularity, type MetricCode, metricCatalogue } from './metering.types.ts';

export interface UsagePoint {
  bucketStart: Date;
  /** Counters: the bucket's sum; gauges: the bucket's largest sample. */
  value: bigint;
  events: bigint;
}

export interface UsageSeries {
  metric: MetricCode;
  kind: 'counter' | 'gauge';
  unit: string;
  points: UsagePoint[];
}

export interface UsageReport {
  tenantId: string;
  granularity: Granularity;
  from: Date;
  to: Date;
  series: UsageSeries[];
}

const approximateBucketMs: Record<Granularity, number> = {
  hour: 3_600_000,
  day: 86_400_000,
  month: 28 * 86_400_000,
};

/** Per-tenant usage series from the rollups. */
export class MeteringService {
  readonly #store: UsageStore;

  constructor(store: UsageStore) {
    this.#store = store;
  }

  /**
   * Buckets starting in [from, to) for one tenant; the caller has already established which
   * tenant (operator route: the registry; tenant route: the verified token).
   * Errors: METERING_RANGE_INVALID.
   */
  async usage(tenantId: string, granularity: Granularity, from: Date, to: Date): Promise<UsageReport> {
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || from >= to) {
      throw new AppError('METERING_RANGE_INVALID', '`from` must be a date-time before `to`.');
    }
    const buckets = (to.getTime() - from.getTime()) / approximateBucketMs[granularity];
    if (buckets > meteringLimits.usageBucketsMax) {
      throw new AppError(
        'METERING_RANGE_INVALID',
        `At most ${meteringLimits.usageBucketsMax} ${granularity} buckets per query; narrow the range or coarsen the granularity.`,
      );
    }
    const rows = await this.#store.buckets(tenantId, granularity, from, to);
    const series = new Map<MetricCode, UsageSeries>();
    for (const row of rows) {
      const definition = metricCatalogue[row.metric];
      const entry = series.get(row.metric) ?? {
        metric: row.metric,
        kind: definition.kind,
        unit: definition.unit,
        points: [],
      };
      series.set(row.metric, entry);
      entry.points.push({
        bucketStart: row.bucketStart,
        value: definition.kind === 'counter' ? row.quantitySum : row.quantityMax,
        events: row.eventCount,
      });
    }
    return {
      tenantId,
      granularity,
      from,
      to,
      series: [...series.values()].sort((a, b) => (a.metric < b.metric ? -1 : 1)),
    };
  }
}

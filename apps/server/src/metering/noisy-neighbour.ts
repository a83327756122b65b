import type { Logger } from 'pino';
import { newUuid } from '../platform/ids.ts';
import { meteringLimits } from './metering.limits.ts';
import type { MetricCode, UsageEvent, UsageObserver } from './metering.types.ts';

/**
 * Noisy-neighbour detection: each tenant's rate per minute of a shared resource (requests,
 * database time, CPU time) is compared with its own trailing baseline by a robust z-score,
 *   z = 0.6745 · (x − median) / MAD,
 * which one burst in the baseline cannot distort the way it would a mean and standard
 * deviation. A minute with z above the threshold and a rate above the metric's floor raises
 * an alert, kept in a bounded list for the operator API and logged as a warning.
 * Detection is per process: each instance sees the traffic it serves.
 */
export const noisyNeighbourSettings = {
  minuteMs: 60_000,
  /** Minutes of history a tenant's baseline holds. */
  baselineMinutes: 30,
  /** Minutes of history needed before a tenant can raise an alert. */
  baselineMinutesMin: 10,
  zScoreThreshold: 3.5,
  alertsKeptMax: 1_000,
  /** The smallest rate per minute worth an alert, and the smallest MAD used (so a flat baseline is not infinitely sensitive). */
  watched: {
    requests: { rateFloor: 120, madFloor: 5 },
    database_us: { rateFloor: 5_000_000, madFloor: 100_000 },
    compute_us: { rateFloor: 5_000_000, madFloor: 100_000 },
  } satisfies Partial<Record<MetricCode, { rateFloor: number; madFloor: number }>>,
} as const;

type WatchedMetric = keyof typeof noisyNeighbourSettings.watched;

export interface NoisyNeighbourAlert {
  id: string;
  tenantId: string;
  tier: string;
  metric: WatchedMetric;
  minuteStart: Date;
  observedPerMinute: number;
  baselineMedian: number;
  baselineMad: number;
  zScore: number;
  raisedAt: Date;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** Robust z-score of `value` against `baseline`; the MAD never goes below `madFloor`. */
export function robustZScore(
  baseline: readonly number[],
  value: number,
  madFloor: number,
): { z: number; median: number; mad: number } {
  const center = median(baseline);
  const mad = Math.max(median(baseline.map((sample) => Math.abs(sample - center))), madFloor);
  return { z: (0.6745 * (value - center)) / mad, median: center, mad };
}

interface TenantSeries {
  tier: string;
  current: Record<WatchedMetric, number>;
  history: Record<WatchedMetric, number[]>;
}

const watchedMetrics = Object.keys(noisyNeighbourSettings.watched) as WatchedMetric[];

function isWatched(metric: MetricCode): metric is WatchedMetric {
  return Object.hasOwn(noisyNeighbourSettings.watched, metric);
}

function emptyRecord(): Record<WatchedMetric, number> {
  return { requests: 0, database_us: 0, compute_us: 0 };
}

export class NoisyNeighbourDetector implements UsageObserver {
  readonly #log: Logger;
  readonly #tenants = new Map<string, TenantSeries>();
  readonly #alerts: NoisyNeighbourAlert[] = [];
  #minuteStartMs: number;

  constructor(log: Logger, nowMs: number = Date.now()) {
    this.#log = log;
    this.#minuteStartMs = nowMs - (nowMs % noisyNeighbourSettings.minuteMs);
  }

  observe(event: UsageEvent): void {
    if (!isWatched(event.metric)) return;
    let series = this.#tenants.get(event.tenantId);
    if (series === undefined) {
      if (this.#tenants.size >= meteringLimits.trackedTenantsMax) return;
      series = {
        tier: event.tier,
        current: emptyRecord(),
        history: { requests: [], database_us: [], compute_us: [] },
      };
      this.#tenants.set(event.tenantId, series);
    }
    series.current[event.metric] += event.quantity;
  }

  /** Called periodically; closes every minute that has ended and scores it. Returns new alerts. */
  tick(nowMs: number = Date.now()): NoisyNeighbourAlert[] {
    const raised: NoisyNeighbourAlert[] = [];
    if (nowMs - this.#minuteStartMs < noisyNeighbourSettings.minuteMs) return raised;
    const closedMinute = new Date(this.#minuteStartMs);
    for (const [tenantId, series] of this.#tenants) {
      for (const metric of watchedMetrics) {
        const alert = this.#score(tenantId, series, metric, closedMinute);
        if (alert) raised.push(alert);
      }
    }
    // Minutes with no tick at all (an idle process) count as quiet minutes for nobody: the
    // window restarts at the current minute.
    this.#minuteStartMs = nowMs - (nowMs % noisyNeighbourSettings.minuteMs);
    for (const alert of raised) {
      this.#alerts.push(alert);
      this.#log.warn({ alert, tenantId: alert.tenantId }, 'noisy neighbour: tenant rate far above its baseline');
    }
    if (this.#alerts.length > noisyNeighbourSettings.alertsKeptMax) {
      this.#alerts.splice(0, this.#alerts.length - noisyNeighbourSettings.alertsKeptMax);
    }
    return raised;
  }

  #score(tenantId: string, series: TenantSeries, metric: WatchedMetric, minute: Date): NoisyNeighbourAlert | null {
    const value = series.current[metric];
    series.current[metric] = 0;
    const history = series.history[metric];
    const settings = noisyNeighbourSettings.watched[metric];
    let alert: NoisyNeighbourAlert | null = null;
    if (history.length >= noisyNeighbourSettings.baselineMinutesMin && value >= settings.rateFloor) {
      const score = robustZScore(history, value, settings.madFloor);
      if (score.z >= noisyNeighbourSettings.zScoreThreshold) {
        alert = {
          id: newUuid(),
          tenantId,
          tier: series.tier,
          metric,
          minuteStart: minute,
          observedPerMinute: value,
          baselineMedian: score.median,
          baselineMad: score.mad,
          zScore: Math.round(score.z * 100) / 100,
          raisedAt: new Date(),
        };
      }
    }
    history.push(value);
    if (history.length > noisyNeighbourSettings.baselineMinutes) history.shift();
    return alert;
  }

  /** Newest first. */
  alerts(): NoisyNeighbourAlert[] {
    return [...this.#alerts].reverse();
  }
}

import { formatId } from '../platform/ids.ts';
import { type MetricCode, metricCatalogue, type UsageEvent, type UsageObserver } from './metering.types.ts';

/**
 * CloudWatch Embedded Metric Format sink (optional, COUNTINGHOUSE_METRICS_EMF=on): the
 * usage the recorder sees, summed per tenant over each flush interval, written as one JSON
 * log line per tenant with the dimensions [TenantId, Tier] and [Tier]. CloudWatch Logs (the
 * agent, Lambda or ECS awslogs) turns the lines into metrics without an API call. Each
 * distinct TenantId is a custom metric in CloudWatch and is billed as one.
 */
export const emfNamespace = 'Countinghouse';

const units: Record<string, string> = { requests: 'Count', microseconds: 'Microseconds', bytes: 'Bytes' };

export class EmfSink implements UsageObserver {
  readonly #write: (line: string) => void;
  readonly #pending = new Map<string, { tier: string; values: Map<MetricCode, number> }>();

  constructor(write: (line: string) => void = (line) => process.stdout.write(line)) {
    this.#write = write;
  }

  observe(event: UsageEvent): void {
    const entry = this.#pending.get(event.tenantId) ?? { tier: event.tier, values: new Map<MetricCode, number>() };
    this.#pending.set(event.tenantId, entry);
    const previous = entry.values.get(event.metric) ?? 0;
    const counter = metricCatalogue[event.metric].kind === 'counter';
    entry.values.set(event.metric, counter ? previous + event.quantity : Math.max(previous, event.quantity));
  }

  /** Writes one line per tenant seen since the last flush; returns the number of lines. */
  flush(nowMs: number = Date.now()): number {
    let lines = 0;
    for (const [tenantId, entry] of this.#pending) {
      const metrics = [...entry.values.keys()].map((metric) => ({
        Name: metric,
        Unit: units[metricCatalogue[metric].unit] ?? 'Count',
      }));
      const document: Record<string, unknown> = {
        _aws: {
          Timestamp: nowMs,
          CloudWatchMetrics: [
            { Namespace: emfNamespace, Dimensions: [['TenantId', 'Tier'], ['Tier']], Metrics: metrics },
          ],
        },
        TenantId: formatId('tenant', tenantId),
        Tier: entry.tier,
      };
      for (const [metric, value] of entry.values) document[metric] = value;
      this.#write(`${JSON.stringify(document)}\n`);
      lines++;
    }
    this.#pending.clear();
    return lines;
  }
}

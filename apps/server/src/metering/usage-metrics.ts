import { formatId } from '../platform/ids.ts';
import { meteringLimits } from './metering.limits.ts';
import {
  type MetricCode,
  metricCatalogue,
  metricCodes,
  type UsageEvent,
  type UsageObserver,
} from './metering.types.ts';
import { familyText, Histogram, type Labels, prometheusContentType } from './prometheus-text.ts';
import type { RecorderStats } from './usage-recorder.ts';

/**
 * The Prometheus view (`GET /metrics`) with bounded cardinality. Usage is kept in memory
 * per tenant (counters summed, gauges as the last sample) and turned into series at scrape
 * time: per tier (the catalogue bounds the tiers), and per tenant only for the top N
 * consumers of each metric — every other tenant is summed into `tenant="other"`. Series per
 * scrape: metrics × (N + 1) per-tenant plus metrics × tiers, whatever the number of tenants.
 * Full per-tenant series come from the rollups through the operator API instead.
 */
export const otherTenantLabel = 'other';

interface TenantTotals {
  tier: string;
  values: Map<MetricCode, number>;
}

const durationBucketsSeconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const recorderFields: Array<[keyof RecorderStats, string, string]> = [
  ['bufferedEvents', 'countinghouse_usage_buffered_events', 'Usage events waiting in memory for the next flush.'],
  ['flushedEvents', 'countinghouse_usage_flushed_events', 'Usage events written since start.'],
  ['duplicateEvents', 'countinghouse_usage_duplicate_events', 'Usage events ignored as duplicates since start.'],
  [
    'droppedEvents',
    'countinghouse_usage_dropped_events',
    'Usage events dropped (buffer full or lost at shutdown) since start.',
  ],
  ['failedFlushes', 'countinghouse_usage_failed_flushes', 'Usage flushes that failed and were retried.'],
];

export class UsageMetrics implements UsageObserver {
  readonly contentType = prometheusContentType;
  readonly #tenants = new Map<string, TenantTotals>();
  readonly #overflow: TenantTotals = { tier: otherTenantLabel, values: new Map() };
  readonly #topTenants: number;
  readonly #requestDuration = new Histogram(durationBucketsSeconds);
  readonly #recorderStats: () => RecorderStats;

  constructor(topTenants: number, recorderStats: () => RecorderStats) {
    this.#topTenants = topTenants;
    this.#recorderStats = recorderStats;
  }

  observe(event: UsageEvent): void {
    let totals = this.#tenants.get(event.tenantId);
    if (totals === undefined) {
      // Past the bound, a new tenant's usage still counts, in the overflow bucket.
      if (this.#tenants.size >= meteringLimits.trackedTenantsMax) totals = this.#overflow;
      else {
        totals = { tier: event.tier, values: new Map() };
        this.#tenants.set(event.tenantId, totals);
      }
    }
    const kind = metricCatalogue[event.metric].kind;
    const previous = totals.values.get(event.metric) ?? 0;
    totals.values.set(event.metric, kind === 'counter' ? previous + event.quantity : event.quantity);
  }

  observeRequest(tier: string, routeClass: string, statusCode: number, durationSeconds: number): void {
    this.#requestDuration.observe(
      { tier, route_class: routeClass, status_class: `${Math.floor(statusCode / 100)}xx` },
      durationSeconds,
    );
  }

  async render(): Promise<string> {
    const stats = this.#recorderStats();
    return [
      familyText(
        'countinghouse_http_request_duration_seconds',
        'histogram',
        'HTTP request duration by tier (none = unauthenticated), route class and status class.',
        this.#requestDuration.samples(),
      ),
      familyText(
        'countinghouse_tenant_usage',
        'gauge',
        'Usage since process start per tenant: counters summed, gauges the last sample. Only the top N tenants of each metric are named; the rest are summed as tenant="other" (its value may fall when a tenant enters the top N).',
        this.#tenantSamples(),
      ),
      familyText(
        'countinghouse_tier_usage',
        'gauge',
        'Usage since process start summed per tier (counters summed, gauges the sum of the tenants’ last samples).',
        this.#tierSamples(),
      ),
      ...recorderFields.map(([field, name, help]) =>
        familyText(name, 'gauge', help, [{ labels: {}, value: stats[field] }]),
      ),
    ].join('');
  }

  #tenantSamples(): Array<{ labels: Labels; value: number }> {
    const samples: Array<{ labels: Labels; value: number }> = [];
    for (const metric of metricCodes) {
      const ranked = [...this.#tenants.entries()]
        .map(([tenantId, totals]) => ({ tenantId, value: totals.values.get(metric) ?? 0 }))
        .filter((entry) => entry.value > 0)
        .sort((a, b) => b.value - a.value || (a.tenantId < b.tenantId ? -1 : 1));
      for (const entry of ranked.slice(0, this.#topTenants)) {
        samples.push({ labels: { metric, tenant: formatId('tenant', entry.tenantId) }, value: entry.value });
      }
      const rest = ranked.slice(this.#topTenants).reduce((sum, entry) => sum + entry.value, 0);
      samples.push({
        labels: { metric, tenant: otherTenantLabel },
        value: rest + (this.#overflow.values.get(metric) ?? 0),
      });
    }
    return samples;
  }

  #tierSamples(): Array<{ labels: Labels; value: number }> {
    const byTier = new Map<string, Map<MetricCode, number>>();
    for (const totals of [...this.#tenants.values(), this.#overflow]) {
      const tierTotals = byTier.get(totals.tier) ?? new Map<MetricCode, number>();
      byTier.set(totals.tier, tierTotals);
      for (const [metric, value] of totals.values) tierTotals.set(metric, (tierTotals.get(metric) ?? 0) + value);
    }
    const samples: Array<{ labels: Labels; value: number }> = [];
    for (const [tier, values] of byTier)
      for (const [metric, value] of values) samples.push({ labels: { metric, tier }, value });
    return samples;
  }
}

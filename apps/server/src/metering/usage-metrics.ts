import { Gauge, Histogram, Registry } from 'prom-client';
import { formatId } from '../platform/ids.ts';
import { meteringLimits } from './metering.limits.ts';
import {
  type MetricCode,
  metricCatalogue,
  metricCodes,
  type UsageEvent,
  type UsageObserver,
} from './metering.types.ts';
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

export class UsageMetrics implements UsageObserver {
  readonly registry = new Registry();
  readonly #tenants = new Map<string, TenantTotals>();
  readonly #overflow: TenantTotals = { tier: otherTenantLabel, values: new Map() };
  readonly #topTenants: number;
  readonly #requestDuration: Histogram<'tier' | 'route_class' | 'status_class'>;

  constructor(topTenants: number, recorderStats: () => RecorderStats) {
    this.#topTenants = topTenants;
    this.#requestDuration = new Histogram({
      name: 'countinghouse_http_request_duration_seconds',
      help: 'HTTP request duration by tier (none = unauthenticated), route class and status class.',
      labelNames: ['tier', 'route_class', 'status_class'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.#registerUsageGauges();
    this.#registerRecorderGauges(recorderStats);
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
    return await this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #registerUsageGauges(): void {
    const tenants = this.#tenants;
    const overflow = this.#overflow;
    const topTenants = this.#topTenants;
    new Gauge({
      name: 'countinghouse_tenant_usage',
      help: 'Usage since process start per tenant: counters summed, gauges the last sample. Only the top N tenants of each metric are named; the rest are summed as tenant="other" (its value may fall when a tenant enters the top N).',
      labelNames: ['metric', 'tenant'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const metric of metricCodes) {
          const ranked = [...tenants.entries()]
            .map(([tenantId, totals]) => ({ tenantId, value: totals.values.get(metric) ?? 0 }))
            .filter((entry) => entry.value > 0)
            .sort((a, b) => b.value - a.value || (a.tenantId < b.tenantId ? -1 : 1));
          for (const entry of ranked.slice(0, topTenants)) {
            this.set({ metric, tenant: formatId('tenant', entry.tenantId) }, entry.value);
          }
          const rest = ranked.slice(topTenants).reduce((sum, entry) => sum + entry.value, 0);
          this.set({ metric, tenant: otherTenantLabel }, rest + (overflow.values.get(metric) ?? 0));
        }
      },
    });
    new Gauge({
      name: 'countinghouse_tier_usage',
      help: 'Usage since process start summed per tier (counters summed, gauges the sum of the tenants’ last samples).',
      labelNames: ['metric', 'tier'],
      registers: [this.registry],
      collect() {
        this.reset();
        const byTier = new Map<string, Map<MetricCode, number>>();
        for (const totals of [...tenants.values(), overflow]) {
          const tierTotals = byTier.get(totals.tier) ?? new Map<MetricCode, number>();
          byTier.set(totals.tier, tierTotals);
          for (const [metric, value] of totals.values) tierTotals.set(metric, (tierTotals.get(metric) ?? 0) + value);
        }
        for (const [tier, values] of byTier) for (const [metric, value] of values) this.set({ metric, tier }, value);
      },
    });
  }

  #registerRecorderGauges(recorderStats: () => RecorderStats): void {
    const fields: Array<[keyof RecorderStats, string]> = [
      ['bufferedEvents', 'Usage events waiting in memory for the next flush.'],
      ['flushedEvents', 'Usage events written since start.'],
      ['duplicateEvents', 'Usage events ignored as duplicates since start.'],
      ['droppedEvents', 'Usage events dropped (buffer full or lost at shutdown) since start.'],
      ['failedFlushes', 'Usage flushes that failed and were retried.'],
    ];
    for (const [field, help] of fields) {
      new Gauge({
        name: `countinghouse_usage_${field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)}`,
        help,
        registers: [this.registry],
        collect() {
          this.set(recorderStats()[field]);
        },
      });
    }
  }
}

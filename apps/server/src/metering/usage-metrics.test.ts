import { describe, expect, it } from 'vitest';
import { formatId } from '../platform/ids.ts';
import { metricCodes, type UsageEvent } from './metering.types.ts';
import { UsageMetrics } from './usage-metrics.ts';

/**
 * The Prometheus view keeps a bounded number of series however many tenants there are:
 * with 10,000 tenants and top N = 20, each metric has at most 21 tenant series (the top 20
 * and `other`), and `other` carries exactly the usage of everyone else.
 */
const stats = () => ({ bufferedEvents: 0, flushedEvents: 0, duplicateEvents: 0, droppedEvents: 0, failedFlushes: 0 });
const tenantId = (n: number) => `0195a3c0-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;

function event(n: number, metric: UsageEvent['metric'], quantity: number): UsageEvent {
  return {
    id: `e${n}`,
    tenantId: tenantId(n),
    tier: n % 2 === 0 ? 'starter' : 'growth',
    metric,
    quantity,
    occurredAt: new Date(),
    properties: {},
  };
}

function seriesLines(text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`));
}

describe('UsageMetrics', () => {
  it('bounds per-tenant series to top N + other with 10,000 tenants', async () => {
    const metrics = new UsageMetrics(20, stats);
    for (let n = 1; n <= 10_000; n++) {
      metrics.observe(event(n, 'requests', n));
      metrics.observe(event(n, 'database_us', 10_001 - n));
      metrics.observe(event(n, 'storage_bytes', 1_000));
    }
    const text = await metrics.render();
    const tenantSeries = seriesLines(text, 'countinghouse_tenant_usage');
    expect(tenantSeries.length).toBeLessThanOrEqual(metricCodes.length * 21);
    const requestSeries = tenantSeries.filter((line) => line.includes('metric="requests"'));
    expect(requestSeries).toHaveLength(21);
    // The top consumer of requests is tenant 10,000; of database time tenant 1.
    expect(requestSeries).toContain(
      `countinghouse_tenant_usage{metric="requests",tenant="${formatId('tenant', tenantId(10_000))}"} 10000`,
    );
    expect(tenantSeries).toContain(
      `countinghouse_tenant_usage{metric="database_us",tenant="${formatId('tenant', tenantId(1))}"} 10000`,
    );
    // other = everyone below the top 20: sum(1..9980).
    expect(requestSeries).toContain(
      `countinghouse_tenant_usage{metric="requests",tenant="other"} ${(9_980 * 9_981) / 2}`,
    );
    // Tier series: one per tier and metric, and they sum to the whole.
    const tierSeries = seriesLines(text, 'countinghouse_tier_usage');
    expect(tierSeries.filter((line) => line.includes('metric="requests"')).sort()).toEqual([
      `countinghouse_tier_usage{metric="requests",tier="growth"} ${(10_000 * 10_001) / 2 - 5_000 * 5_001}`,
      `countinghouse_tier_usage{metric="requests",tier="starter"} ${5_000 * 5_001}`,
    ]);
  });

  it('keeps gauges as the last sample and counters as sums', async () => {
    const metrics = new UsageMetrics(5, stats);
    metrics.observe(event(1, 'storage_bytes', 100));
    metrics.observe(event(1, 'storage_bytes', 70));
    metrics.observe(event(1, 'requests', 2));
    metrics.observe(event(1, 'requests', 3));
    const text = await metrics.render();
    const label = formatId('tenant', tenantId(1));
    expect(text).toContain(`countinghouse_tenant_usage{metric="storage_bytes",tenant="${label}"} 70`);
    expect(text).toContain(`countinghouse_tenant_usage{metric="requests",tenant="${label}"} 5`);
  });

  it('labels request durations by tier, route class and status class only', async () => {
    const metrics = new UsageMetrics(5, stats);
    metrics.observeRequest('starter', 'read', 404, 0.02);
    const text = await metrics.render();
    expect(text).toContain(
      'countinghouse_http_request_duration_seconds_count{tier="starter",route_class="read",status_class="4xx"} 1',
    );
  });
});

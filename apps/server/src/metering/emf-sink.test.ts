import { describe, expect, it } from 'vitest';
import { EmfSink, emfNamespace } from './emf-sink.ts';

/** The EMF sink writes one CloudWatch EMF line per tenant per interval, with a TenantId dimension. */
describe('EmfSink', () => {
  it('sums counters, keeps the peak of gauges, and writes valid EMF', () => {
    const lines: string[] = [];
    const sink = new EmfSink((line) => lines.push(line));
    const tenantId = '0195a3c0-0000-7000-8000-000000000001';
    const base = { id: 'x', tenantId, tier: 'starter', occurredAt: new Date(), properties: {} };
    sink.observe({ ...base, metric: 'requests', quantity: 2 });
    sink.observe({ ...base, metric: 'requests', quantity: 3 });
    sink.observe({ ...base, metric: 'storage_bytes', quantity: 900 });
    sink.observe({ ...base, metric: 'storage_bytes', quantity: 800 });
    expect(sink.flush(1_700_000_000_000)).toBe(1);
    const document = JSON.parse(lines[0] ?? '{}');
    expect(document).toMatchObject({
      _aws: {
        Timestamp: 1_700_000_000_000,
        CloudWatchMetrics: [
          {
            Namespace: emfNamespace,
            Dimensions: [['TenantId', 'Tier'], ['Tier']],
            Metrics: [
              { Name: 'requests', Unit: 'Count' },
              { Name: 'storage_bytes', Unit: 'Bytes' },
            ],
          },
        ],
      },
      TenantId: 'ten_0195a3c0000070008000000000000001',
      Tier: 'starter',
      requests: 5,
      storage_bytes: 900,
    });
    expect(sink.flush()).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { familyText, Histogram } from './prometheus-text.ts';

/** The hand-written exposition format: escaping, histogram buckets, sum and count. */
describe('Prometheus text', () => {
  it('escapes label values and writes HELP and TYPE', () => {
    const text = familyText('x_total', 'gauge', 'Help.', [{ labels: { tenant: 'a"b\\c\nd' }, value: 2 }]);
    expect(text).toBe('# HELP x_total Help.\n# TYPE x_total gauge\nx_total{tenant="a\\"b\\\\c\\nd"} 2\n');
  });

  it('counts observations into cumulative buckets with +Inf, sum and count', () => {
    const histogram = new Histogram([0.1, 1]);
    histogram.observe({ tier: 't' }, 0.05);
    histogram.observe({ tier: 't' }, 0.5);
    histogram.observe({ tier: 't' }, 5);
    expect(familyText('d', 'histogram', 'H.', histogram.samples()).split('\n').slice(2, 7)).toEqual([
      'd_bucket{tier="t",le="0.1"} 1',
      'd_bucket{tier="t",le="1"} 2',
      'd_bucket{tier="t",le="+Inf"} 3',
      'd_sum{tier="t"} 5.55',
      'd_count{tier="t"} 3',
    ]);
  });
});

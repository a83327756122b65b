/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: three metric
 * families do not justify a client library that costs about a second of start-up on a busy
 * machine. Label values are escaped as the format requires (backslash, quote, newline).
 */
export const prometheusContentType = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

export function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabel(value)}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

function numberText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  return String(value);
}

export function familyText(
  name: string,
  type: 'gauge' | 'counter' | 'histogram',
  help: string,
  samples: ReadonlyArray<{ suffix?: string; labels: Labels; value: number }>,
): string {
  const lines = [`# HELP ${name} ${help.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')}`, `# TYPE ${name} ${type}`];
  for (const sample of samples)
    lines.push(`${name}${sample.suffix ?? ''}${labelText(sample.labels)} ${numberText(sample.value)}`);
  return `${lines.join('\n')}\n`;
}

/** A histogram keyed by its label values; cardinality is bounded by the caller's labels. */
export class Histogram {
  readonly #buckets: readonly number[];
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(buckets: readonly number[]) {
    this.#buckets = buckets;
  }

  /** Counts one observation; runs on every request, so the series key is not the escaped label text. */
  observe(labels: Labels, value: number): void {
    let key = '';
    for (const name in labels) key += `${name}\u0000${labels[name]}\u0001`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { labels, counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    for (let index = 0; index < this.#buckets.length; index++) {
      if (value <= (this.#buckets[index] as number)) series.counts[index] = (series.counts[index] ?? 0) + 1;
    }
    series.sum += value;
    series.count++;
  }

  samples(): Array<{ suffix: string; labels: Labels; value: number }> {
    const samples: Array<{ suffix: string; labels: Labels; value: number }> = [];
    for (const series of this.#series.values()) {
      this.#buckets.forEach((bound, index) => {
        samples.push({
          suffix: '_bucket',
          labels: { ...series.labels, le: String(bound) },
          value: series.counts[index] ?? 0,
        });
      });
      samples.push({ suffix: '_bucket', labels: { ...series.labels, le: '+Inf' }, value: series.count });
      samples.push({ suffix: '_sum', labels: series.labels, value: series.sum });
      samples.push({ suffix: '_count', labels: series.labels, value: series.count });
    }
    return samples;
  }
}

import { describe, expect, it } from 'vitest';
import { defaultTiersFile, TierCatalogue, TierCatalogueError } from './tiers.ts';

/** The tier catalogue is validated data: the shipped file loads, and bad files are refused with the field named. */
const valid = TierCatalogue.load(defaultTiersFile);
const starter = valid.find('starter');

function documentWith(change: (tier: Record<string, unknown>) => void): unknown {
  const tier = structuredClone(starter) as unknown as Record<string, unknown>;
  delete tier.name;
  change(tier);
  return { tiers: { custom: tier } };
}

describe('tier catalogue', () => {
  it('loads the shipped default with a pooled starter tier and its plan', () => {
    expect(starter?.isolation).toBe('pool');
    expect(starter?.usagePlan.burst).toBeGreaterThanOrEqual(
      starter?.usagePlan.ratePerSecond ?? Number.POSITIVE_INFINITY,
    );
    expect(valid.list().map((tier) => tier.name)).toContain('starter');
    expect(valid.find('toString')).toBeUndefined();
  });

  it('accepts a custom tier built from a valid one', () => {
    expect(
      TierCatalogue.parse(
        documentWith(() => {}),
        'test',
      ).find('custom')?.name,
    ).toBe('custom');
  });

  const broken: Array<{ title: string; change: (tier: Record<string, unknown>) => void; message: RegExp }> = [
    { title: 'a missing usage plan', change: (tier) => delete tier.usagePlan, message: /usagePlan/ },
    { title: 'an unknown isolation model', change: (tier) => (tier.isolation = 'shared'), message: /isolation/ },
    { title: 'an unknown field', change: (tier) => (tier.colour = 'blue'), message: /additional/ },
    {
      title: 'a burst below the rate',
      change: (tier) => ((tier.usagePlan as { burst: number }).burst = 1),
      message: /burst must be at least ratePerSecond/,
    },
    {
      title: 'a negative base fee',
      change: (tier) => ((tier.prices as { baseFeeMinor: number }).baseFeeMinor = -1),
      message: /baseFeeMinor/,
    },
    {
      title: 'an unbounded price band before the last',
      change: (tier) => {
        const prices = tier.prices as { metrics: Record<string, { tiers: unknown[] }> };
        prices.metrics.requests = {
          included: 0,
          tiers: [
            { upTo: null, unitPriceMicros: 1 },
            { upTo: 10, unitPriceMicros: 1 },
          ],
        } as never;
      },
      message: /only the last band/,
    },
  ];
  for (const testCase of broken) {
    it(`refuses ${testCase.title}, naming the problem`, () => {
      expect(() => TierCatalogue.parse(documentWith(testCase.change), 'test')).toThrow(TierCatalogueError);
      expect(() => TierCatalogue.parse(documentWith(testCase.change), 'test')).toThrow(testCase.message);
    });
  }

  it('refuses an empty catalogue and an unreadable file', () => {
    expect(() => TierCatalogue.parse({ tiers: {} }, 'test')).toThrow(/at least one tier/);
    expect(() => TierCatalogue.load('/nonexistent/tiers.json')).toThrow(TierCatalogueError);
  });
});
